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
import { readPairSet } from "./inputs.ts";
import { fitTfidf, lexicalPairScores, type TfidfModel, type TfidfOptions } from "./lexical.ts";
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

/** Fits on the training split, chooses the threshold on validation, reports each test split. */
export function lexicalBaseline(options: LexicalBaselineOptions): LexicalBaselineResult {
  const root = options.root ?? dataDir();
  const fields = options.fields ?? ["name"];
  const splitsDir = datasetLayout(options.dataset, root).splitsDir;
  const texts = productTexts(options.dataset, fields, root);
  const train = readPairSet(splitsDir, options.trainSplit ?? "train");
  const trainSkus = [...new Set([...train.skuLeft, ...train.skuRight])].sort();
  const model = fitTfidf(
    trainSkus.map((sku) => {
      const text = texts.get(sku);
      if (text === undefined) throw new Error(`training product ${sku} is not in the products table`);
      return text;
    }),
    options.tfidf,
  );
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
