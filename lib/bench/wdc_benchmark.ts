/**
 * The WDC Products benchmark (80% corner cases; Peeters, Der, Bizer, EDBT 2024) in one run:
 *
 * 1. imports the benchmark into the suite's layout (`wdcImportOptions` + `importPairs`), or reuses a
 *    complete import (its manifest exists and it has the WordPiece tokenizer learnt from the training split);
 * 2. pretrains the text towers (the `tiny` preset sized to that tokenizer, from random weights) without
 *    labels on the training products' own titles and descriptions (train/text_pretraining.ts; `pretraining:
 *    null` skips it), then trains SiameseRuCLIP from there on the TRAINING pairs only, once per trial
 *    configuration (mode, loss, learning rate, margin, batch size, epochs, head residual); each trial keeps
 *    its best epoch by validation F1 (a residual's scale is then chosen on validation), and the trial with
 *    the best validation F1 is the model reported: nothing but the validation split chooses;
 * 3. scores the three test sets (`test` = 000un, entities seen in training; `test_half_unseen` = 050un;
 *    `test_unseen` = 100un) at the threshold chosen F1-optimal on validation, unchanged on test;
 * 4. computes the baselines the same way: TF-IDF cosine on the title and on title + description
 *    (`lexicalBaseline`, IDF fitted on training products), and the tower features every trial starts from
 *    (the pretrained towers, before any labelled training) compared by Euclidean distance (all tower
 *    features, the constant placeholder-image columns cancel) and by cosine similarity (the name tower's
 *    columns), and the random towers' name cosine; every method also ranks each left offer's pairs (MRR, mAP);
 * 5. lists the published anchors of the benchmark folder's README beside them.
 *
 * Products have no images: every product gets the placeholder image, so the image tower is frozen
 * (`text` mode: its features are computed once; `head` mode: all towers frozen, only the head trains).
 *
 * The result is plain data (`WdcBenchmarkResult`); `renderWdcMarkdown` makes the report's tables and
 * `writeWdcReports` writes `wdc_benchmark.json` and `wdc_benchmark.md`.
 *
 * @module
 */
import { join } from "node:path";
import { importPairs } from "../data/import_pairs.ts";
import { importedLayout, type ImportManifest, readImportManifest } from "../data/imported_dataset.ts";
import { WDC_PREFIX, WDC_TEST_SETS, wdcImportOptions, type WdcSize } from "../data/wdc_products.ts";
import { lexicalBaseline } from "../eval/lexical_baseline.ts";
import { applyThreshold, chooseThreshold, type PairReport } from "../eval/pair_metrics.ts";
import { queryPairRanking, type RankingSummary } from "../eval/ranking.ts";
import type { NamePooling } from "../model/ruclip.ts";
import type { SiameseRuCLIP } from "../model/siamese.ts";
import { exists, writeFileAtomic, writeJsonAtomic } from "../fs.ts";
import { dataDir, reportsDir, shownPath } from "../paths.ts";
import { tf } from "../tf.ts";
import { DEFAULT_TRAINING_CONFIG, type TrainingConfig } from "../train/config.ts";
import { rowPairDistances } from "../train/embed.ts";
import { cachedTowerFeatures } from "../train/feature_cache.ts";
import { ProductInputs } from "../train/product_inputs.ts";
import { productRecords, readSplitPairs, setupModel } from "../train/session.ts";
import {
  pretrainTextTowers,
  type TextPretrainingConfig,
  type TextPretrainingResult,
  textPretrainingRows,
} from "../train/text_pretraining.ts";
import { type EpochRecord, type PairIndexSet, pairIndexSet } from "../train/trainer.ts";
import { runTrial } from "../experiment/trial.ts";

/** The test splits in report order, with what each holds. */
export const WDC_TEST_SPLITS: { split: string; file: string; description: string }[] = [
  { split: "test", file: `${WDC_PREFIX}${WDC_TEST_SETS.test}`, description: "entities seen in training" },
  {
    split: "test_half_unseen",
    file: `${WDC_PREFIX}${WDC_TEST_SETS.test_half_unseen}`,
    description: "half the entities unseen",
  },
  { split: "test_unseen", file: `${WDC_PREFIX}${WDC_TEST_SETS.test_unseen}`, description: "all entities unseen" },
];

/** A published result, quoted as the benchmark folder's README gives it (F1 on one test set). */
export interface PublishedAnchor {
  method: string;
  split: string;
  f1: number;
  source: string;
}

