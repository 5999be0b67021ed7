/**
 * The BERT text towers written to ONNX by the project's own writer (lib/model/onnx_bert.ts) give the tfjs
 * towers' features within 1e-4: the tiny preset's name tower ([CLS] and mean pooling, with final_ln) and
 * description tower, on batches with padding, and a BERT of the real preset's size (rubert-tiny).
 */
import { describe, it } from "node:test";
import { expect } from "expect";
import { tf } from "../lib/tf.ts";
import { selectBackend } from "../lib/backend.ts";
import { createSiameseRuCLIP, type SiameseRuCLIP } from "../lib/model/siamese.ts";
import { RUBERT_TINY, tinyPreset } from "../lib/model/presets.ts";
import { BertEncoder, maskedMeanPool } from "../lib/model/bert.ts";
import { ParameterStore } from "../lib/model/params.ts";
import { bertTowerOnnxModel, OnnxTextTower, textTowerSpec } from "../lib/model/onnx_bert.ts";
import type { StateDict } from "../lib/model/state_dict.ts";
import { mulberry32 } from "./helpers.ts";

await selectBackend("cpu", { quiet: true });

/**
 * The text towers' LayerNorm affines and biases randomised: at BERT's init (LayerNorm 1/0, biases 0) a
 * wrong affine or bias would go unnoticed.
 */
async function perturbed(
  store: { stateDict(): Promise<StateDict>; loadStateDict(sd: StateDict, o?: object): unknown },
  prefixes: string[],
) {
  const random = mulberry32(5);
  const changed: StateDict = new Map();
  for (const [name, tensor] of await store.stateDict()) {
    if (!prefixes.some((p) => name.startsWith(p)) || tensor.shape.length !== 1) continue;
    const scale = /LayerNorm\.weight$/.test(name);
    const data = Float32Array.from(
      tensor.data as Float32Array,
      () => (scale ? 0.6 + 0.8 * random() : 0.4 * random() - 0.2),
    );
    changed.set(name, { ...tensor, data });
  }
  store.loadStateDict(changed, { strict: false });
}

/** Token ids and masks of `lengths` texts padded to the longest, ids in [1, vocab). */
function tokenBatch(lengths: number[], vocab: number, seed: number) {
  const random = mulberry32(seed);
  const tokens = Math.max(...lengths);
  const ids = new Int32Array(lengths.length * tokens), mask = new Int32Array(ids.length);
  lengths.forEach((length, r) => {
    for (let t = 0; t < length; t++) {
      ids[r * tokens + t] = 1 + Math.floor(random() * (vocab - 1));
      mask[r * tokens + t] = 1;
    }
  });
  return { ids, mask, n: lengths.length, tokens };
}

function maxAbsDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

async function tfjsTower(model: SiameseRuCLIP, tower: "name" | "description", batch: ReturnType<typeof tokenBatch>) {
  const ids = tf.tensor2d(batch.ids, [batch.n, batch.tokens], "int32");
  const mask = tf.tensor2d(batch.mask, [batch.n, batch.tokens], "int32");
  const out = tf.tidy(() =>
    tower === "name"
      ? model.ruclip.encodeName(ids, mask, false)
      : maskedMeanPool(model.descriptionTransformer.apply(ids, mask, false), mask)
  );
  const data = await out.data() as Float32Array;
  tf.dispose([ids, mask, out]);
  return data;
}

describe("BERT text towers on onnxruntime", () => {
  for (const pooling of ["cls", "mean"] as const) {
    it(`the tiny preset's towers give tfjs's features (name pooling ${pooling}, padded batch)`, async () => {
      const model = createSiameseRuCLIP({ ...tinyPreset(), namePooling: pooling }, { seed: 3 });
      await perturbed(model, ["ruclip.transformer.", "ruclip.final_ln.", "description_transformer."]);
      const batch = tokenBatch([7, 3, 12, 1], 96, 1);
      for (const tower of ["name", "description"] as const) {
        const onnx = await OnnxTextTower.create(model, tower, { threads: 1 });
        try {
          const expected = await tfjsTower(model, tower, batch);
          const actual = await onnx.run(batch.ids, batch.mask, batch.n, batch.tokens);
          expect(onnx.numFeatures).toBe(expected.length / batch.n);
          expect(maxAbsDifference(actual, expected)).toBeLessThan(1e-4);
        } finally {
          await onnx.dispose();
        }
      }
      model.dispose();
    });
  }

  it("a BERT of the real preset's size (rubert-tiny) gives tfjs's hidden states, [CLS] and mean pooled", async () => {
    const store = new ParameterStore(9);
    const bert = new BertEncoder(store, "bert", RUBERT_TINY);
    await perturbed(store, ["bert."]);
    const stateDict = await store.stateDict();
    const batch = tokenBatch([20, 5, 33, 12], RUBERT_TINY.vocabSize, 2);
    const ids = tf.tensor2d(batch.ids, [batch.n, batch.tokens], "int32");
    const mask = tf.tensor2d(batch.mask, [batch.n, batch.tokens], "int32");
    try {
      for (const pooling of ["cls", "mean"] as const) {
        const expectedTensor = tf.tidy(() => {
          const hidden = bert.apply(ids, mask, false);
          return pooling === "mean"
            ? maskedMeanPool(hidden, mask)
            : tf.squeeze(tf.slice(hidden, [0, 0, 0], [-1, 1, -1]), [1]);
        });
        const expected = await expectedTensor.data() as Float32Array;
        expectedTensor.dispose();
        const onnx = await OnnxTextTower.fromStateDict(stateDict, { prefix: "bert.", config: RUBERT_TINY, pooling }, {
          threads: 2,
        });
        try {
          const actual = await onnx.run(batch.ids, batch.mask, batch.n, batch.tokens);
          expect(maxAbsDifference(actual, expected)).toBeLessThan(1e-4);
        } finally {
          await onnx.dispose();
        }
      }
    } finally {
      tf.dispose([ids, mask]);
      store.dispose();
    }
  });

  it("says which weights are missing, and refuses inputs of the wrong size", async () => {
    const model = createSiameseRuCLIP(tinyPreset(), { seed: 3 });
    const spec = textTowerSpec(model, "name");
    const stateDict = await model.stateDict();
    stateDict.delete("ruclip.transformer.encoder.layer.1.output.dense.bias");
    stateDict.delete("ruclip.final_ln.weight");
    expect(() => bertTowerOnnxModel(stateDict, spec)).toThrow(
      /does not hold a BERT \(2 layers, hidden 32\) under prefix "ruclip\.transformer\." with a projection under "ruclip\.final_ln\.": missing ruclip\.transformer\.encoder\.layer\.1\.output\.dense\.bias \[32\]; missing ruclip\.final_ln\.weight/,
    );
    expect(() => textTowerSpec(model, "image" as "name")).toThrow(/expected "name" or "description"/);
    const onnx = await OnnxTextTower.create(model, "description", { threads: 1 });
    try {
      await expect(onnx.run(new Int32Array(6), new Int32Array(6), 2, 4)).rejects.toThrow(/expected n=2 x 4 tokens/);
      const long = spec.config.maxPositions + 1;
      await expect(onnx.run(new Int32Array(long), new Int32Array(long), 1, long)).rejects.toThrow(/truncate the text/);
      expect(await onnx.run(new Int32Array(0), new Int32Array(0), 0, 3)).toEqual(new Float32Array(0));
    } finally {
      await onnx.dispose();
      model.dispose();
    }
  });
});
