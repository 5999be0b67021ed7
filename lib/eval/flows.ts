/**
 * The evaluation flows of the testing notebooks, each for any named embedding table:
 *
 * - rendered pairs: a threshold is chosen on the VALIDATION pairs (by target FPR or by F1) and applied
 *   unchanged to the test pairs (`evaluateRenderedPairs`);
 * - query-candidate pairs: every (query, candidate) of a split at that threshold, and the ranking of each
 *   query's candidates, with and without the economic filter (`evaluateQueryCandidates`);
 * - top-k retrieval over the split's catalog, exact and approximate (`evaluateTopK`);
 * - a comparison table of the models on the same split and metrics (`comparisonRows`).
 *
 * Scores are `-distance` everywhere (higher = more likely the same product); a threshold is a
 * `PairThreshold` (threshold.ts): its score, its distance and the rule that chose it.
 *
 * @module
 */
import {
  applyThreshold,
  chooseThreshold,
  type ChosenThreshold,
  type FprTargetThreshold,
  type PairReport,
  pairReport,
  type RocCurve,
  rocCurve,
  scoresFromDistances,
  tprAtFprGrid,
} from "./pair_metrics.ts";
import { type PairThreshold, thresholdAtScore, type ThresholdRule } from "./threshold.ts";
import {
  type QueryRankingRow,
  rankingMetrics,
  type RankingSummary,
  type TopKQueryRow,
  topKRankingRow,
} from "./ranking.ts";
import {
  type EconomicFilterCounts,
  type EconomicFilterOptions,
  economicFilterPairs,
  type ProductEconomics,
} from "./economic_filter.ts";
import { indexedTopK, type IndexLocation } from "./indexed_search.ts";
import { approximateRecall, buildApproximateIndex, embeddingMatrix, exactTopK, type Neighbours } from "./retrieval.ts";
import {
  distanceOf,
  type EmbeddingDistance,
  type NamedEmbeddings,
  pairDistances,
  type PairSet,
  type QueryCandidateSet,
} from "./inputs.ts";

/** One row of the "TPR at FPR" table: the target, what the threshold achieves, and the threshold. */
export interface FprTargetRow {
  targetFpr: number;
  achievedFpr: number;
  achievedTpr: number;
  threshold: PairThreshold;
}

/** The result of the rendered-pairs flow for one model. */
export interface RenderedPairsEvaluation {
  model: string;
  distance: EmbeddingDistance;
  /** The threshold chosen on the validation pairs (score, distance, rule), with the validation metrics at it. */
  chosen: ChosenThreshold;
  /** Every pair metric on the test pairs at `chosen.threshold`, never re-tuned. */
  test: PairReport;
  /** TPR at a grid of FPRs on the validation pairs (the reference's table), each with its threshold. */
  validationTprAtFpr: FprTargetRow[];
  validationRoc: RocCurve;
  testRoc: RocCurve;
  /** Test distances and scores, in the order of the test pairs. */
  testDistances: Float64Array;
  testScores: Float64Array;
}

/** Scores (-distance) of a split's rendered pairs under a model. */
export function pairSetScores(model: NamedEmbeddings, pairs: PairSet): Float64Array {
  return scoresFromDistances(pairDistances(model, pairs.skuLeft, pairs.skuRight, `${pairs.split} pairs`));
}

/**
 * Chooses the threshold on the validation pairs by `rule` and applies it, unchanged, to the test pairs.
 */
export function evaluateRenderedPairs(
  model: NamedEmbeddings,
  validation: PairSet,
  test: PairSet,
  rule: ThresholdRule,
  fprGrid: readonly number[] = [0.01, 0.02, 0.05, 0.1, 0.2],
): RenderedPairsEvaluation {
  const validationScores = pairSetScores(model, validation);
  const testDistances = pairDistances(model, test.skuLeft, test.skuRight, `${test.split} pairs`);
  const testScores = scoresFromDistances(testDistances);
  const chosen = chooseThreshold(validation.labels, validationScores, rule);
  return {
    model: model.name,
    distance: distanceOf(model),
    chosen,
    test: applyThreshold(chosen, test.labels, testScores),
    validationTprAtFpr: tprAtFprGrid(validation.labels, validationScores, fprGrid).map((t: FprTargetThreshold) => ({
      targetFpr: t.targetFpr,
      achievedFpr: t.achievedFpr,
      achievedTpr: t.achievedTpr,
      threshold: thresholdAtScore(t.threshold, { kind: "fpr", target: t.targetFpr }),
    })),
    validationRoc: rocCurve(validation.labels, validationScores),
    testRoc: rocCurve(test.labels, testScores),
    testDistances,
    testScores,
  };
}

