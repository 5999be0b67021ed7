/**
 * Batched encoding of products: tower features (the frozen part, for head-mode training and
 * its cache) and embeddings (the full model, or the head on cached features).
 */
import { tf } from "../tf.ts";
import type { SiameseRuCLIP } from "../model/siamese.ts";
import { Progress } from "../notebook/progress.ts";
import { disposeProductBatch, type ProductInputs } from "./product_inputs.ts";

export interface EncodeOptions {
  batchSize?: number;
  progress?: boolean | string;
}

async function encodeRows(
  rows: readonly number[],
  width: number,
  encodeBatch: (batchRows: number[]) => tf.Tensor2D,
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
  for (let start = 0; start < rows.length; start += batchSize) {
    const batchRows = rows.slice(start, start + batchSize) as number[];
    const encoded = encodeBatch(batchRows);
    out.set((await encoded.data()) as Float32Array, start * width);
    encoded.dispose();
    bar.tick(batchRows.length);
  }
  bar.done();
  return out;
}

/** Tower features [rows.length, featureDim] (row-major) of the given products, inference mode. */
export function computeTowerFeatures(
  model: SiameseRuCLIP,
  inputs: ProductInputs,
  rows: readonly number[] = [...Array(inputs.size).keys()],
  options: EncodeOptions = {},
): Promise<Float32Array> {
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

/**
 * Embeddings [rows.length, embeddingDim] of the given products, inference mode. With `features`
 * (all products' cached tower features, row-major), only the head runs.
 */
export function computeEmbeddings(
  model: SiameseRuCLIP,
  inputs: ProductInputs,
  rows: readonly number[] = [...Array(inputs.size).keys()],
  options: EncodeOptions & { features?: Float32Array } = {},
): Promise<Float32Array> {
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
        const F = model.featureDim;
        const slab = new Float32Array(batchRows.length * F);
        batchRows.forEach((row, i) => slab.set(features.subarray(row * F, (row + 1) * F), i * F));
        return tf.tidy(() => model.head(tf.tensor2d(slab, [batchRows.length, F]), false));
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

/** Euclidean distances ||a - b + eps|| between rows of two embedding matrices (as F.pairwise_distance). */
export function pairDistances(
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
