/**
 * The lexical baseline on a dataset of the suite's layout: TF-IDF cosine (lexical.ts) between the two
 * products of every rendered pair, the IDF fitted on the texts of the TRAINING split's products only,
 * the threshold chosen on the validation split (pair_metrics.ts' `chooseThreshold`) and applied unchanged
 * to each test split.
 *
 * @module
 */
import { readProcessed } from "../data/make_dataset.ts";
import { datasetLayout } from "../data/layout.ts";
import { type LoadedEmbeddings, type NamedEmbeddings, readPairSet } from "./inputs.ts";
import {
  fitTfidf,
  lexicalPairScores,
  sparseDot,
  type SparseVector,
  type TfidfModel,
  type TfidfOptions,
  tfidfVector,
} from "./lexical.ts";
import { applyThreshold, chooseThreshold, type ChosenThreshold, type PairReport } from "./pair_metrics.ts";
import { dataDir } from "../paths.ts";
import { queryPairRanking, type RankingSummary } from "./ranking.ts";

/** How the threshold is chosen on validation (`chooseThreshold`'s rule: `{ kind: "f1" }` or `{ kind: "fpr", target }`). */
export type LexicalThresholdRule = Parameters<typeof chooseThreshold>[2];

/** Options of `lexicalBaseline`. */
export interface LexicalBaselineOptions {
  dataset: string;
  root?: string;
  /** Products-table columns joined (with " ") into each product's text; default ["name"]. */
  fields?: string[];
  trainSplit?: string;
  validationSplit?: string;
  /** Default ["test"]. */
  testSplits?: string[];
  /** Default `{ kind: "f1" }` (F1-optimal on validation). */
  rule?: LexicalThresholdRule;
  /** The vectorizer: word tokens (default) or `{ analyzer: "char_wb", ngramRange: [3, 5] }`. */
  tfidf?: TfidfOptions;
}

/** The baseline's result: the threshold chosen on validation and the report of each test split. */
export interface LexicalBaselineResult {
  model: TfidfModel;
  fields: string[];
  chosen: ChosenThreshold;
  /** Each test split's pair report at the validation threshold, and its pairs ranked per query (`query_sku`). */
  tests: { split: string; pairs: number; positives: number; report: PairReport; ranking: RankingSummary }[];
}

/** Each product's text: the chosen columns of the products table, non-empty ones joined with " ". */
export function productTexts(
  dataset: string,
  fields: readonly string[],
  root: string = dataDir(),
): Map<string, string> {
  const frame = readProcessed(dataset, root);
  const missing = ["sku", ...fields].filter((c) => !frame.columns.includes(c));
  if (missing.length > 0) {
    throw new Error(
      `${datasetLayout(dataset, root).processedParquet}: no column(s) ${missing.join(", ")} ` +
        `(it has ${frame.columns.join(", ")})`,
    );
  }
  const skus = frame.getColumn("sku").toArray().map(String);
  const columns = fields.map((f) => frame.getColumn(f).toArray() as unknown[]);
  return new Map(skus.map((sku, i) => [
    sku,
    columns.map((c) => c[i]).filter((v) => v !== null && v !== undefined && String(v).trim() !== "").join(" "),
  ]));
}

/**
 * The TF-IDF model of a dataset's texts, fitted on the products of its training split's pairs only, with
 * every product's text and the number of training products. One definition for the baseline and the model.
 */
export function fitOnTrainingSplit(
  dataset: string,
  options: { root: string; fields: readonly string[]; trainSplit: string; tfidf?: TfidfOptions },
): { model: TfidfModel; texts: Map<string, string>; trainingProducts: number } {
  const texts = productTexts(dataset, options.fields, options.root);
  const train = readPairSet(datasetLayout(dataset, options.root).splitsDir, options.trainSplit);
  const trainSkus = [...new Set([...train.skuLeft, ...train.skuRight])].sort();
  const model = fitTfidf(
    trainSkus.map((sku) => {
      const text = texts.get(sku);
      if (text === undefined) throw new Error(`training product ${sku} is not in the products table of ${dataset}`);
      return text;
    }),
    options.tfidf,
  );
  return { model, texts, trainingProducts: trainSkus.length };
}