/**
 * The published anchors the benchmark folder's README quotes (F1, 80% corner cases, seen test set). The
 * README asks for the WDC paper's own tables to be looked up before quoting more, so only these are listed.
 */
export const WDC_PUBLISHED_ANCHORS: PublishedAnchor[] = [
  ["GPT-4o-mini (zero-shot)", 0.816],
  ["Llama-3.1-70B (zero-shot)", 0.752],
  ["Llama-3.1-8B (zero-shot)", 0.534],
].map(([method, f1]) => ({
  method: method as string,
  split: "test",
  f1: f1 as number,
  source: "TailorMatch results workbook (Steiner, Peeters, Bizer, arXiv 2409.08185), as quoted in " +
    "../shared/data/wdc-products/README.md",
}));

/** One training configuration tried; unset fields take the benchmark's defaults (`WDC_TRAINING_DEFAULTS`). */
export interface WdcTrial {
  name: string;
  config: Partial<TrainingConfig>;
  /**
   * The head residual's trained scale (SiameseRuCLIPConfig `headResidual`); the scale is then chosen on
   * validation (train/residual_scale.ts), as the training notebook does. Absent: no residual.
   */
  headResidual?: number;
}

/** The benchmark's label-free text pretraining (the seed is the run's). */
export const WDC_TEXT_PRETRAINING: Omit<TextPretrainingConfig, "seed"> = {
  epochs: 10,
  batchSize: 128,
  learningRate: 1e-3,
  weightDecay: 0.01,
  temperature: 0.05,
};

/** The training defaults of the benchmark (from-scratch towers want a larger step than fine-tuning). */
export const WDC_TRAINING_DEFAULTS: TrainingConfig = {
  ...DEFAULT_TRAINING_CONFIG,
  mode: "text",
  epochs: 4,
  batchSize: 32,
  learningRate: 1e-3,
  margin: 1,
  loss: "contrastive",
  bestMetric: "f1",
  plateauPatience: 1,
};

/**
 * The trials of a full run (about 15 minutes on 2 cores for WDC small; chosen by validation F1 only), each
 * from the label-free pretrained towers: text mode (text towers and head train, about 40 s an epoch) with the
 * raw tower distance kept as a residual at two scales (at 1 the contrastive loss shapes the towers' own
 * distance most directly), and head mode (towers frozen; seconds an epoch). Measured before (README): text mode
 * without a residual, or with 0.1, online contrastive and weight decay 0.1 were behind on validation.
 */
export const WDC_DEFAULT_TRIALS: WdcTrial[] = [
  { name: "text-residual1-e8", config: { epochs: 8 }, headResidual: 1 },
  { name: "text-residual0.3-e8", config: { epochs: 8 }, headResidual: 0.3 },
  { name: "head-residual0.1-e10", config: { mode: "head", epochs: 10 }, headResidual: 0.1 },
];

const TRIAL_KEYS: Record<string, keyof TrainingConfig> = {
  mode: "mode",
  loss: "loss",
  lr: "learningRate",
  margin: "margin",
  batch: "batchSize",
  epochs: "epochs",
  wd: "weightDecay",
  clip: "gradientClip",
  patience: "plateauPatience",
  best: "bestMetric",
};

/**
 * A trial from text, `name:key=value,key=value` (keys: mode, loss, lr, margin, batch, epochs, wd, clip,
 * patience, best, residual), e.g. `wide:lr=3e-3,batch=64,loss=online-contrastive`; the values are checked by
 * the trainer (residual: a number > 0, the head residual's trained scale).
 */
export function parseWdcTrial(text: string): WdcTrial {
  const colon = text.indexOf(":");
  const name = (colon < 0 ? text : text.slice(0, colon)).trim();
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new Error(`trial "${text}": the name may hold letters, digits, _ . -`);
  const config: Record<string, string | number> = {};
  let headResidual: number | undefined;
  for (const part of colon < 0 ? [] : text.slice(colon + 1).split(",").filter((p) => p.trim())) {
    const [key, value] = part.split("=").map((p) => p.trim());
    if (key === "residual") {
      headResidual = Number(value);
      if (!(Number.isFinite(headResidual) && headResidual > 0)) {
        throw new Error(`trial "${text}": residual=${value} is not a number > 0`);
      }
      continue;
    }
    const field = TRIAL_KEYS[key];
    if (!field || value === undefined || value === "") {
      throw new Error(
        `trial "${text}": "${part}" is not key=value with a key of ${
          [...Object.keys(TRIAL_KEYS), "residual"].join(", ")
        }`,
      );
    }
    config[field] = ["mode", "loss", "bestMetric"].includes(field) ? value : Number(value);
  }
  return { name, config: config as Partial<TrainingConfig>, ...(headResidual === undefined ? {} : { headResidual }) };
}