/** Pair and ranking metrics of one set of query-candidate pairs. */
export interface QueryCandidateMetrics {
  /** Pair metrics at the validation threshold. */
  pairs: PairReport;
  /** Ranking metrics averaged over the queries with a positive. */
  ranking: RankingSummary;
  perQuery: QueryRankingRow[];
}

/** The result of the query-candidate flow for one model. */
export interface QueryCandidateEvaluation {
  model: string;
  distance: EmbeddingDistance;
  /** The threshold applied (chosen on validation elsewhere). */
  threshold: PairThreshold;
  all: QueryCandidateMetrics;
  /** Only the pairs the economic filter keeps; absent when no economics were given. */
  filtered?: QueryCandidateMetrics & { counts: EconomicFilterCounts };
}

/** Options of `evaluateQueryCandidates`. */
export interface QueryCandidateOptions {
  /** Product economics by SKU; when given, the flow is also run on the economically filtered pairs. */
  economics?: ReadonlyMap<string | number, ProductEconomics>;
  filter?: EconomicFilterOptions;
  /** Ranking cut-offs (default [1, 5, 10]) and nDCG cut-offs (default [10]). */
  ks?: readonly number[];
  ndcgKs?: readonly number[];
}

function queryCandidateMetrics(
  set: QueryCandidateSet,
  scores: Float64Array,
  threshold: PairThreshold,
  keep: Uint8Array | null,
  options: QueryCandidateOptions,
): QueryCandidateMetrics {
  const rows = [];
  for (let i = 0; i < scores.length; i++) {
    if (keep && !keep[i]) continue;
    rows.push({ query: set.querySkus[i], candidate: set.candidateSkus[i], score: scores[i], label: set.labels[i] });
  }
  const labels = Int32Array.from(rows, (r) => r.label);
  const kept = Float64Array.from(rows, (r) => r.score);
  const ranking = rankingMetrics(rows, { ks: options.ks, ndcgKs: options.ndcgKs });
  return {
    pairs: pairReport(labels, kept, threshold),
    ranking: ranking.summary,
    perQuery: ranking.perQuery,
  };
}

/**
 * Every (query, candidate) pair of a split at a threshold chosen on validation,
 * and the ranking of each query's candidates; again on the pairs the economic filter keeps.
 */
export function evaluateQueryCandidates(
  model: NamedEmbeddings,
  set: QueryCandidateSet,
  threshold: PairThreshold,
  options: QueryCandidateOptions = {},
): QueryCandidateEvaluation {
  const scores = scoresFromDistances(
    pairDistances(model, set.querySkus, set.candidateSkus, `${set.split} query candidates`),
  );
  const result: QueryCandidateEvaluation = {
    model: model.name,
    distance: distanceOf(model),
    threshold,
    all: queryCandidateMetrics(set, scores, threshold, null, options),
  };
  if (options.economics) {
    const pairs = set.querySkus.map((query, i) => ({ query, candidate: set.candidateSkus[i] }));
    const filter = economicFilterPairs(pairs, options.economics, options.filter);
    result.filtered = {
      ...queryCandidateMetrics(set, scores, threshold, filter.mask, options),
      counts: filter.counts,
    };
  }
  return result;
}

/** The result of the top-k flow for one model. */
export interface TopKEvaluation {
  model: string;
  distance: EmbeddingDistance;
  k: number;
  /** The cut-offs of recall/precision/hit, each <= k. */
  ks: number[];
  /** Products that can be retrieved (the split's candidates). */
  catalogSize: number;
  /** What searched: "exact" (in memory, mask) or the catalog index's backend ("lancedb", "qdrant"). */
  search: string;
  /**
   * Means over the queries with at least one (allowed) positive: recall@k, precision@k, hit@k, ndcg@K,
   * mrr@K, map@K (ranking.ts defines each; map@K is not the query-candidate flow's full-list map).
   */
  summary: Record<string, number>;
  perQuery: TopKQueryRow[];
  /** The top-k SKUs per query, closest first, with their labels and distances. */
  neighbours: { query: string; skus: string[]; labels: number[]; distances: number[] }[];
  /** The approximate index's kind and its recall against exact search; absent when not asked. */
  approximate?: { kind: string; recall: number };
}

