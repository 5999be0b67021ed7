/**
 * The TF-IDF lexical baseline (lib/eval/lexical.ts, lexical_baseline.ts) against scikit-learn's
 * TfidfVectorizer + cosine_similarity (tests/fixtures/eval/tfidf_reference.json, written by
 * scripts/fixtures/make_lexical_fixtures.py), and the baseline run on a small imported dataset.
 */
import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import {
  charWbNgrams,
  fitTfidf,
  lexicalPairScores,
  tfidfCosine,
  tfidfTokens,
  tfidfVector,
} from "../lib/eval/lexical.ts";
import {
  lexicalBaseline,
  lexicalEmbeddings,
  SUITE_LEXICAL_BASELINE,
  withLexicalBaseline,
} from "../lib/eval/lexical_baseline.ts";
import { pairDistances, readPairSet, readQueryCandidateSet } from "../lib/eval/inputs.ts";
import { evaluateRenderedPairs, evaluateTopK } from "../lib/eval/flows.ts";
import { datasetLayout } from "../lib/data/layout.ts";
import { importPairs } from "../lib/data/import_pairs.ts";
import { chooseThreshold } from "../lib/eval/pair_metrics.ts";

interface Reference {
  train: string[];
  left: string[];
  right: string[];
  vocabulary: Record<string, number>;
  idf: string[];
  train_rows: Record<string, string>[];
  cosine: string[];
  char_wb: { vocabulary: Record<string, number>; idf: string[]; cosine: string[] };
}

const reference: Reference = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/eval/tfidf_reference.json", import.meta.url)),
);

describe("TF-IDF as scikit-learn's TfidfVectorizer()", () => {
  it("has scikit-learn's vocabulary and IDF", () => {
    const model = fitTfidf(reference.train);
    expect(Object.fromEntries(model.vocabulary)).toEqual(reference.vocabulary);
    expect(model.documents).toBe(reference.train.length);
    reference.idf.forEach((v, j) => expect(Math.abs(model.idf[j] - Number(v))).toBeLessThan(1e-12));
  });

  it("gives scikit-learn's normalised rows and pair cosines to 1e-9", () => {
    const model = fitTfidf(reference.train);
    reference.train.forEach((text, r) => {
      const vector = tfidfVector(model, text);
      const expected = reference.train_rows[r];
      expect([...vector.indices]).toEqual(Object.keys(expected).map(Number).sort((a, b) => a - b));
      vector.indices.forEach((j, i) => expect(Math.abs(vector.values[i] - Number(expected[j]))).toBeLessThan(1e-9));
    });
    const cosine = tfidfCosine(model, reference.left, reference.right);
    reference.cosine.forEach((v, i) => expect(Math.abs(cosine[i] - Number(v))).toBeLessThan(1e-9));
    expect(cosine[4]).toBe(0); // no training term on the left
  });

  it('has scikit-learn\'s char_wb (3, 5) vocabulary, IDF and pair cosines (analyzer="char_wb")', () => {
    const model = fitTfidf(reference.train, { analyzer: "char_wb", ngramRange: [3, 5] });
    expect(Object.fromEntries(model.vocabulary)).toEqual(reference.char_wb.vocabulary);
    reference.char_wb.idf.forEach((v, j) => expect(Math.abs(model.idf[j] - Number(v))).toBeLessThan(1e-12));
    const cosine = tfidfCosine(model, reference.left, reference.right);
    reference.char_wb.cosine.forEach((v, i) => expect(Math.abs(cosine[i] - Number(v))).toBeLessThan(1e-9));
    expect(charWbNgrams("ab Xyz", [3, 4])).toEqual([" ab", "ab ", " ab ", " xy", "xyz", "yz ", " xyz", "xyz "]);
    expect(() => fitTfidf(["a"], { analyzer: "bigram" as "word" })).toThrow(/analyzer must be "word" or "char_wb"/);
  });

  it("tokenises like (?u)\\b\\w\\w+\\b on lower-cased text", () => {
    expect(tfidfTokens('HDD 3.5" a_b x ЁЛКА-ёлка café 4TB')).toEqual(["hdd", "a_b", "ёлка", "ёлка", "café", "4tb"]);
    expect(tfidfTokens("ABC abc", false)).toEqual(["ABC", "abc"]);
    expect(() => fitTfidf(["a b", "!"])).toThrow(/hold no term/);
  });

  it("scores pairs by product id, usable with chooseThreshold", () => {
    const model = fitTfidf(reference.train);
    const texts = new Map([["a", "Samsung Galaxy A52"], ["b", "galaxy a52 samsung"], ["c", "Seagate IronWolf"]]);
    const scores = lexicalPairScores(model, texts, ["a", "a"], ["b", "c"]);
    expect(scores[0]).toBeCloseTo(1, 12);
    expect(scores[1]).toBe(0);
    expect(chooseThreshold([1, 0], scores, { kind: "f1" }).validation.f1).toBe(1);
    expect(() => lexicalPairScores(model, texts, ["a"], ["z"], "val pairs")).toThrow(
      /val pairs: right product z of pair 0 has no text/,
    );
  });
});

