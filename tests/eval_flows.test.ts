import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import pl from "nodejs-polars";
import { embeddingPath, type EmbeddingTable, writeEmbeddings } from "../lib/embeddings/store.ts";
import {
  comparisonRows,
  evaluateQueryCandidates,
  evaluateRenderedPairs,
  evaluateTopK,
  renderedHeadline,
} from "../lib/eval/flows.ts";
import { thresholdAtScore, thresholdRule } from "../lib/eval/threshold.ts";
import {
  loadNamedEmbeddings,
  type NamedEmbeddings,
  pairDistances,
  type PairSet,
  productEconomics,
  type QueryCandidateSet,
  readPairSet,
  readQueryCandidateSet,
} from "../lib/eval/inputs.ts";
import { chooseThreshold, f1OptimalThreshold, pairReport, scoresFromDistances } from "../lib/eval/pair_metrics.ts";
import { queryRankingRow, rankingMetricLabel, rankingMetrics, topKRankingRow } from "../lib/eval/ranking.ts";
import { predictionsMetadata, readParquetKeyValueMetadata, writePredictions } from "../lib/eval/predictions.ts";
import { pairsFrame, queryCandidatesFrame, splitFiles } from "../lib/data/pairs.ts";

/** A 2-d table where pair i's left product sits at (0, 100 i) and its right one at (d_i, 100 i). */
function pairTable(
  split: string,
  distances: number[],
  labels: number[],
): { table: Map<string, number[]>; pairs: PairSet } {
  const table = new Map<string, number[]>();
  const pairs: PairSet = {
    split,
    skuLeft: [],
    skuRight: [],
    labels: Int32Array.from(labels),
    kinds: [],
    querySkus: [],
  };
  distances.forEach((d, i) => {
    const left = `${split}L${i}`;
    const right = `${split}R${i}`;
    table.set(left, [0, 100 * i]);
    table.set(right, [d, 100 * i]);
    pairs.skuLeft.push(left);
    pairs.skuRight.push(right);
    pairs.kinds.push(labels[i] ? "query-positive" : "hard");
    pairs.querySkus.push(left);
  });
  return { table, pairs };
}

function embeddings(entries: Map<string, number[]>, distance: "euclidean" | "cosine" = "euclidean"): EmbeddingTable {
  const skus = [...entries.keys()];
  const dim = entries.get(skus[0])!.length;
  const vectors = new Float32Array(skus.length * dim);
  skus.forEach((sku, i) => vectors.set(entries.get(sku)!, i * dim));
  return { skus, vectors, dim, info: { tag: "synthetic", kind: "siamese", source: "test", distance } };
}

// Validation: F1-optimal at distance 1.0. Test: F1-optimal at distance 2.25, so re-tuning would show.
const validation = pairTable("val", [0.25, 0.5, 0.75, 1.0, 0.75, 1.25, 1.5, 1.75], [1, 1, 1, 1, 0, 0, 0, 0]);
const test = pairTable("test", [0.5, 1.5, 2.0, 2.25, 0.25, 3, 3.25, 3.5], [1, 1, 1, 1, 0, 0, 0, 0]);
const model: NamedEmbeddings = {
  name: "synthetic",
  table: embeddings(new Map([...validation.table, ...test.table])),
};

