/** 2-D projection of embeddings for plots: PCA by power iteration with deflation (no dependencies). */

/** The first two principal components' coordinates of each row: [x0, y0, x1, y1, ...]. */
export function pca2d(vectors: Float32Array, dim: number, iterations = 100): Float64Array {
  const n = dim === 0 ? 0 : vectors.length / dim;
  const mean = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let k = 0; k < dim; k++) mean[k] += vectors[i * dim + k] / n;
  const centred = new Float64Array(n * dim);
  for (let i = 0; i < n; i++) for (let k = 0; k < dim; k++) centred[i * dim + k] = vectors[i * dim + k] - mean[k];
  const out = new Float64Array(n * 2);
  for (let component = 0; component < 2; component++) {
    // Power iteration on X^T X without forming it; a fixed start keeps the result deterministic.
    let v = new Float64Array(dim).map((_, k) => 1 / Math.sqrt(dim) + (k % 7) * 1e-3);
    for (let it = 0; it < iterations; it++) {
      const projected = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let k = 0; k < dim; k++) s += centred[i * dim + k] * v[k];
        projected[i] = s;
      }
      const next = new Float64Array(dim);
      for (let i = 0; i < n; i++) for (let k = 0; k < dim; k++) next[k] += centred[i * dim + k] * projected[i];
      const norm = Math.hypot(...next) || 1;
      v = next.map((x) => x / norm);
    }
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let k = 0; k < dim; k++) s += centred[i * dim + k] * v[k];
      out[i * 2 + component] = s;
      for (let k = 0; k < dim; k++) centred[i * dim + k] -= s * v[k]; // deflate
    }
  }
  return out;
}