/** A tiny imported dataset of titles with train, val, test and test_unseen splits; returns its root. */
async function importLexicalFixture(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "lexical-" });
  const rows = [
    ["train", "1", "Samsung Galaxy A52 black", "2", "Galaxy A52 Samsung", 1],
    ["train", "1", "Samsung Galaxy A52 black", "3", "Xiaomi Redmi Note", 0],
    ["val", "4", "Samsung Galaxy A52", "5", "Galaxy A52 Samsung black", 1],
    ["val", "4", "Samsung Galaxy A52", "6", "Bosch kettle Redmi", 0],
    ["test", "7", "Redmi Note Xiaomi", "8", "Xiaomi Redmi Note Pro", 1],
    ["test", "7", "Redmi Note Xiaomi", "9", "Seagate IronWolf", 0],
    ["test_unseen", "10", "Dyson vacuum", "11", "Dyson V15 vacuum", 1],
  ] as const;
  const path = join(root, "pairs.jsonl");
  await Deno.writeTextFile(
    path,
    rows.map(([split, a, ta, b, tb, label]) =>
      JSON.stringify({ split, id_left: a, title_left: ta, id_right: b, title_right: tb, label })
    ).join("\n"),
  );
  await importPairs({
    dataset: "lex",
    root,
    source: { kind: "wide", files: [{ path }] },
    fields: { id: "id", name: "title" },
    columns: { split: "split" },
  });
  return root;
}

describe("lexicalBaseline on an imported dataset", () => {
  it("fits on training products only, picks the threshold on val and applies it to each test split", async () => {
    const root = await importLexicalFixture();
    const result = lexicalBaseline({ dataset: "lex", root, testSplits: ["test", "test_unseen"] });
    // The IDF comes from the 3 training products only.
    expect(result.model.documents).toBe(3);
    expect([...result.model.vocabulary.keys()]).not.toContain("bosch");
    expect(result.model.vocabulary.has("xiaomi")).toBe(true);
    expect(result.chosen.validation.pairs).toBe(2);
    expect(result.tests.map((t) => [t.split, t.pairs, t.positives])).toEqual([["test", 2, 1], ["test_unseen", 1, 1]]);
    const test = result.tests[0].report;
    expect(test.threshold).toEqual(result.chosen.threshold);
    expect(test.confusion).toEqual({ tp: 1, fp: 0, tn: 1, fn: 0 });
    // "dyson"/"vacuum" are not training terms: cosine 0, below any positive threshold.
    expect(result.tests[1].report.confusion.fn).toBe(1);
  });
});

describe("the lexical baseline as a model of the comparisons", () => {
  it("scores pairs as 1 - the char n-gram TF-IDF cosine fitted on training products, in every flow", async () => {
    const root = await importLexicalFixture();
    const model = lexicalEmbeddings("lex", { root });
    expect(model.name).toBe(SUITE_LEXICAL_BASELINE.name);
    expect(model.table.info).toMatchObject({ tag: "lexical_tfidf", kind: "lexical", distance: "cosine" });
    expect(model.table.info.source).toMatch(
      /character 3-5-grams\) of name, fitted on the 3 products of the train split/,
    );
    // The same numbers as the TF-IDF fitted by hand on the three training titles.
    const tfidf = fitTfidf(["Samsung Galaxy A52 black", "Galaxy A52 Samsung", "Xiaomi Redmi Note"], {
      analyzer: "char_wb",
      ngramRange: [3, 5],
    });
    const cosine = tfidfCosine(tfidf, ["Redmi Note Xiaomi", "Redmi Note Xiaomi"], [
      "Xiaomi Redmi Note Pro",
      "Seagate IronWolf",
    ]);
    const distances = pairDistances(model, ["7", "7"], ["8", "9"], "test pairs");
    cosine.forEach((c, i) => expect(distances[i]).toBeCloseTo(1 - c, 12));
    expect(distances[0]).toBeLessThan(distances[1]);
    expect(() => pairDistances(model, ["7"], ["99"], "test pairs")).toThrow(
      "test pairs: right SKU 99 of pair 0 is not in the products table of lex",
    );
    // Rendered pairs: the threshold chosen on val, applied to test.
    const splits = datasetLayout("lex", root).splitsDir;
    const rendered = evaluateRenderedPairs(model, readPairSet(splits, "val"), readPairSet(splits, "test"), {
      kind: "f1",
    });
    expect(rendered.test.confusion).toEqual({ tp: 1, fp: 0, tn: 1, fn: 0 });
    // Top-k: each query's candidates scored; no vector search.
    const topK = await evaluateTopK(model, readQueryCandidateSet(splits, "test"), { k: 1 });
    expect(topK.search).toBe("exact (pairs scored)");
    expect(topK.neighbours).toEqual([{ query: "7", skus: ["8"], labels: [1], distances: [distances[0]] }]);
    expect(topK.summary["recall@1"]).toBe(1);
  });

  it("joins the loaded models last, or is listed as missing with the reason", async () => {
    const root = await importLexicalFixture();
    const loaded = withLexicalBaseline({ models: [], missing: [] }, "lex", root);
    expect(loaded.models.map((m) => m.name)).toEqual(["TF-IDF cosine"]);
    const none = withLexicalBaseline({ models: [], missing: [] }, "nowhere", root);
    expect(none.models).toEqual([]);
    expect(none.missing[0]).toMatchObject({ name: "TF-IDF cosine", tag: "lexical_tfidf" });
  });
});
