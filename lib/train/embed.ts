/**
 * Batched encoding of products: tower features (the frozen part, for head-mode training and
 * its cache) and embeddings (the full model, or the head on cached features).
 */
import { tf } from "../tf.ts";
import type { SiameseRuCLIP, TextBatch } from "../model/siamese.ts";
import { Progress } from "../notebook/progress.ts";
import { disposeProductBatch, type ProductInputs } from "./product_inputs.ts";
import { OnnxTowers } from "./onnx_towers.ts";
import { resolveTowerRuntime, type TowerRuntimeChoice } from "./tower_runtime.ts";

export interface EncodeOptions {
  batchSize?: number;
  progress?: boolean | string;
}

/** Encodes rows batch by batch with a progress bar; a batch is a tfjs tensor (read, then disposed) or plain values. */
async function encodeRows(
  rows: readonly number[],
  width: number,
  encodeBatch: (batchRows: number[]) => tf.Tensor2D | Float32Array | Promise<tf.Tensor2D | Float32Array>,
  options: EncodeOptions,
  label: string,
): Promise<Float32Array> {
  const batchSize = options.batchSize ?? 32;
  const out = new Float32Array(rows.length * width);
  const bar = new Progress({
    total: rows.length,
    label: typeof options.progress === "string" ? options.progress : label,
    unit: "products",
    silent: options.progress === false,
  });
  await bar.run(async () => {
    for (let start = 0; start < rows.length; start += batchSize) {
      const batchRows = rows.slice(start, start + batchSize) as number[];
      const encoded = await encodeBatch(batchRows);
      if (encoded instanceof Float32Array) {
        out.set(encoded, start * width);
      } else {
        try {
          out.set((await encoded.data()) as Float32Array, start * width);
        } finally {
          encoded.dispose();
        }
      }
      await bar.tick(batchRows.length);
    }
  });
  return out;
}

/** Options of `computeTowerFeatures`. */
export interface TowerFeatureOptions extends EncodeOptions {
  /**
   * Where the frozen towers run (tower_runtime.ts): "auto" (onnxruntime on a CPU backend where it loads,
   * else tfjs), "tfjs" or "onnx". Default: "auto" for tower features; for embeddings, "tfjs" unless given
   * (the full model may be training).
   */
  towerRuntime?: TowerRuntimeChoice;
  /** onnxruntime intra-op threads (default: every core). */
  threads?: number;
  /** Towers already built on onnxruntime (frozen_towers.ts), reused instead of built for this call. */
  onnxTowers?: OnnxTowers;
}

/**
 * Tower features [n, featureDim] of a batch whose image features [n, image features] (row-major) were
 * computed elsewhere (onnxruntime); the name and description towers run on tfjs, inference mode.
 * Same order as SiameseRuCLIP.towerFeatures: [image, name, description].
 */
export function towerFeaturesWithImage(model: SiameseRuCLIP, batch: TextBatch, image: Float32Array): tf.Tensor2D {
  const n = batch.nameIds.shape[0];
  const imageDim = model.imageDim;
  if (image.length !== n * imageDim) {
    throw new Error(`towerFeaturesWithImage: ${image.length} image feature values, expected ${n} x ${imageDim}`);
  }
  return tf.tidy(() => tf.concat([tf.tensor2d(image, [n, imageDim]), model.textFeatures(batch, false)], 1));
}

/** Tower features [rows.length, featureDim] (row-major) of the given products, inference mode. */
export async function computeTowerFeatures(
  model: SiameseRuCLIP,
  inputs: ProductInputs,
  rows: readonly number[] = [...Array(inputs.size).keys()],
  options: TowerFeatureOptions = {},
): Promise<Float32Array> {
  const runtime = options.onnxTowers ? "onnx" : (await resolveTowerRuntime(options.towerRuntime ?? "auto")).runtime;
  if (runtime === "tfjs") {
    return encodeRows(
      rows,
      model.featureDim,
      (batchRows) => {
        const batch = inputs.batch(batchRows);
        try {
          return model.towerFeatures(batch, false);
        } finally {
          disposeProductBatch(batch);
        }
      },
      options,
      "tower features",
    );
  }
  const towers = options.onnxTowers ?? await OnnxTowers.create(model, { threads: options.threads });
  try {
    return await encodeRows(
      rows,
      model.featureDim,
      (batchRows) => towers.features(inputs, batchRows),
      options,
      "tower features (onnxruntime)",
    );
  } finally {
    if (!options.onnxTowers) await towers.dispose();
  }
}

