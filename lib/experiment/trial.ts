/**
 * A trial: one training configuration trained, chosen on validation, and evaluated on every test split.
 * The one flow that the training notebook, `deno task seeds` and the WDC benchmark share:
 *
 * 1. train on the training pairs (`trainSiamese`: every epoch validated and checkpointed; the best epoch by
 *    the configuration's `bestMetric`);
 * 2. load the best epoch's weights; with a head residual, choose its scale on validation
 *    (`chooseCheckpointResidualScale`, written into the best checkpoint's config);
 * 3. choose the threshold on the validation pairs by the rule given, apply it unchanged to each test split;
 *    rank each split's query-candidate pairs (the query on the left) for MRR and mAP.
 *
 * Nothing but the validation split chooses. The caller owns the model (set up with its preset, weights
 * and residual) and its cached tower features; afterwards the model holds the best epoch's weights at the
 * chosen residual scale. The result is plain data.
 *
 * @module
 */
import { InterruptedError } from "../notebook/interrupt.ts";
import type { SiameseRuCLIP } from "../model/siamese.ts";
import { loadCheckpoint } from "../model/checkpoint.ts";
import { applyThreshold, chooseThreshold, type ChosenThreshold, type PairReport } from "../eval/pair_metrics.ts";
import { queryPairRanking, type RankingSummary } from "../eval/ranking.ts";
import { describeRule, type ThresholdRule } from "../eval/threshold.ts";
import type { ParamOrigin, ParamValue } from "../notebook/params.ts";
import type { TrainingConfig } from "../train/config.ts";
import { scorePairSets } from "../train/evaluate.ts";
import type { ProductInputs } from "../train/product_inputs.ts";
import {
  chooseCheckpointResidualScale,
  queryCandidatePairs,
  type ResidualScaleChoice,
} from "../train/residual_scale.ts";
import { trainingStrategy } from "../train/strategies.ts";
import {
  epochCurveRow,
  type EpochRecord,
  type PairIndexSet,
  pairIndexSet,
  type TrainingResult,
  trainSiamese,
} from "../train/trainer.ts";
import { numericMetrics, type RunSink, startRun } from "./run_record.ts";
import { computeEmbeddings } from "../train/embed.ts";
import { inMemoryEmbeddings, type NamedEmbeddings } from "../eval/inputs.ts";

/** A split to evaluate: its pairs, and the pairs whose ranking per query gives MRR and mAP (query on the left). */
export interface TrialSplit {
  split: string;
  pairs: PairIndexSet;
  queryCandidates?: PairIndexSet;
}

/** A split's query-candidate rows (`SplitData.queryCandidates`). */
type QueryCandidateRow = { query_sku: string; candidate_sku: string; label: number };

/** A split's pairs as a `TrialSplit`, with its query-candidate pairs when the split has them. */
export function trialSplit(
  inputs: ProductInputs,
  split: string,
  pairs: readonly { skuLeft: string; skuRight: string; label: number; querySku?: string }[],
  queryCandidates?: readonly QueryCandidateRow[],
): TrialSplit {
  return {
    split,
    pairs: pairIndexSet(inputs, pairs),
    ...(queryCandidates && queryCandidates.length > 0
      ? { queryCandidates: queryCandidatePairs(inputs, queryCandidates) }
      : {}),
  };
}

/**
 * A dataset's splits as a trial's sets: `train` to train on, `val` to choose on, every other split of `pairs`
 * a test split; each with its query-candidate pairs where `splits` has them.
 */
export function trialSets(
  inputs: ProductInputs,
  pairs: Readonly<Record<string, readonly { skuLeft: string; skuRight: string; label: number; querySku?: string }[]>>,
  splits: readonly { split: string; queryCandidates?: readonly QueryCandidateRow[] }[] = [],
): Pick<TrialOptions, "train" | "validation" | "tests"> {
  for (const needed of ["train", "val"]) {
    if (!pairs[needed]) {
      throw new Error(`trialSets: no "${needed}" split (splits: ${Object.keys(pairs).join(", ") || "none"})`);
    }
  }
  const of = (name: string) =>
    trialSplit(inputs, name, pairs[name], splits.find((s) => s.split === name)?.queryCandidates);
  return {
    train: pairIndexSet(inputs, pairs.train),
    validation: of("val"),
    tests: Object.keys(pairs).filter((name) => name !== "train" && name !== "val").map(of),
  };
}

