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

/**
 * Times `batches` embeddings of one synthetic batch of `batchSize` products, after a warm-up on a
 * batch of `warmupSize` (default: the same size): images through OnnxImageTower, names and descriptions through the tfjs towers (the
 * current tfjs backend), then the head. `imageTowerSeconds` is the onnxruntime part of the timed calls.
 */
export async function benchEmbeddingOnnxImage(
  model: SiameseRuCLIP,
  options: { batchSize: number; batches?: number; warmupSize?: number; threads?: number },
): Promise<OnnxEmbeddingThroughput> {
  const { OnnxImageTower } = await import("../model/onnx_convnext.ts");
  const { towerFeaturesWithImage } = await import("../train/embed.ts");
  const batches = options.batches ?? 1;
  const threads = options.threads ?? navigator.hardwareConcurrency;
  const buildStart = performance.now();
  const tower = await OnnxImageTower.create(model, { threads });
  const buildSeconds = (performance.now() - buildStart) / 1000;
  // Warm-up at full size by default: onnxruntime grows its memory arena on the first run of a larger batch.
  const warm = syntheticBatch(model.config, Math.min(options.warmupSize ?? options.batchSize, options.batchSize), 11);
  const batch = syntheticBatch(model.config, options.batchSize);
  let imageTowerSeconds = 0;
  try {
    const embedOnce = async (b: ProductBatch): Promise<void> => {
      const [n, size] = b.images.shape;
      const imageStart = performance.now();
      const image = await tower.run((await b.images.data()) as Float32Array, n, size);
      imageTowerSeconds += (performance.now() - imageStart) / 1000;
      const out = tf.tidy(() => model.head(towerFeaturesWithImage(model, b, image), false));
      await out.data();
      out.dispose();
    };
    await embedOnce(warm);
    imageTowerSeconds = 0;
    const start = performance.now();
    for (let i = 0; i < batches; i++) await embedOnce(batch);
    const secondsPerBatch = (performance.now() - start) / 1000 / batches;
    imageTowerSeconds /= batches;
    return {
      ...embeddingThroughput(options.batchSize, batches, secondsPerBatch, imageTowerSeconds),
      threads,
      buildSeconds,
    };
  } finally {
    disposeBatch(warm);
    disposeBatch(batch);
    await tower.dispose();
  }
}
