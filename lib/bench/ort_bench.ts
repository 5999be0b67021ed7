/**
 * Image-tower throughput under onnxruntime-node (shipped with @huggingface/transformers) on an ONNX
 * graph of the same ConvNeXt, to decide whether frozen towers should be served by onnxruntime
 * instead of tfjs on CPU: the torch-exported graph (scripts/bench/torch_bench.py --export-onnx, so
 * only when PyTorch is installed), and our own weights as ONNX with the text towers on tfjs.
 * Kept apart from model_bench.ts so that code which times tfjs only never loads the native addon.
 */
import * as ort from "onnxruntime-node";
import { tf } from "../tf.ts";
import type { ProductBatch, SiameseRuCLIP } from "../model/siamese.ts";
import { disposeBatch, type EmbeddingThroughput, embeddingThroughput, syntheticBatch } from "./model_bench.ts";

/** Images per second of the ONNX image tower at one thread count. */
export interface OrtImageThroughput {
  threads: number;
  imagesPerSecond: number;
  secondsPerBatch: number;
  batchSize: number;
}

/**
 * Times one batch of `batchSize` random NCHW images (after one warm-up run) for each thread count.
 * The model must have one input `images` [n, 3, size, size].
 */
export async function benchOrtImageTower(
  onnxPath: string,
  options: { batchSize: number; imageSize: number; threads: number[] },
): Promise<OrtImageThroughput[]> {
  const { batchSize, imageSize } = options;
  const data = new Float32Array(batchSize * 3 * imageSize * imageSize);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37);
  const results: OrtImageThroughput[] = [];
  for (const threads of options.threads) {
    const session = await ort.InferenceSession.create(onnxPath, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: "all",
    });
    try {
      const feeds = { images: new ort.Tensor("float32", data, [batchSize, 3, imageSize, imageSize]) };
      await session.run(feeds);
      const start = performance.now();
      await session.run(feeds);
      const secondsPerBatch = (performance.now() - start) / 1000;
      results.push({ threads, imagesPerSecond: batchSize / secondsPerBatch, secondsPerBatch, batchSize });
    } finally {
      await session.release();
    }
  }
  return results;
}

/** Embedding throughput with the ConvNeXt on onnxruntime (our weights) and the text towers + head on tfjs. */
export interface OnnxEmbeddingThroughput extends EmbeddingThroughput {
  /** onnxruntime intra-op threads. */
  threads: number;
  /** Seconds to write the ONNX graph from the weights and create the session. */
  buildSeconds: number;
}

/** Options of the onnxruntime embedding benches. */
export interface OnnxEmbeddingBenchOptions {
  batchSize: number;
  batches?: number;
  warmupSize?: number;
  threads?: number;
}

/**
 * Builds onnxruntime towers, then times `batches` embeddings of one synthetic batch of `batchSize`
 * products after a warm-up on a batch of `warmupSize` (default the same size: onnxruntime grows its
 * memory arena on the first run of a larger batch). `embed` embeds one batch and returns the seconds spent
 * on onnxruntime, reported as `imageTowerSeconds`.
 */
async function benchOnnxEmbedding<T extends { dispose(): Promise<void> }>(
  model: SiameseRuCLIP,
  options: OnnxEmbeddingBenchOptions,
  build: (threads: number) => Promise<T>,
  embed: (towers: T, batch: ProductBatch) => Promise<number>,
): Promise<OnnxEmbeddingThroughput> {
  const batches = options.batches ?? 1;
  const threads = options.threads ?? navigator.hardwareConcurrency;
  const buildStart = performance.now();
  const towers = await build(threads);
  const buildSeconds = (performance.now() - buildStart) / 1000;
  const warm = syntheticBatch(model.config, Math.min(options.warmupSize ?? options.batchSize, options.batchSize), 11);
  const batch = syntheticBatch(model.config, options.batchSize);
  try {
    await embed(towers, warm);
    let onnxSeconds = 0;
    const start = performance.now();
    for (let i = 0; i < batches; i++) onnxSeconds += await embed(towers, batch);
    const secondsPerBatch = (performance.now() - start) / 1000 / batches;
    return {
      ...embeddingThroughput(options.batchSize, batches, secondsPerBatch, onnxSeconds / batches),
      threads,
      buildSeconds,
    };
  } finally {
    disposeBatch(warm);
    disposeBatch(batch);
    await towers.dispose();
  }
}

/** The head on tower features computed elsewhere, read back as the embeddings notebook does. */
async function headOn(model: SiameseRuCLIP, features: () => tf.Tensor2D): Promise<void> {
  const out = tf.tidy(() => model.head(features(), false));
  await out.data();
  out.dispose();
}

/**
 * Embedding throughput with the ConvNeXt on onnxruntime (OnnxImageTower), names and descriptions through
 * the tfjs towers (the current tfjs backend), then the head; `imageTowerSeconds` is the onnxruntime part.
 */
export async function benchEmbeddingOnnxImage(
  model: SiameseRuCLIP,
  options: OnnxEmbeddingBenchOptions,
): Promise<OnnxEmbeddingThroughput> {
  const { OnnxImageTower } = await import("../model/onnx_convnext.ts");
  const { towerFeaturesWithImage } = await import("../train/embed.ts");
  return benchOnnxEmbedding(
    model,
    options,
    (threads) => OnnxImageTower.create(model, { threads }),
    async (tower, b) => {
      const [n, size] = b.images.shape;
      const started = performance.now();
      const image = await tower.run((await b.images.data()) as Float32Array, n, size);
      const seconds = (performance.now() - started) / 1000;
      await headOn(model, () => towerFeaturesWithImage(model, b, image));
      return seconds;
    },
  );
}

/**
 * Embedding throughput with every frozen tower on onnxruntime (lib/train/onnx_towers.ts, TOWER_RUNTIME=auto
 * on CPU backends) and the head on tfjs; `imageTowerSeconds` is the time of the three towers.
 */
export async function benchEmbeddingOnnxTowers(
  model: SiameseRuCLIP,
  options: OnnxEmbeddingBenchOptions,
): Promise<OnnxEmbeddingThroughput> {
  const { OnnxTowers } = await import("../train/onnx_towers.ts");
  const text = async (ids: tf.Tensor2D, mask: tf.Tensor2D) => ({
    ids: (await ids.data()) as Int32Array,
    mask: (await mask.data()) as Int32Array,
    tokens: ids.shape[1],
  });
  return benchOnnxEmbedding(model, options, (threads) => OnnxTowers.create(model, { threads }), async (towers, b) => {
    const [n, size] = b.images.shape;
    const started = performance.now();
    const features = await towers.run(n, {
      images: (await b.images.data()) as Float32Array,
      size,
      name: await text(b.nameIds, b.nameMask),
      description: await text(b.descIds, b.descMask),
    });
    const seconds = (performance.now() - started) / 1000;
    await headOn(model, () => tf.tensor2d(features, [n, towers.featureDim]));
    return seconds;
  });
}
