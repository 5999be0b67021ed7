// SiameseRuCLIP structure, state dicts, parameter counts, training mode and tensor hygiene.
import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import "@tensorflow/tfjs-backend-cpu";
import { tf } from "../lib/tf.ts";
import { projectRoot } from "../lib/paths.ts";
import { readSafetensorsFile } from "../lib/model/safetensors.ts";
import { readTorchCheckpointFile } from "../lib/model/torch_checkpoint.ts";
import { contrastiveLoss } from "../lib/model/losses.ts";
import { headDims, presetByName, REAL_PRESET, tinyPreset } from "../lib/model/presets.ts";
import { createSiameseRuCLIP, type ProductBatch } from "../lib/model/siamese.ts";
import type { StateDict } from "../lib/model/state_dict.ts";

await tf.setBackend("cpu");
const FIXTURES = join(projectRoot, "tests", "fixtures", "model");
const weights = (await readSafetensorsFile(join(FIXTURES, "tiny_siamese.safetensors"))).tensors;
const expected = JSON.parse(await Deno.readTextFile(join(FIXTURES, "expected.json")));
const VOCAB = expected.tinyConfig.nameBert.vocabSize as number;

function randomBatch(n: number, size: number, tokens: number): ProductBatch {
  return tf.tidy(() => {
    const mask = tf.tensor2d(
      Array.from({ length: n }, (_, i) => Array.from({ length: tokens }, (_, t) => (t < tokens - i ? 1 : 0))),
      [n, tokens],
      "int32",
    );
    return {
      images: tf.randomNormal([n, size, size, 3], 0, 1, "float32", 7) as tf.Tensor4D,
      nameIds: tf.mul(tf.randomUniform([n, tokens], 1, VOCAB, "int32", 8), mask) as tf.Tensor2D,
      nameMask: mask,
      descIds: tf.mul(tf.randomUniform([n, tokens], 1, VOCAB, "int32", 9), mask) as tf.Tensor2D,
      descMask: tf.clone(mask),
    };
  });
}

function disposeBatch(b: ProductBatch): void {
  tf.dispose([b.images, b.nameIds, b.nameMask, b.descIds, b.descMask]);
}

describe("real preset", () => {
  it("has exactly the parameter names, shapes and counts of the PyTorch reference", () => {
    expect(headDims(REAL_PRESET)).toEqual({ input: 1848, hidden: 924, output: 462 });
    const model = createSiameseRuCLIP(presetByName("real"), { init: "zeros" });
    const counts = expected.realParameterCounts as Record<string, number>;
    for (const [prefix, count] of Object.entries(counts)) {
      expect([prefix, model.parameterCount(prefix === "total" ? "" : prefix)]).toEqual([prefix, count]);
    }
    const shapes = Object.fromEntries(model.parameters().list().map((e) => [e.name, e.torchShape]));
    expect(shapes).toEqual(expected.realParameterShapes);
    expect(model.featureDim).toBe(1848);
    expect(model.embeddingDim).toBe(462);
    model.dispose();
  });
});

describe("state dicts", () => {
  it("round-trips the PyTorch weights exactly (layouts converted both ways)", async () => {
    const model = createSiameseRuCLIP(tinyPreset(VOCAB), { init: "zeros" });
    model.loadStateDict(weights);
    const back = await model.stateDict();
    expect([...back.keys()].sort()).toEqual([...weights.keys()].sort());
    for (const [name, t] of weights) {
      expect([name, back.get(name)!.shape]).toEqual([name, t.shape]);
      expect(back.get(name)!.data).toEqual(t.data);
    }
    model.dispose();
  });

  it("loads the torch.save checkpoint (with old HF position_ids buffers) to the same weights", async () => {
    const pt = await readTorchCheckpointFile(join(FIXTURES, "tiny_siamese.pt"));
    expect(pt.stateDict.has("ruclip.transformer.embeddings.position_ids")).toBe(true);
    const model = createSiameseRuCLIP(tinyPreset(VOCAB), { init: "zeros" });
    expect(model.loadStateDict(pt.stateDict)).toEqual({ missing: [], unexpected: [], mismatched: [] });
    const head = (await model.stateDict()).get("head.0.weight")!;
    expect(head.data).toEqual(weights.get("head.0.weight")!.data);
    model.dispose();
  });

  it("strict loading names missing, unexpected and mismatched entries and changes nothing", async () => {
    const model = createSiameseRuCLIP(tinyPreset(VOCAB), { seed: 3 });
    const before = (await model.stateDict()).get("head.0.bias")!.data;
    const broken: StateDict = new Map(weights);
    broken.delete("ruclip.final_ln.bias");
    broken.set("head.9.weight", { dtype: "float32", shape: [1], data: new Float32Array(1) });
    broken.set("head.0.bias", { dtype: "float32", shape: [3], data: new Float32Array(3) });
    expect(() => model.loadStateDict(broken)).toThrow(
      /missing \(1\): ruclip\.final_ln\.bias[\s\S]*unexpected \(1\): head\.9\.weight[\s\S]*head\.0\.bias: expected \[80\], got \[3\]/,
    );
    expect((await model.stateDict()).get("head.0.bias")!.data).toEqual(before);
    const report = model.loadStateDict(broken, { strict: false });
    expect(report).toEqual({
      missing: ["ruclip.final_ln.bias"],
      unexpected: ["head.9.weight"],
      mismatched: ["head.0.bias: expected [80], got [3]"],
    });
    expect((await model.stateDict()).get("head.3.weight")!.data).toEqual(weights.get("head.3.weight")!.data);
    model.dispose();
  });

  it("loads a RuCLIP-tiny state dict (cc12m checkpoint layout) under the prefix ruclip.", async () => {
    const ruclipOnly: StateDict = new Map();
    for (const [name, t] of weights) if (name.startsWith("ruclip.")) ruclipOnly.set(name.slice("ruclip.".length), t);
    const model = createSiameseRuCLIP(tinyPreset(VOCAB), { init: "zeros" });
    expect(model.loadStateDict(ruclipOnly, { prefix: "ruclip." })).toEqual({
      missing: [],
      unexpected: [],
      mismatched: [],
    });
    expect((await model.stateDict()).get("ruclip.logit_scale")!.data).toEqual(weights.get("ruclip.logit_scale")!.data);
    model.dispose();
  });
});

