/**
 * The demo's training across split seeds, against its own starting point and the zero-shot encoders
 * (`deno task seeds`): for each split seed, the leak-free split by query is made in memory
 * (`planSplits`, the pairwise notebook's parameters with that seed), each training variant trains the
 * head on the cached tower features of the training split as one trial (lib/experiment/trial.ts, the
 * training notebook's flow: best epoch, residual scale and threshold chosen on validation), and is scored on
 * the test split as the testing notebooks score:
 *
 * - rendered pairs: ROC AUC, AP, and F1 at the threshold chosen on the validation pairs (the notebooks'
 *   default rule, largest TPR at FPR <= 0.05), unchanged on test;
 * - every query-candidate pair of the split: MRR and mAP of each query's candidates (no threshold).
 *
 * The baselines are scored the same way on the same pairs: the raw tower features the training started
 * from (Euclidean), and each zero-shot sentence encoder on "name. description" (cosine). The same numbers
 * on the validation split are kept too: they, not the test split, are what a variant is chosen by.
 *
 * The pair classifier (lib/match) is scored on the same pairs: the evidence-only classifier, and the stacked
 * one with the Siamese features of the first variant's trained model (the training notebook's defaults),
 * each fitted on that seed's training and validation pairs, its threshold chosen on validation by the same
 * rule. Its validation MRR and mAP are left out (NaN): the stacked top model was fitted on those pairs.
 *
 * The result is plain data (`SeedStudyResult`); `renderSeedStudyMarkdown` makes the report.
 *
 * @module
 */
import { join } from "node:path";
import { planSplits, type SplitOptions } from "../data/pairwise.ts";
import type { SplitData } from "../data/pairs.ts";
import { concatRows } from "../embeddings/catalog.ts";
import { evaluateQueryCandidates, evaluateRenderedPairs } from "../eval/flows.ts";
import { inMemoryEmbeddings, type NamedEmbeddings, pairSetOf, queryCandidateSetOf } from "../eval/inputs.ts";
import { describeRule, type ThresholdRule } from "../eval/threshold.ts";
import { writeFileAtomic, writeJsonAtomic } from "../fs.ts";
import { reportsDir } from "../paths.ts";
import { loadSentenceEncoder } from "../text/sbert.ts";
import { SUITE_HEAD_RESIDUAL, SUITE_TRAINING_DEFAULTS, type TrainingConfig } from "../train/config.ts";
import { cachedTowerFeatures } from "../train/feature_cache.ts";
import { ProductInputs } from "../train/product_inputs.ts";
import { productRecords, setupModel, type SuiteModelPreset } from "../train/session.ts";
import { pairIndexSet } from "../train/trainer.ts";
import { runRecordedTrial, trialEmbeddings, type TrialEvaluation, trialSplit } from "./trial.ts";
import {
  candidatePairs,
  CLASSIFIER_NAMES,
  type ClassifierTrial,
  evaluatePairClassifiers,
  type TrialSplits,
} from "../match/evaluation.ts";
import type { RunSink } from "./run_record.ts";

/** One way of training, run on every seed. */
export interface TrainingVariant {
  name: string;
  description: string;
  config: TrainingConfig;
  /** SiameseRuCLIPConfig `headResidual` (null: the reference's head). */
  headResidual: number | null;
}

/** The variants `deno task seeds` trains by default: the training notebook's defaults, then the candidates. */
export const SEED_STUDY_VARIANTS: TrainingVariant[] = [
  {
    name: "head+residual",
    description: `the training notebook's defaults: head mode, online contrastive loss, margin 2, lr 1e-4, ` +
      `the raw tower distance kept beside the head's (headResidual ${SUITE_HEAD_RESIDUAL})`,
    config: SUITE_TRAINING_DEFAULTS,
    headResidual: SUITE_HEAD_RESIDUAL,
  },
  {
    name: "head",
    description: "the same without the residual (the reference's head; HEAD_RESIDUAL=0)",
    config: SUITE_TRAINING_DEFAULTS,
    headResidual: null,
  },
  {
    name: "query-ranking",
    description: "each positive against its query's in-batch negatives (softmax over -4 d), batches by query",
    config: { ...SUITE_TRAINING_DEFAULTS, loss: "query-ranking" },
    headResidual: null,
  },
  {
    name: "contrastive+query-ranking",
    description: "the contrastive loss plus the query-ranking loss",
    config: { ...SUITE_TRAINING_DEFAULTS, loss: "contrastive+query-ranking" },
    headResidual: null,
  },
  {
    name: "residual+query-ranking",
    description:
      `the query-ranking loss with the raw tower distance as a residual (headResidual ${SUITE_HEAD_RESIDUAL})`,
    config: { ...SUITE_TRAINING_DEFAULTS, loss: "query-ranking" },
    headResidual: SUITE_HEAD_RESIDUAL,
  },
];

