/**
 * One strategy per training mode: what is trainable, what a step needs and computes, and which inputs
 * validation and scoring use. `trainingStrategy(mode)` picks one once (an unknown mode is an error
 * naming the choices); the trainer then never compares mode strings.
 *
 * - `head`: both towers locked; the step gathers the products' cached tower features and runs the head.
 * - `text`: the image tower locked; the step runs the name and description towers and the head, on
 *   the cached image features when given (else the frozen image tower runs too).
 * - `full`: nothing locked; the step encodes every distinct product of the batch end to end.
 *
 * Freezing is the model's own API (`lockImageTower`, `lockTextTowers`, `unlockTowers`); `prepare` sets
 * it for the mode, so the model says afterwards which towers the run left untouched.
 *
 * @module
 */
import { tf } from "../tf.ts";
import type { ProductBatch, SiameseRuCLIP, TextBatch } from "../model/siamese.ts";
import type { ProductInputs } from "./product_inputs.ts";

/** Cached features a mode reads: all tower features, or only their image columns. */
export interface ScoringInputs {
  /** All products' tower features [inputs.size, featureDim] (head mode). */
  features?: Float32Array;
  /** All products' image-tower features [inputs.size, imageDim] (text mode). */
  imageFeatures?: Float32Array;
}

/** How one training mode trains, validates and scores. */
export interface TrainingStrategy {
  readonly mode: string;
  readonly description: string;
  /** Whether the mode needs the products' cached tower features ("required"), can use them ("optional"), or not. */
  readonly towerFeatures: "required" | "optional" | "unused";
  /** Locks what the mode does not train; returns the trainable variables and their PyTorch names. */
  prepare(model: SiameseRuCLIP): { variables: tf.Variable[]; names: string[] };
  /** The cached features the steps gather from, from all tower features (when given). */
  scoringInputs(model: SiameseRuCLIP, features: Float32Array | undefined): ScoringInputs;
  /** The model inputs of a step's products (`undefined` when the step runs on cached features only). */
  batch(inputs: ProductInputs, rows: readonly number[], cached: boolean): ProductBatch | TextBatch | undefined;
  /** Embeddings of a step's products, inside the gradient tape: `cached` holds their gathered cached features. */
  embed(
    model: SiameseRuCLIP,
    batch: ProductBatch | TextBatch | undefined,
    cached: tf.Tensor2D | null,
    training: boolean,
  ): tf.Tensor2D;
}

function trainable(model: SiameseRuCLIP): { variables: tf.Variable[]; names: string[] } {
  return { variables: model.trainableVariables(), names: model.trainableNames() };
}

const head: TrainingStrategy = {
  mode: "head",
  description: "towers frozen, their features cached; only the head trains",
  towerFeatures: "required",
  prepare(model) {
    model.unlockTowers();
    model.lockImageTower();
    model.lockTextTowers();
    return trainable(model);
  },
  scoringInputs(_model, features) {
    if (!features) throw new Error("head mode needs the products' tower features (see feature_cache.ts)");
    return { features };
  },
  batch: () => undefined,
  embed(model, _batch, cached, training) {
    if (!cached) throw new Error("head mode: a step without cached tower features");
    return model.head(cached, training);
  },
};

const text: TrainingStrategy = {
  mode: "text",
  description: "image tower frozen (its cached features when given); text towers and head train",
  towerFeatures: "optional",
  prepare(model) {
    model.unlockTowers();
    model.lockImageTower();
    return trainable(model);
  },
  scoringInputs(model, features) {
    return features ? { imageFeatures: imageColumns(features, model.featureDim, model.imageDim) } : {};
  },
  batch: (inputs, rows, cached) => cached ? inputs.textBatch([...rows]) : inputs.batch([...rows]),
  embed(model, batch, cached, training) {
    if (!batch) throw new Error("text mode: a step without text inputs");
    if (!cached) return model.embed(batch as ProductBatch, training);
    return model.head(tf.concat([cached, model.textFeatures(batch, training)], 1), training);
  },
};

const full: TrainingStrategy = {
  mode: "full",
  description: "everything trains end to end",
  towerFeatures: "unused",
  prepare(model) {
    model.unlockTowers();
    return trainable(model);
  },
  scoringInputs: () => ({}),
  batch: (inputs, rows) => inputs.batch([...rows]),
  embed(model, batch, _cached, training) {
    if (!batch) throw new Error("full mode: a step without product inputs");
    return model.embed(batch as ProductBatch, training);
  },
};

/** The image-tower columns [n, imageDim] of tower features [n, featureDim] (both row-major). */
export function imageColumns(features: Float32Array, featureDim: number, imageDim: number): Float32Array {
  if (features.length % featureDim !== 0) {
    throw new Error(`imageColumns: ${features.length} values are not rows of ${featureDim} features`);
  }
  const n = features.length / featureDim;
  const out = new Float32Array(n * imageDim);
  for (let i = 0; i < n; i++) out.set(features.subarray(i * featureDim, i * featureDim + imageDim), i * imageDim);
  return out;
}

/** The strategies, by mode. */
export const TRAINING_STRATEGIES = { head, text, full } as const;
/** What training updates: `head` (towers frozen, cached features), `text` (image tower frozen) or `full`. */
export type TrainingMode = keyof typeof TRAINING_STRATEGIES;
/** The training modes. */
export const TRAINING_MODES = Object.keys(TRAINING_STRATEGIES) as TrainingMode[];

/** The strategy of `mode`; an unknown mode is an error naming it, `where` it came from and the choices. */
export function trainingStrategy(mode: string, where = "TrainingConfig.mode"): TrainingStrategy {
  if (!Object.hasOwn(TRAINING_STRATEGIES, mode)) {
    throw new Error(`${where} = ${JSON.stringify(mode)}; expected one of ${TRAINING_MODES.join(", ")}`);
  }
  return TRAINING_STRATEGIES[mode as TrainingMode];
}