/** Options of `evaluateTopK`. */
export interface TopKEvaluationOptions {
  k: number;
  /** Cut-offs <= k for recall/precision/hit (default: 1, 5, 10 and k, those <= k). */
  ks?: readonly number[];
  /** When given, each query only retrieves candidates that pass the economic filter. */
  economics?: ReadonlyMap<string | number, ProductEconomics>;
  filter?: EconomicFilterOptions;
  /**
   * Search through this catalog index (lib/index/, LanceDB or Qdrant) instead of exact search in memory: the
   * query's allowed candidates and the economic filter become a predicate inside the search.
   */
  index?: IndexLocation;
  /** Also build the usearch HNSW index and report its recall against exact search. */
  approximate?: boolean;
}

/**
 * Top-k retrieval per query over the split's catalog (its candidate SKUs; the query seller's products
 * are never retrieved), exact; optionally with the economic filter and the approximate index's recall.
 */
export async function evaluateTopK(
  model: NamedEmbeddings,
  set: QueryCandidateSet,
  options: TopKEvaluationOptions,
): Promise<TopKEvaluation> {
  const { k } = options;
  if (!Number.isInteger(k) || k < 1) throw new Error(`TOP_K = ${k}; expected an integer >= 1`);
  const ks = [...new Set(options.ks ?? [1, 5, 10, k])].filter((cut) => cut <= k).sort((a, b) => a - b);
  const distance = distanceOf(model);
  // Catalog rows: candidates first, then the queries (which are masked out of every result).
  const candidates = [...new Set(set.candidateSkus)];
  const queries = [...new Set(set.querySkus)];
  const skus = [...candidates, ...queries.filter((q) => !candidates.includes(q))];
  const rowOf = new Map(skus.map((sku, i) => [sku, i]));
  const tableRow = new Map(model.table.skus.map((sku, i) => [sku, i]));
  const { dim } = model.table;
  const data = new Float32Array(skus.length * dim);
  skus.forEach((sku, r) => {
    const source = tableRow.get(sku);
    if (source === undefined) {
      throw new Error(
        `top-k on ${set.split}: SKU ${sku} has no embedding in "${model.name}"; recompute the embeddings`,
      );
    }
    data.set(model.table.vectors.subarray(source * dim, (source + 1) * dim), r * dim);
  });
  // Per query: label of each catalog row (1 = positive) and which rows it may retrieve.
  const labelOf = new Map<string, Map<number, number>>();
  set.querySkus.forEach((query, i) => {
    let labels = labelOf.get(query);
    if (!labels) labelOf.set(query, labels = new Map());
    labels.set(rowOf.get(set.candidateSkus[i])!, set.labels[i]);
  });
  const masks = queries.map((query) => {
    const mask = new Uint8Array(skus.length);
    const rows = [...labelOf.get(query)!.keys()];
    if (options.economics) {
      const filter = economicFilterPairs(
        rows.map((r) => ({ query, candidate: skus[r] })),
        options.economics,
        options.filter,
      );
      rows.forEach((r, i) => mask[r] = filter.mask[i]);
    } else for (const r of rows) mask[r] = 1;
    return mask;
  });
  const queryRows = queries.map((q) => rowOf.get(q)!);
  const search = { k, candidateMask: (position: number) => masks[position] };
  const common = { model: model.name, distance, k, ks, catalogSize: candidates.length, queries, skus, labelOf, masks };
  if (model.pairDistances) {
    // A pair scorer has no vectors to index: each query's allowed candidates are scored and the k closest kept.
    const retrieved = queries.map((query, p): Neighbours => {
      const rows = [...labelOf.get(query)!.keys()].filter((r) => masks[p][r]);
      const d = model.pairDistances!(rows.map(() => query), rows.map((r) => skus[r]), `top-k on ${set.split}`);
      const order = rows.map((_, i) => i).sort((a, b) => d[a] - d[b] || rows[a] - rows[b]).slice(0, k);
      return {
        query: queryRows[p],
        indices: Int32Array.from(order, (i) => rows[i]),
        distances: Float64Array.from(order, (i) => d[i]),
      };
    });
    return topKEvaluation({ ...common, search: "exact (pairs scored)", retrieved });
  }
  const catalog = embeddingMatrix(data, dim);
  // Exact search runs when it is the search itself, or the reference of the approximate index's recall.
  const exact = !options.index || options.approximate
    ? exactTopK(catalog, queryRows, { ...search, metric: distance })
    : undefined;
  let retrieved = exact!;
  let backend = "exact";
  if (options.index) {
    const indexed = await indexedTopK({
      location: options.index,
      metric: distance,
      skus: candidates,
      vectors: data.subarray(0, candidates.length * dim),
      dim,
      k,
      economics: options.economics,
      filter: options.filter,
      queries: queries.map((query, p) => {
        const allowed = [...labelOf.get(query)!.keys()];
        const vector = data.slice(queryRows[p] * dim, (queryRows[p] + 1) * dim);
        return {
          sku: query,
          vector,
          allowed: allowed.length === candidates.length ? null : allowed.map((r) => skus[r]),
        };
      }),
    });
    backend = indexed.backend;
    retrieved = indexed.hits.map((hits, p) => ({
      query: queryRows[p],
      indices: Int32Array.from(hits, (hit) => rowOf.get(hit.sku)!),
      distances: Float64Array.from(hits, (hit) => hit.distance),
    }));
  }
  const evaluation = topKEvaluation({ ...common, search: backend, retrieved });
  if (options.approximate) {
    const index = await buildApproximateIndex(catalog, { metric: distance });
    const approximate = index.searchRows(queryRows, search);
    evaluation.approximate = { kind: index.kind, recall: approximateRecall(exact!, approximate).recall };
  }
  return evaluation;
}

