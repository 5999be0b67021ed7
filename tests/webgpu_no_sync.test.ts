// Training, validation, checkpointing and embedding on WebGPU read every tensor asynchronously:
// dataSync / arraySync / bufferSync fail on webgpu under Deno (tfjs reads them through a canvas), so
// they are made to throw here. Runs on llvmpipe (webgpu-software; CI installs mesa-vulkan-drivers
// and libvulkan1); without an adapter the test fails, it does not skip.
import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import sharp from "sharp";
import { tf } from "../lib/tf.ts";
import { selectBackend } from "../lib/backend.ts";
import { createSiameseRuCLIP } from "../lib/model/siamese.ts";
import { tinyPreset } from "../lib/model/presets.ts";
import { loadCheckpoint } from "../lib/model/checkpoint.ts";
import { loadTokenizer } from "../lib/text/tokenizer.ts";
import { shippedDir } from "../lib/paths.ts";
import { ProductInputs, type ProductRecord } from "../lib/train/product_inputs.ts";
import { cachedTowerFeatures } from "../lib/train/feature_cache.ts";
import { computeEmbeddings } from "../lib/train/embed.ts";
import { onlineContrastiveLoss } from "../lib/model/losses.ts";
import { pairIndexSet, trainSiamese } from "../lib/train/trainer.ts";
import { DEFAULT_TRAINING_CONFIG, type TrainingConfig } from "../lib/train/config.ts";
import { clearWebgpuErrors, webgpuErrors } from "../lib/webgpu_compat.ts";

const tokenizer = await loadTokenizer(join(shippedDir, "tokenizer-demo"));
const dir = await Deno.makeTempDir({ prefix: "webgpu-no-sync-" });

async function makeInputs(): Promise<ProductInputs> {
  const colours = [[200, 30, 30], [30, 160, 40], [40, 60, 200]];
  const names = ["карта мира политическая", "глобус физический", "атлас россии"];
  const products: ProductRecord[] = [];
  for (const [i, [r, g, b]] of colours.entries()) {
    for (const listing of [0, 1]) {
      const path = join(dir, `p${i}-${listing}.png`);
      await sharp({ create: { width: 40, height: 36, channels: 3, background: { r: r - 20 * listing, g, b } } })
        .png().toFile(path);
      products.push({ sku: `${i}${listing}`, name: `${names[i]} ${listing}`, description: names[i], imagePath: path });
    }
  }
  return await ProductInputs.build(products, { tokenizer, imageSize: 32, maxTokens: 16, progress: false });
}

const inputs = await makeInputs();
const pairs = [0, 1, 2].flatMap((i) => [
  { skuLeft: `${i}0`, skuRight: `${i}1`, label: 1 },
  { skuLeft: `${i}0`, skuRight: `${(i + 1) % 3}1`, label: 0 },
]);
const train = pairIndexSet(inputs, pairs);
const validation = pairIndexSet(inputs, pairs.slice(0, 4));
const config: TrainingConfig = {
  ...DEFAULT_TRAINING_CONFIG,
  epochs: 1,
  batchSize: pairs.length,
  learningRate: 1e-3,
  loss: "online-contrastive",
};

function model() {
  return createSiameseRuCLIP(
    { ...tinyPreset(tokenizer.vocabSize), imageSize: 32, maxTokens: 16 } as ReturnType<typeof tinyPreset>,
    { seed: 5 },
  );
}

/** Selects WebGPU on the software adapter, or fails saying what is missing. */
async function useWebgpuSoftware(): Promise<void> {
  try {
    await selectBackend("webgpu-software", { quiet: true });
  } catch (error) {
    throw new Error(
      `this test needs WebGPU on a software adapter (llvmpipe): install mesa-vulkan-drivers and libvulkan1. ${error}`,
    );
  }
  expect(tf.getBackend()).toBe("webgpu");
}

const SYNC_READS = ["dataSync", "arraySync", "bufferSync"] as const;

/** Runs `body` with the synchronous tensor reads throwing; restores them afterwards. */
async function withoutSyncReads<T>(body: () => Promise<T>): Promise<T> {
  const prototype = tf.Tensor.prototype as unknown as Record<string, unknown>;
  const saved = SYNC_READS.map((name) => prototype[name]);
  for (const name of SYNC_READS) {
    prototype[name] = () => {
      throw new Error(`${name}() was called: synchronous reads fail on webgpu under Deno; use await data()`);
    };
  }
  try {
    return await body();
  } finally {
    SYNC_READS.forEach((name, i) => (prototype[name] = saved[i]));
  }
}