/** Options of `runTrial`. */
export interface TrialOptions {
  /** The model to train (the caller's: set up, owned and disposed by it). */
  model: SiameseRuCLIP;
  inputs: ProductInputs;
  /** All products' tower features (feature_cache.ts); head mode needs them, text mode uses their image columns. */
  features?: Float32Array;
  config: TrainingConfig;
  train: PairIndexSet;
  /** What chooses: the best epoch, the residual scale and the threshold. */
  validation: TrialSplit;
  /** Evaluated at the validation-chosen threshold, never chosen on. */
  tests: readonly TrialSplit[];
  /** How the threshold is chosen on validation. */
  rule: ThresholdRule;
  /** Residual scales to try (default the grid); `[]` keeps the trained scale. Ignored without a head residual. */
  residualScales?: readonly number[];
  /** Checkpoints: `<runDir>/best`, `<runDir>/final`; per-epoch ones under `tmpDir` (trainer's default). */
  runDir: string;
  tmpDir?: string;
  resumeFrom?: string;
  onEpoch?: (record: EpochRecord, history: EpochRecord[]) => void | Promise<void>;
  progress?: boolean;
}

/** One split at the validation-chosen threshold. */
export interface TrialEvaluation {
  split: string;
  report: PairReport;
  /** MRR, mAP and the rest over the split's query-candidate pairs; null when it has none. */
  ranking: RankingSummary | null;
}

/** What `runTrial` found. */
export interface TrialResult {
  config: TrainingConfig;
  training: TrainingResult;
  /** The residual's scale chosen on validation; null without a residual (or with `residualScales: []`). */
  residual: ResidualScaleChoice | null;
  /** The threshold chosen on validation (with the validation metrics at it). */
  chosen: ChosenThreshold;
  validation: TrialEvaluation;
  tests: TrialEvaluation[];
  seconds: number;
}

/** The headline numbers of an evaluation, flat (for run records and tables). */
export function evaluationNumbers(evaluation: TrialEvaluation): Record<string, number> {
  const { report, ranking } = evaluation;
  return {
    precision: report.precision,
    recall: report.recall,
    f1: report.f1,
    roc_auc: report.rocAuc,
    average_precision: report.averagePrecision,
    ...(ranking ? { mrr: ranking.mrr, map: ranking.map } : {}),
  };
}

function rankingOf(set: PairIndexSet | undefined, scores: Float64Array | undefined): RankingSummary | null {
  if (!set || !scores || set.labels.length === 0) return null;
  return queryPairRanking({ queries: set.left, left: set.left, right: set.right, scores, labels: set.labels }).summary;
}

