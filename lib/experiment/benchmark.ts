/**
 * A benchmark: every trial and every baseline on one dataset in one pass, the same way each time, for any
 * dataset `import_pairwise_dataset` brought in, the suite's own splits, or a preset (benchmark_presets.ts).
 *
 * Per seed (the model's initialisation and training):
 * 1. the model every trial starts from (the plan's preset; with `pretraining`, its text towers pretrained
 *    without labels on the training products' own texts first: train/text_pretraining.ts);
 * 2. each trial (lib/experiment/trial.ts: train, choose the residual's scale and the threshold on validation,
 *    test every test split); the trial with the best validation F1 is the seed's SiameseRuCLIP row: nothing
 *    but the validation split chooses;
 * 3. the tower features the trials start from as baselines (Euclidean over all of them, cosine over the name
 *    tower's), and the pair classifier with the chosen trial's Siamese features (lib/match).
 * Once: the lexical baselines (TF-IDF cosine on the title and on title + description, fitted on training
 * products) and the pair classifier on the pair evidence alone.
 *
 * Every method is scored on the same pairs: each test split's pairs at the threshold chosen on validation by
 * the plan's rule, and each split's query-candidate pairs ranked per query (MRR, mAP). A finished trial is
 * not redone when the run is restarted (its `trial.json` is read back); a failing trial is reported and the
 * others go on. The result is plain data; benchmark_report.ts renders and writes it.
 *
 * @module
 */
import { InterruptedError } from "../notebook/interrupt.ts";
import { join } from "node:path";
import { datasetLayout } from "../data/layout.ts";
import { fitOnTrainingSplit } from "../eval/lexical_baseline.ts";
import { lexicalPairScores } from "../eval/lexical.ts";
import { inMemoryEmbeddings, readQueryCandidateSet } from "../eval/inputs.ts";
import { applyThreshold, chooseThreshold, type PairReport } from "../eval/pair_metrics.ts";
import { queryPairRanking, type RankingSummary } from "../eval/ranking.ts";
import { describeRule, type ThresholdRule } from "../eval/threshold.ts";
import { exists, writeJsonAtomic } from "../fs.ts";
import { type ClassifierTrial, evaluatePairClassifiers, type PairTrial } from "../match/evaluation.ts";
import { loadCheckpoint } from "../model/checkpoint.ts";
import type { NamePooling } from "../model/ruclip.ts";
import type { SiameseRuCLIP } from "../model/siamese.ts";
import { shownPath } from "../paths.ts";
import { loadSentenceEncoder } from "../text/sbert.ts";
import type { TrainingConfig } from "../train/config.ts";
import { rowPairDistances } from "../train/embed.ts";
import { cachedTowerFeatures } from "../train/feature_cache.ts";
import { ProductInputs } from "../train/product_inputs.ts";
import { productRecords, readSplitPairs, setupModel, type SuiteModelPreset } from "../train/session.ts";
import {
  pretrainTextTowers,
  type TextPretrainingConfig,
  type TextPretrainingResult,
  textPretrainingRows,
} from "../train/text_pretraining.ts";
import { pairIndexSet } from "../train/trainer.ts";
import { LocalRunStore, type RunSink } from "./run_record.ts";
import { runRecordedTrial, trialEmbeddings, type TrialEvaluation, type TrialSplit, trialSplit } from "./trial.ts";

/** A published result on one test split (F1), quoted with its source. */
export interface PublishedAnchor {
  method: string;
  split: string;
  f1: number;
  source: string;
}

/** One training configuration tried; unset fields take the plan's `trainingDefaults`. */
export interface BenchmarkTrial {
  name: string;
  config: Partial<TrainingConfig>;
  /** The head residual's trained scale (its scale is then chosen on validation); absent: no residual. */
  headResidual?: number;
}

/** The model every trial starts from. */
export interface BenchmarkModel {
  preset: SuiteModelPreset;
  /** A tokenizer folder (an import's learnt WordPiece); default the preset's. */
  tokenizer?: string;
  namePooling?: NamePooling;
  /** Label-free pretraining of the text towers before the trials (its seed is the run's); null: none. */
  pretraining: Omit<TextPretrainingConfig, "seed"> | null;
}

