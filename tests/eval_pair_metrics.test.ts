import { describe, it } from "node:test";
import { expect } from "expect";
import {
  applyThreshold,
  averagePrecision,
  chooseThreshold,
  confusionAtThreshold,
  f1OptimalThreshold,
  metricsFromConfusion,
  pairReport,
  precisionRecallCurve,
  rocAuc,
  rocCurve,
  scoresFromDistances,
  thresholdForTargetFpr,
  tprAtFprGrid,
} from "../lib/eval/pair_metrics.ts";
import { thresholdAtScore } from "../lib/eval/threshold.ts";
import { benchmarkPairMetrics, seededRandom } from "../lib/eval/bench.ts";

interface AtThreshold {
  threshold: number;
  tp: number;
  fp: number;
  tn: number;
  fn: number;
  precision: number;
  recall: number;
  f1: number;
  accuracy: number;
}
interface Dataset {
  name: string;
  labels: number[];
  scores: number[];
  roc_curve: { fpr: (number | null)[]; tpr: (number | null)[]; thresholds: number[] };
  roc_auc?: number;
  roc_auc_error?: string;
  precision_recall_curve: { precision: number[]; recall: number[]; thresholds: number[] };
  average_precision: number;
  at_thresholds: AtThreshold[];
  f1_optimal?: { threshold: number; f1: number; precision: number; recall: number };
  fpr_targets?: { target: number; threshold: number; achievedFpr: number; achievedTpr: number }[];
}

const fixture = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/eval/sklearn_reference.json", import.meta.url)),
) as { sklearn: string; datasets: Dataset[] };

/** Asserts arrays are equal within `tolerance`; null in the fixture stands for NaN. */
function expectClose(actual: ArrayLike<number>, expected: (number | null)[], tolerance: number, what: string): void {
  expect({ what, length: actual.length }).toEqual({ what, length: expected.length });
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i];
    if (e === null) {
      expect({ what, i, nan: Number.isNaN(actual[i]) }).toEqual({ what, i, nan: true });
    } else if (tolerance === 0) {
      expect({ what, i, value: actual[i] }).toEqual({ what, i, value: e });
    } else {
      expect({ what, i, diff: Math.abs(actual[i] - e) <= tolerance }).toEqual({ what, i, diff: true });
    }
  }
}

