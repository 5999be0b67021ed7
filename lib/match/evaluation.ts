/**
 * The pair classifier on a dataset of the suite's layout, the way the testing notebooks evaluate a
 * model: fitted on the training split's pairs (early stopping on validation), its threshold chosen on
 * validation by the suite's rule and applied unchanged to the test pairs; each test query's candidates (the
 * split's query-candidate table, as the query-candidates notebook ranks them) are ranked by its probability.
 * Run with and without the Siamese features, so the comparison shows what the learnt part adds; the
 * bi-encoder and the baselines are scored on the same pairs by `scoredPairsTrial`. With the Siamese
 * features the classifier is stacked by default (stacked_classifier.ts): the Siamese model trained on the
 * training pairs, so its features are read where it did not train, on validation pairs by cross-fitting,
 * and the threshold is chosen on their out-of-fold scores.
 *
 * @module
 */
import { join } from "node:path";
import { datasetLayout } from "../data/layout.ts";
import { dataDir } from "../paths.ts";
import {
  type NamedEmbeddings,
  type PairSet,
  type QueryCandidateSet,
  readPairSet,
  readQueryCandidateSet,
} from "../eval/inputs.ts";
import { applyThreshold, chooseThreshold, type ChosenThreshold, type PairReport } from "../eval/pair_metrics.ts";
import { evaluateRenderedPairs, pairSetScores } from "../eval/flows.ts";
import { queryPairRanking, type RankingSummary } from "../eval/ranking.ts";
import type { ThresholdRule } from "../eval/threshold.ts";
import { type BoostedClassifierOptions, fitBoostedClassifier } from "./boosted_classifier.ts";
import {
  chooseClassifierThreshold,
  type LabelledMatrix,
  meanAbsoluteContributions,
  type PairClassifier,
} from "./classifier.ts";
import { PAIR_EVIDENCE_FEATURES } from "./pair_evidence.ts";
import { type BceHeadOptions, fitBceHead } from "./bce_head.ts";
import { fitStackedClassifier, type StackOptions } from "./stacked_classifier.ts";
import { evidenceOnly, evidenceRecords, fitPairFeatures, pairFeatures, type SiameseSources } from "./pair_features.ts";
import { type PairFeatureSpec, pairFeatureSpec, savePairFeatureSpec } from "./pair_scorer.ts";

/** The names the comparison gives the two classifiers. */
export const CLASSIFIER_NAMES = {
  full: "pair classifier (evidence + Siamese)",
  evidence: "pair classifier (evidence only)",
  bceHead: "BCE head (evidence only)",
} as const;

/** The pairs a trial reads: training, validation and test pairs, and the test split's query candidates. */
export interface TrialSplits {
  train: PairSet;
  validation: PairSet;
  test: PairSet;
  /** Every (query, candidate) of the test split (`<split>_query_candidates.parquet`), ranked per query. */
  candidates: PairSet;
}

/** One model scored on a split's pairs: its validation threshold, its test report and ranking. */
export interface PairTrial {
  model: string;
  chosen: ChosenThreshold;
  test: PairReport;
  /** Each test query's candidates ranked by the model: MRR, mAP (full list), ... */
  ranking: RankingSummary;
  testScores: Float64Array;
}

/** A classifier's trial, with the classifier and why it decides (mean |SHAP| on the test pairs). */
export interface ClassifierTrial extends PairTrial {
  classifier: PairClassifier;
  importances: { feature: string; importance: number }[];
  /** The test pairs' features as this classifier reads them (to explain single pairs). */
  testMatrix: LabelledMatrix;
  /** Where it was saved, when asked. */
  savedTo?: string;
  /** The same classifier and threshold on each of `moreTestSplits`, in order. */
  more: PairTrial[];
}