/** What a benchmark runs: a dataset of the suite's layout, its model, trials, rule and anchors. */
export interface BenchmarkPlan {
  /** The report's name (`reports/benchmarks/<name>.*`): a preset's name or the dataset's. */
  name: string;
  title: string;
  dataset: string;
  /** Data root holding `tables_<dataset>/`. */
  root: string;
  /** The splits scored, in report order, each with what it holds. */
  testSplits: { split: string; description: string }[];
  model: BenchmarkModel;
  trainingDefaults: TrainingConfig;
  trials: BenchmarkTrial[];
  /** The trials of `--quick` (a smoke run, not a result). */
  quickTrials: BenchmarkTrial[];
  rule: ThresholdRule;
  /** Zero-shot sentence encoders on "name. description" (cosine), each a local folder or Hub id. */
  zeroShot?: { name: string; model: string }[];
  anchors: PublishedAnchor[];
  notes: string[];
}

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
export function parseTrial(text: string): BenchmarkTrial {
  const colon = text.indexOf(":");
  const name = (colon < 0 ? text : text.slice(0, colon)).trim();
  if (!/^[A-Za-z0-9_.+-]+$/.test(name)) throw new Error(`trial "${text}": the name may hold letters, digits, _ . + -`);
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
    const number = Number(value);
    if (!["mode", "loss", "bestMetric"].includes(field) && !Number.isFinite(number)) {
      throw new Error(`trial "${text}": ${key}=${value} is not a number`);
    }
    config[field] = ["mode", "loss", "bestMetric"].includes(field) ? value : number;
  }
  return { name, config: config as Partial<TrainingConfig>, ...(headResidual === undefined ? {} : { headResidual }) };
}

/** Options of `runBenchmark`. */
export interface BenchmarkOptions {
  /** Seeds of the model's initialisation and training (default [42]). */
  seeds?: readonly number[];
  /** The trials (default the plan's, or its quick ones with `quick`). */
  trials?: readonly BenchmarkTrial[];
  /** A smoke run: the plan's quick trials, one pretraining epoch. */
  quick?: boolean;
  /** Epochs of every trial (overrides the trials' own). */
  epochs?: number;
  /** The pair classifier rows (default true). */
  classifier?: boolean;
  /** At most this many training pairs for the trials (the first ones, in the split's order). */
  maxTrainPairs?: number;
  /** Checkpoints and trial records (default `<root>/runs/benchmarks/<name>`). */
  runDir?: string;
  /** Tower-feature cache (default `<root>/feature_cache`). */
  cacheDir?: string;
  /** How the run was set up (backend, threads), recorded as given. */
  environment?: Record<string, string>;
  /** The tfjs backend, for the trials' run records. */
  backend?: { name: string; threads?: number | null };
  /** Where each trial's run record goes (default the local store under `<root>/runs`). */
  runSinks?: RunSink[];
  /** Progress lines (default console.log); null for silence. */
  log?: ((line: string) => void) | null;
}

/** One method on one test split (and one seed, where training is random). */
export interface BenchmarkRow {
  method: string;
  kind: "trained" | "baseline" | "classifier";
  /** The seed of the run it came from; null for methods without randomness. */
  seed: number | null;
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
  /** Each query's candidates ranked by score: MRR and mAP, and how many queries had a match. */
  mrr: number;
  map: number;
  queries: number;
}

/** What one trial did (validation only chooses), or how it failed. */
export interface TrialRecord {
  seed: number;
  name: string;
  status: "finished" | "failed";
  error?: string;
  /** Read back from an earlier run's `trial.json` instead of trained again. */
  reused: boolean;
  config: TrainingConfig;
  headResidual: number | null;
  bestEpoch?: number;
  validationF1?: number;
  validationAuc?: number;
  residualScale?: { trained: number; chosen: number };
  seconds?: number;
  history?: { epoch: number; trainLoss: number; valLoss: number; f1: number; auc: number; seconds: number }[];
  /** The best checkpoint (as shown). */
  bestDir?: string;
  rows?: BenchmarkRow[];
}