describe("rendered-pairs flow", () => {
  it("applies the threshold chosen on validation to test unchanged (F1 rule)", () => {
    const evaluation = evaluateRenderedPairs(model, validation.pairs, test.pairs, { kind: "f1" });
    expect(evaluation.chosen.threshold.score).toBeCloseTo(-1.0, 6);
    expect(evaluation.chosen.threshold.distance).toBeCloseTo(1.0, 6);
    expect(evaluation.chosen.threshold.rule).toEqual({ kind: "f1" });
    expect(evaluation.test.threshold).toEqual(evaluation.chosen.threshold);
    // Re-tuning on test would pick distance 2.25 (F1 8/9); the validation threshold gives F1 2/6.
    const testScores = scoresFromDistances(pairDistances(model, test.pairs.skuLeft, test.pairs.skuRight));
    expect(f1OptimalThreshold(test.pairs.labels, testScores).threshold).toBeCloseTo(-2.25, 6);
    expect(evaluation.test.threshold.score).not.toBeCloseTo(-2.25, 3);
    expect(evaluation.test.f1).toBeCloseTo(2 / 6, 12);
    expect(evaluation.test.confusion).toEqual({ tp: 1, fp: 1, tn: 3, fn: 3 });
    expect(evaluation.chosen.validation.f1).toBeCloseTo(8 / 9, 12);
  });

  it("does not look at test labels when choosing the threshold", () => {
    const flipped: PairSet = { ...test.pairs, labels: Int32Array.from(test.pairs.labels, (l) => 1 - l) };
    const a = evaluateRenderedPairs(model, validation.pairs, test.pairs, { kind: "fpr", target: 0.25 });
    const b = evaluateRenderedPairs(model, validation.pairs, flipped, { kind: "fpr", target: 0.25 });
    expect(b.chosen.threshold).toEqual(a.chosen.threshold);
    expect(b.test.threshold).toEqual(a.chosen.threshold);
    const direct = chooseThreshold(
      validation.pairs.labels,
      scoresFromDistances(pairDistances(model, validation.pairs.skuLeft, validation.pairs.skuRight)),
      { kind: "fpr", target: 0.25 },
    );
    expect(a.chosen.threshold).toEqual(direct.threshold);
    // FPR <= 0.25 on validation: distance <= 1.0 (one negative of four), TPR 1.
    expect(a.chosen.validation.fpr).toBe(0.25);
    expect(a.chosen.validation.tpr).toBe(1);
    expect(renderedHeadline(a).val_fpr).toBe(0.25);
  });

  it("writes predictions whose metadata holds the validation threshold and the achieved rates", async () => {
    const dir = await Deno.makeTempDir();
    try {
      const evaluation = evaluateRenderedPairs(model, validation.pairs, test.pairs, { kind: "fpr", target: 0.25 });
      const path = join(dir, "predictions.parquet");
      await writePredictions(path, test.pairs, evaluation, predictionsMetadata(evaluation, "siamese_demo"));
      const metadata = await readParquetKeyValueMetadata(path);
      expect(Number(metadata.threshold_score)).toBe(evaluation.chosen.threshold.score);
      expect(Number(metadata.threshold_distance)).toBe(evaluation.chosen.threshold.distance);
      expect(metadata.threshold_rule).toBe("fpr");
      expect(Number(metadata.target_fpr)).toBe(0.25);
      expect(Number(metadata.val_fpr)).toBe(0.25);
      expect(Number(metadata.val_tpr)).toBe(1);
      expect(Number(metadata.test_fpr)).toBe(evaluation.test.fpr);
      expect(Number(metadata.test_tpr)).toBe(evaluation.test.tpr);
      const frame = pl.readParquet(path);
      expect(frame.height).toBe(8);
      expect(frame.getColumn("predicted").toArray()).toEqual([1, 0, 0, 0, 1, 0, 0, 0]);
      expect(frame.getColumn("distance").toArray()[3]).toBeCloseTo(2.25, 6);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  it("validates the rule parameters", () => {
    expect(thresholdRule("f1", 0.05)).toEqual({ kind: "f1" });
    expect(thresholdRule("fpr", 0.05)).toEqual({ kind: "fpr", target: 0.05 });
    expect(() => thresholdRule("auc", 0.05)).toThrow(/THRESHOLD_RULE/);
    expect(() => thresholdRule("fpr", 5)).toThrow(/TARGET_FPR/);
  });
});

describe("distances", () => {
  it("uses 1 - cos for cosine tables and names a SKU without an embedding", () => {
    const table = embeddings(new Map([["a", [1, 0]], ["b", [0, 2]], ["c", [3, 3]], ["z", [0, 0]]]), "cosine");
    const cosine = pairDistances({ name: "sbert", table }, ["a", "a", "a"], ["b", "c", "z"]);
    expect(cosine[0]).toBeCloseTo(1, 6);
    expect(cosine[1]).toBeCloseTo(1 - Math.SQRT1_2, 6);
    expect(cosine[2]).toBe(1);
    const euclidean = pairDistances({ name: "sbert", table, distance: "euclidean" }, ["a"], ["b"]);
    expect(euclidean[0]).toBeCloseTo(Math.sqrt(5), 6);
    expect(() => pairDistances({ name: "sbert", table }, ["a"], ["nope"], "test pairs")).toThrow(
      /test pairs: right SKU nope of pair 0 has no embedding in "sbert"/,
    );
  });
});

// Two queries over four candidates, no ties; c4 fails the economic filter.
const qcVectors = new Map<string, number[]>([
  ["q1", [0, 0]],
  ["q2", [10, 0]],
  ["c1", [1, 0]],
  ["c2", [2, 0]],
  ["c3", [3, 0]],
  ["c4", [9.5, 0]],
]);
const qcModel: NamedEmbeddings = { name: "toy", table: embeddings(qcVectors) };
const qc: QueryCandidateSet = {
  split: "test",
  querySkus: ["q1", "q1", "q1", "q1", "q2", "q2", "q2", "q2"],
  candidateSkus: ["c1", "c2", "c3", "c4", "c1", "c2", "c3", "c4"],
  classes: ["hard", "positive", "soft", "soft", "soft", "soft", "positive", "positive"],
  labels: Int32Array.from([0, 1, 0, 0, 0, 0, 1, 1]),
};
const economics = productEconomics(pl.DataFrame({
  sku: ["q1", "q2", "c1", "c2", "c3", "c4"],
  final_price: [100, 100, 100, 110, 100, 300],
  sales: [1, 1, 5, 5, 5, 5],
  balance: [1, 1, 3, 3, 3, 3],
  rating: [5, 5, 4.8, 4.8, 4.8, null],
}));

describe("query-candidate flow", () => {
  it("reports pair metrics at the given threshold and ranking metrics, with and without the filter", () => {
    const threshold = thresholdAtScore(-2.5, { kind: "f1" }); // distance <= 2.5 predicted same
    const evaluation = evaluateQueryCandidates(qcModel, qc, threshold, { economics, ks: [1, 2] });
    const scores = scoresFromDistances(pairDistances(qcModel, qc.querySkus, qc.candidateSkus));
    expect(evaluation.all.pairs).toEqual(pairReport(qc.labels, scores, threshold));
    // q1: c1 (neg), c2 (pos) ... -> first positive at rank 2; q2: c4 (pos, 0.5) first.
    expect(evaluation.all.ranking.mrr).toBeCloseTo((1 / 2 + 1) / 2, 12);
    // c4 fails price (300 vs 100) and rating (missing): dropped for both queries.
    expect(evaluation.filtered!.counts.kept).toBe(6);
    expect(evaluation.filtered!.pairs.pairs).toBe(6);
    const keptRows = [0, 1, 2, 4, 5, 6].map((i) => ({
      query: qc.querySkus[i],
      candidate: qc.candidateSkus[i],
      score: scores[i],
      label: qc.labels[i],
    }));
    expect(evaluation.filtered!.ranking).toEqual(rankingMetrics(keptRows, { ks: [1, 2] }).summary);
    // After the filter q2's nearest is c3 (distance 7, positive): rank 1; q1 still finds c2 at rank 2.
    expect(evaluation.filtered!.ranking.mrr).toBeCloseTo((1 / 2 + 1) / 2, 12);
  });
});

describe("top-k flow", () => {
  it("matches the full ranking at cut-offs <= k, never retrieves queries and respects the filter", async () => {
    const evaluation = await evaluateTopK(qcModel, qc, { k: 3, ks: [1, 2, 3], approximate: true });
    expect(evaluation.catalogSize).toBe(4);
    for (const n of evaluation.neighbours) {
      expect(n.skus.some((sku) => sku.startsWith("q"))).toBe(false);
      expect(n.skus.length).toBe(3);
    }
    const scores = scoresFromDistances(pairDistances(qcModel, qc.querySkus, qc.candidateSkus));
    const full = rankingMetrics(
      qc.querySkus.map((query, i) => ({
        query,
        candidate: qc.candidateSkus[i],
        score: scores[i],
        label: qc.labels[i],
      })),
      { ks: [1, 2, 3] },
    ).summary;
    for (const key of ["recall@1", "recall@2", "recall@3", "precision@2", "hit@1"]) {
      expect(evaluation.summary[key]).toBeCloseTo(full[key], 12);
    }
    expect(evaluation.summary["mrr@3"]).toBeCloseTo(full.mrr, 12);
    expect(evaluation.approximate!.recall).toBe(1);

    const filtered = await evaluateTopK(qcModel, qc, { k: 3, economics });
    for (const n of filtered.neighbours) expect(n.skus).not.toContain("c4");
    expect(filtered.perQuery.find((r) => r.query === "q2")!.positives).toBe(1);
  });

  it("searches through the LanceDB index with the filter inside the search, as exact search with the post-filter", async () => {
    // 400 candidates, 25 queries of 462-d clustered vectors; each query may retrieve only its labelled candidates,
    // and the economic filter (with missing values) applies.
    let seed = 11;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const dim = 462;
    const vectors = new Map<string, number[]>();
    const centres = Array.from({ length: 8 }, () => Array.from({ length: dim }, () => random() * 2 - 1));
    const sku = (kind: string, i: number) => `${kind}${i}`;
    for (let i = 0; i < 400; i++) vectors.set(sku("c", i), centres[i % 8].map((x) => x + (random() - 0.5) * 0.8));
    for (let i = 0; i < 25; i++) vectors.set(sku("q", i), centres[i % 8].map((x) => x + (random() - 0.5) * 0.8));
    const querySkus: string[] = [];
    const candidateSkus: string[] = [];
    const labels: number[] = [];
    for (let q = 0; q < 25; q++) {
      for (let c = 0; c < 400; c++) {
        if (q % 5 === 0 || (q + c) % 3 !== 0) { // some queries see every candidate, others two thirds
          querySkus.push(sku("q", q));
          candidateSkus.push(sku("c", c));
          labels.push(c % 8 === q % 8 && random() < 0.5 ? 1 : 0);
        }
      }
    }
    const set: QueryCandidateSet = {
      split: "test",
      querySkus,
      candidateSkus,
      classes: labels.map((l) => (l ? "positive" : "soft")),
      labels: Int32Array.from(labels),
    };
    const all = [...vectors.keys()];
    const big = productEconomics(pl.DataFrame({
      sku: all,
      final_price: all.map(() => (random() < 0.05 ? null : 80 + random() * 40)),
      sales: all.map(() => (random() < 0.1 ? 0 : 3)),
      balance: all.map(() => (random() < 0.05 ? null : 2)),
      rating: all.map(() => 4 + random()),
    }));
    const model: NamedEmbeddings = { name: "clusters", table: embeddings(vectors) };
    const dir = await Deno.makeTempDir({ prefix: "topk-index-" });
    try {
      for (const economicsOption of [undefined, big]) {
        const options = { k: 10, economics: economicsOption, filter: { minRating: 4.5, priceTolerance: 0.2 } };
        const exact = await evaluateTopK(model, set, options);
        const indexed = await evaluateTopK(model, set, { ...options, index: { path: dir, backend: "lancedb" } });
        expect(exact.search).toBe("exact");
        expect(indexed.search).toBe("lancedb");
        expect(indexed.neighbours.map((n) => n.skus)).toEqual(exact.neighbours.map((n) => n.skus));
        indexed.neighbours.forEach((n, i) =>
          n.distances.forEach((d, j) => expect(Math.abs(d - exact.neighbours[i].distances[j])).toBeLessThan(1e-3))
        );
        expect(indexed.summary).toEqual(exact.summary);
      }
      // The filter did bite: some query kept fewer than k allowed neighbours or different ones.
      const unfiltered = await evaluateTopK(model, set, { k: 10 });
      const filtered = await evaluateTopK(model, set, {
        k: 10,
        economics: big,
        index: { path: dir, backend: "lancedb" },
      });
      expect(filtered.neighbours.map((n) => n.skus)).not.toEqual(unfiltered.neighbours.map((n) => n.skus));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  it("computes per-query top-k metrics with AP@k over min(positives, k)", () => {
    const row = topKRankingRow("q", [0, 1, 0, 1], 3, 4, [1, 2, 4]);
    expect(row["recall@2"]).toBeCloseTo(1 / 3, 12);
    expect(row["precision@4"]).toBe(0.5);
    expect(row["hit@1"]).toBe(0);
    expect(row["mrr@4"]).toBe(0.5);
    expect(row["map@4"]).toBeCloseTo((1 / 2 + 2 / 4) / 3, 12);
    expect(topKRankingRow("q", [0, 0], 0, 2, [1])["recall@1"]).toBe(null);
  });

  it("gives the query-candidate flow's values for the same ranked lists (map@K = map, mrr@K = mrr)", () => {
    // Lists that hold every candidate of the query, with K >= their length: the two definitions meet.
    const lists = [[0, 1, 0, 1, 1], [1, 0, 0], [0, 0, 0, 1], [1, 1, 0, 0, 0, 1]];
    for (const ranked of lists) {
      const positives = ranked.reduce((a, b) => a + b, 0);
      const full = queryRankingRow("q", ranked, [1, 3], [6]);
      const top = topKRankingRow("q", ranked, positives, 6, [1, 3]);
      expect(top["map@6"]).toBe(full.ap);
      expect(top["mrr@6"]).toBe(full.rr);
      expect(top["ndcg@6"]).toBe(full["ndcg@6"]);
      for (const key of ["recall@1", "recall@3", "precision@3", "hit@1"]) expect(top[key]).toBe(full[key]);
    }
    // Past the cut-off they differ, and the labels say which is which.
    const cut = topKRankingRow("q", [0, 0, 0, 1], 1, 3, [1]);
    expect(cut["mrr@3"]).toBe(0);
    expect(queryRankingRow("q", [0, 0, 0, 1]).rr).toBe(0.25);
    expect(rankingMetricLabel("map")).toBe("mAP (full list)");
    expect(rankingMetricLabel("map@10")).toBe("mAP@10");
    expect(rankingMetricLabel("filtered_mrr")).toBe("MRR (full list), filtered");
    expect(rankingMetricLabel("test_f1")).toBe("test_f1");
  });
});

describe("inputs and comparison table", () => {
  it("reads split files and says which notebook writes them", async () => {
    const dir = await Deno.makeTempDir();
    try {
      const files = splitFiles(dir, "test");
      await Deno.writeFile(
        files.pairs,
        new Uint8Array(
          pairsFrame([
            { sku_left: "1", sku_right: "2", label: 1, kind: "query-positive", query_sku: "1" },
            { sku_left: "1", sku_right: "3", label: 0, kind: "soft", query_sku: "1" },
          ]).writeParquet(),
        ),
      );
      await Deno.writeFile(
        files.queryCandidates,
        new Uint8Array(
          queryCandidatesFrame([
            { query_sku: "1", candidate_sku: "2", class: "positive", label: 1 },
          ]).writeParquet(),
        ),
      );
      const pairs = readPairSet(dir, "test");
      expect(pairs.skuRight).toEqual(["2", "3"]);
      expect(Array.from(pairs.labels)).toEqual([1, 0]);
      expect(readQueryCandidateSet(dir, "test").classes).toEqual(["positive"]);
      expect(() => readPairSet(dir, "val")).toThrow(/val_pairs\.parquet.*contrastive_train_data-splitting-by-query/s);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  it("loads the embeddings that exist and reports the missing ones", async () => {
    const dir = await Deno.makeTempDir();
    const previous = Deno.env.get("CLIP_SIAMESE_DATA");
    Deno.env.set("CLIP_SIAMESE_DATA", dir);
    try {
      await writeEmbeddings(embeddingPath("demo_geo", "sbert"), embeddings(qcVectors, "cosine"));
      const loaded = await loadNamedEmbeddings("demo_geo", [
        { name: "SiameseRuCLIP", tag: "siamese_demo" },
        { name: "SBERT zero-shot", tag: "sbert" },
      ]);
      expect(loaded.models.map((m) => m.name)).toEqual(["SBERT zero-shot"]);
      expect(loaded.missing[0].tag).toBe("siamese_demo");
      await expect(loadNamedEmbeddings("demo_geo", [{ name: "x", tag: "nope" }])).rejects.toThrow(/2_embeddings/);
    } finally {
      if (previous === undefined) Deno.env.delete("CLIP_SIAMESE_DATA");
      else Deno.env.set("CLIP_SIAMESE_DATA", previous);
      await Deno.remove(dir, { recursive: true });
    }
  });

  it("builds one row per model with rounded values and null for NaN", () => {
    const rows = comparisonRows([
      { model: "SiameseRuCLIP", metrics: { f1: 0.812345678, mrr: 0.5 } },
      { model: "SBERT zero-shot", metrics: { f1: NaN } },
    ], ["f1", "mrr"]);
    expect(rows).toEqual([
      { model: "SiameseRuCLIP", f1: 0.8123, mrr: 0.5 },
      { model: "SBERT zero-shot", f1: null, mrr: null },
    ]);
    expect(() => productEconomics(pl.DataFrame({ sku: ["1"] }))).toThrow(/final_price/);
  });
});