/** A zero-shot sentence encoder baseline. */
export interface ZeroShotBaseline {
  name: string;
  /** A local sentence-model folder or Hub id (`loadSentenceEncoder`). */
  model: string;
}

/** The metrics of one model on one split. */
export interface SplitMetrics {
  auc: number;
  ap: number;
  /** F1 at the validation-chosen threshold. */
  f1: number;
  mrr: number;
  map: number;
}

/** The metric names of `SplitMetrics`, in report order, with their labels. */
export const SEED_STUDY_METRICS: { key: keyof SplitMetrics; label: string }[] = [
  { key: "auc", label: "pairs ROC AUC" },
  { key: "ap", label: "pairs AP" },
  { key: "f1", label: "pairs F1" },
  { key: "mrr", label: "MRR" },
  { key: "map", label: "mAP" },
];

/** One model on one seed. */
export interface SeedStudyRow {
  seed: number;
  model: string;
  kind: "trained" | "baseline" | "classifier";
  validation: SplitMetrics;
  test: SplitMetrics;
  /** Trained variants: the best epoch (by the config's best metric) and the training seconds. */
  bestEpoch?: number;
  seconds?: number;
  /** Variants with a head residual: the scale scored (the trained one, or the one chosen on validation). */
  residualScale?: number;
}

export interface SeedStudyOptions {
  dataset: string;
  seeds: readonly number[];
  /** The split and pair-rendering options; `seed` is replaced by each study seed. */
  split: Omit<SplitOptions, "seed" | "dataset">;
  preset: SuiteModelPreset;
  /** Seed of the model's initialisation (the training notebook's SEED). */
  modelSeed: number;
  variants: readonly TrainingVariant[];
  zeroShot: readonly ZeroShotBaseline[];
  rule: ThresholdRule;
  /** Checkpoints go under `<runRoot>/<variant>-seed<seed>`. */
  runRoot: string;
  /** The tfjs backend, for the trials' run records. */
  backend?: { name: string; threads?: number | null };
  /** Where each trial's run record goes (default the local store). */
  runSinks?: RunSink[];
  /** The pair classifier rows (default true). */
  classifier?: boolean;
  /** XGBoost's threads for the classifiers (default: XGBoost's own). */
  classifierThreads?: number;
  log?: (line: string) => void;
}

export interface SeedStudyResult {
  dataset: string;
  seeds: number[];
  rule: string;
  variants: { name: string; description: string; headResidual: number | null; config: TrainingConfig }[];
  baselines: string[];
  rows: SeedStudyRow[];
}

function splitMetrics(model: NamedEmbeddings, splits: SplitData[], rule: ThresholdRule): {
  validation: SplitMetrics;
  test: SplitMetrics;
} {
  const byName = new Map(splits.map((s) => [s.split, s]));
  const val = byName.get("val")!;
  const test = byName.get("test")!;
  const rendered = evaluateRenderedPairs(model, pairSetOf(val), pairSetOf(test), rule);
  const threshold = rendered.chosen.threshold;
  const ranking = (split: SplitData) => evaluateQueryCandidates(model, queryCandidateSetOf(split), threshold).all;
  const valRanking = ranking(val).ranking;
  const testRanking = ranking(test).ranking;
  return {
    validation: {
      auc: rendered.chosen.validation.rocAuc,
      ap: rendered.chosen.validation.averagePrecision,
      f1: rendered.chosen.validation.f1,
      mrr: valRanking.mrr,
      map: valRanking.map,
    },
    test: {
      auc: rendered.test.rocAuc,
      ap: rendered.test.averagePrecision,
      f1: rendered.test.f1,
      mrr: testRanking.mrr,
      map: testRanking.map,
    },
  };
}

