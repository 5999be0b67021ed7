/**
 * Contrastive training of SiameseRuCLIP on rendered pairs.
 *
 * What a mode trains and how a step runs is its strategy (strategies.ts: `head`, `text`, `full`);
 * the configuration is checked once on entry (config.ts). The loss is one registry entry
 * (model/losses.ts `PAIR_LOSSES`) used by the training steps and by validation alike.
 * AdamW with decoupled weight decay, gradient clipping by global norm, ReduceLROnPlateau on the
 * metric that picks the best epoch (or `plateauMetric`). Each epoch is validated (loss, P Acc, N Acc,
 * their mean, F1, the F1-optimal threshold, ROC AUC), checkpointed under `<tmpDir>/epoch-NNN`, and the
 * best checkpoint by the chosen metric is kept in `<runDir>/best`; the last epoch goes to `<runDir>/final`.
 * A NaN or Inf loss stops the run with `TrainingDivergedError`, naming the last good checkpoint.
 */
import { join } from "node:path";
import { tf } from "../tf.ts";
import type { SiameseRuCLIP } from "../model/siamese.ts";
import { seedDropout } from "../model/layers.ts";
import { pairLoss, pairwiseDistance, type TrainingLoss } from "../model/losses.ts";
import { loadCheckpoint, saveCheckpoint } from "../model/checkpoint.ts";
import type { StateDict } from "../model/state_dict.ts";
import {
  confusionAtThreshold,
  f1OptimalThreshold,
  metricsFromConfusion,
  rocAuc,
  scoresFromDistances,
} from "../eval/pair_metrics.ts";
import { type PairThreshold, thresholdAtScore, thresholdFromJson } from "../eval/threshold.ts";
import { Progress } from "../notebook/progress.ts";
import { beginInterruptible, InterruptedError, takeInterrupt } from "../notebook/interrupt.ts";
import { shownPath } from "../paths.ts";
import { SeededRandom } from "../data/random.ts";
import { AdamW, clipGradientsByGlobalNorm } from "./adamw.ts";
import { type PlateauState, ReduceLROnPlateau } from "./plateau.ts";
import { disposeProductBatch, type ProductInputs } from "./product_inputs.ts";
import { computeEmbeddings, rowPairDistances } from "./embed.ts";
import {
  BEST_METRIC_DEFINITIONS,
  isBetterEpoch,
  schedulerMetric,
  type TrainingConfig,
  validateTrainingConfig,
} from "./config.ts";
import { type ScoringInputs, trainingStrategy } from "./strategies.ts";

/** Pairs as rows of a ProductInputs; label 1 = same product. */
export interface PairIndexSet {
  left: Int32Array;
  right: Int32Array;
  labels: Float32Array;
  /**
   * The query group of each pair (0, 1, ... in order of first appearance of its query), when the pairs
   * name their query: losses over query groups (`PairLoss.grouped`) need it.
   */
  groups?: Int32Array;
}

/**
 * Builds a PairIndexSet from SKU pairs (with their query's SKU, when known, as the pair's group);
 * an unknown SKU is an error naming it and the pair.
 */
export function pairIndexSet(
  inputs: ProductInputs,
  pairs: readonly { skuLeft: string; skuRight: string; label: number; querySku?: string }[],
): PairIndexSet {
  const left = new Int32Array(pairs.length);
  const right = new Int32Array(pairs.length);
  const labels = new Float32Array(pairs.length);
  const groupOf = new Map<string, number>();
  const groups = new Int32Array(pairs.length);
  pairs.forEach((pair, i) => {
    if (pair.label !== 0 && pair.label !== 1) {
      throw new Error(`pair ${i} (${pair.skuLeft}, ${pair.skuRight}): label must be 0 or 1, got ${pair.label}`);
    }
    left[i] = inputs.indexOf(pair.skuLeft);
    right[i] = inputs.indexOf(pair.skuRight);
    labels[i] = pair.label;
    if (pair.querySku !== undefined) {
      if (!groupOf.has(pair.querySku)) groupOf.set(pair.querySku, groupOf.size);
      groups[i] = groupOf.get(pair.querySku)!;
    }
  });
  const grouped = pairs.length > 0 && pairs.every((pair) => pair.querySku !== undefined);
  return grouped ? { left, right, labels, groups } : { left, right, labels };
}