describe("pair metrics match scikit-learn 1.2", () => {
  it("fixture was made with scikit-learn 1.2", () => {
    expect(fixture.sklearn.startsWith("1.2")).toBe(true);
  });
  for (const data of fixture.datasets) {
    describe(data.name, () => {
      it("roc_curve (drop_intermediate=True): fpr/tpr within 1e-12, thresholds exactly", () => {
        const roc = rocCurve(data.labels, data.scores);
        expectClose(roc.fpr, data.roc_curve.fpr, 1e-12, "fpr");
        expectClose(roc.tpr, data.roc_curve.tpr, 1e-12, "tpr");
        expectClose(roc.thresholds, data.roc_curve.thresholds, 0, "thresholds");
      });
      it("roc_auc_score (or its error for one class)", () => {
        if (data.roc_auc_error !== undefined) {
          expect(() => rocAuc(data.labels, data.scores)).toThrow(/ROC AUC is not defined/);
        } else {
          expect(Math.abs(rocAuc(data.labels, data.scores) - data.roc_auc!)).toBeLessThanOrEqual(1e-12);
        }
      });
      it("precision_recall_curve and average_precision_score", () => {
        const pr = precisionRecallCurve(data.labels, data.scores);
        expectClose(pr.precision, data.precision_recall_curve.precision, 1e-12, "precision");
        expectClose(pr.recall, data.precision_recall_curve.recall, 1e-12, "recall");
        expectClose(pr.thresholds, data.precision_recall_curve.thresholds, 0, "thresholds");
        expect(Math.abs(averagePrecision(data.labels, data.scores) - data.average_precision)).toBeLessThanOrEqual(
          1e-12,
        );
      });
      it("confusion_matrix, precision, recall, f1, accuracy at thresholds (score >= threshold)", () => {
        for (const at of data.at_thresholds) {
          const confusion = confusionAtThreshold(data.labels, data.scores, at.threshold);
          expect(confusion).toEqual({ tp: at.tp, fp: at.fp, tn: at.tn, fn: at.fn });
          const metrics = metricsFromConfusion(confusion);
          for (const key of ["precision", "recall", "f1", "accuracy"] as const) {
            expect(Math.abs(metrics[key] - at[key])).toBeLessThanOrEqual(1e-12);
          }
        }
      });
      if (data.f1_optimal) {
        it("F1-optimal threshold equals a brute-force sweep with f1_score", () => {
          const best = f1OptimalThreshold(data.labels, data.scores);
          expect(best.threshold).toBe(data.f1_optimal!.threshold);
          for (const key of ["f1", "precision", "recall"] as const) {
            expect(Math.abs(best[key] - data.f1_optimal![key])).toBeLessThanOrEqual(1e-12);
          }
        });
        it("FPR-target thresholds equal a brute-force sweep; achieved FPR/TPR match the confusion matrix", () => {
          for (const expected of data.fpr_targets!) {
            const chosen = thresholdForTargetFpr(data.labels, data.scores, expected.target);
            expect(chosen.threshold).toBe(expected.threshold);
            expect(chosen.achievedFpr).toBe(expected.achievedFpr);
            expect(chosen.achievedTpr).toBe(expected.achievedTpr);
            expect(chosen.achievedFpr).toBeLessThanOrEqual(expected.target);
            const c = confusionAtThreshold(data.labels, data.scores, chosen.threshold);
            expect(chosen.achievedFpr).toBe(c.fp / (c.fp + c.tn));
            expect(chosen.achievedTpr).toBe(c.tp / (c.tp + c.fn));
          }
        });
      }
    });
  }
});

describe("pair metrics: conventions and edge cases", () => {
  it("scores from distances are negated distances", () => {
    expect(Array.from(scoresFromDistances([0.5, 2, 0]))).toEqual([-0.5, -2, -0]);
  });

  it("P Acc / N Acc / balanced accuracy, worked by hand", () => {
    // labels 1 1 1 0 0; scores .9 .8 .1 .7 .2; threshold .5 -> predicted 1 1 0 1 0
    // TP=2 FN=1 FP=1 TN=1: P Acc 2/3, N Acc 1/2, mean 7/12, precision 2/3, F1 = 4/6
    const report = pairReport([1, 1, 1, 0, 0], [0.9, 0.8, 0.1, 0.7, 0.2], thresholdAtScore(0.5, { kind: "f1" }));
    expect(report.confusion).toEqual({ tp: 2, fp: 1, tn: 1, fn: 1 });
    expect(report.positiveAccuracy).toBeCloseTo(2 / 3, 15);
    expect(report.negativeAccuracy).toBe(0.5);
    expect(report.balancedAccuracy).toBeCloseTo(7 / 12, 15);
    expect(report.f1).toBeCloseTo(2 / 3, 15);
    expect(report.fpr).toBe(0.5);
    // AUC by hand: 6 positive-negative pairs, ranked right: (.9,.7)(.9,.2)(.8,.7)(.8,.2) -> 4/6
    expect(report.rocAuc).toBeCloseTo(4 / 6, 15);
  });

  it("rejects labels other than 0/1, non-finite scores and length mismatches, naming the index", () => {
    expect(() => rocCurve([0, 2], [0.1, 0.2])).toThrow(/labels\[1\] = 2/);
    expect(() => rocCurve([0, 1], [0.1, NaN])).toThrow(/scores\[1\] = NaN/);
    expect(() => rocCurve([0, 1, 1], [0.1, 0.2])).toThrow(/3 labels but 2 scores/);
  });

  it("F1 ties keep the highest threshold", () => {
    // labels 1 0 0 1, scores .9 .8 .7 .6: at .9 F1 = 2/(2+0+1) = 2/3; at .6 F1 = 4/(4+2+0) = 2/3 -> keep .9
    const best = f1OptimalThreshold([1, 0, 0, 1], [0.9, 0.8, 0.7, 0.6]);
    expect(best.threshold).toBe(0.9);
    expect(best.f1).toBeCloseTo(2 / 3, 15);
  });

  it("threshold choice needs both classes", () => {
    expect(() => f1OptimalThreshold([1, 1], [0.1, 0.2])).toThrow(/needs both/);
    expect(() => thresholdForTargetFpr([0, 0], [0.1, 0.2], 0.1)).toThrow(/needs both/);
    expect(() => thresholdForTargetFpr([0, 1], [0.1, 0.2], 5)).toThrow(/targetFpr = 5/);
  });

  it("FPR target that no score reaches gives 'predict nothing' at max + 1 with FPR 0, TPR 0", () => {
    // the top score is a negative: any threshold <= 0.9 has FPR >= 1/2
    const chosen = thresholdForTargetFpr([0, 1, 0, 1], [0.9, 0.5, 0.1, 0.3], 0.25);
    expect(chosen).toEqual({ targetFpr: 0.25, threshold: 1.9, achievedFpr: 0, achievedTpr: 0 });
  });

  it("TPR at an FPR grid is non-decreasing in the target", () => {
    const data = fixture.datasets.find((d) => d.name === "random_n200")!;
    const grid = tprAtFprGrid(data.labels, data.scores, [0.01, 0.05, 0.1, 0.3, 1]);
    for (let i = 1; i < grid.length; i++) expect(grid[i].achievedTpr).toBeGreaterThanOrEqual(grid[i - 1].achievedTpr);
    expect(grid[4].achievedTpr).toBe(1);
  });
});