/** Options of `evaluatePairClassifiers`. */
export interface ClassifierEvaluationOptions {
  dataset: string;
  root?: string;
  rule: ThresholdRule;
  /** The embeddings of the Siamese features; null: only the evidence-only classifier. */
  siamese: SiameseSources | null;
  trainSplit?: string;
  validationSplit?: string;
  testSplit?: string;
  boosted?: BoostedClassifierOptions;
  /** Save each classifier under `<saveDir>/<full|evidence>/`. */
  saveDir?: string;
  /** Also the classifier without the Siamese features (default true; always when `siamese` is null). */
  evidenceOnly?: boolean;
  /**
   * How the classifier with the Siamese features is fitted: "stacked" (default), the evidence-only
   * classifier's log-odds and the Siamese features cross-fitted on the validation pairs; "train", one
   * classifier on every column of the training pairs, where the Siamese features are in-sample.
   */
  siameseFit?: "stacked" | "train";
  /** The stacked classifier's top model (folds, rounds, XGBoost parameters). */
  stack?: StackOptions;
  /**
   * Also the tfjs head trained with binary cross-entropy (bce_head.ts, the reference's cross-entropy variant)
   * on the evidence, fitted as the evidence-only classifier is; saved under `<saveDir>/bce-head/`.
   */
  bceHead?: BceHeadOptions | boolean;
  /**
   * Further test splits of the dataset, each scored by the same fitted classifiers at the same thresholds
   * (the benchmark's seen, half-seen and unseen test sets): `ClassifierTrial.more`.
   */
  moreTestSplits?: readonly string[];
  /**
   * The pairs themselves instead of the dataset's split files (`trainSplit` ... then only name them): the
   * split-seed study's splits, made in memory. The products still come from the dataset's processed table.
   */
  pairs?: TrialSplits;
}

/** How each classifier of an evaluation was fitted, one line each, for the notebook's notes. */
export function classifierNotes(
  evaluation: { splits: TrialSplits; trials: ClassifierTrial[] },
  validationSplit = "val",
): string[] {
  const { splits, trials } = evaluation;
  const notes = [
    `Evidence fitted on the training products only; the evidence-only classifier on the ${splits.train.labels.length} ` +
    `training pairs (early stopping on ${validationSplit}).`,
  ];
  const stacked = trials.find((t) => t.classifier.kind === "stacked");
  if (stacked) {
    notes.push(
      `${stacked.model}: stacked, its top model cross-fitted on the ${splits.validation.labels.length} ` +
        `${validationSplit} pairs; its threshold chosen on their out-of-fold scores.`,
    );
  } else if (trials.some((t) => t.model === CLASSIFIER_NAMES.full)) {
    notes.push(`${CLASSIFIER_NAMES.full}: fitted on the training pairs, where the Siamese features are in-sample.`);
  } else {
    notes.push("No SiameseRuCLIP embeddings: only the evidence-only classifier ran.");
  }
  const head = trials.find((t) => t.classifier.kind === "bce-head");
  if (head) {
    notes.push(
      `${head.model}: a tfjs network trained with binary cross-entropy on the same evidence and training pairs; ` +
        `epoch ${head.classifier.report.bestRound} kept, by the ${validationSplit} log loss.`,
    );
  }
  return notes;
}

/** The headline numbers of a trial, named as the other testing notebooks name them. */
export function trialHeadline(trial: PairTrial): Record<string, number> {
  const { chosen, test, ranking } = trial;
  return {
    val_f1: chosen.validation.f1,
    test_precision: test.precision,
    test_recall: test.recall,
    test_f1: test.f1,
    test_roc_auc: test.rocAuc,
    test_average_precision: test.averagePrecision,
    mrr: ranking.mrr,
    map: ranking.map,
  };
}

/** A query-candidate table as pairs (the query on the left), to score like any pair set. */
export function candidatePairs(set: QueryCandidateSet): PairSet {
  return {
    split: set.split,
    skuLeft: set.querySkus,
    skuRight: set.candidateSkus,
    labels: set.labels,
    kinds: set.classes,
    querySkus: set.querySkus,
  };
}

