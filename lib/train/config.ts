/**
 * The training configuration: one field per knob, each with its meaning (nanoGPT's `GPTConfig` style),
 * checked once at the library's entry (`validateTrainingConfig`, called by `trainSiamese`), and built
 * from a notebook's parameters by `trainingConfigFromParams`.
 *
 * The names a field may take live in their registries: modes in strategies.ts, losses in
 * model/losses.ts, best-epoch metrics here (`BEST_METRIC_DEFINITIONS`).
 *
 * @module
 */
import { TRAINING_LOSSES, type TrainingLoss } from "../model/losses.ts";
import { text, type TextSpec } from "../notebook/params.ts";
import { TRAINING_MODES, type TrainingMode } from "./strategies.ts";
import type { EpochRecord } from "./trainer.ts";

/** A validation metric that can choose the best epoch, and which way is better. */
export interface BestMetricDefinition {
  readonly description: string;
  /** "max": larger is better; "min": smaller is better (the scheduler's mode too). */
  readonly mode: "max" | "min";
  readonly value: (record: EpochRecord) => number;
}

/** The validation metrics that can pick the best checkpoint (and drive the learning-rate scheduler). */
export const BEST_METRIC_DEFINITIONS = {
  f1: { description: "validation F1 at the F1-optimal threshold", mode: "max", value: (r: EpochRecord) => r.f1 },
  auc: { description: "validation ROC AUC", mode: "max", value: (r: EpochRecord) => r.auc },
  loss: {
    description: "validation loss (the training loss's formula)",
    mode: "min",
    value: (r: EpochRecord) => r.valLoss,
  },
} as const satisfies Record<string, BestMetricDefinition>;
export type BestMetric = keyof typeof BEST_METRIC_DEFINITIONS;
export const BEST_METRICS = Object.keys(BEST_METRIC_DEFINITIONS) as BestMetric[];

/** True when `record` is better than `than` by `metric` (a missing `than` is always beaten). */
export function isBetterEpoch(metric: BestMetric, record: EpochRecord, than: EpochRecord | undefined): boolean {
  if (!than) return true;
  const { mode, value } = BEST_METRIC_DEFINITIONS[metric];
  return mode === "max" ? value(record) > value(than) : value(record) < value(than);
}

/** Everything `trainSiamese` needs to know besides the data and the model. */
export interface TrainingConfig {
  /** What is trained: "head" (towers frozen), "text" (image tower frozen) or "full" (see strategies.ts). */
  mode: TrainingMode;
  /** Epochs to run (a resumed run continues up to this number). */
  epochs: number;
  /** Pairs per optimizer step; each distinct product of a batch is encoded once. */
  batchSize: number;
  /** AdamW's initial learning rate. */
  learningRate: number;
  /** AdamW's decoupled weight decay. */
  weightDecay: number;
  /** Contrastive margin on the Euclidean distance: negatives are pushed at least this far apart. */
  margin: number;
  /** The loss of training and validation (model/losses.ts `PAIR_LOSSES`). */
  loss: TrainingLoss;
  /** ReduceLROnPlateau's factor: the learning rate is multiplied by it on a plateau. */
  plateauFactor: number;
  /** ReduceLROnPlateau's patience: epochs without improvement before the learning rate drops. */
  plateauPatience: number;
  /** Validation metric the scheduler watches; default: `bestMetric`. */
  plateauMetric?: BestMetric;
  /** Maximum global gradient norm; 0 turns clipping off. */
  gradientClip: number;
  /** Seed of the pair order per epoch and of the dropout masks per step. */
  seed: number;
  /** Validation metric that picks the best checkpoint. */
  bestMetric: BestMetric;
}

export const DEFAULT_TRAINING_CONFIG: TrainingConfig = {
  mode: "full",
  epochs: 10,
  batchSize: 60,
  learningRate: 5e-5,
  weightDecay: 1e-2,
  margin: 1,
  loss: "contrastive",
  plateauFactor: 0.5,
  plateauPatience: 1,
  gradientClip: 1,
  seed: 42,
  bestMetric: "f1",
};

