/**
 * The gradient-boosted pair classifier: XGBoost trees (lib/match/xgboost.ts) over a pair feature matrix,
 * binary log loss, early stopping on the validation pairs' log loss (the best round is kept), SHAP
 * contributions from XGBoost's own `pred_contribs`. Saved as XGBoost's JSON model (`xgboost.json`, what
 * `xgboost.Booster().load_model` reads) beside `classifier.json`.
 *
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic } from "../fs.ts";
import {
  checkColumns,
  checkLabels,
  type Contributions,
  type FitReport,
  type FitRound,
  type LabelledMatrix,
  type PairClassifier,
  readManifest,
  writeManifest,
} from "./classifier.ts";
import type { FeatureMatrix } from "./pair_evidence.ts";
import { Booster, DMatrix } from "./xgboost.ts";

/** The boosted classifier's settings (XGBoost's own parameter names in `params`). */
export interface BoostedClassifierOptions {
  /** Most boosting rounds (default 400). */
  rounds?: number;
  /** Stop when the validation log loss has not improved for this many rounds (default 40; 0 = never). */
  earlyStopping?: number;
  /** XGBoost parameters over the defaults below. */
  params?: Record<string, string | number>;
  /** Called after each round (progress). */
  onRound?: (round: FitRound) => void;
  /**
   * Which round predictions use: "best" (default), the round with the lowest validation log loss; "last",
   * every round, the validation pairs only watched (their loss per round reported, nothing chosen on them).
   */
  keep?: "best" | "last";
}

/** The boosted classifier, which also gives raw margins (log-odds), what a model stacked on it reads. */
export interface BoostedPairClassifier extends PairClassifier {
  /** Log-odds of "same product" per row (before the sigmoid). */
  predictMargins(x: FeatureMatrix): Promise<Float64Array>;
  /** An independent copy (its own native booster, disposed on its own). */
  copy(): BoostedPairClassifier;
}

/** Small trees, shrinkage and row/column sampling: a robust default for a few dozen pair features. */
export const BOOSTED_DEFAULTS: Record<string, string | number> = {
  objective: "binary:logistic",
  eval_metric: "logloss",
  tree_method: "hist",
  max_depth: 5,
  eta: 0.05,
  min_child_weight: 1,
  subsample: 0.8,
  colsample_bytree: 0.8,
  lambda: 1,
  nthread: 2,
  seed: 0,
};

const MODEL_FILE = "xgboost.json";

class BoostedClassifier implements BoostedPairClassifier {
  readonly kind = "xgboost";
  constructor(
    private booster: Booster | null,
    readonly featureNames: readonly string[],
    readonly report: FitReport,
    private readonly settings: Record<string, unknown>,
  ) {}

  private live(): Booster {
    if (!this.booster) throw new Error("boosted classifier: used after dispose()");
    return this.booster;
  }

  private matrix(x: FeatureMatrix, where: string): DMatrix {
    checkColumns(this.featureNames, x, where);
    return new DMatrix(x.values, x.rows, x.names.length);
  }

  // deno-lint-ignore require-await
  async predictProbabilities(x: FeatureMatrix): Promise<Float64Array> {
    return this.predicted(x, "value", "predictProbabilities");
  }

  copy(): BoostedPairClassifier {
    return new BoostedClassifier(
      Booster.fromJson(this.live().saveJson()),
      this.featureNames,
      this.report,
      this.settings,
    );
  }

  // deno-lint-ignore require-await
  async predictMargins(x: FeatureMatrix): Promise<Float64Array> {
    return this.predicted(x, "margin", "predictMargins");
  }

  private predicted(x: FeatureMatrix, type: "value" | "margin", where: string): Float64Array {
    const m = this.matrix(x, where);
    try {
      const { values } = this.live().predict(m, { type, iterationEnd: this.report.bestRound });
      return Float64Array.from(values);
    } finally {
      m.dispose();
    }
  }