function ranking(candidates: PairSet, scores: ArrayLike<number>): RankingSummary {
  return queryPairRanking({
    queries: candidates.querySkus,
    left: candidates.skuLeft,
    right: candidates.skuRight,
    scores,
    labels: candidates.labels,
  }).summary;
}

/**
 * A bi-encoder or baseline on the same pairs, evaluated as the rendered-pairs notebook does (flows.ts'
 * `evaluateRenderedPairs`: scores -distance, the threshold chosen on validation), plus its ranking of each
 * test query's candidates.
 */
export function scoredPairsTrial(model: NamedEmbeddings, splits: TrialSplits, rule: ThresholdRule): PairTrial {
  const rendered = evaluateRenderedPairs(model, splits.validation, splits.test, rule);
  return {
    model: model.name,
    chosen: rendered.chosen,
    test: rendered.test,
    ranking: ranking(splits.candidates, pairSetScores(model, splits.candidates)),
    testScores: rendered.testScores,
  };
}

/** The feature matrices of a trial's pair sets. */
interface TrialMatrices {
  train: LabelledMatrix;
  validation: LabelledMatrix;
  test: LabelledMatrix;
  candidates: LabelledMatrix;
  /** The further test splits' pairs and candidates. */
  more: { test: LabelledMatrix; candidates: LabelledMatrix }[];
}

/** A further test split's pairs and query candidates. */
interface MoreTest {
  test: PairSet;
  candidates: PairSet;
}

/** A fitted classifier, with the validation pairs' scores when they must not come from predicting them again. */
interface Fitted {
  classifier: PairClassifier;
  /** Out-of-fold validation scores (the stacked classifier's top model saw the validation pairs). */
  validationScores?: Float64Array;
}

async function classifierTrial(
  name: string,
  x: TrialMatrices,
  splits: TrialSplits & { more: MoreTest[] },
  options: ClassifierEvaluationOptions,
  folder: string,
  spec: PairFeatureSpec,
  fit: () => Promise<Fitted>,
): Promise<ClassifierTrial> {
  const { classifier, validationScores } = await fit();
  try {
    const chosen = validationScores
      ? chooseThreshold(Int32Array.from(x.validation.labels), validationScores, options.rule)
      : await chooseClassifierThreshold(classifier, x.validation, options.rule);
    const testScores = await classifier.predictProbabilities(x.test);
    const trial: ClassifierTrial = {
      model: name,
      chosen,
      test: applyThreshold(chosen, splits.test.labels, testScores),
      ranking: ranking(splits.candidates, await classifier.predictProbabilities(x.candidates)),
      testScores,
      classifier,
      importances: meanAbsoluteContributions(await classifier.contributions(x.test)),
      testMatrix: x.test,
      more: [],
    };
    for (const [i, more] of splits.more.entries()) {
      const scores = await classifier.predictProbabilities(x.more[i].test);
      trial.more.push({
        model: name,
        chosen,
        test: applyThreshold(chosen, more.test.labels, scores),
        ranking: ranking(more.candidates, await classifier.predictProbabilities(x.more[i].candidates)),
        testScores: scores,
      });
    }
    if (options.saveDir) {
      trial.savedTo = join(options.saveDir, folder);
      await classifier.save(trial.savedTo);
      await savePairFeatureSpec(trial.savedTo, spec);
    }
    return trial;
  } catch (error) {
    classifier.dispose();
    throw error;
  }
}

/**
 * Fits and evaluates the boosted pair classifier on the dataset's splits: with the Siamese features
 * (when `siamese` is given) and without them. The caller disposes the classifiers.
 */
