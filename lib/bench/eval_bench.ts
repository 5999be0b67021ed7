/**
 * Evaluation timings at the reference's sizes: scoring every query-candidate pair (110,780 pairs:
 * distances from embeddings, then ROC, AUC, AP and thresholds) and top-k over the 5.5k catalog
 * (exact search and the usearch HNSW index), on random 462-d embeddings.
 */
import { benchmarkPairMetrics, seededRandom } from "../eval/bench.ts";
import { buildApproximateIndex, embeddingMatrix, exactTopK } from "../eval/retrieval.ts";
import { rowPairDistances } from "../train/embed.ts";

/** Milliseconds of each evaluation stage. */
export interface EvaluationTimings {
  pairs: number;
  catalog: number;
  queries: number;
  k: number;
  dim: number;
  /** Euclidean distances of all pairs from the embedding matrix. */
  pairDistancesMs: number;
  /** ROC curve, AUC, AP, F1-optimal and FPR-target thresholds on those pairs. */
  pairMetricsMs: number;
  /** pairDistancesMs + pairMetricsMs: the whole "evaluate all pairs" step. */
  allPairsMs: number;
  /** Exact top-k of every query over the catalog. */
  exactTopKMs: number;
  /** Building the usearch index over the catalog (null when usearch is unavailable). */
  indexBuildMs: number | null;
  /** Searching it for every query. */
  indexSearchMs: number | null;
  indexKind: string;
}

/** Random catalog embeddings [catalog, dim], seeded. */
export function randomEmbeddings(catalog: number, dim: number, seed = 3): Float32Array {
  const random = seededRandom(seed);
  const data = new Float32Array(catalog * dim);
  for (let i = 0; i < data.length; i++) data[i] = random() * 2 - 1;
  return data;
}

function time(job: () => unknown): number {
  const start = performance.now();
  job();
  return performance.now() - start;
}

/**
 * Times the evaluation stages (each after one untimed warm-up run). `pairs` query-candidate pairs
 * are drawn over `queries` query rows and the rest of the catalog.
 */
export async function benchEvaluation(
  options: { pairs?: number; catalog?: number; queries?: number; k?: number; dim?: number } = {},
): Promise<EvaluationTimings> {
  const pairs = options.pairs ?? 110_780;
  const catalog = options.catalog ?? 5_562;
  const queries = options.queries ?? 23;
  const k = options.k ?? 100;
  const dim = options.dim ?? 462;
  const embeddings = randomEmbeddings(catalog, dim);
  const left = new Int32Array(pairs);
  const right = new Int32Array(pairs);
  for (let i = 0; i < pairs; i++) {
    left[i] = i % queries;
    right[i] = queries + (i % (catalog - queries));
  }
  rowPairDistances(embeddings, dim, left, right);
  const pairDistancesMs = time(() => rowPairDistances(embeddings, dim, left, right));
  const pairMetricsMs = benchmarkPairMetrics(pairs).totalMs;
  const matrix = embeddingMatrix(embeddings, dim);
  const queryRows = Array.from({ length: queries }, (_, i) => i);
  exactTopK(matrix, queryRows, { k });
  const exactTopKMs = time(() => exactTopK(matrix, queryRows, { k }));
  let indexBuildMs: number | null = null;
  let indexSearchMs: number | null = null;
  const buildStart = performance.now();
  const index = await buildApproximateIndex(matrix);
  if (index.kind === "usearch") {
    indexBuildMs = performance.now() - buildStart;
    index.searchRows(queryRows, { k });
    indexSearchMs = time(() => index.searchRows(queryRows, { k }));
  }
  return {
    pairs,
    catalog,
    queries,
    k,
    dim,
    pairDistancesMs,
    pairMetricsMs,
    allPairsMs: pairDistancesMs + pairMetricsMs,
    exactTopKMs,
    indexBuildMs,
    indexSearchMs,
    indexKind: index.kind,
  };
}