  // deno-lint-ignore require-await
  async contributions(x: FeatureMatrix): Promise<Contributions> {
    const m = this.matrix(x, "contributions");
    try {
      const { values, shape } = this.live().predict(m, { type: "contributions", iterationEnd: this.report.bestRound });
      const width = shape[1];
      const names = [...this.featureNames];
      if (width !== names.length + 1) {
        throw new Error(`XGBoost gave ${width} contribution columns for ${names.length} features and the bias`);
      }
      const out = new Float32Array(x.rows * names.length);
      const bias = new Float32Array(x.rows);
      for (let r = 0; r < x.rows; r++) {
        out.set(values.subarray(r * width, r * width + names.length), r * names.length);
        bias[r] = values[r * width + names.length];
      }
      return { names, values: out, bias, rows: x.rows };
    } finally {
      m.dispose();
    }
  }

  async save(dir: string): Promise<string[]> {
    const model = join(dir, MODEL_FILE);
    await writeFileAtomic(model, this.live().saveJson());
    const manifest = await writeManifest(dir, {
      kind: this.kind,
      featureNames: [...this.featureNames],
      report: this.report,
      settings: { ...this.settings, model: MODEL_FILE },
    });
    return [model, manifest];
  }

  dispose(): void {
    this.booster?.dispose();
    this.booster = null;
  }
}

/**
 * Fits the boosted classifier on `train` (early stopping on `validation` when given) and keeps the best
 * round. Throws naming the problem on bad labels or mismatched columns.
 */
// deno-lint-ignore require-await
export async function fitBoostedClassifier(
  train: LabelledMatrix,
  validation: LabelledMatrix | null,
  options: BoostedClassifierOptions = {},
): Promise<BoostedPairClassifier> {
  checkLabels(train, "training pairs");
  if (validation) {
    checkLabels(validation, "validation pairs");
    checkColumns(train.names, validation, "validation pairs");
  }
  const rounds = options.rounds ?? 400;
  const keep = options.keep ?? "best";
  if (keep !== "best" && keep !== "last") throw new Error(`keep = ${JSON.stringify(keep)}; expected "best" or "last"`);
  const patience = keep === "last" ? 0 : options.earlyStopping ?? 40;
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`rounds = ${rounds}; expected an integer >= 1`);
  if (!Number.isInteger(patience) || patience < 0) {
    throw new Error(`earlyStopping = ${patience}; expected an integer >= 0`);
  }
  const params = { ...BOOSTED_DEFAULTS, ...options.params };
  const started = performance.now();
  const dtrain = new DMatrix(train.values, train.rows, train.names.length, train.labels);
  const dval = validation
    ? new DMatrix(validation.values, validation.rows, validation.names.length, validation.labels)
    : null;
  const booster = new Booster(dval ? [dtrain, dval] : [dtrain]);
  try {
    booster.setParams(params);
    const history: FitRound[] = [];
    let best = { round: rounds, loss: Infinity };
    for (let i = 0; i < rounds; i++) {
      booster.updateOneIter(i, dtrain);
      const record: FitRound = { round: i + 1 };
      if (dval) {
        const metrics = booster.evalOneIter(i, [{ name: "val", matrix: dval }]);
        record.validation = metrics["val-logloss"];
        if (record.validation < best.loss) best = { round: i + 1, loss: record.validation };
      }
      history.push(record);
      options.onRound?.(record);
      if (dval && patience > 0 && i + 1 - best.round >= patience) break;
    }
    const bestRound = dval && keep === "best" ? best.round : history.length;
    const report: FitReport = { history, bestRound, seconds: (performance.now() - started) / 1000 };
    return new BoostedClassifier(booster, [...train.names], report, { params, rounds, earlyStopping: patience, keep });
  } catch (error) {
    booster.dispose();
    throw error;
  } finally {
    dtrain.dispose();
    dval?.dispose();
  }
}

/** Reads a boosted classifier saved by `save`. */
export async function loadBoostedClassifier(dir: string): Promise<BoostedPairClassifier> {
  const manifest = await readManifest(dir);
  if (manifest.kind !== "xgboost") {
    throw new Error(`${join(dir, "classifier.json")}: a ${manifest.kind} classifier, not xgboost`);
  }
  const file = join(dir, String(manifest.settings.model ?? MODEL_FILE));
  const booster = Booster.fromJson(await Deno.readTextFile(file));
  return new BoostedClassifier(booster, manifest.featureNames, manifest.report, manifest.settings);
}
