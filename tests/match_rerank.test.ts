/**
 * Two-stage ranking (lib/match/rerank.ts): a saved pair classifier read back with its features
 * (lib/match/pair_scorer.ts), a first-stage top-k re-ordered by it, both stages measured alike, and the
 * photo gallery of a few queries (lib/notebook/gallery.ts) in the notebook and the report.
 */
import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import sharp from "sharp";
import { importPairs } from "../lib/data/import_pairs.ts";
import { datasetLayout } from "../lib/data/layout.ts";
import { type NamedEmbeddings, readQueryCandidateSet } from "../lib/eval/inputs.ts";
import { evaluateTopK } from "../lib/eval/flows.ts";
import { reportHtml } from "../lib/eval/report.ts";
import { candidatePairs, evaluatePairClassifiers } from "../lib/match/evaluation.ts";
import { evidenceRecords, fitPairFeatures, pairFeatures } from "../lib/match/pair_features.ts";
import { loadPairScorer, pairScorer } from "../lib/match/pair_scorer.ts";
import { loadPairClassifier } from "../lib/match/stacked_classifier.ts";
import { galleryQueries, rankChanges, rerankGallery, rerankRows, rerankTopK } from "../lib/match/rerank.ts";
import { galleryHtml, galleryText, thumbnailUri } from "../lib/notebook/gallery.ts";
import { explainedPairsGallery, explainPairs } from "../lib/match/explain.ts";
import { writeMagellanFixture } from "./format_fixtures.ts";
import { mulberry32 } from "./helpers.ts";

/** Embeddings where a product's records sit `noise` apart around the product's centre. */
function embeddings(skus: string[], productOf: (sku: string) => number, name: string, noise: number, dim = 12) {
  const random = mulberry32(11);
  const centres = Array.from({ length: 12 }, () => Array.from({ length: dim }, () => random() * 2 - 1));
  const vectors = new Float32Array(skus.length * dim);
  skus.forEach((sku, r) =>
    centres[productOf(sku)].forEach((v, j) => (vectors[r * dim + j] = v + noise * (random() - 0.5)))
  );
  const info = { tag: name, kind: "test", source: "test", distance: "euclidean" as const };
  return { name, table: { skus, vectors, dim, info } } satisfies NamedEmbeddings;
}

const root = await Deno.makeTempDir({ prefix: "rerank-" });
const source = await writeMagellanFixture(await Deno.makeTempDir({ prefix: "rerank-src-" }));
await importPairs({ dataset: "mag", root, source: { kind: "magellan", dir: source } });
const records = evidenceRecords("mag", root);
const productOf = (sku: string) => sku.startsWith("a:") ? Number(sku.slice(2)) : (Number(sku.slice(2)) * 5) % 12;
const skus = [...records.keys()];
const siamese = embeddings(skus, productOf, "SiameseRuCLIP", 0.1);
const towers = embeddings(skus, productOf, "raw tower features", 0.1, 6);
const saveDir = join(root, "classifiers");
const evaluation = await evaluatePairClassifiers({
  dataset: "mag",
  root,
  rule: { kind: "f1" },
  siamese: { siamese, towers, components: 2 },
  boosted: { rounds: 30, earlyStopping: 10, params: { nthread: 1 } },
  saveDir,
});
const candidates = readQueryCandidateSet(datasetLayout("mag", root).splitsDir, "test");
/** Scores each pair by its label: the best a second stage can do. */
const labelOf = new Map(
  candidates.querySkus.map((q, i) => [`${q}|${candidates.candidateSkus[i]}`, candidates.labels[i]]),
);
const oracle = {
  name: "oracle",
  score: (left: readonly string[], right: readonly string[]) =>
    Promise.resolve(Float64Array.from(left, (q, i) => labelOf.get(`${q}|${right[i]}`) ?? 0)),
};