/** Everything one benchmark run found. */
export interface BenchmarkResult {
  name: string;
  title: string;
  dataset: string;
  quick: boolean;
  seeds: number[];
  rule: string;
  splits: { split: string; description: string; pairs: number; positives: number }[];
  model: { preset: string; tokenizer: string; parameters: number; embeddingDim: number; namePooling: NamePooling };
  /** The label-free pretraining of each seed (null when the plan has none). */
  pretraining: (TextPretrainingResult & { seed: number })[] | null;
  trials: TrialRecord[];
  /** Per seed, the trial chosen by validation F1 (absent when every trial of the seed failed). */
  chosen: { seed: number; trial: string }[];
  rows: BenchmarkRow[];
  anchors: PublishedAnchor[];
  seconds: number;
  timings: Record<string, number>;
  environment: Record<string, string>;
  notes: string[];
}

/** The method names of the rows. */
export const BENCHMARK_METHODS = {
  trained: "SiameseRuCLIP (best trial on validation)",
  lexicalTitle: "TF-IDF cosine (title)",
  lexicalText: "TF-IDF cosine (title + description)",
  startEuclidean: "starting tower features, Euclidean",
  startCosine: "starting tower features, name cosine",
  randomCosine: "random towers, name cosine",
  classifierFull: "pair classifier (evidence + Siamese)",
  classifierEvidence: "pair classifier (evidence only)",
  bceHead: "BCE head (evidence only)",
} as const;

/** The zero-shot rows' method name. */
export const zeroShotMethod = (name: string) => `zero-shot ${name}`;

function reportRow(
  method: string,
  kind: BenchmarkRow["kind"],
  seed: number | null,
  split: string,
  report: PairReport,
  validationF1: number,
  ranking: RankingSummary | null,
): BenchmarkRow {
  return {
    method,
    kind,
    seed,
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
    mrr: ranking?.mrr ?? NaN,
    map: ranking?.map ?? NaN,
    queries: ranking?.queriesEvaluated ?? 0,
  };
}

/** A baseline scoring row pairs of the inputs (higher = more likely the same product). */
type RowScorer = (left: Int32Array, right: Int32Array) => Float64Array;

function ranking(set: TrialSplit["queryCandidates"], scorer: RowScorer): RankingSummary | null {
  if (!set || set.labels.length === 0) return null;
  const scores = scorer(set.left, set.right);
  return queryPairRanking({ queries: set.left, left: set.left, right: set.right, scores, labels: set.labels }).summary;
}

/** A baseline's rows: its threshold chosen on validation by `rule`, applied unchanged to each test split. */
function scorerRows(
  method: string,
  seed: number | null,
  scorer: RowScorer,
  validation: TrialSplit,
  tests: readonly TrialSplit[],
  rule: ThresholdRule,
): BenchmarkRow[] {
  const chosen = chooseThreshold(
    validation.pairs.labels,
    scorer(validation.pairs.left, validation.pairs.right),
    rule,
  );
  return tests.map((t) =>
    reportRow(
      method,
      "baseline",
      seed,
      t.split,
      applyThreshold(chosen, t.pairs.labels, scorer(t.pairs.left, t.pairs.right)),
      chosen.validation.f1,
      ranking(t.queryCandidates, scorer),
    )
  );
}

/** Cosine similarity of row pairs of a row-major matrix, over columns [from, to). */
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

/** The split's pairs and its query-candidate pairs (query on the left), as rows of the inputs. */
function datasetSplit(inputs: ProductInputs, plan: BenchmarkPlan, split: string, maxPairs?: number): TrialSplit {
  const candidates = readQueryCandidateSet(datasetLayout(plan.dataset, plan.root).splitsDir, split);
  return trialSplit(
    inputs,
    split,
    readSplitPairs(plan.dataset, split, plan.root).slice(0, maxPairs),
    candidates.querySkus.map((q, i) => ({
      query_sku: q,
      candidate_sku: candidates.candidateSkus[i],
      label: candidates.labels[i],
    })),
  );
}

