/**
 * The pair classifier with Siamese features, fitted without leaking the Siamese model's training pairs.
 *
 * The Siamese model was trained on the training pairs, so on those pairs its distances are in-sample: a
 * classifier fitted there learns to trust them more than they deserve on new pairs (measured: on WDC
 * Products the classifier with them scored below the one without). Stacking avoids that:
 * - the base, a boosted classifier on the pair evidence alone, is fitted on the training pairs (early
 *   stopping on validation), as the evidence-only classifier is;
 * - the top model reads the base's log-odds and the Siamese features; it is fitted on the validation pairs,
 *   which the Siamese model never trained on, by K-fold cross-fitting: each fold's model is fitted on the
 *   other folds, so every validation pair gets an out-of-fold score, and the threshold is chosen on those;
 * - a new pair's score averages the fold models' log-odds.
 * Contributions stay per original feature: the top model's SHAP values for the Siamese columns, and its
 * contribution of the base's log-odds shared among the evidence features in proportion to the base's own
 * SHAP values (they sum to the base's log-odds less its bias), so each row's contributions and bias still
 * add up to its log-odds.
 *
 * @module
 */
import { join } from "node:path";
import { loadBceHead } from "./bce_head.ts";
import { SeededRandom } from "../data/random.ts";
import {
  type BoostedClassifierOptions,
  type BoostedPairClassifier,
  fitBoostedClassifier,
  loadBoostedClassifier,
} from "./boosted_classifier.ts";
import {
  checkColumns,
  checkLabels,
  type Contributions,
  type FitReport,
  type LabelledMatrix,
  type PairClassifier,
  readManifest,
  writeManifest,
} from "./classifier.ts";
import type { FeatureMatrix } from "./pair_evidence.ts";

/** The top model's settings: cross-fitted on the validation pairs, a fixed number of rounds (nothing chosen on them). */
export interface StackOptions {
  /** Folds of the validation pairs (default 5; fewer when a label has fewer pairs, at least 2). */
  folds?: number;
  /** Boosting rounds of each fold's model (default 150). */
  rounds?: number;
  /** XGBoost parameters over the boosted defaults and `STACK_PARAMS`. */
  params?: Record<string, string | number>;
  /** Seed of the fold assignment (default 0). */
  seed?: number;
}

/** Options of `fitStackedClassifier`. */
export interface StackedClassifierOptions {
  /** The evidence columns, which the base reads; every other column goes to the top model. */
  evidenceNames: readonly string[];
  /** The base classifier's settings (as the evidence-only classifier's). */
  base?: BoostedClassifierOptions;
  /**
   * The evidence-only classifier, already fitted on the training pairs' evidence columns with `base`'s
   * settings: the stack uses a copy of it instead of fitting the same model again (the caller keeps its own).
   */
  fittedBase?: BoostedPairClassifier;
  stack?: StackOptions;
}

/** Shallow trees with a few rows per leaf: the top model reads a handful of columns on a few thousand pairs. */
export const STACK_PARAMS: Record<string, string | number> = { max_depth: 3, eta: 0.05, min_child_weight: 2 };

/** The top model's column holding the base's log-odds. */
export const EVIDENCE_SCORE = "evidence_log_odds";

const BASE_DIR = "base";
const foldDir = (k: number) => `fold-${k + 1}`;

/** A fitted stacked classifier and the out-of-fold scores of the validation pairs it was fitted on. */
export interface StackedFit {
  classifier: PairClassifier;
  /** Probability of each validation pair from the fold model that did not see it: choose thresholds on these. */
  validationScores: Float64Array;
}

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

/** Columns `names` of `x`, in that order. */
function columns(x: FeatureMatrix, names: readonly string[], where: string): FeatureMatrix {
  const index = names.map((name) => {
    const j = x.names.indexOf(name);
    if (j < 0) throw new Error(`${where}: the matrix has no column ${JSON.stringify(name)}`);
    return j;
  });
  const values = new Float32Array(x.rows * index.length);
  for (let r = 0; r < x.rows; r++) {
    index.forEach((j, c) => (values[r * index.length + c] = x.values[r * x.names.length + j]));
  }
  return { names: [...names], values, rows: x.rows };
}

/** Fold of each row: labels dealt round-robin after a seeded shuffle, so each fold has both labels. */
export function stratifiedFolds(labels: ArrayLike<number>, folds: number, seed: number): Int32Array {
  const out = new Int32Array(labels.length);
  const random = new SeededRandom(seed);
  for (const label of [0, 1]) {
    const rows = random.shuffle(Array.from(labels, (l, i) => (l === label ? i : -1)).filter((i) => i >= 0));
    rows.forEach((row, i) => (out[row] = i % folds));
  }
  return out;
}