/** A pair classifier's validation (threshold choice; no ranking) and test metrics. */
function classifierMetrics(trial: ClassifierTrial): { validation: SplitMetrics; test: SplitMetrics } {
  const v = trial.chosen.validation;
  return {
    validation: { auc: v.rocAuc, ap: v.averagePrecision, f1: v.f1, mrr: NaN, map: NaN },
    test: {
      auc: trial.test.rocAuc,
      ap: trial.test.averagePrecision,
      f1: trial.test.f1,
      mrr: trial.ranking.mrr,
      map: trial.ranking.map,
    },
  };
}

/** The names the study gives the classifier rows. */
export const SEED_STUDY_CLASSIFIERS = {
  evidence: CLASSIFIER_NAMES.evidence,
  full: CLASSIFIER_NAMES.full,
} as const;

/** A trial's evaluation of one split as the study's metrics. */
function trialMetrics(evaluation: TrialEvaluation): SplitMetrics {
  const { report, ranking } = evaluation;
  if (!ranking) throw new Error(`split "${evaluation.split}" has no query-candidate pairs to rank`);
  return { auc: report.rocAuc, ap: report.averagePrecision, f1: report.f1, mrr: ranking.mrr, map: ranking.map };
}

/** Runs the study; see the module comment. */
export async function runSeedStudy(options: SeedStudyOptions): Promise<SeedStudyResult> {
  const log = options.log ?? (() => {});
  const records = productRecords(options.dataset);
  const skus = records.map((r) => r.sku);
  const start = await setupModel({ preset: options.preset, seed: options.modelSeed });
  const inputs = await ProductInputs.build(records, {
    tokenizer: start.tokenizer,
    imageSize: start.config.imageSize,
    maxTokens: start.config.maxTokens,
  });
  const rows: SeedStudyRow[] = [];
  const classifierOn = options.classifier ?? true;
  try {
    const { features } = await cachedTowerFeatures(start.model, inputs);
    const baselines: NamedEmbeddings[] = [
      inMemoryEmbeddings("raw tower features", skus, features, start.model.featureDim, "euclidean"),
    ];
    for (const zeroShot of options.zeroShot) {
      const encoder = await loadSentenceEncoder(zeroShot.model);
      try {
        const vectors = await encoder.embed(records.map((p) => `${p.name}. ${p.description}`));
        baselines.push(
          inMemoryEmbeddings(zeroShot.name, skus, concatRows(vectors, encoder.dimension), encoder.dimension, "cosine"),
        );
      } finally {
        await encoder.dispose();
      }
    }
    for (const seed of options.seeds) {
      const { splits } = planSplits({ ...options.split, dataset: options.dataset, seed });
      for (const baseline of baselines) {
        rows.push({ seed, model: baseline.name, kind: "baseline", ...splitMetrics(baseline, splits, options.rule) });
      }
      const splitOf = (name: string) => splits.find((s) => s.split === name)!;
      const pairsOf = (split: SplitData) =>
        split.pairs.map((p) => ({ skuLeft: p.sku_left, skuRight: p.sku_right, label: p.label, querySku: p.query_sku }));
      const [val, test] = ["val", "test"].map((name) =>
        trialSplit(inputs, name, pairsOf(splitOf(name)), splitOf(name).queryCandidates)
      );
      const pairs: TrialSplits = {
        train: pairSetOf(splitOf("train")),
        validation: pairSetOf(splitOf("val")),
        test: pairSetOf(splitOf("test")),
        candidates: candidatePairs(queryCandidateSetOf(splitOf("test"))),
      };
      // Both classifiers in one fit (the stack's base is the evidence-only classifier), after the first variant.
      const classifierRows = async (siamese: NamedEmbeddings) => {
        const { trials } = await evaluatePairClassifiers({
          dataset: options.dataset,
          rule: options.rule,
          siamese: { siamese, towers: baselines[0] },
          pairs,
          ...(options.classifierThreads ? { boosted: { params: { nthread: options.classifierThreads } } } : {}),
        });
        trials.forEach((t) => t.classifier.dispose());
        for (const trial of trials) {
          const row: SeedStudyRow = { seed, model: trial.model, kind: "classifier", ...classifierMetrics(trial) };
          rows.push(row);
          log(`seed ${seed} ${trial.model}: ${formatMetrics(row.test)}`);
        }
      };
      for (const variant of options.variants) {
        const { model } = await setupModel({
          preset: options.preset,
          seed: options.modelSeed,
          headResidual: variant.headResidual,
        });
        try {
          // The training notebook's flow: train, residual scale and threshold on validation, then test.
          const trial = await runRecordedTrial({
            model,
            inputs,
            features,
            config: variant.config,
            train: pairIndexSet(inputs, pairsOf(splitOf("train"))),
            validation: val,
            tests: [test],
            rule: options.rule,
            runDir: join(options.runRoot, `${variant.name}-seed${seed}`),
            progress: false,
          }, {
            notebook: "seeds",
            dataset: options.dataset,
            run: `${variant.name}/split-seed-${seed}`,
            params: [
              { name: "VARIANT", value: variant.name, origin: "environment" },
              { name: "SPLIT_SEED", value: seed, origin: "environment" },
              { name: "PRESET", value: options.preset, origin: "preset" },
              { name: "HEAD_RESIDUAL", value: variant.headResidual ?? 0, origin: "preset" },
              ...Object.entries(variant.config).map(([name, value]) => ({
                name,
                value: value as string | number | boolean,
                origin: "preset" as const,
              })),
            ],
            backend: options.backend ?? null,
            ...(options.runSinks ? { sinks: options.runSinks } : {}),
          });
          const row: SeedStudyRow = {
            seed,
            model: variant.name,
            kind: "trained",
            validation: trialMetrics(trial.validation),
            test: trialMetrics(trial.tests[0]),
            bestEpoch: trial.training.bestEpoch,
            seconds: trial.seconds,
            ...(model.headResidual === null ? {} : { residualScale: model.headResidual }),
          };
          rows.push(row);
          log(
            `seed ${seed} ${variant.name}: ${formatMetrics(row.test)} ` +
              `(best epoch ${row.bestEpoch}, ${row.seconds!.toFixed(0)} s)`,
          );
          if (classifierOn && variant === options.variants[0]) {
            const siamese = await trialEmbeddings(model, variant.config, inputs, features);
            await classifierRows(siamese);
          }
        } finally {
          model.dispose();
        }
      }
    }
  } finally {
    start.model.dispose();
  }
  return {
    dataset: options.dataset,
    seeds: [...options.seeds],
    rule: describeRule(options.rule),
    variants: options.variants.map((v) => ({
      name: v.name,
      description: v.description,
      headResidual: v.headResidual,
      config: v.config,
    })),
    baselines: [...new Set(rows.filter((r) => r.kind === "baseline").map((r) => r.model))],
    rows,
  };
}

