/**
 * Contrastive training of SiameseRuCLIP on rendered pairs.
 *
 * - `full` mode fine-tunes everything end to end (as the reference); each distinct product of a
 *   batch is encoded once, however many of the batch's pairs it is in.
 * - `head` mode freezes the towers: their features are computed once per product (and cached on
 *   disk by the caller, see feature_cache.ts) and only the head is trained.
 * - `text` mode freezes only the image tower: the name and description towers are fine-tuned with
 *   the head (the image tower's backward pass is most of a full step on CPU).
 * AdamW with decoupled weight decay, gradient clipping by global norm, ReduceLROnPlateau on
 * validation F1. Each epoch is validated (loss, P Acc, N Acc, their mean, F1, the F1-optimal
 * threshold, ROC AUC), checkpointed under `<tmpDir>/epoch-NNN`, and the best checkpoint by the
 * chosen metric is kept in `<runDir>/best`; the last epoch goes to `<runDir>/final`.
 * A NaN or Inf loss stops the run with `TrainingDivergedError`, naming the last good checkpoint.
 */
import { join } from "node:path";
import { tf } from "../tf.ts";
import type { ProductBatch, SiameseRuCLIP, TrainablePart } from "../model/siamese.ts";
import { seedDropout } from "../model/layers.ts";
import { contrastiveLoss, onlineContrastiveLoss, pairwiseDistance } from "../model/losses.ts";
import { loadCheckpoint, saveCheckpoint } from "../model/checkpoint.ts";
import type { StateDict } from "../model/state_dict.ts";
import {
  confusionAtThreshold,
  f1OptimalThreshold,
  metricsFromConfusion,
  rocAuc,
  scoresFromDistances,
} from "../eval/pair_metrics.ts";
import { Progress } from "../notebook/progress.ts";
import { SeededRandom } from "../data/random.ts";
import { AdamW, clipGradientsByGlobalNorm } from "./adamw.ts";
import { type PlateauState, ReduceLROnPlateau } from "./plateau.ts";
import { disposeProductBatch, type ProductInputs } from "./product_inputs.ts";
import { computeEmbeddings, imageColumns, pairDistances } from "./embed.ts";

/** What training updates: `head` (towers frozen, cached features), `text` (image tower frozen) or `full`. */
export const TRAINING_MODES = ["head", "text", "full"] as const;
export type TrainingMode = typeof TRAINING_MODES[number];

/** The training losses: the reference's contrastive loss, or its online (in-batch hard pairs) variant. */
export const TRAINING_LOSSES = ["contrastive", "online-contrastive"] as const;
export type TrainingLoss = typeof TRAINING_LOSSES[number];

/** Validation metrics that can pick the best checkpoint. */
export const BEST_METRICS = ["f1", "auc", "loss"] as const;
export type BestMetric = typeof BEST_METRICS[number];

export interface TrainingConfig {
  mode: TrainingMode;
  epochs: number;
  batchSize: number;
  learningRate: number;
  weightDecay: number;
  /** Contrastive margin on the Euclidean distance. */
  margin: number;
  loss: TrainingLoss;
  plateauFactor: number;
  plateauPatience: number;
  /** Maximum global gradient norm; 0 turns clipping off. */
  gradientClip: number;
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

/** Pairs as rows of a ProductInputs; label 1 = same product. */
export interface PairIndexSet {
  left: Int32Array;
  right: Int32Array;
  labels: Float32Array;
}

/** Builds a PairIndexSet from SKU pairs; an unknown SKU is an error naming it and the pair. */
export function pairIndexSet(
  inputs: ProductInputs,
  pairs: readonly { skuLeft: string; skuRight: string; label: number }[],
): PairIndexSet {
  const left = new Int32Array(pairs.length);
  const right = new Int32Array(pairs.length);
  const labels = new Float32Array(pairs.length);
  pairs.forEach((pair, i) => {
    if (pair.label !== 0 && pair.label !== 1) {
      throw new Error(`pair ${i} (${pair.skuLeft}, ${pair.skuRight}): label must be 0 or 1, got ${pair.label}`);
    }
    left[i] = inputs.indexOf(pair.skuLeft);
    right[i] = inputs.indexOf(pair.skuRight);
    labels[i] = pair.label;
  });
  return { left, right, labels };
}

/** One epoch's numbers. */
export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  valLoss: number;
  /** Recall of positives at the F1-optimal threshold ("P Acc"). */
  pAcc: number;
  /** Recall of negatives at that threshold ("N Acc"). */
  nAcc: number;
  meanAcc: number;
  f1: number;
  /** F1-optimal distance threshold: pairs closer than or at it are predicted same. */
  threshold: number;
  auc: number;
  learningRate: number;
  seconds: number;
  pairsPerSecond: number;
}