/**
 * The suite's training defaults: what the training notebook's parameters cell offers when nothing is set
 * (head mode on cached tower features; tuned on the demo's validation split) and what `deno task seeds`
 * trains. `DEFAULT_TRAINING_CONFIG` is the reference's full fine-tuning.
 */
export const SUITE_TRAINING_DEFAULTS: TrainingConfig = {
  mode: "head",
  epochs: 8,
  batchSize: 64,
  learningRate: 1e-4,
  weightDecay: 0.1,
  margin: 2,
  loss: "online-contrastive",
  plateauFactor: 0.5,
  plateauPatience: 1,
  gradientClip: 1,
  seed: 42,
  bestMetric: "auc",
};

/**
 * The suite's default head residual (SiameseRuCLIPConfig `headResidual`) for a model the training notebook
 * builds: the raw tower distance, scaled by 0.1 to the head's distances (demo: raw pair distances are about
 * 6-8, the head's 0.4-1.8 at margin 2), kept beside the head's. Chosen on the demo's validation splits
 * (`deno task seeds`): at 1 the raw distance swamps the head and training changes nothing.
 */
export const SUITE_HEAD_RESIDUAL = 0.1;

/**
 * The head residual's scales tried on validation after training (train/residual_scale.ts; the training
 * notebook's `RESIDUAL_SCALES`): around the trained default, up to where the raw distance dominates.
 */
export const RESIDUAL_SCALE_GRID: readonly number[] = [0.05, 0.1, 0.15, 0.2, 0.3, 0.5];

/**
 * The notebooks' `RESIDUAL_SCALES`: comma-separated numbers > 0, e.g. "0.05,0.1,0.2"; "" = none (keep the
 * trained scale). A bad entry is an error naming it.
 */
export function parseResidualScales(value: string, where = "RESIDUAL_SCALES"): number[] {
  if (value.trim() === "") return [];
  return value.split(",").map((part) => {
    const scale = Number(part.trim());
    if (part.trim() === "" || !Number.isFinite(scale) || scale <= 0) {
      throw new Error(`${where} = ${JSON.stringify(value)}: "${part.trim()}" is not a number > 0`);
    }
    return scale;
  });
}

/** `RESIDUAL_SCALES` as a notebook parameter (checked when the parameters cell runs). */
export function residualScalesParam(defaultValue = RESIDUAL_SCALE_GRID.join(",")): TextSpec {
  return text(defaultValue, "head residual scales tried on validation after training; empty = keep HEAD_RESIDUAL", {
    check: (value) => {
      try {
        parseResidualScales(value);
        return undefined;
      } catch (error) {
        return (error as Error).message.replace(/^RESIDUAL_SCALES = "[^"]*": /, "");
      }
    },
    allowed: 'numbers > 0 separated by commas, e.g. "0.05,0.1,0.2", or empty',
  });
}

/** The metric the learning-rate scheduler steps on: `plateauMetric`, else the best-epoch metric. */
export function schedulerMetric(config: TrainingConfig): BestMetric {
  return config.plateauMetric ?? config.bestMetric;
}

function oneOf(value: unknown, allowed: readonly string[], where: string): void {
  if (typeof value !== "string" || !allowed.includes(value)) {
    throw new Error(`${where} = ${JSON.stringify(value)}; expected one of ${allowed.join(", ")}`);
  }
}

function numberIn(
  value: unknown,
  where: string,
  rule: { min?: number; max?: number; exclusive?: boolean; integer?: boolean },
): void {
  const n = value as number;
  const ok = typeof value === "number" && Number.isFinite(n) && (!rule.integer || Number.isInteger(n)) &&
    (rule.min === undefined || (rule.exclusive ? n > rule.min : n >= rule.min)) &&
    (rule.max === undefined || (rule.exclusive ? n < rule.max : n <= rule.max));
  if (!ok) {
    const bounds = [
      rule.min !== undefined ? `${rule.exclusive ? ">" : ">="} ${rule.min}` : "",
      rule.max !== undefined ? `${rule.exclusive ? "<" : "<="} ${rule.max}` : "",
    ].filter(Boolean).join(" and ");
    throw new Error(
      `${where} = ${JSON.stringify(value)}; expected ${rule.integer ? "an integer" : "a number"} ${bounds}`,
    );
  }
}