/** A classifier trial's rows, one per test split of the plan (fitted once, tested on each). */
function classifierRows(
  trial: ClassifierTrial,
  kind: string,
  seed: number | null,
  plan: BenchmarkPlan,
): BenchmarkRow[] {
  return [trial, ...trial.more].map((t: PairTrial, i) =>
    reportRow(kind, "classifier", seed, plan.testSplits[i].split, t.test, t.chosen.validation.f1, t.ranking)
  );
}

/** The classifiers' splits of a plan: its first test split, the others as further test splits. */
function classifierSplits(plan: BenchmarkPlan) {
  const [first, ...rest] = plan.testSplits;
  return {
    dataset: plan.dataset,
    root: plan.root,
    rule: plan.rule,
    testSplit: first.split,
    moreTestSplits: rest.map((t) => t.split),
  };
}

const stableKey = (value: unknown) => JSON.stringify(value);

/** Runs the plan; see the module comment. The caller selects the tfjs backend first. */
export async function runBenchmark(plan: BenchmarkPlan, options: BenchmarkOptions = {}): Promise<BenchmarkResult> {
  const started = performance.now();
  const log = options.log === null ? () => {} : options.log ?? ((line: string) => console.log(line));
  const seeds = [...(options.seeds ?? [42])];
  if (seeds.length === 0 || seeds.some((s) => !Number.isInteger(s))) {
    throw new Error(`runBenchmark: seeds must be integers, got [${seeds.join(", ")}]`);
  }
  const quick = options.quick ?? false;
  const trials = options.trials ?? (quick ? plan.quickTrials : plan.trials);
  if (trials.length === 0) throw new Error("runBenchmark: no trials to run");
  const names = trials.map((t) => t.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new Error(`runBenchmark: two trials are named "${twice}"`);
  const runRoot = options.runDir ?? join(plan.root, "runs", "benchmarks", plan.name);
  const cacheDir = options.cacheDir ?? join(plan.root, "feature_cache");
  const timings: Record<string, number> = {};
  const stage = async <T>(name: string, job: () => Promise<T> | T): Promise<T> => {
    const t0 = performance.now();
    try {
      return await job();
    } finally {
      timings[name] = (timings[name] ?? 0) + (performance.now() - t0) / 1000;
    }
  };
  const pretraining = plan.model.pretraining && { ...plan.model.pretraining, ...(quick ? { epochs: 1 } : {}) };
  const setup = (seed: number, textWeights?: string, headResidual?: number) =>
    setupModel({
      preset: plan.model.preset,
      tokenizer: plan.model.tokenizer,
      seed,
      namePooling: plan.model.namePooling,
      textWeights,
      headResidual,
    });

  const first = await setup(seeds[0]);
  const records = productRecords(plan.dataset, plan.root);
  const inputs = await stage("inputs", () =>
    ProductInputs.build(records, {
      tokenizer: first.tokenizer,
      imageSize: first.config.imageSize,
      maxTokens: first.config.maxTokens,
      progress: false,
    }));
  const modelInfo = {
    preset: plan.model.preset,
    tokenizer: plan.model.tokenizer ? shownPath(plan.model.tokenizer) : `the ${plan.model.preset} preset's`,
    parameters: first.model.parameterCount(),
    embeddingDim: first.model.embeddingDim,
    namePooling: first.config.namePooling ?? "cls",
  };
  first.model.dispose();
  const train = pairIndexSet(inputs, readSplitPairs(plan.dataset, "train", plan.root).slice(0, options.maxTrainPairs));
  const validation = datasetSplit(inputs, plan, "val");
  const tests = plan.testSplits.map((t) => datasetSplit(inputs, plan, t.split));
  const rows: BenchmarkRow[] = [];
  const trialRecords: TrialRecord[] = [];
  const chosenTrials: BenchmarkResult["chosen"] = [];
  const pretrainings: (TextPretrainingResult & { seed: number })[] = [];
  const classifierOn = options.classifier ?? true;

  // Once: the lexical baselines and the pair classifier on the evidence alone.
  await stage("lexical baselines", () => {
    for (
      const [method, fields] of [
        [BENCHMARK_METHODS.lexicalTitle, ["name"]],
        [BENCHMARK_METHODS.lexicalText, ["name", "description"]],
      ] as const
    ) {
      const fitted = fitOnTrainingSplit(plan.dataset, { root: plan.root, fields, trainSplit: "train" });
      const scorer: RowScorer = (left, right) =>
        lexicalPairScores(
          fitted.model,
          fitted.texts,
          Array.from(left, (r) => inputs.skus[r]),
          Array.from(right, (r) => inputs.skus[r]),
          method,
        );
      rows.push(...scorerRows(method, null, scorer, validation, tests, plan.rule));
    }
  });
  for (const zeroShot of plan.zeroShot ?? []) {
    await stage("zero-shot encoders", async () => {
      const encoder = await loadSentenceEncoder(zeroShot.model);
      try {
        const vectors = await encoder.embed(records.map((p) => `${p.name}. ${p.description}`));
        const cosine: RowScorer = (left, right) =>
          Float64Array.from(left, (l, i) => {
            const a = vectors[l], b = vectors[right[i]];
            let dot = 0;
            for (let k = 0; k < a.length; k++) dot += a[k] * b[k];
            return dot;
          });
        rows.push(...scorerRows(zeroShotMethod(zeroShot.name), null, cosine, validation, tests, plan.rule));
      } finally {
        await encoder.dispose();
      }
    });
  }
  if (classifierOn) {
    await stage("pair classifier (evidence)", async () => {
      const { trials: fitted } = await evaluatePairClassifiers({
        ...classifierSplits(plan),
        siamese: null,
        bceHead: true,
      });
      rows.push(...classifierRows(fitted[0], BENCHMARK_METHODS.classifierEvidence, null, plan));
      rows.push(...classifierRows(fitted[1], BENCHMARK_METHODS.bceHead, null, plan));
      fitted.forEach((f) => f.classifier.dispose());
    });
    log(`pair classifier (evidence only): ${f1Line(rows, BENCHMARK_METHODS.classifierEvidence)}`);
    log(`BCE head (evidence only): ${f1Line(rows, BENCHMARK_METHODS.bceHead)}`);
  }

  for (const seed of seeds) {
    const seedDir = join(runRoot, `seed-${seed}`);
    let model: SiameseRuCLIP | null = (await setup(seed)).model;
    try {
      const random = await stage("tower features", () => cachedTowerFeatures(model!, inputs, { cacheDir }));
      let textWeights: string | undefined;
      if (pretraining) {
        const dir = join(seedDir, "text_tower_pretrained");
        const done = await stage(
          "text pretraining",
          () => pretrainedTowers(model!, inputs, records, plan, { ...pretraining, seed }, dir, log),
        );
        pretrainings.push({ ...done, dir: shownPath(done.dir), seed });
        textWeights = dir;
        model.dispose();
        model = (await setup(seed, textWeights)).model;
      }
      const start = pretraining
        ? await stage("tower features", () => cachedTowerFeatures(model!, inputs, { cacheDir }))
        : random;
      const F = model.featureDim, D = model.imageDim, nameTo = D + first.config.projectionDim;
      rows.push(
        ...scorerRows(
          BENCHMARK_METHODS.startEuclidean,
          seed,
          (l, r) => rowPairDistances(start.features, F, l, r).map((d) => -d),
          validation,
          tests,
          plan.rule,
        ),
        ...scorerRows(
          BENCHMARK_METHODS.startCosine,
          seed,
          (l, r) => rowPairCosines(start.features, F, D, nameTo, l, r),
          validation,
          tests,
          plan.rule,
        ),
      );
      if (pretraining) {
        rows.push(
          ...scorerRows(
            BENCHMARK_METHODS.randomCosine,
            seed,
            (l, r) => rowPairCosines(random.features, F, D, nameTo, l, r),
            validation,
            tests,
            plan.rule,
          ),
        );
      }
      model.dispose();
      model = null;

      for (const [i, trial] of trials.entries()) {
        const config: TrainingConfig = {
          ...plan.trainingDefaults,
          ...trial.config,
          ...(options.epochs !== undefined ? { epochs: options.epochs } : {}),
          seed,
        };
        const trialDir = join(seedDir, `${String(i + 1).padStart(2, "0")}-${trial.name}`);
        const key = stableKey({
          dataset: plan.dataset,
          model: plan.model,
          pretraining,
          config,
          headResidual: trial.headResidual ?? null,
          maxTrainPairs: options.maxTrainPairs ?? null,
          rule: plan.rule,
          tests: plan.testSplits.map((t) => t.split),
        });
        const header = `seed ${seed}, trial ${i + 1}/${trials.length} ${trial.name}`;
        const earlier = await readTrialRecord(trialDir, key);
        if (earlier) {
          log(`${header}: finished in an earlier run, read back (${shownPath(join(trialDir, "trial.json"))})`);
          trialRecords.push({ ...earlier, reused: true });
          continue;
        }
        log(
          `${header}: mode ${config.mode}, loss ${config.loss}, lr ${config.learningRate}, margin ${config.margin}, ` +
            `batch ${config.batchSize}, epochs ${config.epochs}` +
            (trial.headResidual ? `, residual ${trial.headResidual}` : ""),
        );
        const trialModel = (await setup(seed, textWeights, trial.headResidual)).model;
        try {
          const features = await cachedTowerFeatures(trialModel, inputs, { cacheDir, progress: false });
          if (features.key !== start.key) {
            throw new Error(`trial ${trial.name}: its initialisation differs from the starting features'`);
          }
          const done = await stage("trials", () =>
            runRecordedTrial({
              model: trialModel,
              inputs,
              features: features.features,
              config,
              train,
              validation,
              tests,
              rule: plan.rule,
              runDir: trialDir,
              tmpDir: join(seedDir, "tmp", trial.name),
              progress: false,
              onEpoch: (r) =>
                log(
                  `  epoch ${r.epoch}/${config.epochs}: train loss ${r.trainLoss.toFixed(4)}, val loss ` +
                    `${r.valLoss.toFixed(4)}, val F1 ${r.f1.toFixed(4)}, val AUC ${r.auc.toFixed(4)}, ` +
                    `${r.seconds.toFixed(1)} s`,
                ),
            }, {
              notebook: "benchmark",
              dataset: plan.dataset,
              run: `${plan.name}/seed-${seed}/${trial.name}`,
              params: trialParams(plan, trial, config, options.epochs),
              backend: options.backend ?? null,
              sinks: options.runSinks ?? [new LocalRunStore(join(plan.root, "runs"))],
              artifacts: { trial: join(trialDir, "trial.json") },
            }));
          await Deno.remove(join(seedDir, "tmp", trial.name), { recursive: true }).catch(() => {});
          const record: TrialRecord = {
            seed,
            name: trial.name,
            status: "finished",
            reused: false,
            config,
            headResidual: trial.headResidual ?? null,
            bestEpoch: done.training.bestEpoch,
            validationF1: done.validation.report.f1,
            validationAuc: done.validation.report.rocAuc,
            ...(done.residual
              ? { residualScale: { trained: done.residual.trainedScale, chosen: done.residual.scale } }
              : {}),
            seconds: done.seconds,
            history: done.training.history.map(({ epoch, trainLoss, valLoss, f1, auc, seconds }) => ({
              epoch,
              trainLoss,
              valLoss,
              f1,
              auc,
              seconds,
            })),
            bestDir: done.training.bestDir,
            rows: done.tests.map((t: TrialEvaluation) =>
              reportRow(
                BENCHMARK_METHODS.trained,
                "trained",
                seed,
                t.split,
                t.report,
                done.validation.report.f1,
                t.ranking,
              )
            ),
          };
          await writeJsonAtomic(join(trialDir, "trial.json"), { key, record });
          trialRecords.push(record);
          log(`  val F1 ${record.validationF1!.toFixed(4)}; test F1 ${record.rows!.map(rowF1).join(", ")}`);
        } catch (error) {
          // Stop ends the benchmark: finished trials are kept and read back when it runs again.
          if (error instanceof InterruptedError) throw error;
          const message = error instanceof Error ? error.message : String(error);
          log(`${header} FAILED: ${message.split("\n")[0]}; the other trials go on`);
          trialRecords.push({
            seed,
            name: trial.name,
            status: "failed",
            error: message,
            reused: false,
            config,
            headResidual: trial.headResidual ?? null,
          });
        } finally {
          trialModel.dispose();
        }
      }

      const finished = trialRecords.filter((t) => t.seed === seed && t.status === "finished");
      if (finished.length === 0) {
        log(`seed ${seed}: every trial failed; no SiameseRuCLIP row for it`);
        continue;
      }
      const chosen = finished.reduce((a, b) => (b.validationF1! > a.validationF1! ? b : a));
      chosenTrials.push({ seed, trial: chosen.name });
      rows.push(...chosen.rows!);
      log(`seed ${seed}: chosen on validation ${chosen.name} (val F1 ${chosen.validationF1!.toFixed(4)})`);
      if (classifierOn) {
        await stage(
          "pair classifier (Siamese)",
          () => siameseClassifierRows(chosen, seed, textWeights, start.features, inputs, plan, setup, rows),
        );
        log(
          `seed ${seed} pair classifier (evidence + Siamese): ${f1Line(rows, BENCHMARK_METHODS.classifierFull, seed)}`,
        );
      }
    } finally {
      (model as SiameseRuCLIP | null)?.dispose();
    }
  }
  await Deno.remove(join(runRoot, "tmp"), { recursive: true }).catch(() => {});

  const splitCounts = tests.map((t, i) => ({
    split: t.split,
    description: plan.testSplits[i].description,
    pairs: t.pairs.labels.length,
    positives: t.pairs.labels.reduce((n, l) => n + l, 0),
  }));
  return {
    name: plan.name,
    title: plan.title,
    dataset: plan.dataset,
    quick,
    seeds,
    rule: describeRule(plan.rule),
    splits: splitCounts,
    model: modelInfo,
    pretraining: pretraining ? pretrainings : null,
    trials: trialRecords.map((t) => ({ ...t, ...(t.bestDir ? { bestDir: shownPath(t.bestDir) } : {}) })),
    chosen: chosenTrials,
    rows,
    anchors: plan.anchors,
    seconds: (performance.now() - started) / 1000,
    timings,
    environment: options.environment ?? {},
    notes: [
      ...plan.notes,
      `Every threshold is chosen on the validation split (${describeRule(plan.rule)}) and applied unchanged to ` +
      "the test splits; a seed's trial and its epoch are chosen by validation F1 only.",
      "Ranking: each split's query-candidate pairs grouped by their query and ranked by score (MRR, mAP).",
      ...(classifierOn
        ? [
          "Pair classifier (evidence only): XGBoost on the pair evidence, fitted on the training pairs (early stopping " +
          "on validation). With the Siamese features it is stacked: that classifier's log-odds and the Siamese " +
          "features of the seed's chosen trial, cross-fitted on the validation pairs (which the Siamese model never " +
          "trained on); its threshold is chosen on the out-of-fold validation scores.",
        ]
        : []),
      ...(quick ? ["Quick smoke run: not a benchmark result."] : []),
      ...(options.maxTrainPairs !== undefined ? [`Training pairs capped at ${options.maxTrainPairs}.`] : []),
    ],
  };
}

/** A trial's parameters for its run record: set by the trial (preset), by the command line, or the defaults. */
function trialParams(plan: BenchmarkPlan, trial: BenchmarkTrial, config: TrainingConfig, epochs?: number) {
  const origin = (key: string) =>
    key === "epochs" && epochs !== undefined
      ? "environment" as const
      : key in trial.config
      ? "preset" as const
      : "default" as const;
  return [
    { name: "BENCHMARK", value: plan.name, origin: "environment" as const },
    { name: "TRIAL", value: trial.name, origin: "environment" as const },
    { name: "PRESET", value: plan.model.preset, origin: "preset" as const },
    { name: "HEAD_RESIDUAL", value: trial.headResidual ?? 0, origin: "preset" as const },
    ...Object.entries(config).map(([key, value]) => ({
      name: key,
      value: value as string | number | boolean,
      origin: key === "seed" ? "environment" as const : origin(key),
    })),
  ];
}

const rowF1 = (r: BenchmarkRow) => `${r.split} ${r.f1.toFixed(3)}`;

function f1Line(rows: readonly BenchmarkRow[], method: string, seed: number | null = null): string {
  return rows.filter((r) => r.method === method && r.seed === seed).map(rowF1).join(", ");
}

/** A finished trial's record from an earlier run with the same key, when its checkpoint is still there. */
async function readTrialRecord(dir: string, key: string): Promise<TrialRecord | null> {
  try {
    const saved = JSON.parse(await Deno.readTextFile(join(dir, "trial.json"))) as { key: string; record: TrialRecord };
    if (saved.key !== key || saved.record.status !== "finished") return null;
    if (!saved.record.bestDir || !(await exists(saved.record.bestDir))) return null;
    return saved.record;
  } catch {
    return null;
  }
}

/** The label-free pretraining of a seed, or its earlier result when the same configuration finished before. */
async function pretrainedTowers(
  model: SiameseRuCLIP,
  inputs: ProductInputs,
  records: ReturnType<typeof productRecords>,
  plan: BenchmarkPlan,
  config: TextPretrainingConfig,
  dir: string,
  log: (line: string) => void,
): Promise<TextPretrainingResult> {
  const key = stableKey({ dataset: plan.dataset, model: plan.model.preset, config });
  const marker = join(dir, "pretraining.json");
  try {
    const saved = JSON.parse(await Deno.readTextFile(marker)) as { key: string; result: TextPretrainingResult };
    if (saved.key === key) {
      log(`seed ${config.seed}: label-free pretraining read back from ${shownPath(dir)}`);
      return saved.result;
    }
  } catch { /* not there yet */ }
  log(`seed ${config.seed}: label-free pretraining of the text towers, ${config.epochs} epochs`);
  const result = await pretrainTextTowers({
    model,
    inputs,
    rows: textPretrainingRows(inputs, records, readSplitPairs(plan.dataset, "train", plan.root)),
    config,
    outDir: dir,
    source: `${plan.dataset}: the training split's products`,
    progress: false,
    log,
  });
  await writeJsonAtomic(marker, { key, result });
  return result;
}

/** The pair classifier with the chosen trial's Siamese features (its embeddings and the starting features). */
async function siameseClassifierRows(
  chosen: TrialRecord,
  seed: number,
  textWeights: string | undefined,
  startFeatures: Float32Array,
  inputs: ProductInputs,
  plan: BenchmarkPlan,
  setup: (seed: number, textWeights?: string, headResidual?: number) => ReturnType<typeof setupModel>,
  rows: BenchmarkRow[],
): Promise<void> {
  const { model } = await setup(seed, textWeights, chosen.headResidual ?? undefined);
  try {
    model.loadStateDict((await loadCheckpoint(chosen.bestDir!)).stateDict, { strict: true });
    if (chosen.residualScale) model.setHeadResidual(chosen.residualScale.chosen);
    const siamese = await trialEmbeddings(model, chosen.config, inputs, startFeatures);
    const towers = inMemoryEmbeddings(
      "starting tower features",
      inputs.skus,
      startFeatures,
      model.featureDim,
      "euclidean",
    );
    const { trials } = await evaluatePairClassifiers({
      ...classifierSplits(plan),
      siamese: { siamese, towers },
      evidenceOnly: false,
    });
    rows.push(...classifierRows(trials[0], BENCHMARK_METHODS.classifierFull, seed, plan));
    trials.forEach((f) => f.classifier.dispose());
  } finally {
    model.dispose();
  }
}
