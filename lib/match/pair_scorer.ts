/**
 * A saved pair classifier made ready to score any pairs of its dataset: the classifier with the features
 * it reads, rebuilt as they were fitted. `evaluatePairClassifiers` saves `features.json` beside each
 * classifier (the dataset, the training split the evidence was fitted on, the Siamese embeddings' tags and
 * how many principal components); `loadPairScorer` reads both back, fits the features again on the same
 * training pairs (the fit is deterministic) and refuses embeddings other than those the classifier read.
 * The second stage of two-stage ranking (rerank.ts) scores its candidates with it.
 *
 * @module
 */
import { join } from "node:path";
import { datasetLayout } from "../data/layout.ts";
import { exists, writeJsonAtomic } from "../fs.ts";
import { dataDir, shownPath } from "../paths.ts";
import { type NamedEmbeddings, type PairSet, readPairSet } from "../eval/inputs.ts";
import type { PairClassifier } from "./classifier.ts";
import { PAIR_EVIDENCE_FEATURES } from "./pair_evidence.ts";
import { loadPairClassifier } from "./stacked_classifier.ts";
import { evidenceRecords, fitPairFeatures, type PairFeatureModel, pairFeatures } from "./pair_features.ts";

/** The file beside a saved classifier that says how its features were made. */
export const FEATURES_FILE = "features.json";

/** `<root>/train_results/<run>/pair_classifier`: where clip_siamese_test saves a run's classifiers (`full/`, `evidence/`). */
export function pairClassifiersDir(run: string, root: string = dataDir()): string {
  return join(root, "train_results", run, "pair_classifier");
}

/** How a classifier's features were made: enough to make them again for new pairs. */
export interface PairFeatureSpec {
  dataset: string;
  /** The split whose products the evidence (TF-IDF, ...) and the projection were fitted on. */
  trainSplit: string;
  /** The columns, in the classifier's order. */
  names: string[];
  /** The Siamese features' sources; null for the evidence-only classifier. */
  siamese: { tag: string; towersTag: string | null; components: number } | null;
}

/** The spec of the columns `names` made by `model` (fitted on `trainSplit` of `dataset`). */
export function pairFeatureSpec(
  dataset: string,
  trainSplit: string,
  model: PairFeatureModel,
  names: readonly string[],
): PairFeatureSpec {
  const s = model.siamese;
  const usesSiamese = s !== null && names.some((name) => !(PAIR_EVIDENCE_FEATURES as readonly string[]).includes(name));
  return {
    dataset,
    trainSplit,
    names: [...names],
    siamese: usesSiamese
      ? { tag: s.siamese.table.info.tag, towersTag: s.towers?.table.info.tag ?? null, components: s.components }
      : null,
  };
}

/** Writes `features.json` into a saved classifier's folder. */
export function savePairFeatureSpec(dir: string, spec: PairFeatureSpec): Promise<void> {
  return writeJsonAtomic(join(dir, FEATURES_FILE), spec);
}

/** A classifier and its features: the probability that each (left, right) pair is one product. */
export interface PairScorer {
  /** What the tables and figures call it. */
  name: string;
  classifier: PairClassifier;
  features: PairFeatureModel;
  /** One probability per pair; `where` names the pairs in errors. */
  score(left: readonly string[], right: readonly string[], where: string): Promise<Float64Array>;
  dispose(): void;
}

/** Pairs to score as a pair set (no labels). */
function unlabelledPairs(left: readonly string[], right: readonly string[], where: string): PairSet {
  if (left.length !== right.length) {
    throw new Error(`${where}: ${left.length} left SKUs but ${right.length} right SKUs; expected one of each per pair`);
  }
  return {
    split: where,
    skuLeft: [...left],
    skuRight: [...right],
    labels: new Int32Array(left.length),
    kinds: left.map(() => ""),
    querySkus: [...left],
  };
}

/** Joins a fitted classifier and the features it reads; refuses features whose columns differ from the classifier's. */
export function pairScorer(name: string, features: PairFeatureModel, classifier: PairClassifier): PairScorer {
  const expected = classifier.featureNames.join(", ");
  if (features.names.join(", ") !== expected) {
    throw new Error(
      `pair scorer "${name}": the features have the columns [${features.names.join(", ")}] but the ` +
        `classifier reads [${expected}]`,
    );
  }
  return {
    name,
    classifier,
    features,
    async score(left, right, where) {
      const pairs = unlabelledPairs(left, right, where);
      if (pairs.labels.length === 0) return new Float64Array(0);
      return await classifier.predictProbabilities(pairFeatures(features, pairs));
    },
    dispose: () => classifier.dispose(),
  };
}

/** Options of `loadPairScorer`. */
export interface LoadPairScorerOptions {
  /** Embedding tables loaded by the caller; the classifier's Siamese sources are found among them by tag. */
  models: readonly NamedEmbeddings[];
  root?: string;
  /** The scorer's name; default the classifier's folder. */
  name?: string;
}

function tableByTag(models: readonly NamedEmbeddings[], tag: string, dir: string, role: string): NamedEmbeddings {
  const found = models.find((m) => m.table.info.tag === tag && m.table.dim > 0);
  if (!found) {
    const loaded = models.filter((m) => m.table.dim > 0).map((m) => m.table.info.tag);
    throw new Error(
      `the pair classifier in ${shownPath(dir)} read the ${role} embeddings "${tag}", which are not among the ` +
        `loaded tables (${loaded.join(", ") || "none"}); compute them, or use the evidence-only classifier`,
    );
  }
  return found;
}

/** Reads a pair classifier saved by `evaluatePairClassifiers` and rebuilds the features it reads. */
export async function loadPairScorer(dir: string, options: LoadPairScorerOptions): Promise<PairScorer> {
  const specPath = join(dir, FEATURES_FILE);
  if (!(await exists(specPath))) {
    throw new Error(
      `no ${FEATURES_FILE} in ${shownPath(dir)}: not a pair classifier saved by clip_siamese_test ` +
        `(evaluatePairClassifiers with saveDir); run that notebook first`,
    );
  }
  const spec = JSON.parse(await Deno.readTextFile(specPath)) as PairFeatureSpec;
  const root = options.root ?? dataDir();
  const siamese = spec.siamese
    ? {
      siamese: tableByTag(options.models, spec.siamese.tag, dir, "fine-tuned"),
      towers: spec.siamese.towersTag ? tableByTag(options.models, spec.siamese.towersTag, dir, "raw tower") : undefined,
      components: spec.siamese.components,
    }
    : null;
  const train = readPairSet(datasetLayout(spec.dataset, root).splitsDir, spec.trainSplit);
  const features = fitPairFeatures(evidenceRecords(spec.dataset, root), train, siamese);
  const classifier = await loadPairClassifier(dir);
  try {
    return pairScorer(options.name ?? shownPath(dir), features, classifier);
  } catch (error) {
    classifier.dispose();
    throw error;
  }
}
