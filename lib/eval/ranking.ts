/**
 * Ranking metrics: for each query, rank its candidates by score (higher = more likely the same
 * product; pass `-distance` for distances) and measure where the same-product candidates land.
 *
 * Metrics per query (binary relevance: label 1 = same product):
 * - `recall@k` = positives in the top k / all positives of the query;
 * - `precision@k` = positives in the top k / k (k, not the list length, even when the list is shorter);
 * - `hit@k` = 1 when any positive is in the top k;
 * - `ndcg@k` = DCG@k / ideal DCG@k with gain 1 and discount 1 / log2(rank + 1);
 * - `rr` = 1 / rank of the first positive (its mean over queries is MRR);
 * - `ap` = mean over positives of the precision at their rank, over the full ranked list (mean: mAP).
 *
 * Top-k lists (a query's k nearest products of a catalog, `topKRankingRow`) have the cut-off variants,
 * averaged as `mrr@K`, `map@K`, `ndcg@K`:
 * - `rr@K` = `rr` when the first positive is within the top K, else 0;
 * - `ap@K` = sum over the positives within the top K of the precision at their rank, divided by
 *   min(positives of the query, K).
 * Both families come from the same three functions (`reciprocalRankAt`, `averagePrecisionAt`, `ndcgAt`,
 * with K = Infinity for the full list), so on a list that holds every candidate, with K >= its length,
 * `map@K` equals `map` and `mrr@K` equals `mrr`. `RANKING_METRIC_DEFINITIONS` and `rankingMetricLabel`
 * name them for tables and reports.
 *
 * Queries without any positive are excluded from the averages and counted. Ties in score are broken
 * deterministically: by default PESSIMISTICALLY (among equal scores, negatives rank before positives,
 * so a model that scores everything equal gets no credit), then by candidate id; `ties: "candidate"`
 * breaks ties by candidate id only. Without ties `ap` and `ndcg@k` equal scikit-learn's
 * `average_precision_score` and `ndcg_score(k=k)` per query.
 *
 * @module
 */

/** A candidate id: an SKU or a row index. */
export type CandidateId = string | number;

/** One scored (query, candidate) pair. */
export interface RankingRow {
  query: CandidateId;
  candidate: CandidateId;
  /** Higher = more likely the same product. */
  score: number;
  /** 1 = same product, 0 = not. */
  label: number;
}

/** All candidates of one query as parallel arrays. */
export interface QueryCandidates {
  query: CandidateId;
  scores: ArrayLike<number>;
  labels: ArrayLike<number>;
  /** Candidate ids, for tie-breaking and messages; positions 0..n-1 when absent. */
  candidates?: ArrayLike<CandidateId>;
}

/** How ties in score are ordered. */
export type TieBreak = "pessimistic" | "candidate";

/** Options of `rankingMetrics`. */
export interface RankingOptions {
  /** Cut-offs for recall@k, precision@k and hit@k. Default [1, 5, 10]. */
  ks?: readonly number[];
  /** Cut-offs for nDCG@k. Default [10]. */
  ndcgKs?: readonly number[];
  /** Default "pessimistic". */
  ties?: TieBreak;
}

/**
 * One row of the per-query table: `query`, `candidates`, `positives`, `firstPositiveRank` (1-based,
 * null when the query has no positive), then `recall@k`, `precision@k`, `hit@k`, `ndcg@k`, `rr`, `ap`
 * (null for queries without positives).
 */
export type QueryRankingRow = Record<string, CandidateId | number | null>;

/**
 * Averages over the queries that have at least one positive: `recall@k`, `precision@k`, `hit@k`,
 * `ndcg@k`, `mrr`, `map`; plus `queries` (all), `queriesEvaluated` and `queriesWithoutPositives`.
 */
export type RankingSummary = Record<string, number>;

/** The result of `rankingMetrics`. */
export interface RankingResult {
  summary: RankingSummary;
  perQuery: QueryRankingRow[];
  /** Ids of the queries excluded from the averages because they have no positive candidate. */
  queriesWithoutPositives: CandidateId[];
}