export class TrainingDivergedError extends Error {
  constructor(
    readonly epoch: number,
    readonly step: number,
    readonly loss: number,
    readonly lastGoodCheckpoint: string | null,
  ) {
    super(
      `training diverged: the loss became ${loss} at epoch ${epoch}, step ${step}. ` +
        (lastGoodCheckpoint
          ? `The last good checkpoint is ${lastGoodCheckpoint}; `
          : "No epoch had finished, so there is no checkpoint; ") +
        "lower the learning rate or enable gradient clipping, then resume from it.",
    );
    this.name = "TrainingDivergedError";
  }
}

export interface TrainOptions {
  model: SiameseRuCLIP;
  inputs: ProductInputs;
  train: PairIndexSet;
  validation: PairIndexSet;
  config: TrainingConfig;
  /** Final checkpoints: `<runDir>/best`, `<runDir>/final`. */
  runDir: string;
  /** Per-epoch checkpoints: `<tmpDir>/epoch-NNN`. Default: `<runDir>/../tmp/<run name>`. */
  tmpDir?: string;
  /**
   * All products' tower features, row-major [inputs.size, featureDim] (see feature_cache.ts). Head mode
   * needs them; text mode uses their image columns, so the frozen image tower is never run.
   */
  features?: Float32Array;
  /** Resume from this checkpoint folder (an epoch or best checkpoint of an earlier run). */
  resumeFrom?: string;
  /** Called after each epoch (live plots, logging). */
  onEpoch?: (record: EpochRecord, history: EpochRecord[]) => void | Promise<void>;
  progress?: boolean;
  /** Test hook: replaces the loss of a step (to inject NaN). */
  lossHook?: (epoch: number, step: number, loss: number) => number;
}

export interface TrainingResult {
  history: EpochRecord[];
  bestEpoch: number;
  bestDir: string;
  finalDir: string;
  /** The epoch the run started from (0 for a fresh run). */
  startEpoch: number;
}

function metricValue(record: EpochRecord, metric: TrainingConfig["bestMetric"]): number {
  return metric === "loss" ? -record.valLoss : metric === "auc" ? record.auc : record.f1;
}

/** Validation numbers of embeddings for a pair set (distances, contrastive loss, F1-optimal threshold). */
export function validationMetrics(
  distances: Float64Array,
  labels: Float32Array,
  margin: number,
): Omit<EpochRecord, "epoch" | "trainLoss" | "learningRate" | "seconds" | "pairsPerSecond"> {
  let loss = 0;
  for (let i = 0; i < distances.length; i++) {
    const d = distances[i];
    loss += labels[i] * d * d + (1 - labels[i]) * Math.max(0, margin - d) ** 2;
  }
  loss /= Math.max(1, distances.length);
  const scores = scoresFromDistances(distances);
  const best = f1OptimalThreshold(labels, scores);
  const metrics = metricsFromConfusion(confusionAtThreshold(labels, scores, best.threshold));
  return {
    valLoss: loss,
    pAcc: metrics.positiveAccuracy,
    nAcc: metrics.negativeAccuracy,
    meanAcc: metrics.balancedAccuracy,
    f1: best.f1,
    threshold: -best.threshold,
    auc: rocAuc(labels, scores),
  };
}

/** Rows used by a pair set (sorted, distinct). */
function distinctRows(set: PairIndexSet): number[] {
  return [...new Set([...set.left, ...set.right])].sort((a, b) => a - b);
}

/** Embeds the validation products once and scores the validation pairs. */
async function validate(
  options: TrainOptions,
  imageFeatures: Float32Array | undefined,
): Promise<ReturnType<typeof validationMetrics>> {
  const { model, inputs, validation, config } = options;
  const rows = distinctRows(validation);
  const embeddings = await computeEmbeddings(model, inputs, rows, {
    batchSize: 64,
    features: config.mode === "head" ? options.features : undefined,
    imageFeatures,
    progress: false,
  });
  const position = new Map(rows.map((row, i) => [row, i]));
  const left = Int32Array.from(validation.left, (r) => position.get(r)!);
  const right = Int32Array.from(validation.right, (r) => position.get(r)!);
  return validationMetrics(
    pairDistances(embeddings, model.embeddingDim, left, right),
    validation.labels,
    config.margin,
  );
}

