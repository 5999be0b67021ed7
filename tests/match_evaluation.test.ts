/**
 * The pair classifier on an imported dataset (lib/match/pair_features.ts, lib/match/evaluation.ts): the
 * features of both records and the Siamese features, fitted on training products only, and the classifier
 * evaluated as the testing notebooks evaluate a model.
 */
import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { importPairs } from "../lib/data/import_pairs.ts";
import { datasetLayout } from "../lib/data/layout.ts";
import { type NamedEmbeddings, readPairSet } from "../lib/eval/inputs.ts";
import { PAIR_EVIDENCE_FEATURES } from "../lib/match/pair_evidence.ts";
import { evidenceRecords, fitPairFeatures, pairFeatures } from "../lib/match/pair_features.ts";
import {
  CLASSIFIER_NAMES,
  classifierNotes,
  evaluatePairClassifiers,
  scoredPairsTrial,
  trialHeadline,
} from "../lib/match/evaluation.ts";
import { loadPairClassifier } from "../lib/match/stacked_classifier.ts";
import { writeMagellanFixture } from "./format_fixtures.ts";
import { mulberry32 } from "./helpers.ts";

/** Embeddings where a product's two records sit close: product p's vector plus a little noise. */
function productEmbeddings(
  skus: string[],
  productOf: (sku: string) => number,
  name: string,
  dim = 12,
): NamedEmbeddings {
  const random = mulberry32(7);
  const centres = Array.from({ length: 12 }, () => Array.from({ length: dim }, () => random() * 2 - 1));
  const vectors = new Float32Array(skus.length * dim);
  skus.forEach((sku, r) =>
    centres[productOf(sku)].forEach((v, j) => (vectors[r * dim + j] = v + 0.1 * (random() - 0.5)))
  );
  return {
    name,
    table: { skus, vectors, dim, info: { tag: name, kind: "test", source: "test", distance: "euclidean" } },
  };
}

const root = await Deno.makeTempDir({ prefix: "classifier-" });
const source = await writeMagellanFixture(await Deno.makeTempDir({ prefix: "classifier-src-" }));
await importPairs({ dataset: "mag", root, source: { kind: "magellan", dir: source } });
const records = evidenceRecords("mag", root);
// Magellan ids are a:<row of tableA> (product = row) and b:<row of tableB> (product = row * 5 mod 12).
const productOf = (sku: string) => sku.startsWith("a:") ? Number(sku.slice(2)) : (Number(sku.slice(2)) * 5) % 12;
const siamese = productEmbeddings([...records.keys()], productOf, "SiameseRuCLIP");
const towers = productEmbeddings([...records.keys()], productOf, "raw tower features", 6);