/**
 * Embeddings [rows.length, embeddingDim] of the given products, inference mode. With `features`
 * (all products' cached tower features, row-major), only the head runs.
 */
export async function computeEmbeddings(
  model: SiameseRuCLIP,
  inputs: ProductInputs,
  rows: readonly number[] = [...Array(inputs.size).keys()],
  options: TowerFeatureOptions & {
    features?: Float32Array;
    /** All products' image-tower features [inputs.size, imageDim]: the image tower is not run (text mode). */
    imageFeatures?: Float32Array;
  } = {},
): Promise<Float32Array> {
  const onnx = !options.features && !options.imageFeatures &&
    (options.onnxTowers !== undefined ||
      (options.towerRuntime !== undefined && (await resolveTowerRuntime(options.towerRuntime)).runtime === "onnx"));
  if (onnx) {
    // The towers on onnxruntime for these rows, then the head on them.
    const towerFeatures = await computeTowerFeatures(model, inputs, rows, options);
    const F = model.featureDim;
    const positions = [...rows.keys()];
    return encodeRows(
      positions,
      model.embeddingDim,
      (batchPositions) => {
        return tf.tidy(() => model.head(gatherRows(towerFeatures, F, batchPositions), false));
      },
      { ...options, progress: false },
      "embeddings",
    );
  }
  if (options.imageFeatures) {
    const imageFeatures = options.imageFeatures;
    const D = model.imageDim;
    if (imageFeatures.length !== inputs.size * D) {
      throw new Error(`image features hold ${imageFeatures.length} values, expected ${inputs.size} products x ${D}`);
    }
    return encodeRows(
      rows,
      model.embeddingDim,
      (batchRows) => {
        const batch = inputs.textBatch(batchRows);
        try {
          return tf.tidy(() =>
            model.head(tf.concat([gatherRows(imageFeatures, D, batchRows), model.textFeatures(batch, false)], 1), false)
          );
        } finally {
          disposeProductBatch(batch);
        }
      },
      options,
      "embeddings",
    );
  }
  const features = options.features;
  if (features && features.length !== inputs.size * model.featureDim) {
    throw new Error(
      `cached features hold ${features.length} values, expected ${inputs.size} products x ${model.featureDim}`,
    );
  }
  return encodeRows(
    rows,
    model.embeddingDim,
    (batchRows) => {
      if (features) {
        return tf.tidy(() => model.head(gatherRows(features, model.featureDim, batchRows), false));
      }
      const batch = inputs.batch(batchRows);
      try {
        return model.embed(batch, false);
      } finally {
        disposeProductBatch(batch);
      }
    },
    options,
    "embeddings",
  );
}

/** Rows of a row-major [*, dim] matrix as a tensor [rows.length, dim]. */
export function gatherRows(matrix: Float32Array, dim: number, rows: readonly number[]): tf.Tensor2D {
  const slab = new Float32Array(rows.length * dim);
  rows.forEach((row, i) => slab.set(matrix.subarray(row * dim, (row + 1) * dim), i * dim));
  return tf.tensor2d(slab, [rows.length, dim]);
}

/** Euclidean distances ||a - b + eps|| between rows of two embedding matrices (as F.pairwise_distance). */
export function rowPairDistances(
  embeddings: Float32Array,
  dim: number,
  left: ArrayLike<number>,
  right: ArrayLike<number>,
  eps = 1e-6,
): Float64Array {
  const out = new Float64Array(left.length);
  for (let i = 0; i < left.length; i++) {
    const a = left[i] * dim;
    const b = right[i] * dim;
    let sum = 0;
    for (let k = 0; k < dim; k++) {
      const d = embeddings[a + k] - embeddings[b + k] + eps;
      sum += d * d;
    }
    out[i] = Math.sqrt(sum);
  }
  return out;
}