/** Optimizer moments keyed by PyTorch parameter names (variable names differ between model instances). */
function renameState(state: StateDict, names: Map<string, string>): StateDict {
  const out: StateDict = new Map();
  for (const [key, tensor] of state) {
    const match = key.match(/^(.*)(\/adam_[mv])$/);
    const mapped = match ? names.get(match[1]) : undefined;
    if (!match || mapped === undefined) throw new Error(`optimizer state: no parameter for "${key}"`);
    out.set(mapped + match[2], tensor);
  }
  return out;
}

/** Trains the model; see the module comment. */
export async function trainSiamese(options: TrainOptions): Promise<TrainingResult> {
  const { model, inputs, train, config } = options;
  if (config.mode === "head" && !options.features) {
    throw new Error("head mode needs the products' tower features (options.features)");
  }
  if (train.labels.length === 0) throw new Error("no training pairs");
  if (!(config.epochs >= 1)) throw new Error(`epochs must be >= 1, got ${config.epochs}`);
  const part: TrainablePart = config.mode === "head" ? "head" : "all";
  const frozen = (name: string) => config.mode === "text" && name.startsWith("ruclip.visual.");
  const allNames = model.trainableNames(part);
  const variables = model.trainableVariables(part).filter((_, i) => !frozen(allNames[i]));
  const torchNames = allNames.filter((name) => !frozen(name));
  const toTorch = new Map(variables.map((v, i) => [v.name, torchNames[i]]));
  const fromTorch = new Map(variables.map((v, i) => [torchNames[i], v.name]));
  const optimizer = new AdamW({ learningRate: config.learningRate, weightDecay: config.weightDecay });
  const plateau = new ReduceLROnPlateau({
    mode: "max",
    factor: config.plateauFactor,
    patience: config.plateauPatience,
  });
  const tmpDir = options.tmpDir ?? join(options.runDir, "..", "tmp", options.runDir.split(/[\\/]/).pop()!);
  const bestDir = join(options.runDir, "best");
  const finalDir = join(options.runDir, "final");
  let history: EpochRecord[] = [];
  let startEpoch = 0;
  let step = 0;
  let lastGood: string | null = null;

  if (options.resumeFrom) {
    const checkpoint = await loadCheckpoint(options.resumeFrom);
    model.loadStateDict(checkpoint.stateDict, { strict: true });
    const state = checkpoint.trainingState;
    if (!state) throw new Error(`${options.resumeFrom}: no training_state.json, so training cannot resume from it`);
    startEpoch = state.epoch;
    step = state.step;
    history = (state.history as EpochRecord[] | undefined) ?? [];
    optimizer.learningRate = Number(state.learningRate ?? config.learningRate);
    if (state.plateau) plateau.state = state.plateau as PlateauState;
    if (checkpoint.optimizerState) {
      optimizer.loadStateDict(renameState(checkpoint.optimizerState, fromTorch), Number(state.optimizerStep ?? 0));
    }
    lastGood = options.resumeFrom;
  }

  // Text mode: the frozen image tower's output, taken once from the cached tower features.
  const imageFeatures = config.mode === "text" && options.features
    ? imageColumns(options.features, model.featureDim, model.imageDim)
    : undefined;
  const featureTensor = config.mode === "head"
    ? tf.tensor2d(options.features!, [inputs.size, model.featureDim])
    : imageFeatures
    ? tf.tensor2d(imageFeatures, [inputs.size, model.imageDim])
    : undefined;
  const lossFunction = config.loss === "online-contrastive" ? onlineContrastiveLoss : contrastiveLoss;
  // The running epoch's bar: a failure anywhere in the epoch leaves it showing where and why it stopped.
  let bar: Progress | undefined;
  try {
    for (let epoch = startEpoch + 1; epoch <= config.epochs; epoch++) {
      const started = performance.now();
      // Seeded per epoch, so a resumed run sees the same order as an uninterrupted one.
      const order = new SeededRandom(config.seed * 1000 + epoch).shuffle([...train.labels.keys()]);
      const steps = Math.ceil(order.length / config.batchSize);
      bar = new Progress({
        total: order.length,
        label: `epoch ${epoch}/${config.epochs}`,
        unit: "pairs",
        silent: options.progress === false,
      });
      let lossSum = 0;
      let lossCount = 0;
      for (let s = 0; s < steps; s++) {
        const batchPairs = order.slice(s * config.batchSize, (s + 1) * config.batchSize);
        const rows = [...new Set(batchPairs.flatMap((p) => [train.left[p], train.right[p]]))];
        const local = new Map(rows.map((row, i) => [row, i]));
        const leftLocal = batchPairs.map((p) => local.get(train.left[p])!);
        const rightLocal = batchPairs.map((p) => local.get(train.right[p])!);
        const labels = batchPairs.map((p) => train.labels[p]);
        const batch = config.mode === "head" ? undefined : featureTensor ? inputs.textBatch(rows) : inputs.batch(rows);
        // Dropout masks depend only on the run's seed and the step: runs repeat, resumed ones too.
        seedDropout(config.seed * 1_000_003 + (step + 1) * 1_009);
        let value: tf.Scalar;
        let grads: tf.NamedTensorMap;
        try {
          ({ value, grads } = tf.variableGrads(() => {
            const cached = featureTensor ? tf.gather(featureTensor, tf.tensor1d(rows, "int32")) as tf.Tensor2D : null;
            const embeddings = !batch
              ? model.head(cached!, true)
              : cached
              ? model.head(tf.concat([cached, model.textFeatures(batch, true)], 1), true)
              : model.embed(batch as ProductBatch, true);
            const distances = pairwiseDistance(
              tf.gather(embeddings, tf.tensor1d(leftLocal, "int32")) as tf.Tensor2D,
              tf.gather(embeddings, tf.tensor1d(rightLocal, "int32")) as tf.Tensor2D,
            );
            return lossFunction(distances, tf.tensor1d(labels), config.margin);
          }, variables));
        } finally {
          seedDropout(null);
          if (batch) disposeProductBatch(batch);
        }
        let loss = (await value.data())[0];
        value.dispose();
        step += 1;
        if (options.lossHook) loss = options.lossHook(epoch, step, loss);
        if (!Number.isFinite(loss)) {
          Object.values(grads).forEach((g) => g.dispose());
          bar.setMetrics({ loss });
          throw new TrainingDivergedError(epoch, step, loss, lastGood);
        }
        const clipped = config.gradientClip > 0
          ? (await clipGradientsByGlobalNorm(grads, config.gradientClip)).gradients
          : grads;
        optimizer.applyGradients(variables, clipped);
        Object.values(clipped).forEach((g) => g.dispose());
        lossSum += loss * batchPairs.length;
        lossCount += batchPairs.length;
        await bar.tick(batchPairs.length, { loss: lossSum / lossCount, lr: optimizer.learningRate });
      }
      await bar.done();
      const trainSeconds = (performance.now() - started) / 1000;
      const metrics = await validate(options, imageFeatures);
      const record: EpochRecord = {
        epoch,
        trainLoss: lossSum / Math.max(1, lossCount),
        ...metrics,
        learningRate: optimizer.learningRate,
        seconds: (performance.now() - started) / 1000,
        pairsPerSecond: lossCount / trainSeconds,
      };
      history.push(record);
      optimizer.learningRate = plateau.step(record.f1, optimizer.learningRate);
      const trainingState = {
        epoch,
        step,
        optimizerStep: optimizer.step,
        learningRate: optimizer.learningRate,
        plateau: plateau.state,
        history,
        metrics: { f1: record.f1, auc: record.auc, threshold: record.threshold, valLoss: record.valLoss },
        config,
        optimizer: { name: "AdamW", weightDecay: config.weightDecay },
      };
      const optimizerState = renameState(await optimizer.stateDict(), toTorch);
      const epochDir = join(tmpDir, `epoch-${String(epoch).padStart(3, "0")}`);
      await saveCheckpoint(epochDir, { model, config: model.config, trainingState, optimizerState });
      lastGood = epochDir;
      const bestSoFar = Math.max(...history.slice(0, -1).map((r) => metricValue(r, config.bestMetric)), -Infinity);
      if (metricValue(record, config.bestMetric) > bestSoFar) {
        await saveCheckpoint(bestDir, { model, config: model.config, trainingState: { ...trainingState, best: true } });
      }
      await options.onEpoch?.(record, history);
    }
    await saveCheckpoint(finalDir, {
      model,
      config: model.config,
      trainingState: { epoch: config.epochs, step, history, config },
    });
  } catch (error) {
    await bar?.stop(error);
    throw error;
  } finally {
    featureTensor?.dispose();
    optimizer.dispose();
  }
  const bestEpoch = history.reduce(
    (best, r) => (metricValue(r, config.bestMetric) > metricValue(best, config.bestMetric) ? r : best),
    history[0],
  ).epoch;
  return { history, bestEpoch, bestDir, finalDir, startEpoch };
}