class StackedClassifier implements PairClassifier {
  readonly kind = "stacked";
  constructor(
    private base: BoostedPairClassifier | null,
    private folds: BoostedPairClassifier[],
    readonly featureNames: readonly string[],
    private readonly evidenceNames: readonly string[],
    private readonly stackNames: readonly string[],
    readonly report: FitReport,
    private readonly settings: Record<string, unknown>,
  ) {}

  private live(): { base: BoostedPairClassifier; folds: BoostedPairClassifier[] } {
    if (!this.base) throw new Error("stacked classifier: used after dispose()");
    return { base: this.base, folds: this.folds };
  }

  /** The top model's input: the base's log-odds, then the Siamese columns. */
  private async stackInput(x: FeatureMatrix, where: string): Promise<FeatureMatrix> {
    checkColumns(this.featureNames, x, where);
    const margins = await this.live().base.predictMargins(columns(x, this.evidenceNames, where));
    return stackMatrix(margins, columns(x, this.stackNames.slice(1), where));
  }

  async predictMargins(x: FeatureMatrix): Promise<Float64Array> {
    const input = await this.stackInput(x, "predictProbabilities");
    const { folds } = this.live();
    const sum = new Float64Array(x.rows);
    for (const fold of folds) (await fold.predictMargins(input)).forEach((m, i) => (sum[i] += m / folds.length));
    return sum;
  }

  async predictProbabilities(x: FeatureMatrix): Promise<Float64Array> {
    return (await this.predictMargins(x)).map(sigmoid);
  }

  async contributions(x: FeatureMatrix): Promise<Contributions> {
    const input = await this.stackInput(x, "contributions");
    const { base, folds } = this.live();
    const stack = new Float64Array(x.rows * this.stackNames.length);
    const bias = new Float32Array(x.rows);
    for (const fold of folds) {
      const c = await fold.contributions(input);
      c.values.forEach((v, i) => (stack[i] += v / folds.length));
      c.bias.forEach((v, i) => (bias[i] += v / folds.length));
    }
    const evidence = await base.contributions(columns(x, this.evidenceNames, "contributions"));
    const width = this.featureNames.length, e = this.evidenceNames.length, s = this.stackNames.length;
    const evidenceAt = this.evidenceNames.map((name) => this.featureNames.indexOf(name));
    const siameseAt = this.stackNames.slice(1).map((name) => this.featureNames.indexOf(name));
    const values = new Float32Array(x.rows * width);
    for (let r = 0; r < x.rows; r++) {
      const share = stack[r * s];
      let total = 0;
      for (let j = 0; j < e; j++) total += evidence.values[r * e + j];
      for (let j = 0; j < e; j++) {
        values[r * width + evidenceAt[j]] = Math.abs(total) > 1e-9
          ? share * evidence.values[r * e + j] / total
          : share / e;
      }
      siameseAt.forEach((at, c) => (values[r * width + at] = stack[r * s + 1 + c]));
    }
    return { names: [...this.featureNames], values, bias, rows: x.rows };
  }

  async save(dir: string): Promise<string[]> {
    const { base, folds } = this.live();
    const files = await base.save(join(dir, BASE_DIR));
    for (const [k, fold] of folds.entries()) files.push(...await fold.save(join(dir, foldDir(k))));
    files.push(
      await writeManifest(dir, {
        kind: this.kind,
        featureNames: [...this.featureNames],
        report: this.report,
        settings: {
          ...this.settings,
          evidenceNames: this.evidenceNames,
          stackNames: this.stackNames,
          folds: folds.length,
        },
      }),
    );
    return files;
  }

  dispose(): void {
    this.base?.dispose();
    this.folds.forEach((f) => f.dispose());
    this.base = null;
    this.folds = [];
  }
}

function stackMatrix(margins: Float64Array, siamese: FeatureMatrix): FeatureMatrix {
  const width = siamese.names.length + 1;
  const values = new Float32Array(siamese.rows * width);
  for (let r = 0; r < siamese.rows; r++) {
    values[r * width] = margins[r];
    values.set(siamese.values.subarray(r * (width - 1), (r + 1) * (width - 1)), r * width + 1);
  }
  return { names: [EVIDENCE_SCORE, ...siamese.names], values, rows: siamese.rows };
}

function rowsOf(m: LabelledMatrix, rows: number[]): LabelledMatrix {
  const width = m.names.length;
  const values = new Float32Array(rows.length * width);
  rows.forEach((row, i) => values.set(m.values.subarray(row * width, (row + 1) * width), i * width));
  return { names: m.names, values, rows: rows.length, labels: rows.map((row) => m.labels[row]) };
}

/**
 * Fits the stacked classifier: the base on `train`'s evidence columns, the top model cross-fitted on
 * `validation` (both matrices with the evidence and the Siamese columns). Returns it with the validation
 * pairs' out-of-fold scores. Throws naming the problem when a label has fewer than two validation pairs.
 */