/**
 * Checks every field against its registry or range; an error names the field (as `names` calls it,
 * e.g. the notebook parameter), the value and what is allowed.
 */
export function validateTrainingConfig(
  config: TrainingConfig,
  names: Partial<Record<keyof TrainingConfig, string>> = {},
): void {
  const where = (field: keyof TrainingConfig) => names[field] ?? `TrainingConfig.${field}`;
  oneOf(config.mode, TRAINING_MODES, where("mode"));
  oneOf(config.loss, TRAINING_LOSSES, where("loss"));
  oneOf(config.bestMetric, BEST_METRICS, where("bestMetric"));
  if (config.plateauMetric !== undefined) oneOf(config.plateauMetric, BEST_METRICS, where("plateauMetric"));
  numberIn(config.epochs, where("epochs"), { min: 1, integer: true });
  numberIn(config.batchSize, where("batchSize"), { min: 1, integer: true });
  numberIn(config.learningRate, where("learningRate"), { min: 0, exclusive: true });
  numberIn(config.weightDecay, where("weightDecay"), { min: 0 });
  numberIn(config.margin, where("margin"), { min: 0, exclusive: true });
  numberIn(config.plateauFactor, where("plateauFactor"), { min: 0, max: 1, exclusive: true });
  numberIn(config.plateauPatience, where("plateauPatience"), { min: 0, integer: true });
  numberIn(config.gradientClip, where("gradientClip"), { min: 0 });
  numberIn(config.seed, where("seed"), { integer: true });
}

/** The training notebook's parameters that make a `TrainingConfig`. */
export interface TrainingParams {
  MODE: TrainingMode;
  EPOCHS: number;
  BATCH_SIZE: number;
  LR: number;
  WEIGHT_DECAY: number;
  MARGIN: number;
  LOSS: TrainingLoss;
  PLATEAU_FACTOR: number;
  PLATEAU_PATIENCE: number;
  GRAD_CLIP: number;
  SEED: number;
  BEST_METRIC: BestMetric;
}

/** Which notebook parameter sets each field (for error messages). */
export const TRAINING_PARAM_NAMES: Record<keyof TrainingConfig, string> = {
  mode: "MODE",
  epochs: "EPOCHS",
  batchSize: "BATCH_SIZE",
  learningRate: "LR",
  weightDecay: "WEIGHT_DECAY",
  margin: "MARGIN",
  loss: "LOSS",
  plateauFactor: "PLATEAU_FACTOR",
  plateauPatience: "PLATEAU_PATIENCE",
  plateauMetric: "BEST_METRIC",
  gradientClip: "GRAD_CLIP",
  seed: "SEED",
  bestMetric: "BEST_METRIC",
};

/** The `TrainingConfig` of a notebook's parameters, checked (errors name the parameter). */
export function trainingConfigFromParams(params: TrainingParams): TrainingConfig {
  const config: TrainingConfig = {
    mode: params.MODE,
    epochs: params.EPOCHS,
    batchSize: params.BATCH_SIZE,
    learningRate: params.LR,
    weightDecay: params.WEIGHT_DECAY,
    margin: params.MARGIN,
    loss: params.LOSS,
    plateauFactor: params.PLATEAU_FACTOR,
    plateauPatience: params.PLATEAU_PATIENCE,
    gradientClip: params.GRAD_CLIP,
    seed: params.SEED,
    bestMetric: params.BEST_METRIC,
  };
  validateTrainingConfig(config, TRAINING_PARAM_NAMES);
  return config;
}