describe("threshold chosen on validation is applied unchanged to test", () => {
  const random = seededRandom(11);
  const makePairs = (n: number, shift: number): { labels: number[]; scores: number[] } => {
    const labels: number[] = [];
    const scores: number[] = [];
    for (let i = 0; i < n; i++) {
      const label = random() < 0.5 ? 1 : 0;
      labels.push(label);
      scores.push(-(Math.abs(1.2 - 0.6 * label + 0.6 * (random() - 0.5)) + shift)); // -distance
    }
    return { labels, scores };
  };
  const validation = makePairs(300, 0);
  const test = makePairs(300, 0.25); // test distances drift: its own optimum differs

  for (const rule of [{ kind: "f1" }, { kind: "fpr", target: 0.05 }] as const) {
    it(`rule ${JSON.stringify(rule)}`, () => {
      const chosen = chooseThreshold(validation.labels, validation.scores, rule);
      const testOptimum = rule.kind === "f1"
        ? f1OptimalThreshold(test.labels, test.scores).threshold
        : thresholdForTargetFpr(test.labels, test.scores, rule.target).threshold;
      expect(testOptimum).not.toBe(chosen.threshold.score);
      expect(chosen.threshold.distance).toBe(-chosen.threshold.score);
      const report = applyThreshold(chosen, test.labels, test.scores);
      expect(report.threshold).toEqual(chosen.threshold);
      expect(report.confusion).toEqual(confusionAtThreshold(test.labels, test.scores, chosen.threshold.score));
      expect(report.fpr).toBe(report.confusion.fp / (report.confusion.fp + report.confusion.tn));
      expect(report.tpr).toBe(report.confusion.tp / (report.confusion.tp + report.confusion.fn));
      expect(chosen.validation.threshold).toEqual(chosen.threshold);
      expect(chosen.threshold.rule).toEqual(rule);
    });
  }
});

describe("benchmarkPairMetrics", () => {
  it("returns timings for the requested number of pairs", () => {
    const timings = benchmarkPairMetrics(5000);
    expect(timings.pairs).toBe(5000);
    expect(timings.positives).toBeGreaterThan(0);
    expect(timings.totalMs).toBeGreaterThanOrEqual(timings.rocCurveMs);
  });
});
