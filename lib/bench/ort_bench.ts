/**
 * Image-tower throughput under onnxruntime-node (shipped with @huggingface/transformers) on an ONNX
 * graph of the same ConvNeXt, to decide whether frozen towers should be served by onnxruntime
 * instead of tfjs on CPU. The graph comes from torch.onnx.export (scripts/bench/torch_bench.py
 * --export-onnx), so this row exists only when PyTorch is installed.
 */
import * as ort from "onnxruntime-node";

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
