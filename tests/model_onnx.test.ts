import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import sharp from "sharp";
import * as ort from "onnxruntime-node";
import { tf } from "../lib/tf.ts";
import { selectBackend } from "../lib/backend.ts";
import { createSiameseRuCLIP, type SiameseRuCLIP } from "../lib/model/siamese.ts";
import { tinyPreset } from "../lib/model/presets.ts";
import { attr, encodeOnnxModel } from "../lib/model/onnx_proto.ts";
import { convnextOnnxModel, OnnxImageTower } from "../lib/model/onnx_convnext.ts";
import type { StateDict } from "../lib/model/state_dict.ts";
import { loadTokenizer } from "../lib/text/tokenizer.ts";
import { shippedDir } from "../lib/paths.ts";
import { ProductInputs } from "../lib/train/product_inputs.ts";
import { computeEmbeddings, computeTowerFeatures } from "../lib/train/embed.ts";
import { cachedTowerFeatures } from "../lib/train/feature_cache.ts";
import { FrozenTowers } from "../lib/train/frozen_towers.ts";
import { describeTowerRuntime, resolveTowerRuntime } from "../lib/train/tower_runtime.ts";

await selectBackend("cpu", { quiet: true });

/** A deterministic pseudo-random stream in [-1, 1). */
function noise(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  };
}

/**
 * The tiny preset with its image tower's layer scales, LayerNorm affines and biases randomised: at
 * timm's init (gamma 1e-6, LayerNorm 1/0) the blocks would hardly change the features and a wrong
 * block would go unnoticed.
 */
function perturbedTinyModel(vocabSize?: number): SiameseRuCLIP {
  const model = createSiameseRuCLIP(tinyPreset(vocabSize), { seed: 7 });
  const next = noise(11);
  const stateDict: StateDict = new Map();
  // Shapes only (declaration order, as the state dict): no weight is read, so this stays synchronous.
  for (const { name, torchShape } of model.parameters().list()) {
    if (!name.startsWith("ruclip.visual.") || torchShape.length !== 1) continue;
    const data = new Float32Array(torchShape[0]);
    const isScale = name.endsWith(".gamma") || /norm\.weight$|stem\.1\.weight$|downsample\.0\.weight$/.test(name);
    for (let i = 0; i < data.length; i++) data[i] = isScale ? 0.6 + 0.4 * next() : 0.2 * next();
    stateDict.set(name, { dtype: "float32", shape: [...torchShape], data });
  }
  model.loadStateDict(stateDict, { strict: false });
  return model;
}

function maxRelativeError(actual: Float32Array, expected: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / scale;
}

describe("ONNX protobuf writer", () => {
  it("writes a model onnxruntime loads and runs (INT, INTS, FLOAT attributes, float and int64 initializers)", async () => {
    const bytes = encodeOnnxModel({
      name: "probe",
      nodes: [
        { opType: "Add", inputs: ["x", "bias"], outputs: ["shifted"] },
        { opType: "Transpose", inputs: ["shifted"], outputs: ["swapped"], attributes: [attr.ints("perm", [1, 0])] },
        { opType: "Reshape", inputs: ["swapped", "shape"], outputs: ["flat"] },
        {
          opType: "LayerNormalization",
          inputs: ["flat", "scale"],
          outputs: ["y"],
          attributes: [attr.int("axis", -1), attr.float("epsilon", 0.5)],
        },
      ],
      initializers: [
        { name: "bias", dims: [3], data: Float32Array.of(1, 2, 3) },
        { name: "shape", dims: [2], data: BigInt64Array.of(1n, -1n) },
        { name: "scale", dims: [6], data: new Float32Array(6).fill(2) },
      ],
      inputs: [{ name: "x", elemType: "float32", shape: ["batch", 3] }],
      outputs: [{ name: "y", elemType: "float32", shape: [1, 6] }],
    });
    // ModelProto starts with ir_version (field 1, varint) = 8.
    expect(Array.from(bytes.subarray(0, 2))).toEqual([0x08, 0x08]);
    const session = await ort.InferenceSession.create(bytes);
    try {
      expect(session.inputNames).toEqual(["x"]);
      expect(session.outputNames).toEqual(["y"]);
      const x = Float32Array.of(0, 0, 0, 1, 1, 1);
      const result = await session.run({ x: new ort.Tensor("float32", x, [2, 3]) });
      // shifted [[1,2,3],[2,3,4]] -> transposed, flattened [1,2,2,3,3,4]; mean 2.5, variance 5.5/6.
      const flat = [1, 2, 2, 3, 3, 4];
      const expected = flat.map((v) => 2 * (v - 2.5) / Math.sqrt(5.5 / 6 + 0.5));
      expect(result.y.dims).toEqual([1, 6]);
      const y = Array.from(result.y.data as Float32Array);
      y.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));
    } finally {
      await session.release();
    }
  });

  it("rejects an initializer whose data does not match its dims", () => {
    expect(() =>
      encodeOnnxModel({
        name: "bad",
        nodes: [],
        initializers: [{ name: "w", dims: [2, 2], data: new Float32Array(3) }],
        inputs: [],
        outputs: [],
      })
    ).toThrow(/initializer "w" has dims \[2,2\] \(4 values\) but holds 3/);
  });
});