/** The single trial of `--quick`. */
export const WDC_QUICK_TRIALS: WdcTrial[] = [{ name: "text-contrastive-quick", config: { epochs: 1 } }];

/** Options of `runWdcBenchmark`. */
export interface WdcBenchmarkOptions {
  /** Training/validation size (default "small"). */
  size?: WdcSize;
  /** The benchmark folder (default: see `wdcProductsDir`). */
  dir?: string;
  /** Data root (default `dataDir()`); the dataset goes to `<root>/tables_<dataset>/`. */
  root?: string;
  /** Dataset name (default `wdc_products_<size>`). */
  dataset?: string;
  /** Epochs of every trial (overrides the trials' own). */
  epochs?: number;
  /** Seed of the model initialisation and of training. */
  seed?: number;
  /**
   * The name tower's pooling (RuCLIPConfig `namePooling`; default "mean"): the towers start from random
   * weights, and a random BERT's [CLS] state is nearly the same for every title (see ruclip.ts).
   */
  namePooling?: NamePooling;
  /**
   * The label-free pretraining of the text towers on the training products' titles and descriptions
   * (train/text_pretraining.ts) before any trial; fields override `WDC_TEXT_PRETRAINING`; null = none
   * (the trials start from random towers).
   */
  pretraining?: Partial<TextPretrainingConfig> | null;
  /** A smoke run: one trial of one epoch (unless `epochs`/`trials` say otherwise). */
  quick?: boolean;
  /** The trials to run (default `WDC_DEFAULT_TRIALS`, or `WDC_QUICK_TRIALS` when quick). */
  trials?: readonly WdcTrial[];
  /** At most this many training pairs (the first ones, in the split's order); default all. */
  maxTrainPairs?: number;
  /** Checkpoints of the trials (default `<root>/runs/wdc_benchmark/<dataset>`). */
  runDir?: string;
  /** Tower-feature cache (default `<root>/feature_cache`). */
  cacheDir?: string;
  /** How the run was set up (backend, threads), recorded in the result as given. */
  environment?: Record<string, string>;
  /** Epoch lines and stages (default console.log); `null` for silence. */
  log?: ((line: string) => void) | null;
}

/** One method's numbers on one test split, at the threshold chosen on validation. */
export interface WdcMetricRow {
  method: string;
  kind: "trained" | "baseline";
  split: string;
  pairs: number;
  positives: number;
  precision: number;
  recall: number;
  f1: number;
  rocAuc: number;
  averagePrecision: number;
  /** The score threshold applied (chosen on validation). */
  threshold: number;
  /** F1 on validation at that threshold. */
  validationF1: number;
  /** Each left offer's pairs ranked by score (queries with a positive): MRR and mAP, and how many queries. */
  mrr: number;
  map: number;
  queries: number;
}

/** What one trial did, on validation only. */
export interface WdcTrialResult {
  name: string;
  config: TrainingConfig;
  bestEpoch: number;
  /** Validation F1 (F1-optimal threshold) of the best epoch: what chooses the trial. */
  validationF1: number;
  validationAuc: number;
  /** With a head residual: the scale trained at and the one chosen on validation (`validationF1` is at it). */
  residualScale?: { trained: number; chosen: number };
  seconds: number;
  history: Pick<EpochRecord, "epoch" | "trainLoss" | "valLoss" | "f1" | "auc" | "learningRate" | "seconds">[];
}

/** Everything one benchmark run found. */
export interface WdcBenchmarkResult {
  dataset: string;
  size: WdcSize;
  seed: number;
  quick: boolean;
  /** Whether an earlier complete import was reused. */
  reusedImport: boolean;
  splits: { split: string; pairs: number; positives: number; products: number }[];
  tokenizer: { path: string; vocabSize: number; learntFrom: string };
  model: {
    preset: string;
    parameters: number;
    textParameters: number;
    embeddingDim: number;
    maxTokens: number;
    namePooling: NamePooling;
  };
  /** The label-free text pretraining every trial started from (its folder as shown); null when turned off. */
  pretraining: TextPretrainingResult | null;
  trials: WdcTrialResult[];
  /** The trial reported (the best validation F1). */
  chosenTrial: string;
  /** Test rows: the trained model, then each baseline, per test split. */
  rows: WdcMetricRow[];
  anchors: PublishedAnchor[];
  /** How the untrained-features baselines compare features. */
  untrainedDistance: string;
  seconds: number;
  timings: Record<string, number>;
  environment: Record<string, string>;
  notes: string[];
}