function formatMetrics(m: SplitMetrics): string {
  return SEED_STUDY_METRICS.map(({ key }) => `${key} ${m[key].toFixed(3)}`).join(", ");
}

/** Per trained variant and seed: whether it beats every baseline on every metric but ROC AUC, and where not. */
export function seedStudyVerdicts(
  result: SeedStudyResult,
  metrics: readonly (keyof SplitMetrics)[] = ["ap", "f1", "mrr", "map"],
): { seed: number; model: string; beatsAll: boolean; behind: string[] }[] {
  return result.rows.filter((r) => r.kind === "trained").map((row) => {
    const behind: string[] = [];
    for (const baseline of result.rows.filter((b) => b.kind === "baseline" && b.seed === row.seed)) {
      for (const metric of metrics) {
        if (!(row.test[metric] > baseline.test[metric])) {
          behind.push(
            `${metric} ${row.test[metric].toFixed(3)} <= ${baseline.model} ${baseline.test[metric].toFixed(3)}`,
          );
        }
      }
    }
    return { seed: row.seed, model: row.model, beatsAll: behind.length === 0, behind };
  });
}

/** Mean of each metric per model over the seeds (validation and test). */
export function seedStudyMeans(
  result: SeedStudyResult,
): { model: string; validation: SplitMetrics; test: SplitMetrics }[] {
  const models = [...new Set(result.rows.map((r) => r.model))];
  const mean = (rows: SeedStudyRow[], part: "validation" | "test"): SplitMetrics =>
    Object.fromEntries(
      SEED_STUDY_METRICS.map(({ key }) => [key, rows.reduce((sum, r) => sum + r[part][key], 0) / rows.length]),
    ) as unknown as SplitMetrics;
  return models.map((model) => {
    const rows = result.rows.filter((r) => r.model === model);
    return { model, validation: mean(rows, "validation"), test: mean(rows, "test") };
  });
}

const cell = (value: number) => (Number.isFinite(value) ? value.toFixed(3) : "–");

/**
 * Per seed: whether the pair classifier with the Siamese features is ahead of the bi-encoder it reads (the
 * first variant) and of the classifier without them, on pair F1 and AP, with the numbers.
 */