/** The top-k result from what each query retrieved (rows of `skus`), its labels and what it was allowed. */
function topKEvaluation(options: {
  model: string;
  distance: EmbeddingDistance;
  k: number;
  ks: readonly number[];
  catalogSize: number;
  search: string;
  queries: readonly string[];
  skus: readonly string[];
  labelOf: ReadonlyMap<string, ReadonlyMap<number, number>>;
  masks: readonly Uint8Array[];
  retrieved: readonly Neighbours[];
}): TopKEvaluation {
  const { model, distance, k, ks, catalogSize, search, queries, skus, labelOf, masks, retrieved } = options;
  const perQuery: TopKQueryRow[] = [];
  const neighbours: TopKEvaluation["neighbours"] = [];
  retrieved.forEach((result: Neighbours, p) => {
    const labels = labelOf.get(queries[p])!;
    let positives = 0;
    let allowed = 0;
    for (const [r, label] of labels) {
      if (masks[p][r]) {
        allowed++;
        positives += label;
      }
    }
    const retrievedLabels = Array.from(result.indices, (r) => labels.get(r) ?? 0);
    const row = topKRankingRow(queries[p], retrievedLabels, positives, k, ks);
    row.allowed = allowed;
    perQuery.push(row);
    neighbours.push({
      query: queries[p],
      skus: Array.from(result.indices, (r) => skus[r]),
      labels: retrievedLabels,
      distances: Array.from(result.distances),
    });
  });
  return { model, distance, k, ks: [...ks], catalogSize, search, summary: topKSummary(perQuery), perQuery, neighbours };
}

/** Means of each cut-off metric over the queries with at least one allowed positive, and the query counts. */
export function topKSummary(perQuery: readonly TopKQueryRow[]): Record<string, number> {
  const evaluated = perQuery.filter((row) => row.positives > 0);
  const metricKeys = Object.keys(perQuery[0] ?? {}).filter((key) => key.includes("@"));
  const summary: Record<string, number> = {};
  for (const key of metricKeys) {
    summary[key] = evaluated.length
      ? evaluated.reduce((sum, row) => sum + (row[key] as number), 0) / evaluated.length
      : NaN;
  }
  summary.queries = perQuery.length;
  summary.queriesEvaluated = evaluated.length;
  return summary;
}

/** One model's headline numbers, for the comparison table. */
export interface ModelMetrics {
  model: string;
  metrics: Record<string, number | null | undefined>;
}

/**
 * The comparison table: one row per model, one column per metric (in `columns` order, or the union of
 * the models' metric names), values rounded to `digits`.
 */
export function comparisonRows(
  models: readonly ModelMetrics[],
  columns?: readonly string[],
  digits = 4,
): Record<string, string | number | null>[] {
  const keys = columns ?? [...new Set(models.flatMap((m) => Object.keys(m.metrics)))];
  const round = (value: number | null | undefined): number | null =>
    value === null || value === undefined || Number.isNaN(value) ? null : Number(value.toFixed(digits));
  return models.map((m) => ({
    model: m.model,
    ...Object.fromEntries(keys.map((key) => [key, round(m.metrics[key])])),
  }));
}

