/**
 * The pair classifier's interface: a model that reads the evidence of both records of a pair (a feature
 * matrix, lib/match/pair_evidence.ts and the Siamese features) and gives the probability that they are the
 * same product. Every implementation fits on the training pairs (validation pairs for early stopping),
 * predicts probabilities, explains a prediction by per-feature contributions, and saves to a folder that
 * `loadPairClassifier` reads back. The threshold is chosen on validation by the suite's rule
 * (pair_metrics.ts' `chooseThreshold`), as for the bi-encoder.
 *
 * @module
 */
import { join } from "node:path";
import { writeJsonAtomic } from "../fs.ts";
import { chooseThreshold, type ChosenThreshold } from "../eval/pair_metrics.ts";
import type { FeatureMatrix } from "./pair_evidence.ts";

/** A feature matrix with a 0/1 label per row. */
export interface LabelledMatrix extends FeatureMatrix {
  labels: ArrayLike<number>;
}

/** One boosting round or epoch of a fit: the losses it reports. */
export interface FitRound {
  round: number;
  /** Validation log loss (binary cross-entropy), when validation pairs were given. */
  validation?: number;
}

/** What a fit did. */
export interface FitReport {
  history: FitRound[];
  /** The round (or epoch) kept: the best on validation, else the last. */
  bestRound: number;
  seconds: number;
}

/** Per-feature contributions to each row's score (log-odds), and the bias; SHAP values for trees. */
export interface Contributions {
  names: string[];
  /** Row-major [rows, names.length]. */
  values: Float32Array;
  /** Per row. */
  bias: Float32Array;
  rows: number;
}

/** A fitted pair classifier. */
export interface PairClassifier {
  /** "xgboost" or "bce-head". */
  readonly kind: string;
  /** The columns it reads, in order (a matrix with other names is refused). */
  readonly featureNames: readonly string[];
  readonly report: FitReport;
  /** Probability of "same product" per row. */
  predictProbabilities(x: FeatureMatrix): Promise<Float64Array>;
  /** Why: each feature's contribution to each row's log-odds. */
  contributions(x: FeatureMatrix): Promise<Contributions>;
  /** Writes the classifier into `dir` (atomically, file by file; `classifier.json` last); returns the files. */
  save(dir: string): Promise<string[]>;
  dispose(): void;
}

/** `classifier.json`: what `loadPairClassifier` reads first. */
export interface ClassifierManifest {
  kind: string;
  featureNames: string[];
  report: FitReport;
  /** Implementation settings (hyper-parameters, file names). */
  settings: Record<string, unknown>;
  savedAt: string;
}

/** Throws naming the first difference when `x` does not have the classifier's columns. */
export function checkColumns(expected: readonly string[], x: FeatureMatrix, where: string): void {
  const same = expected.length === x.names.length && expected.every((name, i) => name === x.names[i]);
  if (!same) {
    const i = expected.findIndex((name, j) => name !== x.names[j]);
    throw new Error(
      `${where}: the matrix has ${x.names.length} columns (${JSON.stringify(x.names[i] ?? null)} at ${i}), ` +
        `the classifier reads ${expected.length} (${JSON.stringify(expected[i] ?? null)} at ${i})`,
    );
  }
  if (x.values.length !== x.rows * x.names.length) {
    throw new Error(`${where}: ${x.values.length} values are not ${x.rows} rows x ${x.names.length} columns`);
  }
}

/** Checks 0/1 labels, one per row; throws naming the first bad one. */
export function checkLabels(m: LabelledMatrix, where: string): void {
  if (m.labels.length !== m.rows) throw new Error(`${where}: ${m.labels.length} labels for ${m.rows} rows`);
  for (let i = 0; i < m.labels.length; i++) {
    if (m.labels[i] !== 0 && m.labels[i] !== 1) {
      throw new Error(`${where}: label ${m.labels[i]} at row ${i}; expected 1 (same product) or 0`);
    }
  }
}

/** Writes `classifier.json` (last, so a folder without it is an unfinished save). */
export async function writeManifest(dir: string, manifest: Omit<ClassifierManifest, "savedAt">): Promise<string> {
  const path = join(dir, "classifier.json");
  await writeJsonAtomic(path, { ...manifest, savedAt: new Date().toISOString() });
  return path;
}

/** Reads `classifier.json` of a saved classifier; throws naming the folder when it is not one. */
export async function readManifest(dir: string): Promise<ClassifierManifest> {
  const path = join(dir, "classifier.json");
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new Error(`${path}: not a saved pair classifier (${(error as Error).message.split("\n")[0]})`);
  }
  return JSON.parse(text) as ClassifierManifest;
}

/** The threshold on the classifier's probabilities, chosen on validation pairs by the suite's rule. */
export async function chooseClassifierThreshold(
  classifier: PairClassifier,
  validation: LabelledMatrix,
  rule: Parameters<typeof chooseThreshold>[2],
): Promise<ChosenThreshold> {
  checkLabels(validation, "validation pairs");
  const probabilities = await classifier.predictProbabilities(validation);
  return chooseThreshold(Int32Array.from(validation.labels), probabilities, rule);
}

/** Mean |contribution| per feature (the global importance of SHAP values), largest first. */
export function meanAbsoluteContributions(c: Contributions): { feature: string; importance: number }[] {
  const sums = new Float64Array(c.names.length);
  for (let r = 0; r < c.rows; r++) {
    for (let j = 0; j < c.names.length; j++) sums[j] += Math.abs(c.values[r * c.names.length + j]);
  }
  return c.names.map((feature, j) => ({ feature, importance: c.rows ? sums[j] / c.rows : 0 }))
    .sort((a, b) => b.importance - a.importance);
}