describe("the pair classifier on an imported dataset", () => {
  it("reads each record's fields and attributes, and builds evidence plus Siamese columns", () => {
    expect(records.get("a:3")).toMatchObject({ brand: "philips", price: 23, attributes: "modelno: ph103" });
    const splits = datasetLayout("mag", root).splitsDir;
    const train = readPairSet(splits, "train");
    const model = fitPairFeatures(records, train, { siamese, towers, components: 4 });
    const x = pairFeatures(model, readPairSet(splits, "test"));
    expect(x.names).toEqual([
      ...PAIR_EVIDENCE_FEATURES,
      "siamese_distance",
      "siamese_cosine",
      "raw_cosine",
      ...[1, 2, 3, 4].map((c) => `siamese_pc${c}_absdiff`),
      ...[1, 2, 3, 4].map((c) => `siamese_pc${c}_product`),
    ]);
    expect(x.rows).toBe(6);
    const col = (name: string) =>
      Array.from({ length: x.rows }, (_, r) => x.values[r * x.names.length + x.names.indexOf(name)]);
    // Positives (label 1) are the close pairs of these embeddings.
    const labels = Array.from(x.labels);
    const cosines = col("siamese_cosine");
    expect(Math.min(...cosines.filter((_, i) => labels[i] === 1))).toBeGreaterThan(
      Math.max(...cosines.filter((_, i) => labels[i] === 0)),
    );
    expect(() => fitPairFeatures(new Map(), train, null)).toThrow(/training product .* is not in the products table/);
  });

  it("fits with and without the Siamese features, chooses on validation, reports test and ranking", async () => {
    const saveDir = join(root, "classifiers");
    const { splits, trials } = await evaluatePairClassifiers({
      dataset: "mag",
      root,
      rule: { kind: "f1" },
      siamese: { siamese, towers, components: 2 },
      boosted: { rounds: 50, earlyStopping: 10, params: { nthread: 1 } },
      saveDir,
    });
    expect(trials.map((t) => t.model)).toEqual([CLASSIFIER_NAMES.full, CLASSIFIER_NAMES.evidence]);
    for (const trial of trials) {
      expect(trial.test.pairs).toBe(splits.test.labels.length);
      expect(trial.test.threshold).toEqual(trial.chosen.threshold);
      expect(Object.keys(trialHeadline(trial))).toEqual([
        "val_f1",
        "test_precision",
        "test_recall",
        "test_f1",
        "test_roc_auc",
        "test_average_precision",
        "mrr",
        "map",
      ]);
      expect(trial.importances.length).toBe(trial.classifier.featureNames.length);
      // Saved, and read back to the same test probabilities.
      const loaded = await loadPairClassifier(trial.savedTo!);
      expect(Array.from(await loaded.predictProbabilities(trial.testMatrix))).toEqual(Array.from(trial.testScores));
      loaded.dispose();
      trial.classifier.dispose();
    }
    // With the Siamese features: stacked (the Siamese model trained on the training pairs).
    expect(trials.map((t) => t.classifier.kind)).toEqual(["stacked", "xgboost"]);
    expect(classifierNotes({ splits, trials })[1]).toBe(
      `${CLASSIFIER_NAMES.full}: stacked, its top model cross-fitted on the ${splits.validation.labels.length} val ` +
        "pairs; its threshold chosen on their out-of-fold scores.",
    );
    expect(classifierNotes({ splits, trials: trials.slice(1) })[1]).toMatch(/^No SiameseRuCLIP embeddings/);
    expect(trials[0].classifier.featureNames).toContain("siamese_cosine");
    expect(trials[1].classifier.featureNames).toEqual([...PAIR_EVIDENCE_FEATURES]);
    // The bi-encoder on the same pairs.
    const bi = scoredPairsTrial(siamese, splits, { kind: "f1" });
    expect(bi.test.rocAuc).toBe(1);
    // Asked for the Siamese classifier alone (the benchmark fits the evidence-only one once), it fits one.
    const alone = await evaluatePairClassifiers({
      dataset: "mag",
      root,
      rule: { kind: "f1" },
      siamese: { siamese, towers, components: 2 },
      boosted: { rounds: 20, earlyStopping: 5, params: { nthread: 1 } },
      evidenceOnly: false,
      siameseFit: "train",
    });
    expect(alone.trials.map((t) => t.model)).toEqual([CLASSIFIER_NAMES.full]);
    // Fitted on the training pairs on request: one boosted classifier over every column. The Siamese features
    // separate this fixture's pairs perfectly (and these embeddings were not trained on its training pairs):
    // it ranks every query's match first.
    expect(alone.trials[0].classifier.kind).toBe("xgboost");
    expect(alone.trials[0].ranking.mrr).toBe(1);
    alone.trials.forEach((t) => t.classifier.dispose());
    // The evidence-only classifier, quickly: the options the checks below share.
    const evidenceOnlyRun = {
      dataset: "mag",
      root,
      rule: { kind: "f1" } as const,
      siamese: null,
      boosted: { rounds: 20, earlyStopping: 5, params: { nthread: 1 } },
    };
    // Pairs given in memory (the split-seed study's) are used instead of the split files: the same fit.
    const given = await evaluatePairClassifiers({
      ...evidenceOnlyRun,
      pairs: { ...splits, train: { ...splits.train, split: "in-memory" } },
      bceHead: { epochs: 5 },
      saveDir: join(root, "given"),
    });
    // The tfjs BCE head on the same evidence, beside the boosted one, saved and read back alike.
    expect(given.trials.map((t) => [t.model, t.classifier.kind])).toEqual([
      [CLASSIFIER_NAMES.evidence, "xgboost"],
      [CLASSIFIER_NAMES.bceHead, "bce-head"],
    ]);
    const head = await loadPairClassifier(given.trials[1].savedTo!);
    expect(Array.from(await head.predictProbabilities(given.trials[1].testMatrix))).toEqual(
      Array.from(given.trials[1].testScores),
    );
    expect(classifierNotes(given, "val").at(-1)).toBe(
      `${CLASSIFIER_NAMES.bceHead}: a tfjs network trained with binary cross-entropy on the same evidence and ` +
        `training pairs; epoch ${given.trials[1].classifier.report.bestRound} kept, by the val log loss.`,
    );
    head.dispose();
    const fromFiles = await evaluatePairClassifiers({
      ...evidenceOnlyRun,
    });
    expect(Array.from(given.trials[0].testScores)).toEqual(Array.from(fromFiles.trials[0].testScores));
    // Further test splits: the same fit and threshold, tested on each (as fitting again for each would give).
    const twice = await evaluatePairClassifiers({
      ...evidenceOnlyRun,
      moreTestSplits: ["val"],
    });
    const onVal = await evaluatePairClassifiers({
      ...evidenceOnlyRun,
      testSplit: "val",
    });
    expect(twice.trials[0].more.length).toBe(1);
    expect(twice.trials[0].more[0].test).toEqual(onVal.trials[0].test);
    expect(twice.trials[0].more[0].ranking).toEqual(onVal.trials[0].ranking);
    expect(twice.trials[0].test).toEqual(fromFiles.trials[0].test);
    [...twice.trials, ...onVal.trials].forEach((t) => t.classifier.dispose());
    await expect(
      evaluatePairClassifiers({ ...evidenceOnlyRun, pairs: given.splits, moreTestSplits: ["val"] }),
    )
      .rejects.toThrow(/with pairs given in memory, give none/);
    expect(given.splits.train.split).toBe("in-memory");
    [...given.trials, ...fromFiles.trials].forEach((t) => t.classifier.dispose());
  });
});