/** Groups rows by query (in first-seen order) into parallel arrays. */
export function groupRowsByQuery(rows: readonly RankingRow[]): QueryCandidates[] {
  const groups = new Map<CandidateId, { scores: number[]; labels: number[]; candidates: CandidateId[] }>();
  for (const row of rows) {
    let group = groups.get(row.query);
    if (!group) {
      group = { scores: [], labels: [], candidates: [] };
      groups.set(row.query, group);
    }
    group.scores.push(row.score);
    group.labels.push(row.label);
    group.candidates.push(row.candidate);
  }
  return [...groups.entries()].map(([query, group]) => ({ query, ...group }));
}

function compareIds(a: CandidateId, b: CandidateId): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  const sa = String(a);
  const sb = String(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

function validateQuery(group: QueryCandidates): void {
  const { query, scores, labels, candidates } = group;
  const n = scores.length;
  if (labels.length !== n || (candidates && candidates.length !== n)) {
    throw new Error(
      `query ${query}: ${n} scores, ${labels.length} labels` +
        (candidates ? `, ${candidates.length} candidates` : "") + "; pass one of each per candidate.",
    );
  }
  for (let i = 0; i < n; i++) {
    const id = candidates ? candidates[i] : i;
    if (labels[i] !== 0 && labels[i] !== 1) {
      throw new Error(`query ${query}, candidate ${id}: label ${labels[i]}; expected 1 (same product) or 0.`);
    }
    if (!Number.isFinite(scores[i])) {
      throw new Error(`query ${query}, candidate ${id}: score ${scores[i]} is not finite; fix or drop that pair.`);
    }
  }
  if (candidates) {
    const seen = new Set<CandidateId>();
    for (let i = 0; i < n; i++) {
      if (seen.has(candidates[i])) {
        throw new Error(`query ${query}: candidate ${candidates[i]} appears twice; keep one score per candidate.`);
      }
      seen.add(candidates[i]);
    }
  }
}

/**
 * Labels of one query's candidates in ranked order (best first), ties broken as `ties` says.
 */
export function rankedLabels(group: QueryCandidates, ties: TieBreak = "pessimistic"): Uint8Array {
  validateQuery(group);
  const { scores, labels, candidates } = group;
  const order = Array.from({ length: scores.length }, (_, i) => i);
  order.sort((a, b) => {
    if (scores[a] !== scores[b]) return scores[b] - scores[a];
    if (ties === "pessimistic" && labels[a] !== labels[b]) return labels[a] - labels[b];
    return candidates ? compareIds(candidates[a], candidates[b]) : a - b;
  });
  return Uint8Array.from(order, (i) => labels[i]);
}

function checkCutoffs(ks: readonly number[], name: string): void {
  for (const k of ks) {
    if (!Number.isInteger(k) || k < 1) throw new Error(`rankingMetrics: ${name} contains ${k}; use integers >= 1.`);
  }
}

/**
 * AP@K of one ranked list (best first): the precision at the rank of each positive within the top K,
 * summed and divided by min(`positives`, K). `positives` counts all the query's positives, also those
 * the list does not hold. With K = Infinity and every positive in the list this is AP
 * (scikit-learn's `average_precision_score` without ties).
 */
export function averagePrecisionAt(ranked: ArrayLike<number>, positives: number, k = Infinity): number {
  if (positives <= 0) return NaN;
  let hits = 0;
  let sum = 0;
  for (let i = 0; i < ranked.length && i < k; i++) {
    if (ranked[i] === 1) sum += ++hits / (i + 1);
  }
  return sum / Math.min(positives, k);
}

/** 1 / rank of the first positive within the top K of a ranked list; 0 when none is there. */
export function reciprocalRankAt(ranked: ArrayLike<number>, k = Infinity): number {
  for (let i = 0; i < ranked.length && i < k; i++) if (ranked[i] === 1) return 1 / (i + 1);
  return 0;
}

/** nDCG@K with gain 1 and discount 1 / log2(rank + 1); the ideal list holds min(`positives`, K) positives. */
export function ndcgAt(ranked: ArrayLike<number>, positives: number, k: number): number {
  if (positives <= 0) return NaN;
  let dcg = 0;
  for (let i = 0; i < Math.min(k, ranked.length); i++) if (ranked[i] === 1) dcg += 1 / Math.log2(i + 2);
  let ideal = 0;
  for (let i = 0; i < Math.min(k, positives); i++) ideal += 1 / Math.log2(i + 2);
  return dcg / ideal;
}

/** Positives within the top `cut` of a ranked list. */
function hitsWithin(ranked: ArrayLike<number>, cut: number): number {
  let hits = 0;
  for (let i = 0; i < Math.min(cut, ranked.length); i++) hits += ranked[i];
  return hits;
}

/** 1-based rank of the first positive within the top K; null when none is there. */
function firstPositiveRank(ranked: ArrayLike<number>, k = Infinity): number | null {
  for (let i = 0; i < ranked.length && i < k; i++) if (ranked[i] === 1) return i + 1;
  return null;
}

/** recall@k, precision@k and hit@k of a ranked list, for a query with `positives` positives in all. */
function cutoffMetrics(
  row: Record<string, unknown>,
  ranked: ArrayLike<number>,
  positives: number,
  ks: readonly number[],
): void {
  for (const k of ks) {
    const hits = positives > 0 ? hitsWithin(ranked, k) : NaN;
    row[`recall@${k}`] = positives > 0 ? hits / positives : null;
    row[`precision@${k}`] = positives > 0 ? hits / k : null;
    row[`hit@${k}`] = positives > 0 ? (hits > 0 ? 1 : 0) : null;
  }
}

/** Metrics of one ranked list of binary labels (best first); null metrics when there is no positive. */
export function queryRankingRow(
  query: CandidateId,
  ranked: ArrayLike<number>,
  ks: readonly number[] = [1, 5, 10],
  ndcgKs: readonly number[] = [10],
): QueryRankingRow {
  const positives = hitsWithin(ranked, ranked.length);
  const row: QueryRankingRow = {
    query,
    candidates: ranked.length,
    positives,
    firstPositiveRank: firstPositiveRank(ranked),
  };
  cutoffMetrics(row, ranked, positives, ks);
  for (const k of ndcgKs) row[`ndcg@${k}`] = positives > 0 ? ndcgAt(ranked, positives, k) : null;
  row.rr = positives > 0 ? reciprocalRankAt(ranked) : null;
  row.ap = positives > 0 ? averagePrecisionAt(ranked, positives) : null;
  return row;
}

/** Metrics of one query's top-k list. */
export interface TopKQueryRow {
  query: string;
  positives: number;
  /** Allowed catalog rows for this query (after the economic filter). */
  allowed: number;
  retrieved: number;
  hits: number;
  /** 1-based rank of the first positive within the top k; null when none is there. */
  firstPositiveRank: number | null;
  [metric: string]: string | number | null;
}

/**
 * Metrics of one ranked top-k list: `labels` of the retrieved candidates (best first) and the number of
 * positives the query has among all allowed candidates: recall/precision/hit at each cut-off of `ks`,
 * `ndcg@k`, `mrr@k` (`rr@K`) and `map@k` (`ap@K`, divided by min(positives, K)).
 */
export function topKRankingRow(
  query: string,
  labels: ArrayLike<number>,
  positives: number,
  k: number,
  ks: readonly number[],
): TopKQueryRow {
  const ranked = Array.from({ length: Math.min(labels.length, k) }, (_, i) => labels[i]);
  const row: TopKQueryRow = {
    query,
    positives,
    allowed: 0,
    retrieved: ranked.length,
    hits: hitsWithin(ranked, k),
    firstPositiveRank: firstPositiveRank(ranked, k),
  };
  cutoffMetrics(row, ranked, positives, ks);
  const valid = positives > 0;
  row[`ndcg@${k}`] = valid ? ndcgAt(ranked, positives, k) : null;
  row[`mrr@${k}`] = valid ? reciprocalRankAt(ranked, k) : null;
  row[`map@${k}`] = valid ? averagePrecisionAt(ranked, positives, k) : null;
  return row;
}

/** What each ranking metric key means; `@k` stands for any cut-off (`recall@5`, `map@10`). */
export const RANKING_METRIC_DEFINITIONS = {
  "recall@k": { label: "Recall@k", definition: "positives in the top k / all positives of the query" },
  "precision@k": { label: "Precision@k", definition: "positives in the top k / k" },
  "hit@k": { label: "Hit@k", definition: "1 when any positive is in the top k" },
  "ndcg@k": { label: "nDCG@k", definition: "DCG of the top k / ideal DCG, gain 1, discount 1/log2(rank + 1)" },
  mrr: { label: "MRR (full list)", definition: "mean of 1 / rank of the first positive among all candidates" },
  map: {
    label: "mAP (full list)",
    definition: "mean AP; AP = mean over all the query's positives of the precision at their rank",
  },
  "mrr@k": { label: "MRR@k", definition: "mean of 1 / rank of the first positive in the top k, 0 when none is there" },
  "map@k": {
    label: "mAP@k",
    definition: "mean AP@k; AP@k = sum of the precision at each positive's rank in the top k / min(positives, k)",
  },
} as const;
export type RankingMetricKey = keyof typeof RANKING_METRIC_DEFINITIONS;

/** The definition key of a metric name (`map@10` -> `map@k`, `filtered_mrr` -> `mrr`); undefined when none. */
export function rankingMetricKey(name: string): RankingMetricKey | undefined {
  const bare = name.replace(/^filtered_/, "").replace(/@\d+$/, "@k");
  return Object.hasOwn(RANKING_METRIC_DEFINITIONS, bare) ? bare as RankingMetricKey : undefined;
}

/** A metric name as a table or report labels it: `map@10` -> "mAP@10", `map` -> "mAP (full list)". */
export function rankingMetricLabel(name: string): string {
  const key = rankingMetricKey(name);
  if (!key) return name;
  const cut = name.match(/@(\d+)$/)?.[1];
  const label = RANKING_METRIC_DEFINITIONS[key].label.replace("@k", cut ? `@${cut}` : "@k");
  return name.startsWith("filtered_") ? `${label}, filtered` : label;
}

/**
 * Recall@k, Precision@k, hit@k, nDCG@k, MRR and mAP per query and averaged over the queries that have
 * a positive. Input: scored rows (grouped by `query`) or already grouped candidates.
 */
export function rankingMetrics(
  input: readonly RankingRow[] | readonly QueryCandidates[],
  options: RankingOptions = {},
): RankingResult {
  const ks = options.ks ?? [1, 5, 10];
  const ndcgKs = options.ndcgKs ?? [10];
  checkCutoffs(ks, "ks");
  checkCutoffs(ndcgKs, "ndcgKs");
  const groups = input.length > 0 && "candidate" in input[0]
    ? groupRowsByQuery(input as readonly RankingRow[])
    : input as readonly QueryCandidates[];
  const perQuery = groups.map((group) =>
    queryRankingRow(group.query, rankedLabels(group, options.ties ?? "pessimistic"), ks, ndcgKs)
  );
  const evaluated = perQuery.filter((row) => row.positives !== 0);
  const keys = [
    ...ks.flatMap((k) => [`recall@${k}`, `precision@${k}`, `hit@${k}`]),
    ...ndcgKs.map((k) => `ndcg@${k}`),
  ];
  const mean = (key: string): number =>
    evaluated.length === 0 ? NaN : evaluated.reduce((sum, row) => sum + (row[key] as number), 0) / evaluated.length;
  const summary: RankingSummary = {};
  for (const key of keys) summary[key] = mean(key);
  summary.mrr = mean("rr");
  summary.map = mean("ap");
  summary.queries = perQuery.length;
  summary.queriesEvaluated = evaluated.length;
  summary.queriesWithoutPositives = perQuery.length - evaluated.length;
  return {
    summary,
    perQuery,
    queriesWithoutPositives: perQuery.filter((row) => row.positives === 0).map((row) => row.query as CandidateId),
  };
}

/**
 * Ranking metrics of scored pairs grouped by their query (e.g. a pair benchmark's left offers, or the
 * suite's rendered pairs with their `query_sku`): each pair's candidate is its side that is not the query.
 */
export function queryPairRanking(
  pairs: {
    queries: ArrayLike<CandidateId>;
    left: ArrayLike<CandidateId>;
    right: ArrayLike<CandidateId>;
    scores: ArrayLike<number>;
    labels: ArrayLike<number>;
  },
  options: RankingOptions = {},
): RankingResult {
  const rows: RankingRow[] = Array.from({ length: pairs.labels.length }, (_, i) => ({
    query: pairs.queries[i],
    candidate: pairs.left[i] === pairs.queries[i] ? pairs.right[i] : pairs.left[i],
    score: pairs.scores[i],
    label: pairs.labels[i],
  }));
  return rankingMetrics(rows, options);
}