const TRAINED_METHOD = "SiameseRuCLIP tiny, trained (best trial)";
const LEXICAL_METHODS: { method: string; fields: string[] }[] = [
  { method: "TF-IDF cosine (title)", fields: ["name"] },
  { method: "TF-IDF cosine (title + description)", fields: ["name", "description"] },
];
const UNTRAINED_METHODS = {
  euclidean: "Untrained towers, Euclidean (all tower features)",
  cosine: "Untrained towers, cosine (name tower features)",
};
const PRETRAINED_METHODS = {
  euclidean: "Label-free pretrained towers, Euclidean (all tower features)",
  cosine: "Label-free pretrained towers, cosine (name tower features)",
};

function noop(_line: string): void {}

/** Imports WDC Products unless a complete import with a tokenizer exists; returns the manifest. */
async function ensureImport(
  options: WdcBenchmarkOptions,
  dataset: string,
  root: string,
  log: (line: string) => void,
): Promise<{ manifest: ImportManifest; reused: boolean }> {
  const existing = await readImportManifest(dataset, root);
  if (existing && existing.tokenizer && (await exists(importedLayout(dataset, root).tokenizerDir))) {
    const splits = new Set(existing.splits.map((s) => s.split));
    if (["train", "val", ...WDC_TEST_SPLITS.map((t) => t.split)].every((s) => splits.has(s))) {
      log(`reusing the import of ${dataset} (${shownPath(importedLayout(dataset, root).manifest)})`);
      return { manifest: existing, reused: true };
    }
  }
  log(`importing WDC Products (${options.size ?? "small"}) as ${dataset}`);
  const importOptions = await wdcImportOptions({ dataset, dir: options.dir, size: options.size, root, tokenizer: {} });
  const result = await importPairs(importOptions);
  return { manifest: result.manifest, reused: false };
}

function reportRow(
  method: string,
  kind: WdcMetricRow["kind"],
  split: string,
  report: PairReport,
  validationF1: number,
  ranking: RankingSummary,
): WdcMetricRow {
  return {
    method,
    kind,
    split,
    pairs: report.pairs,
    positives: report.positives,
    precision: report.precision,
    recall: report.recall,
    f1: report.f1,
    rocAuc: report.rocAuc,
    averagePrecision: report.averagePrecision,
    threshold: report.threshold.score,
    validationF1,
    mrr: ranking.mrr,
    map: ranking.map,
    queries: ranking.queriesEvaluated,
  };
}

/** A pair set's pairs ranked per left offer (the import's query of a pair is its left product). */
function setRanking(set: PairIndexSet, scores: ArrayLike<number>): RankingSummary {
  return queryPairRanking({ queries: set.left, left: set.left, right: set.right, scores, labels: set.labels }).summary;
}

/** Threshold F1-optimal on validation scores, applied unchanged to each test split's scores. */
function thresholdRows(
  method: string,
  kind: WdcMetricRow["kind"],
  validation: { labels: ArrayLike<number>; scores: ArrayLike<number> },
  tests: { split: string; set: PairIndexSet; scores: ArrayLike<number> }[],
): WdcMetricRow[] {
  const chosen = chooseThreshold(validation.labels, validation.scores, { kind: "f1" });
  return tests.map((t) =>
    reportRow(
      method,
      kind,
      t.split,
      applyThreshold(chosen, t.set.labels, t.scores),
      chosen.validation.f1,
      setRanking(t.set, t.scores),
    )
  );
}

/** Cosine similarity between the rows of a row-major matrix, over columns [from, to). */
function rowPairCosines(
  matrix: Float32Array,
  dim: number,
  from: number,
  to: number,
  left: ArrayLike<number>,
  right: ArrayLike<number>,
): Float64Array {
  const out = new Float64Array(left.length);
  for (let i = 0; i < left.length; i++) {
    const a = left[i] * dim, b = right[i] * dim;
    let dot = 0, na = 0, nb = 0;
    for (let k = from; k < to; k++) {
      const x = matrix[a + k], y = matrix[b + k];
      dot += x * y;
      na += x * x;
      nb += y * y;
    }
    out[i] = na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
  }
  return out;
}

function negate(values: Float64Array): Float64Array {
  return values.map((v) => -v);
}

