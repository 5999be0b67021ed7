import { describe, it } from "node:test";
import { expect } from "expect";
import type { QueryLabels } from "../lib/data/labeller.ts";
import { renderSplits, splitCounts, splitOverlaps } from "../lib/data/pairs.ts";
import { SeededRandom } from "../lib/data/random.ts";
import { assignSplits, groupQueries, parseSplitRatios } from "../lib/data/split.ts";

/** A random labelled catalogue: queries with overlapping positives, hard negatives, and the rest soft. */
function randomCatalogue(seed: number): { queries: QueryLabels[]; skus: string[]; querySkus: Set<string> } {
  const random = new SeededRandom(seed);
  const productCount = random.int(60, 200);
  const skus = Array.from({ length: productCount }, (_, i) => String(1000 + i));
  const queryCount = random.int(3, 15);
  const querySkus = skus.slice(0, queryCount);
  const candidates = skus.slice(queryCount);
  const queries = querySkus.map((q) => {
    const picked = random.sample(candidates, random.int(0, 25));
    const positives = picked.slice(0, random.int(0, picked.length));
    const hard = picked.slice(positives.length);
    const taken = new Set(picked);
    return {
      query_sku: q,
      query_name: `query ${q}`,
      has_rule: random.chance(0.9),
      query_sizes: "",
      positives,
      hard,
      soft: candidates.filter((s) => !taken.has(s)),
    };
  });
  return { queries, skus, querySkus: new Set(querySkus) };
}

describe("parseSplitRatios", () => {
  it("normalises and rejects bad input naming the parameter", () => {
    expect(parseSplitRatios("3,1,1")).toEqual([0.6, 0.2, 0.2]);
    expect(() => parseSplitRatios("0.6,0.4")).toThrow(/SPLIT_RATIOS/);
    expect(() => parseSplitRatios("a,b,c")).toThrow(/SPLIT_RATIOS/);
  });
});

describe("groupQueries", () => {
  it("merges queries that share a positive, transitively", () => {
    const q = (sku: string, positives: string[]): QueryLabels => ({
      query_sku: sku,
      query_name: sku,
      has_rule: true,
      query_sizes: "",
      positives,
      hard: [],
      soft: [],
    });
    const groups = groupQueries([q("1", ["a", "b"]), q("2", ["c"]), q("3", ["b", "c"]), q("4", ["d"])]);
    expect(groups.map((g) => g.querySkus.sort())).toEqual([["1", "2", "3"], ["4"]]);
  });
});

describe("leak-free split (property over 60 seeds)", () => {
  for (let seed = 0; seed < 60; seed++) {
    it(`seed ${seed}: every product in exactly one split, pairs inside their split, zero overlap`, () => {
      const { queries, skus, querySkus } = randomCatalogue(seed);
      const assignment = assignSplits(queries, skus, { ratios: [0.6, 0.2, 0.2], seed });
      // exactly one split per product
      expect([...assignment.splitOf.keys()].sort()).toEqual([...skus].sort());
      // a query and its positives share a split
      for (const q of queries) {
        for (const p of q.positives) expect(assignment.splitOf.get(p)).toBe(assignment.splitOf.get(q.query_sku));
      }
      const splits = renderSplits(queries, assignment, querySkus, {
        seed,
        posNegRatio: 1.5,
        hardSoftRatio: 0.5,
        maxPositivePairsPerQuery: 20,
      });
      const perSplit = splits.map((s) => new Set(s.skus));
      expect(perSplit.reduce((n, s) => n + s.size, 0)).toBe(skus.length);
      for (const s of splits) {
        for (const p of s.pairs) {
          expect(assignment.splitOf.get(p.sku_left)).toBe(s.split);
          expect(assignment.splitOf.get(p.sku_right)).toBe(s.split);
          expect(p.sku_left).not.toBe(p.sku_right);
        }
        for (const r of s.queryCandidates) {
          expect(assignment.splitOf.get(r.candidate_sku)).toBe(s.split);
          expect(querySkus.has(r.candidate_sku)).toBe(false);
        }
        const keys = s.pairs.map((p) => [p.sku_left, p.sku_right].sort().join("|"));
        expect(new Set(keys).size).toBe(keys.length);
      }
      expect(splitOverlaps(splits).every((o) => o.shared_skus === 0)).toBe(true);
    });
  }
});

describe("pair rendering", () => {
  it("follows the ratios and the cap, and labels positives 1", () => {
    const { queries, skus, querySkus } = randomCatalogue(7);
    const assignment = assignSplits(queries, skus, { ratios: [1, 0, 0], seed: 1 });
    const [train] = renderSplits(queries, assignment, querySkus, {
      seed: 1,
      posNegRatio: 1,
      hardSoftRatio: 1,
      maxPositivePairsPerQuery: 5,
    });
    const counts = splitCounts([train])[0];
    const positives = train.pairs.filter((p) => p.label === 1);
    expect(positives.every((p) => p.kind === "query-positive" || p.kind === "positive-positive")).toBe(true);
    for (const q of queries.filter((x) => x.has_rule)) {
      expect(train.pairs.filter((p) => p.query_sku === q.query_sku && p.label === 1).length).toBeLessThanOrEqual(5);
    }
    expect(Number(counts.hard) + Number(counts.soft)).toBeLessThanOrEqual(positives.length);
    expect(Number(counts.hard)).toBeGreaterThan(0);
    const hardOf = new Map(queries.map((q) => [q.query_sku, new Set(q.hard)]));
    for (const p of train.pairs.filter((x) => x.kind === "hard")) {
      expect(hardOf.get(p.query_sku)!.has(p.sku_right)).toBe(true);
    }
  });

  it("is deterministic for a seed", () => {
    const { queries, skus, querySkus } = randomCatalogue(3);
    const run = () =>
      renderSplits(queries, assignSplits(queries, skus, { ratios: [0.6, 0.2, 0.2], seed: 5 }), querySkus, {
        seed: 5,
        posNegRatio: 2,
        hardSoftRatio: 0.3,
        maxPositivePairsPerQuery: 0,
      });
    expect(run()).toEqual(run());
  });
});