export function classifierVerdicts(
  result: SeedStudyResult,
): { seed: number; against: string; ahead: boolean; numbers: string }[] {
  const bi = result.variants[0]?.name;
  return result.seeds.flatMap((seed) => {
    const of = (model: string | undefined) => result.rows.find((r) => r.seed === seed && r.model === model);
    const full = of(SEED_STUDY_CLASSIFIERS.full);
    if (!full) return [];
    return [of(bi), of(SEED_STUDY_CLASSIFIERS.evidence)].filter((r) => r !== undefined).map((other) => ({
      seed,
      against: other!.model,
      ahead: full.test.f1 > other!.test.f1 && full.test.ap > other!.test.ap,
      numbers: `F1 ${cell(full.test.f1)} vs ${cell(other!.test.f1)}, AP ${cell(full.test.ap)} vs ${
        cell(other!.test.ap)
      }`,
    }));
  });
}

/** The report: per-seed test tables, the means (validation and test), and the verdicts. */
export function renderSeedStudyMarkdown(result: SeedStudyResult): string {
  const header = `| model | ${SEED_STUDY_METRICS.map((m) => m.label).join(" | ")} |`;
  const rule = `|---|${SEED_STUDY_METRICS.map(() => "---").join("|")}|`;
  const line = (model: string, m: SplitMetrics) =>
    `| ${model} | ${SEED_STUDY_METRICS.map(({ key }) => cell(m[key])).join(" | ")} |`;
  const out: string[] = [
    `# Training across split seeds (${result.dataset})`,
    "",
    `Test split of each seed's leak-free split by query; pair F1 at the threshold chosen on validation (${result.rule});`,
    "MRR and mAP over each test query's candidates (all query-candidate pairs of the split).",
    "",
    "Variants:",
    ...result.variants.map((v) => `- **${v.name}**: ${v.description}`),
    "",
    "Each variant is one trial, the training notebook's flow (lib/experiment/trial.ts): the best epoch, a head " +
    "residual's scale (train/residual_scale.ts: mean of pair AP, MRR and mAP) and the threshold chosen on " +
    "validation; a residual variant's row names the scale chosen.",
    "",
  ];
  for (const seed of result.seeds) {
    out.push(`## Split seed ${seed}`, "", header, rule);
    for (const row of result.rows.filter((r) => r.seed === seed)) {
      const scale = row.residualScale === undefined ? "" : ` (scale ${row.residualScale})`;
      out.push(line(row.model + scale, row.test));
    }
    out.push("");
  }
  const means = seedStudyMeans(result);
  out.push(
    `## Means over seeds ${result.seeds.join(", ")}`,
    "",
    "Validation (what a variant is chosen by):",
    "",
    header,
    rule,
  );
  for (const m of means) out.push(line(m.model, m.validation));
  out.push("", "Test:", "", header, rule);
  for (const m of means) out.push(line(m.model, m.test));
  out.push("", "## Ahead of every baseline on pair AP, pair F1, MRR and mAP?", "");
  for (const verdict of seedStudyVerdicts(result)) {
    out.push(
      `- seed ${verdict.seed}, ${verdict.model}: ${verdict.beatsAll ? "yes" : `no (${verdict.behind.join("; ")})`}`,
    );
  }
  const classifier = classifierVerdicts(result);
  if (classifier.length) {
    out.push(
      "",
      `## ${SEED_STUDY_CLASSIFIERS.full}: ahead on pair F1 and AP?`,
      "",
      `Stacked over the Siamese features of ${result.variants[0].name}'s trained model; its validation MRR and mAP ` +
        "are not measured (its top model was fitted on the validation pairs).",
      "",
    );
    for (const v of classifier) {
      out.push(`- seed ${v.seed}, against ${v.against}: ${v.ahead ? "yes" : "no"} (${v.numbers})`);
    }
  }
  return out.join("\n") + "\n";
}

/** Writes `split_seeds.json` and `split_seeds.md` under `dir` (default: the reports folder); returns the paths. */
export async function writeSeedStudyReports(result: SeedStudyResult, dir = reportsDir()): Promise<string[]> {
  const json = join(dir, "split_seeds.json");
  const md = join(dir, "split_seeds.md");
  await writeJsonAtomic(json, result);
  await writeFileAtomic(md, renderSeedStudyMarkdown(result));
  return [json, md];
}
