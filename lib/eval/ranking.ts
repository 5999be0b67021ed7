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

/** Metrics of one ranked list of binary labels (best first); null metrics when there is no positive. */
export function queryRankingRow(
  query: CandidateId,
  ranked: ArrayLike<number>,
  ks: readonly number[] = [1, 5, 10],
  ndcgKs: readonly number[] = [10],
): QueryRankingRow {
  const n = ranked.length;
  let positives = 0;
  for (let i = 0; i < n; i++) positives += ranked[i];
  const row: QueryRankingRow = { query, candidates: n, positives, firstPositiveRank: null };
  if (positives === 0) {
    for (const k of ks) row[`recall@${k}`] = row[`precision@${k}`] = row[`hit@${k}`] = null;
    for (const k of ndcgKs) row[`ndcg@${k}`] = null;
    row.rr = row.ap = null;
    return row;
  }
  const hitsAt = new Float64Array(n + 1); // hitsAt[r] = positives within the top r
  let precisionSum = 0;
  let firstRank = 0;
  for (let i = 0; i < n; i++) {
    hitsAt[i + 1] = hitsAt[i] + ranked[i];
    if (ranked[i] === 1) {
      precisionSum += hitsAt[i + 1] / (i + 1);
      if (firstRank === 0) firstRank = i + 1;
    }
  }
  row.firstPositiveRank = firstRank;
  for (const k of ks) {
    const hits = hitsAt[Math.min(k, n)];
    row[`recall@${k}`] = hits / positives;
    row[`precision@${k}`] = hits / k;
    row[`hit@${k}`] = hits > 0 ? 1 : 0;
  }
  for (const k of ndcgKs) {
    let dcg = 0;
    for (let i = 0; i < Math.min(k, n); i++) if (ranked[i] === 1) dcg += 1 / Math.log2(i + 2);
    let ideal = 0;
    for (let i = 0; i < Math.min(k, positives); i++) ideal += 1 / Math.log2(i + 2);
    row[`ndcg@${k}`] = dcg / ideal;
  }
  row.rr = 1 / firstRank;
  row.ap = precisionSum / positives;
  return row;
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