/** Runs one trial; see the module comment. */
export async function runTrial(options: TrialOptions): Promise<TrialResult> {
  const started = performance.now();
  const { model, inputs, features, config, validation, tests } = options;
  const names = [validation.split, ...tests.map((t) => t.split)];
  const repeated = names.find((name, i) => names.indexOf(name) !== i);
  if (repeated) throw new Error(`runTrial: split "${repeated}" is given twice (splits: ${names.join(", ")})`);
  for (const split of [validation, ...tests]) {
    if (split.pairs.labels.length === 0) throw new Error(`runTrial: split "${split.split}" has no pairs`);
  }
  const training = await trainSiamese({
    model,
    inputs,
    features,
    config,
    train: options.train,
    validation: validation.pairs,
    runDir: options.runDir,
    tmpDir: options.tmpDir,
    resumeFrom: options.resumeFrom,
    onEpoch: options.onEpoch,
    progress: options.progress,
  });
  model.loadStateDict((await loadCheckpoint(training.bestDir)).stateDict, { strict: true });
  const scoring = trainingStrategy(config.mode).scoringInputs(model, features);
  const residual = await chooseCheckpointResidualScale({
    model,
    inputs,
    validation: validation.pairs,
    queryCandidates: validation.queryCandidates,
    scoring,
    scales: options.residualScales,
    checkpointDir: training.bestDir,
  });

  const splits = [validation, ...tests];
  const sets = splits.flatMap((s) => (s.queryCandidates ? [s.pairs, s.queryCandidates] : [s.pairs]));
  const scored = await scorePairSets(model, inputs, sets, scoring);
  let next = 0;
  const scoresOf = splits.map((s) => ({
    pairs: scored[next++].scores,
    queryCandidates: s.queryCandidates ? scored[next++].scores : undefined,
  }));
  const chosen = chooseThreshold(validation.pairs.labels, scoresOf[0].pairs, options.rule);
  const evaluations = splits.map((s, i): TrialEvaluation => ({
    split: s.split,
    report: i === 0 ? chosen.validation : applyThreshold(chosen, s.pairs.labels, scoresOf[i].pairs),
    ranking: rankingOf(s.queryCandidates, scoresOf[i].queryCandidates),
  }));
  return {
    config,
    training,
    residual,
    chosen,
    validation: evaluations[0],
    tests: evaluations.slice(1),
    seconds: (performance.now() - started) / 1000,
  };
}

/** A trial's run record (run_record.ts): who ran it, its parameters with their origin, where it goes. */
export interface TrialRecording {
  notebook: string;
  dataset: string;
  run: string;
  params: readonly { name: string; value: ParamValue; origin?: ParamOrigin }[];
  backend?: { name: string; threads?: number | null } | null;
  /** Default: the local store under the data folder. */
  sinks?: RunSink[];
  /** Artifacts besides the best checkpoint. */
  artifacts?: Record<string, string>;
}

/** A trial's final numbers for its run record: best epoch, validation F1, and `<split>/<metric>` per test split. */
export function trialMetrics(result: TrialResult): Record<string, number> {
  return {
    best_epoch: result.training.bestEpoch,
    val_f1: result.validation.report.f1,
    ...Object.assign({}, ...result.tests.map((t) => numericMetrics(`${t.split}/`, evaluationNumbers(t)))),
  };
}

/**
 * `runTrial` that leaves a run record: started before training, a curve row per epoch, finished with
 * `trialMetrics`, or marked failed with the error (which is rethrown).
 */
export async function runRecordedTrial(options: TrialOptions, recording: TrialRecording): Promise<TrialResult> {
  const handle = await startRun({
    notebook: recording.notebook,
    dataset: recording.dataset,
    run: recording.run,
    params: recording.params,
    backend: recording.backend ?? null,
    ...(recording.sinks ? { sinks: recording.sinks } : {}),
  });
  try {
    const result = await runTrial({
      ...options,
      onEpoch: async (record, history) => {
        await options.onEpoch?.(record, history);
        await handle.epoch(epochCurveRow(record));
      },
    });
    await handle.finish({
      metrics: trialMetrics(result),
      artifacts: { best_checkpoint: result.training.bestDir, ...recording.artifacts },
      thresholdRule: describeRule(options.rule),
    });
    return result;
  } catch (error) {
    if (error instanceof InterruptedError) await handle.stop(error.where);
    else await handle.fail(error instanceof Error ? error.message : String(error));
    throw error;
  }
}

/**
 * Every product's embedding by a trial's model, scored as its mode scores (after `runTrial` the model holds
 * the best epoch at the chosen residual scale): the Siamese features of the pair classifier.
 */
export async function trialEmbeddings(
  model: SiameseRuCLIP,
  config: TrainingConfig,
  inputs: ProductInputs,
  features: Float32Array,
  name = "SiameseRuCLIP",
): Promise<NamedEmbeddings> {
  const scoring = trainingStrategy(config.mode).scoringInputs(model, features);
  const vectors = await computeEmbeddings(model, inputs, undefined, { ...scoring, progress: false });
  return inMemoryEmbeddings(name, inputs.skus, vectors, model.embeddingDim, "euclidean");
}
