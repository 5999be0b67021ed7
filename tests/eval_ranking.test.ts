import { describe, it } from "node:test";
import { expect } from "expect";
import {
  queryPairRanking,
  queryRankingRow,
  rankedLabels,
  rankingMetrics,
  type RankingRow,
} from "../lib/eval/ranking.ts";

interface ReferenceQuery {
  query: string;
  candidates: string[];
  labels: number[];
  scores: number[];
  "ndcg@5"?: number;
  "ndcg@10"?: number;
  average_precision?: number;
}
const reference = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/eval/ranking_reference.json", import.meta.url)),
) as { sklearn: string; queries: ReferenceQuery[] };

describe("ranking metrics worked by hand", () => {
  it("one query: ranked labels 0 1 0 1 0 (2 positives of 5)", () => {
    // first positive at rank 2 -> rr = 1/2
    // AP = (1/2 + 2/4) / 2 = 1/2
    // recall@1 = 0, recall@2 = 1/2, recall@5 = 1; precision@2 = 1/2, precision@5 = 2/5
    // nDCG@5: DCG = 1/log2(3) + 1/log2(5); ideal = 1 + 1/log2(3)
    const row = queryRankingRow("q", [0, 1, 0, 1, 0], [1, 2, 5], [5]);
    expect(row.firstPositiveRank).toBe(2);
    expect(row.rr).toBe(0.5);
    expect(row.ap).toBe(0.5);
    expect([row["recall@1"], row["recall@2"], row["recall@5"]]).toEqual([0, 0.5, 1]);
    expect([row["precision@2"], row["precision@5"]]).toEqual([0.5, 0.4]);
    expect([row["hit@1"], row["hit@2"]]).toEqual([0, 1]);
    expect(row["ndcg@5"]).toBeCloseTo((1 / Math.log2(3) + 1 / Math.log2(5)) / (1 + 1 / Math.log2(3)), 14);
  });

  it("pairs ranked per query: the candidate is the side that is not the query, either way round", () => {
    // Query q: candidates a (0.9, negative), b (0.5, positive; q on the right), c (0.1, positive). Query r: d only.
    const { summary, perQuery } = queryPairRanking({
      queries: ["q", "q", "q", "r"],
      left: ["q", "b", "q", "r"],
      right: ["a", "q", "c", "d"],
      scores: [0.9, 0.5, 0.1, 0.3],
      labels: [0, 1, 1, 1],
    });
    expect(perQuery.map((row) => [row.query, row.candidates, row.positives])).toEqual([["q", 3, 2], ["r", 1, 1]]);
    // q: positives at ranks 2 and 3, rr 1/2, ap (1/2 + 2/3) / 2; r: rr 1, ap 1.
    expect(summary.mrr).toBeCloseTo((0.5 + 1) / 2, 12);
    expect(summary.map).toBeCloseTo(((0.5 + 2 / 3) / 2 + 1) / 2, 12);
  });

  it("precision@k divides by k even when the list is shorter than k", () => {
    // 2 candidates, 1 positive ranked first: precision@5 = 1/5, recall@5 = 1
    const row = queryRankingRow("q", [1, 0], [5], [5]);
    expect(row["precision@5"]).toBe(0.2);
    expect(row["recall@5"]).toBe(1);
    expect(row["ndcg@5"]).toBe(1);
  });

  it("averages over queries with positives; queries without positives are excluded and counted", () => {
    const rows: RankingRow[] = [
      // query A: scores rank c2 (pos) first, c1, c3 (pos): rr 1, AP = (1/1 + 2/3)/2 = 5/6
      { query: "A", candidate: "c1", score: 0.5, label: 0 },
      { query: "A", candidate: "c2", score: 0.9, label: 1 },
      { query: "A", candidate: "c3", score: 0.1, label: 1 },
      // query B: positive ranked 3rd of 3: rr 1/3, AP 1/3
      { query: "B", candidate: "c1", score: 0.8, label: 0 },
      { query: "B", candidate: "c2", score: 0.7, label: 0 },
      { query: "B", candidate: "c3", score: 0.6, label: 1 },
      // query C: no positives
      { query: "C", candidate: "c1", score: 0.8, label: 0 },
    ];
    const { summary, perQuery, queriesWithoutPositives } = rankingMetrics(rows, { ks: [1, 3], ndcgKs: [3] });
    expect(summary.mrr).toBeCloseTo((1 + 1 / 3) / 2, 15);
    expect(summary.map).toBeCloseTo((5 / 6 + 1 / 3) / 2, 15);
    // recall@1: A 1/2, B 0 -> 1/4
    expect(summary["recall@1"]).toBe(0.25);
    expect(summary["recall@3"]).toBe(1);
    expect(summary.queries).toBe(3);
    expect(summary.queriesEvaluated).toBe(2);
    expect(summary.queriesWithoutPositives).toBe(1);
    expect(queriesWithoutPositives).toEqual(["C"]);
    expect(perQuery.map((row) => row.query)).toEqual(["A", "B", "C"]);
    expect(perQuery[2].ap).toBeNull();
  });

  it("ties: pessimistic puts negatives first; 'candidate' orders by candidate id", () => {
    const group = { query: "q", scores: [0.5, 0.5, 0.5], labels: [1, 0, 0], candidates: ["a", "b", "c"] };
    expect(Array.from(rankedLabels(group))).toEqual([0, 0, 1]);
    expect(Array.from(rankedLabels(group, "candidate"))).toEqual([1, 0, 0]);
    // all-equal scores give the worst-case MRR by default
    expect(rankingMetrics([group]).summary.mrr).toBeCloseTo(1 / 3, 15);
  });

  it("rejects duplicate candidates, bad labels and NaN scores with the query named", () => {
    expect(() => rankingMetrics([{ query: "q", scores: [1, 2], labels: [1, 0], candidates: ["a", "a"] }])).toThrow(
      /query q: candidate a appears twice/,
    );
    expect(() => rankingMetrics([{ query: "q", candidate: "a", score: 1, label: 3 }])).toThrow(/query q, candidate a/);
    expect(() => rankingMetrics([{ query: "q", candidate: "a", score: NaN, label: 1 }])).toThrow(/not finite/);
    expect(() => rankingMetrics([], { ks: [0] })).toThrow(/ks contains 0/);
  });
});