describe("a saved pair classifier as a scorer", () => {
  it("reads each classifier back with its features and scores the test pairs as when it was fitted", async () => {
    for (const trial of evaluation.trials) {
      const scorer = await loadPairScorer(trial.savedTo!, { models: [siamese, towers], root });
      const { test } = evaluation.splits;
      expect(Array.from(await scorer.score(test.skuLeft, test.skuRight, "test"))).toEqual(
        Array.from(trial.testScores),
      );
      scorer.dispose();
    }
  });

  it("refuses embeddings other than those it read, a folder without features, mismatched columns", async () => {
    const full = evaluation.trials[0].savedTo!;
    const other = embeddings(skus, productOf, "another model", 0.1);
    await expect(loadPairScorer(full, { models: [other, towers], root })).rejects.toThrow(
      /read the fine-tuned embeddings "SiameseRuCLIP", which are not among the loaded tables \(another model, raw/,
    );
    // The evidence-only classifier needs no embeddings.
    (await loadPairScorer(evaluation.trials[1].savedTo!, { models: [], root })).dispose();
    await expect(loadPairScorer(root, { models: [], root })).rejects.toThrow(/no features\.json in .*run that/);
    const classifier = await loadPairClassifier(full);
    const evidence = fitPairFeatures(records, evaluation.splits.train, null);
    expect(() => pairScorer("mixed", evidence, classifier)).toThrow(/the features have the columns \[tfidf_word_name/);
    classifier.dispose();
    const scorer = await loadPairScorer(full, { models: [siamese, towers], root });
    await expect(scorer.score(["a:1"], [], "two sides")).rejects.toThrow(/two sides: 1 left SKUs but 0 right/);
    scorer.dispose();
  });
});

describe("two-stage ranking", () => {
  // A poor first stage (noisy embeddings), so the second has room to help.
  const noisy = embeddings(skus, productOf, "noisy", 4);

  it("re-orders each top-k by the scorer, keeps recall@k, and measures both stages alike", async () => {
    const before = await evaluateTopK(noisy, candidates, { k: 3 });
    const reranked = await rerankTopK(before, oracle);
    expect(reranked.after.summary["recall@3"]).toBe(before.summary["recall@3"]);
    reranked.lists.forEach((list, q) => {
      expect([...list.skus].sort()).toEqual([...before.neighbours[q].skus].sort());
      expect(list.skus.map((_, r) => before.neighbours[q].skus[list.firstStageRanks[r] - 1])).toEqual(list.skus);
      // A positive that was retrieved is now first.
      if (list.labels.includes(1)) expect(list.labels[0]).toBe(1);
      expect(list.probabilities).toEqual([...list.probabilities].sort((a, b) => b - a));
    });
    const hits = before.perQuery.filter((r) => r.positives > 0);
    expect(reranked.after.summary["mrr@3"]).toBeCloseTo(hits.filter((r) => r.hits > 0).length / hits.length, 12);
    expect(reranked.after.summary["mrr@3"]).toBeGreaterThan(before.summary["mrr@3"]);
    expect(rankChanges(reranked).every((c) => c.gain >= 0)).toBe(true);
    const rows = rerankRows(reranked);
    expect(rows.map((r) => r.stage)).toEqual(["1: noisy, top-3 (exact)", "2: re-ranked by oracle"]);
    expect(Object.keys(rows[0])).toEqual(["stage", "recall@1", "recall@3", "mrr@3", "map@3", "ndcg@3"]);
    // Ties keep the first stage's order: a scorer that cannot tell changes nothing.
    const blind = { name: "blind", score: (l: readonly string[]) => Promise.resolve(new Float64Array(l.length)) };
    const same = await rerankTopK(before, blind);
    expect(same.after.neighbours.map((n) => n.skus)).toEqual(before.neighbours.map((n) => n.skus));
    expect(same.after.summary).toEqual(before.summary);
  });

  it("re-ranks with the saved classifier as the classifier ranks the whole candidate list", async () => {
    // Each test query of this fixture has two candidates: a top-2 holds them all, so the re-ranked lists are
    // the classifier's own ranking of each query's candidates.
    const before = await evaluateTopK(noisy, candidates, { k: 2 });
    const scorer = await loadPairScorer(evaluation.trials[0].savedTo!, { models: [siamese, towers], root });
    const reranked = await rerankTopK(before, scorer);
    scorer.dispose();
    expect(reranked.after.model).toBe(`noisy → ${scorer.name}`);
    // The probabilities are the fitted classifier's on the candidate pairs, made without the saved copy.
    const features = fitPairFeatures(records, evaluation.splits.train, { siamese, towers, components: 2 });
    const pairs = candidatePairs(candidates);
    const direct = await evaluation.trials[0].classifier.predictProbabilities(pairFeatures(features, pairs));
    const expected = new Map(pairs.skuLeft.map((q, i) => [`${q}|${pairs.skuRight[i]}`, direct[i]]));
    for (const list of reranked.lists) {
      expect(list.probabilities).toEqual(list.skus.map((sku) => expected.get(`${list.query}|${sku}`)));
    }
    expect(reranked.after.summary["recall@2"]).toBe(before.summary["recall@2"]);
  });

  it("picks the queries it helped most, then the one it hurt, and shows them with photos", async () => {
    const before = await evaluateTopK(noisy, candidates, { k: 2 });
    // A scorer that reverses the first stage: it hurts where the positive was first.
    const reverse = {
      name: "reverse",
      score: (l: readonly string[]) => {
        const out = new Float64Array(l.length);
        let start = 0;
        for (let i = 0; i <= l.length; i++) {
          if (i === l.length || l[i] !== l[start]) {
            for (let j = start; j < i; j++) out[j] = j - start;
            start = i;
          }
        }
        return Promise.resolve(out);
      },
    };
    const reranked = await rerankTopK(before, reverse);
    const changes = rankChanges(reranked);
    const picked = galleryQueries(reranked, 3);
    const helped = changes.filter((c) => c.gain > 0).sort((a, b) => b.gain - a.gain);
    const hurt = changes.filter((c) => c.gain < 0).sort((a, b) => a.gain - b.gain);
    expect(hurt.length).toBeGreaterThan(0);
    expect(picked.at(-1)).toEqual(hurt[0]);
    if (helped.length) expect(picked[0].gain).toBe(helped[0].gain);
    // Photos: one product gets a real image, the rest have none on disk.
    const photo = join(root, "photo.png");
    await sharp({ create: { width: 40, height: 20, channels: 3, background: "#3060c0" } }).png().toFile(photo);
    const photos = new Map(skus.map((sku, i) => [sku, i === 0 ? photo : join(root, "missing.jpg")]));
    const names = new Map(skus.map((sku) => [sku, `<${records.get(sku)!.name}>`]));
    const blocks = await rerankGallery(reranked, picked, { names, photos });
    expect(blocks.length).toBe(3);
    expect(blocks[0].rows.map((r) => [r.label, r.cards.length])).toEqual([["query", 1], ["before", 2], ["after", 2]]);
    const after = blocks.at(-1)!.rows[2].cards;
    expect(after[0].lines[0]).toMatch(/^#1 \(was #\d\) · p \d\.\d{3}$/);
    expect(blocks.at(-1)!.heading).toMatch(/first right candidate #1 → #\d$/);
    const html = galleryHtml(blocks);
    expect(html).not.toContain(`<${records.get(skus[1])!.name}>`);
    expect(html).toContain("&lt;");
    expect(html).toContain("no photo");
    expect(html).toContain("#d62728");
    expect(galleryText(blocks)).toContain("[wrong]");
  });

  it("makes thumbnails once per file, null where there is no readable photo", async () => {
    const photo = join(root, "wide.png");
    await sharp({ create: { width: 60, height: 30, channels: 4, background: "#ff000080" } }).png().toFile(photo);
    const uri = await thumbnailUri(photo, 48);
    expect(uri).toMatch(/^data:image\/jpeg;base64,/);
    const image = sharp(Uint8Array.from(atob(uri!.split(",")[1]), (c) => c.charCodeAt(0)));
    expect(await image.metadata()).toMatchObject({ format: "jpeg", width: 48, height: 48 });
    expect(await thumbnailUri(photo, 48)).toBe(uri);
    expect(await thumbnailUri(null)).toBeNull();
    const text = join(root, "not-an-image.jpg");
    await Deno.writeTextFile(text, "hello");
    expect(await thumbnailUri(text)).toBeNull();
  });

  it("shows the pairs the classifier got most wrong side by side, with why", async () => {
    const trial = evaluation.trials[1];
    const { test } = evaluation.splits;
    // Both kinds of error, whatever this fixture's fit got wrong: every test pair, as if misjudged.
    const pairs = Array.from(test.labels, (label, row) => ({
      kind: label ? "false negative" as const : "false positive" as const,
      row,
    }));
    const explained = await explainPairs(trial, test, records, pairs, 2);
    const photos = new Map<string, string | null>();
    const names = new Map(skus.map((sku) => [sku, records.get(sku)!.name]));
    const blocks = await explainedPairsGallery(explained, test, pairs, { names, photos });
    expect(blocks.length).toBe(test.labels.length);
    blocks.forEach((block, i) => {
      const label = test.labels[i] ? "same" : "different";
      expect(block.heading).toBe(`${pairs[i].kind}: probability ${explained[i].probability} (labelled ${label})`);
      expect(block.note).toMatch(/^strongest contributions \(log-odds\): \S+ [+-]\d\.\d\d, \S+ [+-]\d\.\d\d$/);
      expect(block.rows[0].cards.map((c) => c.lines[0])).toEqual([
        `left · ${test.skuLeft[i]}`,
        `right · ${test.skuRight[i]}`,
      ]);
    });
    expect(galleryText(blocks)).toContain("  strongest contributions (log-odds): ");
  });

  it("puts galleries into the report", () => {
    const html = reportHtml({
      found: [{
        notebook: "x",
        title: "X",
        dataset: "d",
        split: "test",
        created: "now",
        params: {},
        headline: {},
        tables: [],
        figures: [],
        galleries: [{ title: "re-ranked queries", html: '<div class="gallery">G</div>' }],
        notes: [],
      }],
      missing: [],
      unreadable: [],
    });
    expect(html).toContain('<h4>re-ranked queries</h4><div class="gallery">G</div>');
  });
});