/** Runs the benchmark (see the module comment). The caller selects the tfjs backend first. */
export async function runWdcBenchmark(options: WdcBenchmarkOptions = {}): Promise<WdcBenchmarkResult> {
  const started = performance.now();
  const log = options.log === null ? noop : options.log ?? ((line: string) => console.log(line));
  const size = options.size ?? "small";
  const dataset = options.dataset ?? `wdc_products_${size}`;
  const root = options.root ?? dataDir();
  const seed = options.seed ?? 42;
  const quick = options.quick ?? false;
  const timings: Record<string, number> = {};
  const stage = async <T>(name: string, job: () => Promise<T> | T): Promise<T> => {
    const t0 = performance.now();
    try {
      return await job();
    } finally {
      timings[name] = (performance.now() - t0) / 1000;
    }
  };

  // 1. The dataset.
  const { manifest, reused } = await stage("import", () => ensureImport(options, dataset, root, log));
  const layout = importedLayout(dataset, root);
  const splitInfo = manifest.splits.map(({ split, pairs, positives, products }) => ({
    split,
    pairs,
    positives,
    products,
  }));

  // 2. The model inputs: every product's title and description through the tokenizer learnt on training texts.
  const namePooling = options.namePooling ?? "mean";
  const pretraining = options.pretraining === null ? null : { ...WDC_TEXT_PRETRAINING, ...options.pretraining, seed };
  const pretrainedDir = join(layout.tablesDir, "text_tower_pretrained");
  const setup = (textWeights?: string, headResidual?: number) =>
    setupModel({ preset: "tiny", tokenizer: layout.tokenizerDir, seed, namePooling, textWeights, headResidual });
  const first = await setup();
  let model: SiameseRuCLIP | null = first.model;
  const tokenizer = first.tokenizer;
  const modelInfo = {
    preset: first.config.name,
    parameters: model.parameterCount(),
    textParameters: model.parameterCount("ruclip.transformer.") + model.parameterCount("ruclip.final_ln.") +
      model.parameterCount("description_transformer."),
    embeddingDim: model.embeddingDim,
    maxTokens: first.config.maxTokens,
    namePooling,
  };
  let pretrainingResult: WdcBenchmarkResult["pretraining"] = null;
  try {
    const records = productRecords(dataset, root);
    const inputs = await stage("inputs", () =>
      ProductInputs.build(records, {
        tokenizer,
        imageSize: first.config.imageSize,
        maxTokens: first.config.maxTokens,
        progress: false,
      }));
    const cacheDir = options.cacheDir ?? join(root, "feature_cache");
    const readSet = (split: string): PairIndexSet => pairIndexSet(inputs, readSplitPairs(dataset, split, root));
    const trainPairs = readSplitPairs(dataset, "train", root).slice(0, options.maxTrainPairs);
    const train = pairIndexSet(inputs, trainPairs);
    // The random initialisation's features (a baseline), then, unless turned off, the label-free pretraining
    // of the text towers on the training products' own titles and descriptions: every trial starts from it.
    const random = await stage(
      "random features",
      () => cachedTowerFeatures(model!, inputs, { cacheDir, progress: false }),
    );
    let newModel = (headResidual?: number) => setup(undefined, headResidual);
    if (pretraining) {
      const done = await stage("text pretraining", () =>
        pretrainTextTowers({
          model: model!,
          inputs,
          rows: textPretrainingRows(inputs, records, trainPairs),
          config: pretraining,
          outDir: pretrainedDir,
          source: `${dataset}: the training split's products with a title and a description`,
          progress: false,
          log,
        }));
      pretrainingResult = { ...done, dir: shownPath(done.dir) };
      model.dispose();
      newModel = (headResidual?: number) => setup(pretrainedDir, headResidual);
      model = (await newModel()).model;
    }
    const validation = readSet("val");
    const tests = WDC_TEST_SPLITS.map(({ split }) => ({ split, set: readSet(split) }));

    // 4a. The untrained model: tower features of the starting point every trial trains from.
    const untrained = pretraining
      ? await stage(
        "starting features",
        () => cachedTowerFeatures(model!, inputs, { cacheDir, progress: false }),
      )
      : random;
    // Columns: [image (D), name (projectionDim), description (hidden)].
    const F = model.featureDim, D = model.imageDim;
    const untrainedRows = (
      method: string,
      score: (set: PairIndexSet) => Float64Array,
    ) =>
      thresholdRows(
        method,
        "baseline",
        { labels: validation.labels, scores: score(validation) },
        tests.map((t) => ({ split: t.split, set: t.set, scores: score(t.set) })),
      );
    const nameCosine = (features: Float32Array) => (set: PairIndexSet) =>
      rowPairCosines(features, F, D, D + first.config.projectionDim, set.left, set.right);
    const start = pretraining ? PRETRAINED_METHODS : UNTRAINED_METHODS;
    const baselineRows: WdcMetricRow[] = [
      ...untrainedRows(start.euclidean, (set) => negate(rowPairDistances(untrained.features, F, set.left, set.right))),
      ...untrainedRows(start.cosine, nameCosine(untrained.features)),
      ...(pretraining ? untrainedRows(UNTRAINED_METHODS.cosine, nameCosine(random.features)) : []),
    ];

    // 4b. The lexical baselines.
    await stage("lexical baselines", () => {
      for (const { method, fields } of LEXICAL_METHODS) {
        const result = lexicalBaseline({
          dataset,
          root,
          fields,
          trainSplit: "train",
          validationSplit: "val",
          testSplits: WDC_TEST_SPLITS.map((t) => t.split),
          rule: { kind: "f1" },
        });
        for (const t of result.tests) {
          baselineRows.push(
            reportRow(method, "baseline", t.split, t.report, result.chosen.validation.f1, t.ranking),
          );
        }
      }
    });

    // 2b. The trials, each from the same initialisation; chosen by validation F1 of its best epoch.
    const trials = options.trials ?? (quick ? WDC_QUICK_TRIALS : WDC_DEFAULT_TRIALS);
    if (trials.length === 0) throw new Error("runWdcBenchmark: no trials to run");
    const runRoot = options.runDir ?? join(root, "runs", "wdc_benchmark", dataset);
    const trialResults: (WdcTrialResult & { testRows: WdcMetricRow[] })[] = [];
    for (const [i, trial] of trials.entries()) {
      const config: TrainingConfig = {
        ...WDC_TRAINING_DEFAULTS,
        ...trial.config,
        ...(options.epochs !== undefined ? { epochs: options.epochs } : {}),
        seed,
      };
      if (config.mode === "full") throw new Error(`trial ${trial.name}: WDC has no images; use mode text or head`);
      if (model && model.headResidual !== (trial.headResidual ?? null)) {
        model.dispose();
        model = null;
      }
      if (!model) model = (await newModel(trial.headResidual)).model;
      const features = await cachedTowerFeatures(model, inputs, { cacheDir, progress: false });
      if (features.key !== untrained.key) {
        throw new Error(`trial ${trial.name}: the initialisation differs from the untrained baseline's`);
      }
      const runDir = join(runRoot, `${String(i + 1).padStart(2, "0")}-${trial.name}`);
      const tmpDir = join(runRoot, "tmp", trial.name);
      log(
        `trial ${i + 1}/${trials.length} ${trial.name}: mode ${config.mode}, loss ${config.loss}, ` +
          `lr ${config.learningRate}, margin ${config.margin}, batch ${config.batchSize}, epochs ${config.epochs}`,
      );
      // The training notebook's flow (lib/experiment/trial.ts); each left offer's pairs are its candidates.
      const done = await runTrial({
        model,
        inputs,
        features: features.features,
        config,
        train,
        validation: { split: "val", pairs: validation, queryCandidates: validation },
        tests: tests.map((t) => ({ split: t.split, pairs: t.set, queryCandidates: t.set })),
        rule: { kind: "f1" },
        runDir,
        tmpDir,
        progress: false,
        onEpoch: (r) =>
          log(
            `  epoch ${r.epoch}: train loss ${r.trainLoss.toFixed(4)}, val loss ${r.valLoss.toFixed(4)}, ` +
              `val F1 ${r.f1.toFixed(4)}, val AUC ${r.auc.toFixed(4)}, lr ${r.learningRate.toExponential(1)}, ` +
              `${r.seconds.toFixed(1)} s`,
          ),
      });
      await Deno.remove(tmpDir, { recursive: true }).catch(() => {});
      if (done.residual) {
        log(`  residual scale ${done.residual.scale} chosen on validation (trained at ${done.residual.trainedScale})`);
      }
      trialResults.push({
        name: trial.name,
        config,
        bestEpoch: done.training.bestEpoch,
        validationF1: done.validation.report.f1,
        validationAuc: done.validation.report.rocAuc,
        ...(done.residual
          ? { residualScale: { trained: done.residual.trainedScale, chosen: done.residual.scale } }
          : {}),
        seconds: done.seconds,
        history: done.training.history.map(({ epoch, trainLoss, valLoss, f1, auc, learningRate, seconds }) => ({
          epoch,
          trainLoss,
          valLoss,
          f1,
          auc,
          learningRate,
          seconds,
        })),
        testRows: done.tests.map((t) =>
          reportRow(TRAINED_METHOD, "trained", t.split, t.report, done.validation.report.f1, t.ranking!)
        ),
      });
      model.dispose();
      model = null;
    }
    timings.training = trialResults.reduce((s, t) => s + t.seconds, 0);
    await Deno.remove(join(runRoot, "tmp"), { recursive: true }).catch(() => {});

    // 3. The chosen trial: its best epoch at the threshold chosen on validation, on every test split.
    const chosen = trialResults.reduce((a, b) => (b.validationF1 > a.validationF1 ? b : a));
    log(`chosen on validation: ${chosen.name} (epoch ${chosen.bestEpoch}, val F1 ${chosen.validationF1.toFixed(4)})`);
    const trainedRows = chosen.testRows;

    const notes = [
      `Tokenizer: WordPiece learnt by the import from the training split's titles and descriptions only ` +
      `(${tokenizer.vocabSize} tokens); IDF of the TF-IDF baselines fitted on training products only.`,
      "Every threshold is the F1-optimal one on the validation split, applied unchanged to the test splits; " +
      "the trial and its epoch are chosen by validation F1 only.",
      `Model: the tiny preset (${
        pretraining ? "text towers pretrained without labels, see below" : "random initialisation"
      }, ${modelInfo.textParameters} text-tower parameters, ` +
      `${modelInfo.maxTokens} tokens per title and per description); no images, so every product gets the ` +
      "placeholder image and the image tower is frozen.",
      `Starting-point baselines: the towers every trial starts from (${
        pretraining ? "label-free pretrained" : "random"
      }), before any labelled training; Euclidean distance over all tower ` +
      "features (the placeholder image's columns are equal for every product and cancel; the description " +
      "columns, mean-pooled, have the largest spread and dominate it) and cosine similarity over the name " +
      `tower's features (the projected ${
        namePooling === "mean" ? "mean of the title's tokens" : "[CLS] of the title"
      }).`,
    ];
    if (pretrainingResult) {
      const p = pretrainingResult;
      notes.push(
        `Label-free pretraining before every trial: name-description InfoNCE (in-batch negatives, temperature ` +
          `${p.config.temperature}) on the titles of the ${p.products} training products, against their own ` +
          `description for the ${p.twoViews} that have one and against the title under other dropout masks ` +
          `(SimCSE) for the rest, ${p.config.epochs} epochs, batch ${p.config.batchSize}, lr ` +
          `${p.config.learningRate}; one BERT for both views, loaded into both text towers. Name -> own ` +
          `description top-1 among ${Math.min(p.twoViews, 1000)}: ${fixed(p.alignmentBefore ?? NaN)} before, ` +
          `${fixed(p.alignmentAfter ?? NaN)} after. ` +
          `"Untrained towers" rows are the random initialisation it started from.`,
      );
    }
    notes.push(
      "Ranking: a test set's pairs grouped by their left offer and ranked by score; MRR and mAP over the left " +
        "offers with a matching pair (WDC Products: 500 per test set, each with one match among 9 offers, so the " +
        "two are equal).",
      "No zero-shot text encoder baseline: the only pretrained text encoders here (the demo's towers and sentence " +
        "model) are Russian marketplace models with their own vocabularies, and nothing can be downloaded.",
    );
    if (quick) notes.push("Quick smoke run: not a benchmark result.");
    if (options.maxTrainPairs !== undefined) notes.push(`Training pairs capped at ${options.maxTrainPairs}.`);
    return {
      dataset,
      size,
      seed,
      quick,
      reusedImport: reused,
      splits: splitInfo,
      tokenizer: { path: shownPath(layout.tokenizerDir), vocabSize: tokenizer.vocabSize, learntFrom: "train" },
      model: modelInfo,
      pretraining: pretrainingResult,
      trials: trialResults.map(({ testRows: _testRows, ...t }) => t),
      chosenTrial: chosen.name,
      rows: [...trainedRows, ...baselineRows],
      anchors: WDC_PUBLISHED_ANCHORS,
      untrainedDistance: "Euclidean over all tower features; cosine over the name tower's features",
      seconds: (performance.now() - started) / 1000,
      timings,
      environment: options.environment ?? {},
      notes,
    };
  } finally {
    (model as SiameseRuCLIP | null)?.dispose();
  }
}