describe("SiameseRuCLIP", () => {
  it("names the second head Linear head.2 when there is no dropout, as the reference", () => {
    const model = createSiameseRuCLIP({ ...tinyPreset(VOCAB), headDropout: null }, { init: "zeros" });
    const names = model.parameters().list().map((e) => e.name).filter((n) => n.startsWith("head."));
    expect(names).toEqual(["head.0.weight", "head.0.bias", "head.2.weight", "head.2.bias"]);
    model.dispose();
  });

  it("selects head-only or all trainable variables, leaving out pooler and logit_scale", () => {
    const model = createSiameseRuCLIP(tinyPreset(VOCAB));
    expect(model.trainableNames("head")).toEqual(["head.0.weight", "head.0.bias", "head.3.weight", "head.3.bias"]);
    const all = model.trainableNames("all");
    expect(all.some((n) => n.includes("pooler") || n.includes("logit_scale"))).toBe(false);
    expect(all.length + 5).toBe(model.parameters().list().length); // 2 poolers x (weight, bias) + logit_scale
    expect(model.trainableNames("towers").length + 4).toBe(all.length);
    model.dispose();
  });

  it("with a headResidual s, embeds [head(x), s x]: the towers' distance stays as a residual, the weights as the reference's", () => {
    const plain = createSiameseRuCLIP(tinyPreset(VOCAB), { seed: 3 });
    const residual = createSiameseRuCLIP({ ...tinyPreset(VOCAB), headResidual: 0.5 }, { seed: 3 });
    expect(residual.embeddingDim).toBe(plain.embeddingDim + plain.featureDim);
    expect(residual.parameters().list().map((e) => e.name)).toEqual(plain.parameters().list().map((e) => e.name));
    const x = tf.randomNormal([3, plain.featureDim], 0, 1, "float32", 7) as tf.Tensor2D;
    const [h, r] = [plain.head(x, false), residual.head(x, false)];
    const [head, rest] = tf.split(r, [plain.embeddingDim, plain.featureDim], 1);
    expect(tf.max(tf.abs(tf.sub(head, h))).dataSync()[0]).toBe(0);
    expect(tf.max(tf.abs(tf.sub(rest, tf.mul(x, 0.5)))).dataSync()[0]).toBeLessThan(1e-7);
    tf.dispose([x, h, r, head, rest]);
    expect(() => createSiameseRuCLIP({ ...tinyPreset(VOCAB), headResidual: -1 })).toThrow(
      /headResidual = -1; expected a number > 0, or null/,
    );
    plain.dispose();
    residual.dispose();
  });

  it("namePooling mean pools the name tower's hidden states over the mask; cls is the reference's; the weights are the same", () => {
    const cls = createSiameseRuCLIP(tinyPreset(VOCAB), { seed: 3 });
    const mean = createSiameseRuCLIP({ ...tinyPreset(VOCAB), namePooling: "mean" }, { seed: 3 });
    expect(mean.parameters().list().map((e) => e.name)).toEqual(cls.parameters().list().map((e) => e.name));
    const random = randomBatch(6, 32, 8);
    // Every tokenised text starts with the same [CLS] id, as the tokenizer writes it.
    const nameIds = tf.concat(
      [tf.fill([6, 1], 2, "int32"), tf.slice(random.nameIds, [0, 1], [-1, -1])],
      1,
    ) as tf.Tensor2D;
    tf.dispose(random.nameIds);
    const batch = { ...random, nameIds };
    const hidden = mean.ruclip.transformer.apply(batch.nameIds, batch.nameMask, false);
    const m = tf.expandDims(tf.cast(batch.nameMask, "float32"), -1);
    const pooled = tf.div(tf.sum(tf.mul(hidden, m), 1), tf.sum(m, 1)) as tf.Tensor2D;
    const reference = mean.ruclip.finalLn.apply(pooled);
    const got = mean.ruclip.encodeName(batch.nameIds, batch.nameMask, false);
    expect(tf.max(tf.abs(tf.sub(got, reference))).dataSync()[0]).toBeLessThan(1e-6);
    const clsFeatures = cls.ruclip.encodeName(batch.nameIds, batch.nameMask, false);
    // At random initialisation the [CLS] state hardly depends on the tokens; the mean does.
    const spread = (t: tf.Tensor2D) => tf.mean(tf.moments(t, 0).variance).dataSync()[0];
    expect(spread(got)).toBeGreaterThan(100 * spread(clsFeatures));
    tf.dispose([hidden, m, pooled, reference, got, clsFeatures]);
    disposeBatch(batch);
    expect(() => createSiameseRuCLIP({ ...tinyPreset(VOCAB), namePooling: "max" as "mean" })).toThrow(
      /namePooling = "max"; expected one of cls, mean/,
    );
    cls.dispose();
    mean.dispose();
  });

  it("applies dropout only when training", () => {
    const model = createSiameseRuCLIP(tinyPreset(VOCAB), { seed: 1 });
    const batch = randomBatch(2, 32, 8);
    const [a, b, c] = [model.embed(batch, false), model.embed(batch, false), model.embed(batch, true)];
    expect(a.dataSync()).toEqual(b.dataSync());
    expect(tf.max(tf.abs(tf.sub(a, c))).dataSync()[0]).toBeGreaterThan(1e-6);
    tf.dispose([a, b, c]);
    disposeBatch(batch);
    model.dispose();
  });

  it("forwardPairs equals distances of separately embedded products and rejects bad indices", () => {
    const model = createSiameseRuCLIP(tinyPreset(VOCAB), { seed: 2 });
    const batch = randomBatch(3, 32, 8);
    const d = model.forwardPairs(batch, [0, 2], [1, 1], false);
    const e = model.embed(batch, false);
    const rows = e.arraySync();
    const dist = (i: number, j: number): number => Math.hypot(...rows[i].map((v, k) => v - rows[j][k] + 1e-6));
    const values = d.dataSync();
    expect(values[0]).toBeCloseTo(dist(0, 1), 4);
    expect(values[1]).toBeCloseTo(dist(2, 1), 4);
    expect(() => model.forwardPairs(batch, [0, 3], [1, 1], false)).toThrow(/leftIndex holds 3, outside the batch of 3/);
    tf.dispose([d, e]);
    disposeBatch(batch);
    model.dispose();
  });

  it("rejects a batch whose parts disagree", () => {
    const model = createSiameseRuCLIP(tinyPreset(VOCAB), { init: "zeros" });
    const batch = randomBatch(2, 32, 8);
    const bad = { ...batch, descMask: tf.ones([3, 8], "int32") as tf.Tensor2D };
    expect(() => model.towerFeatures(bad, false)).toThrow(/descMask has 3 rows but images has 2/);
    tf.dispose(bad.descMask);
    disposeBatch(batch);
    model.dispose();
  });

  it("leaks no tensors over a forward + backward step, and dispose frees every weight", () => {
    const baseline = tf.memory().numTensors;
    const model = createSiameseRuCLIP(tinyPreset(VOCAB), { seed: 4 });
    const batch = randomBatch(3, 32, 8);
    const labels = tf.tensor1d([1, 0]);
    const optimizer = tf.train.adam(1e-3);
    const step = (): void => {
      const { value, grads } = tf.variableGrads(
        () => contrastiveLoss(model.forwardPairs(batch, [0, 1], [1, 2], true), labels, 1.5),
        model.trainableVariables(),
      );
      optimizer.applyGradients(grads as tf.NamedTensorMap as Parameters<typeof optimizer.applyGradients>[0]);
      tf.dispose([value, ...Object.values(grads)]);
    };
    step(); // the optimizer creates its moment variables on the first step
    const before = tf.memory().numTensors;
    step();
    expect(tf.memory().numTensors).toBe(before);
    optimizer.dispose();
    tf.dispose(labels);
    disposeBatch(batch);
    model.dispose();
    expect(tf.memory().numTensors).toBe(baseline);
  });
});