export async function fitStackedClassifier(
  train: LabelledMatrix,
  validation: LabelledMatrix,
  options: StackedClassifierOptions,
): Promise<StackedFit> {
  checkLabels(train, "training pairs");
  checkLabels(validation, "validation pairs");
  checkColumns(train.names, validation, "validation pairs");
  const started = performance.now();
  const evidenceNames = [...options.evidenceNames];
  const siameseNames = train.names.filter((name) => !evidenceNames.includes(name));
  if (siameseNames.length === 0) throw new Error("fitStackedClassifier: no columns besides the evidence to stack");
  const stack = options.stack ?? {};
  const wanted = stack.folds ?? 5, rounds = stack.rounds ?? 150;
  if (!Number.isInteger(wanted) || wanted < 2) throw new Error(`stack.folds = ${wanted}; expected an integer >= 2`);
  const positives = Array.from(validation.labels).filter((l) => l === 1).length;
  const fewest = Math.min(positives, validation.rows - positives);
  if (fewest < 2) {
    throw new Error(
      `stacking needs at least 2 validation pairs of each label to cross-fit; the validation pairs have ` +
        `${positives} positive and ${validation.rows - positives} negative`,
    );
  }
  const k = Math.min(wanted, fewest);
  if (options.fittedBase) checkColumns(options.fittedBase.featureNames, columns(train, evidenceNames, "base"), "base");
  const base = options.fittedBase ? options.fittedBase.copy() : await fitBoostedClassifier(
    { ...columns(train, evidenceNames, "training pairs"), labels: train.labels },
    { ...columns(validation, evidenceNames, "validation pairs"), labels: validation.labels },
    options.base,
  );
  const folds: BoostedPairClassifier[] = [];
  try {
    const margins = await base.predictMargins(columns(validation, evidenceNames, "validation pairs"));
    const input: LabelledMatrix = {
      ...stackMatrix(margins, columns(validation, siameseNames, "validation pairs")),
      labels: validation.labels,
    };
    const foldOf = stratifiedFolds(validation.labels, k, stack.seed ?? 0);
    const outOfFold = new Float64Array(validation.rows);
    const lossSums = new Float64Array(rounds);
    const params = { ...STACK_PARAMS, ...stack.params };
    for (let f = 0; f < k; f++) {
      const inFold = [...foldOf.keys()].filter((i) => foldOf[i] === f);
      const held = rowsOf(input, inFold);
      const model = await fitBoostedClassifier(rowsOf(input, [...foldOf.keys()].filter((i) => foldOf[i] !== f)), held, {
        rounds,
        params,
        keep: "last",
      });
      folds.push(model);
      model.report.history.forEach((h, i) => (lossSums[i] += (h.validation ?? 0) * held.rows));
      (await model.predictProbabilities(held)).forEach((p, i) => (outOfFold[inFold[i]] = p));
    }
    const report: FitReport = {
      history: Array.from(lossSums, (sum, i) => ({ round: i + 1, validation: sum / validation.rows })),
      bestRound: rounds,
      seconds: (performance.now() - started) / 1000,
    };
    const classifier = new StackedClassifier(
      base,
      folds,
      [...train.names],
      evidenceNames,
      [EVIDENCE_SCORE, ...siameseNames],
      report,
      { rounds, params, seed: stack.seed ?? 0, baseRounds: base.report.bestRound },
    );
    return { classifier, validationScores: outOfFold };
  } catch (error) {
    base.dispose();
    folds.forEach((f) => f.dispose());
    throw error;
  }
}

/** Reads a stacked classifier saved by `save`. */
export async function loadStackedClassifier(dir: string): Promise<PairClassifier> {
  const manifest = await readManifest(dir);
  if (manifest.kind !== "stacked") {
    throw new Error(`${join(dir, "classifier.json")}: a ${manifest.kind} classifier, not stacked`);
  }
  const { evidenceNames, stackNames, folds } = manifest.settings as {
    evidenceNames: string[];
    stackNames: string[];
    folds: number;
  };
  const base = await loadBoostedClassifier(join(dir, BASE_DIR));
  const models: BoostedPairClassifier[] = [];
  try {
    for (let k = 0; k < folds; k++) models.push(await loadBoostedClassifier(join(dir, foldDir(k))));
  } catch (error) {
    base.dispose();
    models.forEach((m) => m.dispose());
    throw error;
  }
  return new StackedClassifier(
    base,
    models,
    manifest.featureNames,
    evidenceNames,
    stackNames,
    manifest.report,
    manifest.settings,
  );
}

/** Reads any saved pair classifier (its `classifier.json` says which kind). */
export async function loadPairClassifier(dir: string): Promise<PairClassifier> {
  const { kind } = await readManifest(dir);
  if (kind === "xgboost") return loadBoostedClassifier(dir);
  if (kind === "stacked") return loadStackedClassifier(dir);
  if (kind === "bce-head") return loadBceHead(dir);
  throw new Error(
    `${join(dir, "classifier.json")}: unknown classifier kind ${
      JSON.stringify(kind)
    }; expected xgboost, stacked or bce-head`,
  );
}