export async function evaluatePairClassifiers(options: ClassifierEvaluationOptions): Promise<{
  splits: TrialSplits;
  trials: ClassifierTrial[];
}> {
  const root = options.root ?? dataDir();
  const splitsDir = datasetLayout(options.dataset, root).splitsDir;
  const testSplit = options.testSplit ?? "test";
  if (options.pairs && options.moreTestSplits?.length) {
    throw new Error("evaluatePairClassifiers: moreTestSplits reads split files; with pairs given in memory, give none");
  }
  const more: MoreTest[] = (options.moreTestSplits ?? []).map((split) => ({
    test: readPairSet(splitsDir, split),
    candidates: candidatePairs(readQueryCandidateSet(splitsDir, split)),
  }));
  const splits: TrialSplits = options.pairs ?? {
    train: readPairSet(splitsDir, options.trainSplit ?? "train"),
    validation: readPairSet(splitsDir, options.validationSplit ?? "val"),
    test: readPairSet(splitsDir, testSplit),
    candidates: candidatePairs(readQueryCandidateSet(splitsDir, testSplit)),
  };
  const model = fitPairFeatures(evidenceRecords(options.dataset, root), splits.train, options.siamese);
  const full: TrialMatrices = {
    train: pairFeatures(model, splits.train),
    validation: pairFeatures(model, splits.validation),
    test: pairFeatures(model, splits.test),
    candidates: pairFeatures(model, splits.candidates),
    more: more.map((m) => ({ test: pairFeatures(model, m.test), candidates: pairFeatures(model, m.candidates) })),
  };
  const only = (m: LabelledMatrix) => evidenceOnly(m, PAIR_EVIDENCE_FEATURES);
  const evidence: TrialMatrices = {
    train: only(full.train),
    validation: only(full.validation),
    test: only(full.test),
    candidates: only(full.candidates),
    more: full.more.map((m) => ({ test: only(m.test), candidates: only(m.candidates) })),
  };
  const tested = { ...splits, more };
  const trainSplit = splits.train.split;
  const spec = (m: TrialMatrices) => pairFeatureSpec(options.dataset, trainSplit, model, m.train.names);
  const trials: ClassifierTrial[] = [];
  try {
    const wantEvidence = !options.siamese || options.evidenceOnly !== false;
    const how = options.siameseFit ?? "stacked";
    if (how !== "stacked" && how !== "train") {
      throw new Error(`siameseFit = ${JSON.stringify(how)}; expected "stacked" or "train"`);
    }
    // The evidence-only classifier is the stack's base: fitted once, the stack takes a copy.
    const evidenceFit = wantEvidence
      ? await fitBoostedClassifier(evidence.train, evidence.validation, options.boosted)
      : null;
    let evidenceTaken = false;
    try {
      if (options.siamese) {
        const fit = how === "stacked"
          ? () =>
            fitStackedClassifier(full.train, full.validation, {
              evidenceNames: PAIR_EVIDENCE_FEATURES,
              base: options.boosted,
              fittedBase: evidenceFit ?? undefined,
              stack: options.stack,
            })
          : async () => ({ classifier: await fitBoostedClassifier(full.train, full.validation, options.boosted) });
        trials.push(await classifierTrial(CLASSIFIER_NAMES.full, full, tested, options, "full", spec(full), fit));
      }
      if (evidenceFit) {
        evidenceTaken = true;
        const fitted = () => Promise.resolve({ classifier: evidenceFit });
        trials.push(
          await classifierTrial(
            CLASSIFIER_NAMES.evidence,
            evidence,
            tested,
            options,
            "evidence",
            spec(evidence),
            fitted,
          ),
        );
      }
    } finally {
      if (!evidenceTaken) evidenceFit?.dispose();
    }
    const headOptions = options.bceHead;
    if (headOptions) {
      const settings = headOptions === true ? {} : headOptions;
      const head = async () => ({ classifier: await fitBceHead(evidence.train, evidence.validation, settings) });
      trials.push(
        await classifierTrial(CLASSIFIER_NAMES.bceHead, evidence, tested, options, "bce-head", spec(evidence), head),
      );
    }
  } catch (error) {
    trials.forEach((t) => t.classifier.dispose());
    throw error;
  }
  return { splits, trials };
}