describe("webgpu (software adapter) without synchronous reads", () => {
  it("trains a full-mode and a head-mode epoch (validation, checkpoints) and embeds, leaking no tensor", async () => {
    // The same epoch on cpu first: the webgpu run must give its numbers, not just finite ones.
    await selectBackend("cpu", { quiet: true });
    const onCpu = model();
    const cpuRecord = await trainSiamese({
      model: onCpu,
      inputs,
      train,
      validation,
      config,
      runDir: join(dir, "results", "cpu"),
      progress: false,
    }).then((r) => r.history[0]).finally(() => onCpu.dispose());

    await useWebgpuSoftware();
    clearWebgpuErrors();
    const before = tf.memory().numTensors;
    await withoutSyncReads(async () => {
      const full = model();
      try {
        const result = await trainSiamese({
          model: full,
          inputs,
          train,
          validation,
          config,
          runDir: join(dir, "results", "full"),
          progress: false,
        });
        expect(result.history).toHaveLength(1);
        const record = result.history[0];
        const values = (r: typeof record) => [r.trainLoss, r.valLoss, r.threshold.distance];
        values(record).forEach((value, i) => {
          const cpu = values(cpuRecord)[i];
          expect(Math.abs(value - cpu)).toBeLessThan(1e-3 * Math.max(1, Math.abs(cpu)));
        });
        expect(record.auc).toBe(cpuRecord.auc);
        const saved = await loadCheckpoint(join(dir, "results", "tmp", "full", "epoch-001"));
        expect(saved.stateDict.size).toBe(full.parameters().list().length);
        expect(saved.optimizerState?.size).toBeGreaterThan(0);

        const rows = [0, 3, 5];
        const embeddings = await computeEmbeddings(full, inputs, rows, { batchSize: 2, progress: false });
        expect(embeddings.length).toBe(rows.length * full.embeddingDim);
        expect(embeddings.every(Number.isFinite)).toBe(true);
      } finally {
        full.dispose();
      }

      const head = model();
      try {
        const { features } = await cachedTowerFeatures(head, inputs, { cacheDir: join(dir, "cache"), progress: false });
        const towersBefore = (await head.stateDict()).get("ruclip.final_ln.weight")!.data.slice();
        const result = await trainSiamese({
          model: head,
          inputs,
          train,
          validation,
          config: { ...config, mode: "head" },
          runDir: join(dir, "results", "head"),
          features,
          progress: false,
        });
        expect(result.history).toHaveLength(1);
        expect((await head.stateDict()).get("ruclip.final_ln.weight")!.data).toEqual(towersBefore);
        const embeddings = await computeEmbeddings(head, inputs, [1, 2], { features, progress: false });
        expect(embeddings.every(Number.isFinite)).toBe(true);
      } finally {
        head.dispose();
      }
    });
    expect(tf.memory().numTensors).toBe(before);
    // A shader WebGPU rejects turns its whole batch into zeros without an exception: none may occur.
    expect(webgpuErrors()).toEqual([]);
  });

  it("gives the online contrastive loss and gradient of the cpu backend", async () => {
    const d = Array.from({ length: 9 }, (_, i) => 0.2 + ((i * 0.37) % 1.3));
    const y = [1, 0, 0, 1, 0, 1, 0, 0, 1];
    const run = async () => {
      const distances = tf.tensor1d(d);
      const labels = tf.tensor1d(y);
      const { value, grads } = tf.valueAndGrads((x: tf.Tensor) => onlineContrastiveLoss(x as tf.Tensor1D, labels, 1.1))(
        [distances],
      );
      const out = { loss: (await value.data())[0], grad: Array.from(await grads[0].data()) };
      tf.dispose([distances, labels, value, ...grads]);
      return out;
    };
    await selectBackend("cpu", { quiet: true });
    const reference = await run();
    await useWebgpuSoftware();
    const got = await withoutSyncReads(run);
    expect(got.loss).toBeCloseTo(reference.loss, 5);
    got.grad.forEach((g, i) => expect(g).toBeCloseTo(reference.grad[i], 5));
    expect(reference.grad.some((g) => g !== 0)).toBe(true);
    await selectBackend("cpu", { quiet: true });
  });
});
