/**
 * The stacked pair classifier (lib/match/stacked_classifier.ts): the Siamese features read where the Siamese
 * model did not train. A synthetic set reproduces the leak: a "siamese" column nearly equal to the label on
 * the training pairs (the model fitted them) but only weakly informative on validation and test pairs.
 */
import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { fitBoostedClassifier } from "../lib/match/boosted_classifier.ts";
import type { LabelledMatrix } from "../lib/match/classifier.ts";
import {
  EVIDENCE_SCORE,
  fitStackedClassifier,
  loadPairClassifier,
  stratifiedFolds,
} from "../lib/match/stacked_classifier.ts";
import { rocAuc } from "../lib/eval/pair_metrics.ts";
import { mulberry32 } from "./helpers.ts";

const EVIDENCE = ["title_cosine", "code_match"];
const NAMES = [...EVIDENCE, "siamese_cosine"];

/** Pairs with two noisy evidence columns and a Siamese column: leaky (in-sample) or honest. */
function pairs(rows: number, seed: number, leaky: boolean): LabelledMatrix {
  const random = mulberry32(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const labels = Array.from({ length: rows }, () => (random() < 0.4 ? 1 : 0));
  const values = new Float32Array(rows * NAMES.length);
  labels.forEach((y, r) => {
    values[r * 3] = y + 1.2 * gauss();
    values[r * 3 + 1] = y + 1.5 * gauss();
    values[r * 3 + 2] = leaky ? y + 0.05 * gauss() : y + 1.0 * gauss();
  });
  return { names: [...NAMES], values, rows, labels };
}

const train = pairs(800, 1, true);
const validation = pairs(800, 2, false);
const test = pairs(2000, 3, false);
const quiet = { params: { nthread: 1 } };

/** The evidence columns of a matrix (every third column is the Siamese one). */
const evidenceOnly = (m: LabelledMatrix): LabelledMatrix => ({
  names: EVIDENCE,
  values: m.values.filter((_, i) => i % 3 !== 2),
  rows: m.rows,
  labels: m.labels,
});

describe("the stacked pair classifier", () => {
  it("keeps what the Siamese column tells on new pairs, where one classifier fitted on the training pairs loses it", async () => {
    const alone = await fitBoostedClassifier(evidenceOnly(train), evidenceOnly(validation), quiet);
    const inSample = await fitBoostedClassifier(train, validation, quiet);
    const { classifier: stacked, validationScores } = await fitStackedClassifier(train, validation, {
      evidenceNames: EVIDENCE,
      base: quiet,
      stack: { params: { nthread: 1 } },
    });
    try {
      const auc = async (c: { predictProbabilities(x: LabelledMatrix): Promise<Float64Array> }, x: LabelledMatrix) =>
        rocAuc(Int32Array.from(test.labels), await c.predictProbabilities(x));
      const [aloneAuc, inSampleAuc, stackedAuc] = [
        await auc(alone, evidenceOnly(test)),
        await auc(inSample, test),
        await auc(stacked, test),
      ];
      // The in-sample fit trusts the column it saw perfect: on new pairs it is worse than the stack.
      // (Measured: evidence alone 0.738, in-sample 0.798, stacked 0.815.)
      expect(stackedAuc).toBeGreaterThan(inSampleAuc + 0.01);
      // The stack adds the Siamese column's information to the evidence.
      expect(stackedAuc).toBeGreaterThan(aloneAuc + 0.05);
      // Out-of-fold validation scores: near the test AUC, unlike the scores of validation pairs the fold
      // models were fitted on.
      const labels = Int32Array.from(validation.labels);
      const outOfFold = rocAuc(labels, validationScores);
      const refit = rocAuc(labels, await stacked.predictProbabilities(validation));
      expect(Math.abs(outOfFold - stackedAuc)).toBeLessThan(0.03);
      expect(refit).toBeGreaterThan(outOfFold);
      expect(stacked.report.history.length).toBe(150);
      expect(stacked.report.history.every((h) => Number.isFinite(h.validation))).toBe(true);
    } finally {
      [alone, inSample, stacked].forEach((c) => c.dispose());
    }
  });

  it("takes the evidence-only classifier already fitted as its base: the same stack, its own copy", async () => {
    const options = { evidenceNames: EVIDENCE, base: quiet, stack: { folds: 3, rounds: 30, params: { nthread: 1 } } };
    const fittedBase = await fitBoostedClassifier(evidenceOnly(train), evidenceOnly(validation), quiet);
    const reused = await fitStackedClassifier(train, validation, { ...options, fittedBase });
    const own = await fitStackedClassifier(train, validation, options);
    // The caller's classifier is its own: disposing it leaves the stack working.
    fittedBase.dispose();
    try {
      expect(Array.from(await reused.classifier.predictProbabilities(test))).toEqual(
        Array.from(await own.classifier.predictProbabilities(test)),
      );
      expect(Array.from(reused.validationScores)).toEqual(Array.from(own.validationScores));
    } finally {
      reused.classifier.dispose();
      own.classifier.dispose();
    }
  });

  it("explains each row by the original features, adding up to its log-odds", async () => {
    const { classifier } = await fitStackedClassifier(train, validation, {
      evidenceNames: EVIDENCE,
      base: quiet,
      stack: { folds: 3, rounds: 40, params: { nthread: 1 } },
    });
    try {
      const some: LabelledMatrix = { ...test, values: test.values.subarray(0, 30 * 3), rows: 30 };
      const c = await classifier.contributions(some);
      expect(c.names).toEqual(NAMES);
      expect(c.names).not.toContain(EVIDENCE_SCORE);
      const p = await classifier.predictProbabilities(some);
      for (let r = 0; r < some.rows; r++) {
        const margin = c.values.subarray(r * 3, r * 3 + 3).reduce((a, b) => a + b, c.bias[r]);
        expect(1 / (1 + Math.exp(-margin))).toBeCloseTo(p[r], 4);
      }
    } finally {
      classifier.dispose();
    }
  });

  it("saves and reads back to the same probabilities", async () => {
    const dir = await Deno.makeTempDir({ prefix: "stacked-" });
    const { classifier } = await fitStackedClassifier(train, validation, {
      evidenceNames: EVIDENCE,
      base: quiet,
      stack: { folds: 2, rounds: 20, params: { nthread: 1 } },
    });
    const loaded = await (async () => {
      try {
        const files = await classifier.save(join(dir, "full"));
        expect(files.map((f) => f.slice(dir.length + 1))).toEqual([
          "full/base/xgboost.json",
          "full/base/classifier.json",
          "full/fold-1/xgboost.json",
          "full/fold-1/classifier.json",
          "full/fold-2/xgboost.json",
          "full/fold-2/classifier.json",
          "full/classifier.json",
        ]);
        const loaded = await loadPairClassifier(join(dir, "full"));
        expect(loaded.kind).toBe("stacked");
        expect(Array.from(await loaded.predictProbabilities(test))).toEqual(
          Array.from(await classifier.predictProbabilities(test)),
        );
        return loaded;
      } finally {
        classifier.dispose();
      }
    })();
    loaded.dispose();
    await expect(loaded.predictProbabilities(test)).rejects.toThrow(/used after dispose/);
    await expect(loadPairClassifier(join(dir, "nothing"))).rejects.toThrow(/not a saved pair classifier/);
  });

  it("refuses what it cannot cross-fit, naming the counts", async () => {
    const tiny: LabelledMatrix = {
      ...validation,
      rows: 5,
      values: validation.values.subarray(0, 15),
      labels: [1, 0, 0, 0, 0],
    };
    await expect(fitStackedClassifier(train, tiny, { evidenceNames: EVIDENCE })).rejects.toThrow(
      "stacking needs at least 2 validation pairs of each label to cross-fit; the validation pairs have 1 positive and 4 negative",
    );
    await expect(fitStackedClassifier(train, validation, { evidenceNames: EVIDENCE, stack: { folds: 1 } })).rejects
      .toThrow("stack.folds = 1; expected an integer >= 2");
    await expect(fitStackedClassifier(train, validation, { evidenceNames: NAMES })).rejects.toThrow(
      "no columns besides the evidence",
    );
  });

  it("deals each label over the folds evenly", () => {
    const labels = Array.from({ length: 23 }, (_, i) => (i % 3 === 0 ? 1 : 0));
    const folds = stratifiedFolds(labels, 4, 0);
    for (let f = 0; f < 4; f++) {
      const pos = labels.filter((l, i) => l === 1 && folds[i] === f).length;
      const neg = labels.filter((l, i) => l === 0 && folds[i] === f).length;
      expect(pos).toBeGreaterThanOrEqual(1);
      expect(pos).toBeLessThanOrEqual(2);
      expect(neg).toBeGreaterThanOrEqual(3);
      expect(neg).toBeLessThanOrEqual(4);
    }
  });
});