function fixed(value: number, digits = 3): string {
  return Number.isFinite(value) ? value.toFixed(digits) : "n/a";
}

/** The report as markdown: a summary table (F1 per test set, with the anchors), the full table and the trials. */
export function renderWdcMarkdown(result: WdcBenchmarkResult): string {
  const splits = WDC_TEST_SPLITS.map((t) => t.split);
  const methods = [...new Set(result.rows.map((r) => r.method))];
  const cell = (method: string, split: string) => result.rows.find((r) => r.method === method && r.split === split);
  const lines: string[] = [];
  lines.push(`# WDC Products benchmark (${result.dataset}, 80% corner cases)`, "");
  lines.push(
    `Training size ${result.size}, seed ${result.seed}${result.quick ? ", QUICK smoke run" : ""}; ` +
      `${result.seconds.toFixed(0)} s in all. Test sets: ` +
      WDC_TEST_SPLITS.map((t) => `\`${t.split}\` (${t.file}, ${t.description})`).join(", ") + ".",
    "",
  );
  lines.push("## F1 at the validation-chosen threshold", "");
  lines.push(`| method | ${splits.join(" | ")} | source |`, `|---|${splits.map(() => "---:").join("|")}|---|`);
  for (const method of methods) {
    const kind = cell(method, splits[0])?.kind === "trained" ? "this run (trained)" : "this run (baseline)";
    lines.push(`| ${method} | ${splits.map((s) => fixed(cell(method, s)?.f1 ?? NaN)).join(" | ")} | ${kind} |`);
  }
  for (const anchor of result.anchors) {
    lines.push(
      `| ${anchor.method} | ${splits.map((s) => (s === anchor.split ? fixed(anchor.f1) : "—")).join(" | ")} | ` +
        `published: ${anchor.source} |`,
    );
  }
  lines.push("", "## Pair AP and ranking (AP / MRR / mAP; each left offer's pairs ranked by score)", "");
  lines.push(`| method | ${splits.join(" | ")} |`, `|---|${splits.map(() => "---:").join("|")}|`);
  for (const method of methods) {
    const three = (r: WdcMetricRow | undefined) =>
      r ? `${fixed(r.averagePrecision)} / ${fixed(r.mrr)} / ${fixed(r.map)}` : "—";
    lines.push(`| ${method} | ${splits.map((s) => three(cell(method, s))).join(" | ")} |`);
  }
  lines.push("", "## Every metric", "");
  lines.push(
    "| method | test set | pairs | positives | precision | recall | F1 | ROC AUC | AP | MRR | mAP | val F1 |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  );
  for (const r of result.rows) {
    lines.push(
      `| ${r.method} | ${r.split} | ${r.pairs} | ${r.positives} | ${fixed(r.precision)} | ${fixed(r.recall)} | ` +
        `${fixed(r.f1)} | ${fixed(r.rocAuc)} | ${fixed(r.averagePrecision)} | ${fixed(r.mrr)} | ${fixed(r.map)} | ` +
        `${fixed(r.validationF1)} |`,
    );
  }
  lines.push("", "## Trials (validation only; the best validation F1 is reported above)", "");
  lines.push(
    "| trial | mode | loss | lr | margin | batch | epochs | best epoch | val F1 | val AUC | seconds |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  );
  for (const t of result.trials) {
    const c = t.config;
    lines.push(
      `| ${t.name}${t.name === result.chosenTrial ? " (chosen)" : ""}${
        t.residualScale ? ` (residual ${t.residualScale.trained} -> ${t.residualScale.chosen})` : ""
      } | ${c.mode} | ${c.loss} | ${c.learningRate} | ` +
        `${c.margin} | ${c.batchSize} | ${c.epochs} | ${t.bestEpoch} | ${fixed(t.validationF1)} | ` +
        `${fixed(t.validationAuc)} | ${t.seconds.toFixed(0)} |`,
    );
  }
  lines.push("", "## Notes", "", ...result.notes.map((n) => `- ${n}`), "");
  return lines.join("\n");
}

/** Writes `<dir>/wdc_benchmark.json` and `<dir>/wdc_benchmark.md`; returns their paths. */
export async function writeWdcReports(
  result: WdcBenchmarkResult,
  dir: string = reportsDir(),
): Promise<{ json: string; markdown: string }> {
  const json = join(dir, "wdc_benchmark.json");
  const markdown = join(dir, "wdc_benchmark.md");
  await Deno.mkdir(dir, { recursive: true });
  await writeJsonAtomic(json, { ...result, tensorsAtEnd: tf.memory().numTensors });
  await writeFileAtomic(markdown, renderWdcMarkdown(result));
  return { json, markdown };
}