/** Headline numbers of the rendered-pairs flow. */
export function renderedHeadline(evaluation: RenderedPairsEvaluation): Record<string, number> {
  const { chosen, test } = evaluation;
  return {
    threshold_distance: chosen.threshold.distance,
    val_fpr: chosen.validation.fpr,
    val_tpr: chosen.validation.tpr,
    val_f1: chosen.validation.f1,
    test_accuracy: test.accuracy,
    test_precision: test.precision,
    test_recall: test.recall,
    test_f1: test.f1,
    test_fpr: test.fpr,
    test_tpr: test.tpr,
    test_roc_auc: test.rocAuc,
    test_average_precision: test.averagePrecision,
  };
}

/** Headline numbers of the query-candidate flow (`filtered_` prefix for the economically filtered pairs). */
export function queryCandidateHeadline(evaluation: QueryCandidateEvaluation): Record<string, number> {
  const part = (prefix: string, metrics: QueryCandidateMetrics): Record<string, number> => {
    const out: Record<string, number> = {
      [`${prefix}pairs`]: metrics.pairs.pairs,
      [`${prefix}positives`]: metrics.pairs.positives,
      [`${prefix}fpr`]: metrics.pairs.fpr,
      [`${prefix}tpr`]: metrics.pairs.tpr,
      [`${prefix}precision`]: metrics.pairs.precision,
      [`${prefix}f1`]: metrics.pairs.f1,
      [`${prefix}roc_auc`]: metrics.pairs.rocAuc,
    };
    for (const [key, value] of Object.entries(metrics.ranking)) {
      if (
        key.includes("@") && !key.startsWith("precision") && !key.startsWith("hit") || key === "mrr" || key === "map"
      ) {
        out[`${prefix}${key}`] = value;
      }
    }
    out[`${prefix}queries_evaluated`] = metrics.ranking.queriesEvaluated;
    return out;
  };
  return { ...part("", evaluation.all), ...(evaluation.filtered ? part("filtered_", evaluation.filtered) : {}) };
}

/** Headline numbers of the top-k flow. */
export function topKHeadline(evaluation: TopKEvaluation): Record<string, number> {
  const out: Record<string, number> = { ...evaluation.summary, catalog: evaluation.catalogSize };
  if (evaluation.approximate) out.approximate_recall = evaluation.approximate.recall;
  return out;
}

/** The top-k flow's headline with the economically filtered run's cut-off metrics as `filtered_<metric>`. */
export function topKComparisonHeadline(all: TopKEvaluation, filtered: TopKEvaluation): Record<string, number> {
  const kept = Object.entries(filtered.summary).filter(([key]) => key.includes("@"));
  return { ...topKHeadline(all), ...Object.fromEntries(kept.map(([key, value]) => [`filtered_${key}`, value])) };
}

/** The metrics the top-k comparison figures show, at cut-off `k`. */
export function topKComparisonMetrics(k: number): string[] {
  return [
    `recall@${k}`,
    `precision@${k}`,
    `mrr@${k}`,
    `map@${k}`,
    `ndcg@${k}`,
    `filtered_recall@${k}`,
    `filtered_mrr@${k}`,
  ];
}

/** The query-candidate flow's two tables: pair metrics and ranking metrics, per model, all and filtered pairs. */
export function queryCandidateTables(
  evaluations: readonly QueryCandidateEvaluation[],
): { pairs: Record<string, string | number>[]; ranking: Record<string, string | number>[] } {
  const parts = evaluations.flatMap((e) =>
    ([["all", e.all], ["filtered", e.filtered]] as const).filter(([, m]) => m).map(([set, m]) => ({ e, set, m: m! }))
  );
  return {
    pairs: parts.map(({ e, set, m }) => ({
      model: e.model,
      pairs: set,
      n: m.pairs.pairs,
      positives: m.pairs.positives,
      fpr: m.pairs.fpr,
      tpr: m.pairs.tpr,
      precision: m.pairs.precision,
      f1: m.pairs.f1,
      roc_auc: m.pairs.rocAuc,
    })),
    ranking: parts.map(({ e, set, m }) => ({ model: e.model, pairs: set, ...m.ranking })),
  };
}