describe("ConvNeXt image tower on onnxruntime", () => {
  const model = perturbedTinyModel();
  const n = 3;
  const size = 64;
  const next = noise(5);
  const images = Float32Array.from({ length: n * size * size * 3 }, () => 1.5 * next());

  for (const layout of ["nchw", "nhwc"] as const) {
    it(`gives tfjs encodeImage's features (${layout} graph, batch ${n}, ${size}px)`, async () => {
      const expected = tf.tidy(() => model.ruclip.encodeImage(tf.tensor4d(images, [n, size, size, 3])));
      const expectedData = (await expected.data()) as Float32Array;
      expected.dispose();
      const tower = await OnnxImageTower.create(model, { layout, threads: 1 });
      try {
        expect(tower.numFeatures).toBe(64);
        const features = await tower.run(images, n, size);
        expect(features.length).toBe(n * 64);
        expect(maxRelativeError(features, expectedData)).toBeLessThan(1e-4);
        // Rows are independent: the second image alone gives the second row.
        const single = await tower.run(images.subarray(size * size * 3, 2 * size * size * 3), 1, size);
        expect(maxRelativeError(single, expectedData.subarray(64, 128))).toBeLessThan(1e-4);
      } finally {
        await tower.dispose();
      }
    });
  }

  it("says which weights are missing or mis-shaped", async () => {
    const stateDict = await model.stateDict();
    stateDict.delete("ruclip.visual.stages.1.blocks.0.norm.weight");
    const conv = stateDict.get("ruclip.visual.stem.0.weight")!;
    stateDict.set("ruclip.visual.stem.0.weight", { ...conv, shape: [8, 3, 2, 8] });
    expect(() => convnextOnnxModel(stateDict, "ruclip.visual.", model.config.convnext)).toThrow(
      /stem\.0\.weight: expected float32 \[8,3,4,4\], got float32 \[8,3,2,8\]; missing ruclip\.visual\.stages\.1\.blocks\.0\.norm\.weight \[16\]/,
    );
    const intact = await model.stateDict();
    expect(() => convnextOnnxModel(intact, "visual.", model.config.convnext)).toThrow(
      /does not hold a ConvNeXt .* under prefix "visual\."/,
    );
  });

  it("rejects images of the wrong size", async () => {
    const tower = await OnnxImageTower.create(model, { threads: 1 });
    try {
      await expect(tower.run(new Float32Array(10), 1, size)).rejects.toThrow(/expected n=1 x 64 x 64 x 3/);
    } finally {
      await tower.dispose();
    }
  });
});

