/** Small assertions shared by test files (not a test file itself). */
import { expect } from "expect";

/** Largest element-wise |a - b|; fails the test when the lengths differ. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/** Seeded uniform [0, 1) numbers. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The notebooks the end-to-end tests run on an imported dataset: import, training, embeddings, every test. */
export const IMPORTED_DATASET_NOTEBOOKS = [
  "import_pairwise_dataset",
  "contrastive_train_data-splitting-by-query",
  "compute_embeddings_contrastive-siamese",
  "compute_embeddings_sbert",
  "contrastive_test_embs_from-pairwise-rendered",
  "contrastive_test_embs_from-pairwise-queries",
  "contrastive_test_embs_from-source",
  "contrastive_test_embs_from-source_ruclip-only",
  "clip_siamese_test",
] as const;