describe("ranking metrics agree with scikit-learn per query (no ties)", () => {
  const result = rankingMetrics(reference.queries, { ks: [1, 5, 10], ndcgKs: [5, 10] });
  it("fixture has a query without positives and it is excluded", () => {
    expect(result.queriesWithoutPositives).toEqual(["q0"]);
    expect(result.summary.queriesEvaluated).toBe(reference.queries.length - 1);
  });
  for (const [i, query] of reference.queries.entries()) {
    if (query.average_precision === undefined) continue;
    it(`${query.query}: ap = average_precision_score, ndcg@k = ndcg_score(k)`, () => {
      const row = result.perQuery[i];
      expect(Math.abs((row.ap as number) - query.average_precision!)).toBeLessThanOrEqual(1e-12);
      expect(Math.abs((row["ndcg@5"] as number) - query["ndcg@5"]!)).toBeLessThanOrEqual(1e-12);
      expect(Math.abs((row["ndcg@10"] as number) - query["ndcg@10"]!)).toBeLessThanOrEqual(1e-12);
    });
  }
  it("mAP is the mean of sklearn's per-query average precision", () => {
    const aps = reference.queries.filter((q) => q.average_precision !== undefined).map((q) => q.average_precision!);
    expect(Math.abs(result.summary.map - aps.reduce((a, b) => a + b, 0) / aps.length)).toBeLessThanOrEqual(1e-12);
  });
});