describe("computeTowerFeatures with every frozen tower on onnxruntime", () => {
  it("gives the tfjs features, in the same [image, name, description] order", async () => {
    const tokenizer = await loadTokenizer(join(shippedDir, "tokenizer-demo"));
    const dir = await Deno.makeTempDir({ prefix: "onnx-tower-test-" });
    try {
      const next = noise(3);
      const products = [];
      for (let i = 0; i < 3; i++) {
        const pixels = Uint8Array.from({ length: 70 * 64 * 3 }, () => Math.floor(128 + 127 * next()));
        const path = join(dir, `p${i}.png`);
        await sharp(pixels, { raw: { width: 70, height: 64, channels: 3 } }).png().toFile(path);
        products.push({ sku: `s${i}`, name: `карта мира ${i}`, description: `настенная ${i}`, imagePath: path });
      }
      products.push({ sku: "no-image", name: "глобус", description: "", imagePath: null });
      const inputs = await ProductInputs.build(products, { tokenizer, imageSize: 64, maxTokens: 32, progress: false });
      const tinyModel = perturbedTinyModel(tokenizer.vocabSize);
      try {
        const rows = [3, 0, 2, 1];
        const before = tf.memory().numTensors;
        const viaTfjs = await computeTowerFeatures(tinyModel, inputs, rows, { towerRuntime: "tfjs", progress: false });
        const viaOnnx = await computeTowerFeatures(tinyModel, inputs, rows, {
          towerRuntime: "onnx",
          batchSize: 3,
          progress: false,
        });
        expect(tf.memory().numTensors).toBe(before);
        expect(viaOnnx.length).toBe(rows.length * tinyModel.featureDim);
        expect(maxRelativeError(viaOnnx, viaTfjs)).toBeLessThan(1e-4);
        // The image part differs between products (the tower saw the pictures).
        expect(Math.abs(viaOnnx[tinyModel.featureDim] - viaOnnx[2 * tinyModel.featureDim])).toBeGreaterThan(1e-3);
        // Embeddings (towers + head) agree too, as the embeddings notebook computes them.
        const embedTfjs = await computeEmbeddings(tinyModel, inputs, rows, { towerRuntime: "tfjs", progress: false });
        const embedOnnx = await computeEmbeddings(tinyModel, inputs, rows, { towerRuntime: "onnx", progress: false });
        expect(embedOnnx.length).toBe(rows.length * tinyModel.embeddingDim);
        expect(maxRelativeError(embedOnnx, embedTfjs)).toBeLessThan(1e-4);
        // Built once and used batch by batch, as the embedding notebook encodes a catalog.
        const frozen = await FrozenTowers.create(tinyModel, { towerRuntime: "onnx", threads: 1 });
        expect(frozen.describe()).toBe("frozen towers: onnxruntime-node (onnx: asked for)");
        const halves = [
          ...await frozen.embeddings(inputs, rows.slice(0, 2), { progress: false }),
          ...await frozen.embeddings(inputs, rows.slice(2), { progress: false }),
        ];
        expect(maxRelativeError(Float32Array.from(halves), embedTfjs)).toBeLessThan(1e-4);
        expect(await frozen.features(inputs, rows, { progress: false })).toEqual(viaOnnx);
        await frozen.dispose();
        await expect(frozen.features(inputs, rows)).rejects.toThrow(/used after dispose/);
        expect(tf.memory().numTensors).toBe(before);
      } finally {
        tinyModel.dispose();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  it("resolves auto to onnxruntime on a CPU backend and to tfjs on a GPU one, and rejects unknown names", async () => {
    expect(await resolveTowerRuntime("auto", "wasm")).toMatchObject({ runtime: "onnx", choice: "auto" });
    expect(await resolveTowerRuntime("auto", "cpu")).toMatchObject({ runtime: "onnx" });
    expect(await resolveTowerRuntime("auto", "webgpu")).toEqual({
      runtime: "tfjs",
      choice: "auto",
      reason: "tfjs backend webgpu runs on the GPU",
    });
    expect(await resolveTowerRuntime("tfjs", "wasm")).toMatchObject({ runtime: "tfjs" });
    expect(await resolveTowerRuntime("onnx", "webgpu")).toMatchObject({ runtime: "onnx" });
    expect(describeTowerRuntime(await resolveTowerRuntime("auto", "wasm"))).toMatch(
      /^frozen towers: onnxruntime-node \(auto: onnxruntime-node's CPU kernels beat tfjs-wasm\)$/,
    );
    await expect(resolveTowerRuntime("torch" as "auto")).rejects.toThrow(
      'towerRuntime = "torch"; expected one of auto, tfjs, onnx',
    );
  });

  it("keys cached features by the runtime too", async () => {
    const tokenizer = await loadTokenizer(join(shippedDir, "tokenizer-demo"));
    const cacheDir = await Deno.makeTempDir({ prefix: "onnx-cache-test-" });
    const products = [0, 1].map((i) => ({ sku: `s${i}`, name: `карта ${i}`, description: "", imagePath: null }));
    const inputs = await ProductInputs.build(products, { tokenizer, imageSize: 32, maxTokens: 8, progress: false });
    const model = createSiameseRuCLIP(tinyPreset(tokenizer.vocabSize), { seed: 1 });
    try {
      const viaTfjs = await cachedTowerFeatures(model, inputs, { cacheDir, towerRuntime: "tfjs", progress: false });
      const viaOnnx = await cachedTowerFeatures(model, inputs, { cacheDir, towerRuntime: "onnx", progress: false });
      expect([viaTfjs.reused, viaOnnx.reused]).toEqual([false, false]);
      expect(viaTfjs.key.endsWith("-tfjs") && viaOnnx.key.endsWith("-onnx")).toBe(true);
      expect(viaOnnx.key.replace(/-onnx$/, "")).toBe(viaTfjs.key.replace(/-tfjs$/, ""));
      const again = await cachedTowerFeatures(model, inputs, { cacheDir, towerRuntime: "onnx", progress: false });
      expect([again.reused, again.runtime]).toEqual([true, "onnx"]);
    } finally {
      model.dispose();
      await Deno.remove(cacheDir, { recursive: true });
    }
  });
});