/** Fits on the training split, chooses the threshold on validation, reports each test split. */
export function lexicalBaseline(options: LexicalBaselineOptions): LexicalBaselineResult {
  const root = options.root ?? dataDir();
  const fields = options.fields ?? ["name"];
  const splitsDir = datasetLayout(options.dataset, root).splitsDir;
  const { model, texts } = fitOnTrainingSplit(options.dataset, {
    root,
    fields,
    trainSplit: options.trainSplit ?? "train",
    tfidf: options.tfidf,
  });
  const score = (split: string) => {
    const set = readPairSet(splitsDir, split);
    return { set, scores: lexicalPairScores(model, texts, set.skuLeft, set.skuRight, `${split} pairs`) };
  };
  const validation = score(options.validationSplit ?? "val");
  const chosen = chooseThreshold(validation.set.labels, validation.scores, options.rule ?? { kind: "f1" });
  const tests = (options.testSplits ?? ["test"]).map((split) => {
    const { set, scores } = score(split);
    return {
      split,
      pairs: set.labels.length,
      positives: set.labels.reduce((n, l) => n + l, 0),
      report: applyThreshold(chosen, set.labels, scores),
      ranking: queryPairRanking({
        queries: set.querySkus,
        left: set.skuLeft,
        right: set.skuRight,
        scores,
        labels: set.labels,
      }).summary,
    };
  });
  return { model, fields, chosen, tests };
}

/**
 * The suite's lexical baseline, one definition for every comparison of the testing notebooks: the cosine
 * of character n-gram (3-5, within words) TF-IDF vectors of the product names, the IDF fitted on the
 * training split's products only, its threshold chosen on validation by the same rule as the models'.
 */
export const SUITE_LEXICAL_BASELINE = {
  name: "TF-IDF cosine",
  tag: "lexical_tfidf",
  fields: ["name"],
  tfidf: { analyzer: "char_wb", ngramRange: [3, 5] },
} as const satisfies { name: string; tag: string; fields: readonly string[]; tfidf: TfidfOptions };

/** Options of `lexicalEmbeddings`. */
export interface LexicalModelOptions {
  root?: string;
  /** Default "train". */
  trainSplit?: string;
  /** Default SUITE_LEXICAL_BASELINE's. */
  name?: string;
  tag?: string;
  fields?: readonly string[];
  tfidf?: TfidfOptions;
}

/**
 * The lexical baseline as a model of the comparisons (a `NamedEmbeddings` that scores pairs): TF-IDF
 * fitted on the texts of the training split's products, distance 1 - cosine (1 for a text with no known
 * term). Each product's vector is made once.
 */
export function lexicalEmbeddings(dataset: string, options: LexicalModelOptions = {}): NamedEmbeddings {
  const root = options.root ?? dataDir();
  const spec = SUITE_LEXICAL_BASELINE;
  const fields = [...(options.fields ?? spec.fields)];
  const tfidf: TfidfOptions = options.tfidf ??
    { analyzer: spec.tfidf.analyzer, ngramRange: [...spec.tfidf.ngramRange] };
  const trainSplit = options.trainSplit ?? "train";
  const { model, texts, trainingProducts } = fitOnTrainingSplit(dataset, { root, fields, trainSplit, tfidf });
  const name = options.name ?? spec.name;
  const vectors = new Map<string, SparseVector>();
  const vectorOf = (sku: string, i: number, side: string, where: string) => {
    let vector = vectors.get(sku);
    if (!vector) {
      const text = texts.get(sku);
      if (text === undefined) {
        throw new Error(`${where}: ${side} SKU ${sku} of pair ${i} is not in the products table of ${dataset}`);
      }
      vectors.set(sku, vector = tfidfVector(model, text));
    }
    return vector;
  };
  const analyzer = model.analyzer === "char_wb"
    ? `character ${model.ngramRange[0]}-${model.ngramRange[1]}-grams`
    : "word";
  return {
    name,
    table: {
      skus: [...texts.keys()],
      vectors: new Float32Array(0),
      dim: 0,
      info: {
        tag: options.tag ?? spec.tag,
        kind: "lexical",
        source: `TF-IDF (${analyzer}) of ${fields.join(" + ")}, fitted on the ${trainingProducts} products of ` +
          `the ${trainSplit} split (${model.vocabulary.size} terms)`,
        distance: "cosine",
      },
    },
    pairDistances: (left, right, where) => {
      const distances = new Float64Array(left.length);
      for (let i = 0; i < left.length; i++) {
        distances[i] = 1 - sparseDot(vectorOf(left[i], i, "left", where), vectorOf(right[i], i, "right", where));
      }
      return distances;
    },
  };
}

/**
 * Adds the suite's lexical baseline to loaded models (last); when it cannot be made (no training split
 * yet, say), it is listed among the missing models with the reason, as a missing embedding table is.
 */
export function withLexicalBaseline(loaded: LoadedEmbeddings, dataset: string, root?: string): LoadedEmbeddings {
  try {
    return { models: [...loaded.models, lexicalEmbeddings(dataset, { root })], missing: loaded.missing };
  } catch (error) {
    const spec = SUITE_LEXICAL_BASELINE;
    return {
      models: loaded.models,
      missing: [...loaded.missing, { name: spec.name, tag: spec.tag, reason: (error as Error).message }],
    };
  }
}