/**
 * One epoch's pair order: shuffled pairs; for a loss over query groups, shuffled groups, each group's
 * pairs shuffled and kept together, so a batch holds one query's pairs (two at a group's end).
 */
export function epochOrder(set: PairIndexSet, grouped: boolean, random: SeededRandom): number[] {
  const order = random.shuffle([...set.labels.keys()]);
  if (!grouped) return order;
  const groups = set.groups;
  if (!groups) throw new Error("a loss over query groups needs pairs with their query (PairIndexSet.groups)");
  const byGroup = new Map<number, number[]>();
  for (const pair of order) {
    const list = byGroup.get(groups[pair]);
    if (list) list.push(pair);
    else byGroup.set(groups[pair], [pair]);
  }
  return random.shuffle([...byGroup.keys()]).flatMap((group) => byGroup.get(group)!);
}

/** One epoch's numbers. */
export interface EpochRecord {
  epoch: number;
  /** The loss of `trainLoss` and `valLoss` (one formula for both). */
  loss: TrainingLoss;
  /** Mean over the epoch's pairs of the per-step loss. */
  trainLoss: number;
  /** The same on the validation pairs, in steps of `batchSize` pairs in their given order. */
  valLoss: number;
  /** Recall of positives at the F1-optimal threshold ("P Acc"). */
  pAcc: number;
  /** Recall of negatives at that threshold ("N Acc"). */
  nAcc: number;
  meanAcc: number;
  f1: number;
  /** The F1-optimal threshold on the validation pairs (score, distance, rule). */
  threshold: PairThreshold;
  auc: number;
  learningRate: number;
  seconds: number;
  pairsPerSecond: number;
}

/** One epoch's numbers for a run record's curves (the threshold as its distance; the loss name left out). */
export function epochCurveRow(record: EpochRecord): Record<string, number> {
  const { threshold, loss: _loss, ...numbers } = record;
  return { ...numbers, threshold_distance: threshold.distance };
}

/** Epoch records as flat table rows (the threshold as its distance). */
export function epochRows(history: readonly EpochRecord[]): Record<string, number | string>[] {
  return history.map(({ threshold, ...record }) => ({ ...record, threshold_distance: threshold.distance }));
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

/** The validation part of an epoch's record. */
export type ValidationMetrics = Pick<
  EpochRecord,
  "loss" | "valLoss" | "pAcc" | "nAcc" | "meanAcc" | "f1" | "threshold" | "auc"
>;

/**
 * Validation numbers of a pair set's distances: the training loss (the registry entry of `config.loss`,
 * over steps of `config.batchSize` pairs, weighted by pairs as the training loss is), the F1-optimal
 * threshold and the pair metrics at it, ROC AUC.
 */
export async function validationMetrics(
  distances: Float64Array,
  labels: Float32Array,
  config: Pick<TrainingConfig, "loss" | "margin" | "batchSize">,
  groups?: Int32Array,
): Promise<ValidationMetrics> {
  const loss = pairLoss(config.loss, "TrainingConfig.loss");
  let lossSum = 0;
  for (let start = 0; start < distances.length; start += config.batchSize) {
    const end = Math.min(distances.length, start + config.batchSize);
    const value = tf.tidy(() =>
      loss.apply(
        tf.tensor1d(Float32Array.from(distances.subarray(start, end))),
        tf.tensor1d(labels.subarray(start, end)),
        config.margin,
        loss.grouped && groups ? tf.tensor1d(groups.subarray(start, end), "int32") : undefined,
      )
    );
    lossSum += (await value.data())[0] * (end - start);
    value.dispose();
  }
  const scores = scoresFromDistances(distances);
  const best = f1OptimalThreshold(labels, scores);
  const metrics = metricsFromConfusion(confusionAtThreshold(labels, scores, best.threshold));
  return {
    loss: config.loss,
    valLoss: lossSum / Math.max(1, distances.length),
    pAcc: metrics.positiveAccuracy,
    nAcc: metrics.negativeAccuracy,
    meanAcc: metrics.balancedAccuracy,
    f1: best.f1,
    threshold: thresholdAtScore(best.threshold, { kind: "f1" }),
    auc: rocAuc(labels, scores),
  };
}

/** Rows used by a pair set (sorted, distinct). */
function distinctRows(set: PairIndexSet): number[] {
  return [...new Set([...set.left, ...set.right])].sort((a, b) => a - b);
}

/** Embeds the validation products once and scores the validation pairs. */
async function validate(options: TrainOptions, scoring: ScoringInputs): Promise<ValidationMetrics> {
  const { model, inputs, validation, config } = options;
  const rows = distinctRows(validation);
  const embeddings = await computeEmbeddings(model, inputs, rows, { batchSize: 64, ...scoring, progress: false });
  const position = new Map(rows.map((row, i) => [row, i]));
  const left = Int32Array.from(validation.left, (r) => position.get(r)!);
  const right = Int32Array.from(validation.right, (r) => position.get(r)!);
  return await validationMetrics(
    rowPairDistances(embeddings, model.embeddingDim, left, right),
    validation.labels,
    config,
    validation.groups,
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

/** Where a Stop left an epoch: resumed from step `steps` with the running loss so far. */
export interface PartialEpoch {
  epoch: number;
  /** Steps of the epoch done. */
  steps: number;
  lossSum: number;
  lossCount: number;
  /** Seconds the epoch had run. */
  seconds: number;
}

function resumeHint(dir: string): string {
  return `set RESUME to ${shownPath(dir)} (in this kernel: P.RESUME = lastInterruption().resumeFrom, from ` +
    "lib/notebook/interrupt.ts) and run the training again; it goes on from there.";
}

/** Trains the model; see the module comment. */
export async function trainSiamese(options: TrainOptions): Promise<TrainingResult> {
  const { model, inputs, train, config } = options;
  validateTrainingConfig(config);
  const strategy = trainingStrategy(config.mode);
  if (strategy.towerFeatures === "required" && !options.features) {
    throw new Error(`${config.mode} mode needs the products' tower features (options.features, see feature_cache.ts)`);
  }
  if (train.labels.length === 0) throw new Error("no training pairs");
  const loss = pairLoss(config.loss, "TrainingConfig.loss");
  for (const [name, set] of [["training", train], ["validation", options.validation]] as const) {
    if (loss.grouped && !set.groups) {
      throw new Error(
        `TrainingConfig.loss = "${config.loss}" ranks pairs within their query, but the ${name} pairs name no query`,
      );
    }
  }
  const { variables, names: torchNames } = strategy.prepare(model);
  const toTorch = new Map(variables.map((v, i) => [v.name, torchNames[i]]));
  const fromTorch = new Map(variables.map((v, i) => [torchNames[i], v.name]));
  const optimizer = new AdamW({ learningRate: config.learningRate, weightDecay: config.weightDecay });
  const watched = BEST_METRIC_DEFINITIONS[schedulerMetric(config)];
  const plateau = new ReduceLROnPlateau({
    mode: watched.mode,
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
  /** An epoch a Stop ended part-way (read back from an interrupted checkpoint): where it goes on. */
  let partial: PartialEpoch | null = null;
  beginInterruptible();

  if (options.resumeFrom) {
    const checkpoint = await loadCheckpoint(options.resumeFrom);
    model.loadStateDict(checkpoint.stateDict, { strict: true });
    const state = checkpoint.trainingState;
    if (!state) throw new Error(`${options.resumeFrom}: no training_state.json, so training cannot resume from it`);
    startEpoch = state.epoch;
    step = state.step;
    history = ((state.history as EpochRecord[] | undefined) ?? []).map((record, i) => ({
      ...record,
      loss: record.loss ?? config.loss,
      threshold: thresholdFromJson(record.threshold, `${options.resumeFrom}: history[${i}].threshold`),
    }));
    partial = (state.partial as PartialEpoch | undefined) ?? null;
    if (partial && partial.epoch > config.epochs) {
      throw new Error(
        `${options.resumeFrom}: stopped during epoch ${partial.epoch}, but the run has ${config.epochs} epochs; ` +
          `set EPOCHS to at least ${partial.epoch}`,
      );
    }
    optimizer.learningRate = Number(state.learningRate ?? config.learningRate);
    if (state.plateau) plateau.state = state.plateau as PlateauState;
    if (checkpoint.optimizerState) {
      optimizer.loadStateDict(renameState(checkpoint.optimizerState, fromTorch), Number(state.optimizerStep ?? 0));
    }
    lastGood = options.resumeFrom;
  }

  // The cached features the mode steps on (all tower features, or the frozen image tower's columns).
  const scoring = strategy.scoringInputs(model, options.features);
  const cachedFeatures = scoring.features ?? scoring.imageFeatures;
  const featureTensor = cachedFeatures
    ? tf.tensor2d(cachedFeatures, [inputs.size, cachedFeatures.length / inputs.size])
    : undefined;
  // The running epoch's bar: a failure anywhere in the epoch leaves it showing where and why it stopped.
  let bar: Progress | undefined;
  try {
    for (let epoch = startEpoch + 1; epoch <= config.epochs; epoch++) {
      const resumed = partial?.epoch === epoch ? partial : null;
      const started = performance.now() - (resumed ? resumed.seconds * 1000 : 0);
      // Seeded per epoch, so a resumed run sees the same order as an uninterrupted one.
      const order = epochOrder(train, loss.grouped === true, new SeededRandom(config.seed * 1000 + epoch));
      const steps = Math.ceil(order.length / config.batchSize);
      bar = new Progress({
        total: order.length,
        label: `epoch ${epoch}/${config.epochs}`,
        unit: "pairs",
        silent: options.progress === false,
      });
      let lossSum = resumed?.lossSum ?? 0;
      let lossCount = resumed?.lossCount ?? 0;
      if (resumed) await bar.tick(Math.min(order.length, resumed.steps * config.batchSize));
      for (let s = resumed?.steps ?? 0; s < steps; s++) {
        const batchPairs = order.slice(s * config.batchSize, (s + 1) * config.batchSize);
        const rows = [...new Set(batchPairs.flatMap((p) => [train.left[p], train.right[p]]))];
        const local = new Map(rows.map((row, i) => [row, i]));
        const leftLocal = batchPairs.map((p) => local.get(train.left[p])!);
        const rightLocal = batchPairs.map((p) => local.get(train.right[p])!);
        const labels = batchPairs.map((p) => train.labels[p]);
        const groups = loss.grouped ? batchPairs.map((p) => train.groups![p]) : undefined;
        const batch = strategy.batch(inputs, rows, featureTensor !== undefined);
        // Dropout masks depend only on the run's seed and the step: runs repeat, resumed ones too.
        seedDropout(config.seed * 1_000_003 + (step + 1) * 1_009);
        let value: tf.Scalar;
        let grads: tf.NamedTensorMap;
        try {
          ({ value, grads } = tf.variableGrads(() => {
            const cached = featureTensor ? tf.gather(featureTensor, tf.tensor1d(rows, "int32")) as tf.Tensor2D : null;
            const embeddings = strategy.embed(model, batch, cached, true);
            const distances = pairwiseDistance(
              tf.gather(embeddings, tf.tensor1d(leftLocal, "int32")) as tf.Tensor2D,
              tf.gather(embeddings, tf.tensor1d(rightLocal, "int32")) as tf.Tensor2D,
            );
            const groupTensor = groups ? tf.tensor1d(groups, "int32") : undefined;
            return loss.apply(distances, tf.tensor1d(labels), config.margin, groupTensor);
          }, variables));
        } finally {
          seedDropout(null);
          if (batch) disposeProductBatch(batch);
        }
        let stepLoss = (await value.data())[0];
        value.dispose();
        step += 1;
        if (options.lossHook) stepLoss = options.lossHook(epoch, step, stepLoss);
        if (!Number.isFinite(stepLoss)) {
          Object.values(grads).forEach((g) => g.dispose());
          bar.setMetrics({ loss: stepLoss });
          throw new TrainingDivergedError(epoch, step, stepLoss, lastGood);
        }
        const clipped = config.gradientClip > 0
          ? (await clipGradientsByGlobalNorm(grads, config.gradientClip)).gradients
          : grads;
        optimizer.applyGradients(variables, clipped);
        Object.values(clipped).forEach((g) => g.dispose());
        lossSum += stepLoss * batchPairs.length;
        lossCount += batchPairs.length;
        await bar.tick(batchPairs.length, { loss: lossSum / lossCount, lr: optimizer.learningRate });
        if (s + 1 < steps && takeInterrupt()) {
          const where = `epoch ${epoch}/${config.epochs}, step ${s + 1}/${steps}`;
          const dir = join(tmpDir, "interrupted");
          // The model and optimizer after this step, with what a resumed run needs to go on from there.
          const partialEpoch: PartialEpoch = {
            epoch,
            steps: s + 1,
            lossSum,
            lossCount,
            seconds: (performance.now() - started) / 1000,
          };
          await saveCheckpoint(dir, {
            model,
            config: model.config,
            trainingState: {
              epoch: epoch - 1,
              step,
              optimizerStep: optimizer.step,
              learningRate: optimizer.learningRate,
              plateau: plateau.state,
              history,
              config,
              partial: partialEpoch,
            },
            optimizerState: renameState(await optimizer.stateDict(), toTorch),
          });
          await bar.stop(`interrupted at ${where}`);
          throw new InterruptedError(
            `training stopped at ${where}`,
            `the model and optimizer after that step and the resume state, in ${shownPath(dir)}` +
              (lastGood ? `; the last finished epoch in ${shownPath(lastGood)}.` : "."),
            resumeHint(dir),
            dir,
          );
        }
      }
      await bar.done();
      const trainSeconds = (performance.now() - started) / 1000;
      const metrics = await validate(options, scoring);
      const record: EpochRecord = {
        epoch,
        trainLoss: lossSum / Math.max(1, lossCount),
        ...metrics,
        learningRate: optimizer.learningRate,
        seconds: (performance.now() - started) / 1000,
        pairsPerSecond: lossCount / trainSeconds,
      };
      history.push(record);
      optimizer.learningRate = plateau.step(watched.value(record), optimizer.learningRate);
      const trainingState = {
        epoch,
        step,
        optimizerStep: optimizer.step,
        learningRate: optimizer.learningRate,
        plateau: plateau.state,
        history,
        metrics: {
          f1: record.f1,
          auc: record.auc,
          thresholdDistance: record.threshold.distance,
          valLoss: record.valLoss,
        },
        config,
        optimizer: { name: "AdamW", weightDecay: config.weightDecay },
      };
      const optimizerState = renameState(await optimizer.stateDict(), toTorch);
      const epochDir = join(tmpDir, `epoch-${String(epoch).padStart(3, "0")}`);
      await saveCheckpoint(epochDir, { model, config: model.config, trainingState, optimizerState });
      lastGood = epochDir;
      if (history.slice(0, -1).every((earlier) => isBetterEpoch(config.bestMetric, record, earlier))) {
        await saveCheckpoint(bestDir, { model, config: model.config, trainingState: { ...trainingState, best: true } });
      }
      await options.onEpoch?.(record, history);
      if (epoch < config.epochs && takeInterrupt()) {
        throw new InterruptedError(
          `training stopped after epoch ${epoch}/${config.epochs}`,
          `every finished epoch, the last in ${shownPath(epochDir)}; the best so far in ${shownPath(bestDir)}.`,
          resumeHint(epochDir),
          epochDir,
        );
      }
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
  const bestEpoch = history.reduce((best, r) => (isBetterEpoch(config.bestMetric, r, best) ? r : best)).epoch;
  return { history, bestEpoch, bestDir, finalDir, startEpoch };
}
