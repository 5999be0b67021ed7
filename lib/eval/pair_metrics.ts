/**
 * Pair metrics: is a (query, candidate) pair the same product?
 *
 * Conventions used everywhere in this module:
 * - `labels[i]` is 1 when pair i is the same product, 0 when it is not.
 * - `scores[i]` is higher when pair i is more likely the same product. For a distance (the Siamese
 *   model's Euclidean distance) pass `scoresFromDistances(distances)`, i.e. `-distance`.
 * - A pair is predicted "same" when `score >= threshold`. The curve and sweep functions take and return
 *   the raw score threshold; from `chooseThreshold` on, a threshold is a `PairThreshold` value
 *   (threshold.ts: score, distance and the rule that chose it).
 *
 * The curve functions reproduce scikit-learn 1.2 (the version in Debian's python3-sklearn, which the
 * fixtures were made with) to 1e-12, thresholds exactly. In particular `rocCurve` prepends the
 * threshold `max(score) + 1` (scikit-learn >= 1.3 prepends `+Infinity` instead).
 *
 * @module
 */
import { type PairThreshold, thresholdAtScore, thresholdColumns, type ThresholdRule } from "./threshold.ts";

/** Counts of a 2x2 confusion matrix; "positive" means "same product". */
export interface ConfusionMatrix {
  /** Same product, predicted same. */
  tp: number;
  /** Different products, predicted same. */
  fp: number;
  /** Different products, predicted different. */
  tn: number;
  /** Same product, predicted different. */
  fn: number;
}

/** A ROC curve as scikit-learn's `roc_curve` returns it: FPR/TPR increasing, thresholds decreasing. */
export interface RocCurve {
  fpr: Float64Array;
  tpr: Float64Array;
  thresholds: Float64Array;
}

/** A precision-recall curve as scikit-learn's `precision_recall_curve` returns it (thresholds ascending). */
export interface PrecisionRecallCurve {
  /** One longer than `thresholds`; the last entry is 1. */
  precision: Float64Array;
  /** One longer than `thresholds`; the last entry is 0. */
  recall: Float64Array;
  thresholds: Float64Array;
}

/**
 * True/false positive counts at every distinct score, scores descending (scikit-learn's
 * `_binary_clf_curve`): `tps[i]`/`fps[i]` count the pairs with `score >= thresholds[i]`.
 */
export interface BinaryCurve {
  tps: Float64Array;
  fps: Float64Array;
  thresholds: Float64Array;
  /** Number of pairs labelled 1. */
  positives: number;
  /** Number of pairs labelled 0. */
  negatives: number;
}

/** Metrics of a confusion matrix. */
export interface ThresholdMetrics {
  /** TP / (TP + FP); 0 when nothing is predicted same (scikit-learn's zero_division=0). */
  precision: number;
  /** TP / (TP + FN); 0 when there are no positives (scikit-learn's zero_division=0). */
  recall: number;
  /** 2TP / (2TP + FP + FN); 0 when that is 0/0. */
  f1: number;
  /** (TP + TN) / all. */
  accuracy: number;
  /** "P Acc" of the reference: recall of positives, TP / (TP + FN); NaN when there are no positives. */
  positiveAccuracy: number;
  /** "N Acc" of the reference: recall of negatives (TNR), TN / (TN + FP); NaN when there are no negatives. */
  negativeAccuracy: number;
  /** Mean of P Acc and N Acc (balanced accuracy). */
  balancedAccuracy: number;
  /** False positive rate FP / (FP + TN); NaN when there are no negatives. */
  fpr: number;
  /** True positive rate TP / (TP + FN); NaN when there are no positives. */
  tpr: number;
}

/** Everything measured on one set of pairs at one threshold. */
export interface PairReport extends ThresholdMetrics {
  /** The threshold applied: pairs with `score >= threshold.score` are predicted same. */
  threshold: PairThreshold;
  pairs: number;
  positives: number;
  negatives: number;
  confusion: ConfusionMatrix;
  /** Threshold-free ROC AUC; NaN when only one class is present (scikit-learn raises there). */
  rocAuc: number;
  /** Threshold-free average precision (scikit-learn's `average_precision_score`). */
  averagePrecision: number;
}

/** The F1-optimal threshold and the metrics it gives. */
export interface F1OptimalThreshold {
  threshold: number;
  f1: number;
  precision: number;
  recall: number;
}

/** A threshold chosen for a target false positive rate, with the rates recomputed at it. */
export interface FprTargetThreshold {
  targetFpr: number;
  threshold: number;
  /** FP / (FP + TN) recomputed from the confusion matrix at `threshold`. */
  achievedFpr: number;
  /** TP / (TP + FN) recomputed from the confusion matrix at `threshold`. */
  achievedTpr: number;
}

/** A threshold chosen on validation pairs, to be applied unchanged to test pairs with `applyThreshold`. */
export interface ChosenThreshold {
  threshold: PairThreshold;
  /** Metrics on the validation pairs the threshold was chosen on. */
  validation: PairReport;
}

/** Scores from distances (higher = more likely the same product): `-distance`. */
export function scoresFromDistances(distances: ArrayLike<number>): Float64Array {
  const scores = new Float64Array(distances.length);
  for (let i = 0; i < distances.length; i++) scores[i] = -distances[i];
  return scores;
}

/** Checks labels are 0/1, scores finite, lengths equal; throws naming the index otherwise. */
export function validatePairs(labels: ArrayLike<number>, scores: ArrayLike<number>, where = "pairs"): void {
  if (labels.length !== scores.length) {
    throw new Error(
      `${where}: ${labels.length} labels but ${scores.length} scores; pass one label and one score per pair.`,
    );
  }
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i];
    if (label !== 0 && label !== 1) {
      throw new Error(`${where}: labels[${i}] = ${label}; expected 1 (same product) or 0 (different products).`);
    }
    if (!Number.isFinite(scores[i])) {
      throw new Error(`${where}: scores[${i}] = ${scores[i]} is not finite; fix or drop that pair before evaluating.`);
    }
  }
}

/**
 * Counts of positives/negatives at each distinct score, scores descending (scikit-learn's
 * `_binary_clf_curve`). Positive and negative scores are sorted separately with the native typed-array
 * sort and merged, which is much faster than an index sort with a comparator.
 */
export function binaryCurve(labels: ArrayLike<number>, scores: ArrayLike<number>): BinaryCurve {
  validatePairs(labels, scores);
  let positives = 0;
  for (let i = 0; i < labels.length; i++) positives += labels[i];
  const negatives = labels.length - positives;
  const positiveScores = new Float64Array(positives);
  const negativeScores = new Float64Array(negatives);
  for (let i = 0, p = 0, q = 0; i < labels.length; i++) {
    if (labels[i] === 1) positiveScores[p++] = scores[i];
    else negativeScores[q++] = scores[i];
  }
  positiveScores.sort();
  negativeScores.sort();
  const capacity = labels.length;
  const tps = new Float64Array(capacity);
  const fps = new Float64Array(capacity);
  const thresholds = new Float64Array(capacity);
  let p = positives - 1;
  let q = negatives - 1;
  let tp = 0;
  let fp = 0;
  let count = 0;
  while (p >= 0 || q >= 0) {
    const value = p < 0
      ? negativeScores[q]
      : q < 0
      ? positiveScores[p]
      : Math.max(positiveScores[p], negativeScores[q]);
    while (p >= 0 && positiveScores[p] === value) {
      tp++;
      p--;
    }
    while (q >= 0 && negativeScores[q] === value) {
      fp++;
      q--;
    }
    tps[count] = tp;
    fps[count] = fp;
    thresholds[count] = value;
    count++;
  }
  return {
    tps: tps.slice(0, count),
    fps: fps.slice(0, count),
    thresholds: thresholds.slice(0, count),
    positives,
    negatives,
  };
}

/**
 * ROC curve, exactly as scikit-learn 1.2's `roc_curve(labels, scores, drop_intermediate=True)`:
 * one point per distinct score (ties form one point), collinear points dropped, and a first point
 * (0, 0) at threshold `max(score) + 1`. With no negatives FPR is all NaN; with no positives TPR is
 * all NaN (scikit-learn warns and does the same).
 */
export function rocCurve(labels: ArrayLike<number>, scores: ArrayLike<number>, dropIntermediate = true): RocCurve {
  const curve = binaryCurve(labels, scores);
  let { tps, fps, thresholds } = curve;
  const n = tps.length;
  if (dropIntermediate && n > 2) {
    const keep: number[] = [0];
    for (let i = 1; i < n - 1; i++) {
      const fpsCorner = fps[i + 1] - fps[i] - (fps[i] - fps[i - 1]);
      const tpsCorner = tps[i + 1] - tps[i] - (tps[i] - tps[i - 1]);
      if (fpsCorner !== 0 || tpsCorner !== 0) keep.push(i);
    }
    keep.push(n - 1);
    tps = Float64Array.from(keep, (i) => curve.tps[i]);
    fps = Float64Array.from(keep, (i) => curve.fps[i]);
    thresholds = Float64Array.from(keep, (i) => curve.thresholds[i]);
  }
  const m = tps.length + 1;
  const fpr = new Float64Array(m);
  const tpr = new Float64Array(m);
  const outThresholds = new Float64Array(m);
  outThresholds[0] = thresholds[0] + 1;
  outThresholds.set(thresholds, 1);
  const lastFp = fps[fps.length - 1];
  const lastTp = tps[tps.length - 1];
  for (let i = 1; i < m; i++) {
    fpr[i] = lastFp > 0 ? fps[i - 1] / lastFp : NaN;
    tpr[i] = lastTp > 0 ? tps[i - 1] / lastTp : NaN;
  }
  if (lastFp <= 0) fpr[0] = NaN;
  if (lastTp <= 0) tpr[0] = NaN;
  return { fpr, tpr, thresholds: outThresholds };
}

/** Area under a curve by the trapezoid rule (numpy's `trapz(y, x)`). */
export function trapezoidArea(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let area = 0;
  for (let i = 1; i < x.length; i++) area += (x[i] - x[i - 1]) * (y[i] + y[i - 1]) / 2;
  return area;
}

/**
 * ROC AUC (scikit-learn's `roc_auc_score`): trapezoid area under `rocCurve`, so tied scores count half.
 * Throws when only one class is present, as scikit-learn does.
 */
export function rocAuc(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  validatePairs(labels, scores);
  let positives = 0;
  for (let i = 0; i < labels.length; i++) positives += labels[i];
  if (positives === 0 || positives === labels.length) {
    throw new Error(
      `ROC AUC is not defined: all ${labels.length} pairs are labelled ${positives === 0 ? 0 : 1}; ` +
        "evaluate on a set with both same-product and different-product pairs.",
    );
  }
  const { fpr, tpr } = rocCurve(labels, scores);
  return trapezoidArea(fpr, tpr);
}

/**
 * Precision-recall curve (scikit-learn 1.2's `precision_recall_curve`): one point per distinct score,
 * thresholds ascending, plus a final point (precision 1, recall 0). With no positives recall is 1
 * everywhere (scikit-learn warns and does the same).
 */
export function precisionRecallCurve(labels: ArrayLike<number>, scores: ArrayLike<number>): PrecisionRecallCurve {
  const { tps, fps, thresholds } = binaryCurve(labels, scores);
  const n = tps.length;
  const precision = new Float64Array(n + 1);
  const recall = new Float64Array(n + 1);
  const ascending = new Float64Array(n);
  const lastTp = tps[n - 1];
  for (let i = 0; i < n; i++) {
    const j = n - 1 - i;
    const predicted = tps[j] + fps[j];
    precision[i] = predicted !== 0 ? tps[j] / predicted : 0;
    recall[i] = lastTp === 0 ? 1 : tps[j] / lastTp;
    ascending[i] = thresholds[j];
  }
  precision[n] = 1;
  recall[n] = 0;
  return { precision, recall, thresholds: ascending };
}

/**
 * Average precision (scikit-learn's `average_precision_score`): the step-wise sum
 * `sum_k (R_k - R_{k-1}) P_k` over distinct thresholds, without interpolation. With no positives it is
 * 0, as in scikit-learn 1.2 (which warns).
 */
export function averagePrecision(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  const { precision, recall } = precisionRecallCurve(labels, scores);
  let sum = 0;
  for (let i = 0; i < precision.length - 1; i++) sum += (recall[i + 1] - recall[i]) * precision[i];
  return -sum;
}

/** Confusion matrix when pairs with `score >= threshold` are predicted same. */
export function confusionAtThreshold(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  threshold: number,
): ConfusionMatrix {
  validatePairs(labels, scores);
  if (Number.isNaN(threshold)) throw new Error("confusionAtThreshold: threshold is NaN; pass a number.");
  let tp = 0;
  let fp = 0;
  let tn = 0;
  let fn = 0;
  for (let i = 0; i < labels.length; i++) {
    const predictedSame = scores[i] >= threshold;
    if (labels[i] === 1) {
      if (predictedSame) tp++;
      else fn++;
    } else if (predictedSame) fp++;
    else tn++;
  }
  return { tp, fp, tn, fn };
}

/** Precision, recall, F1, accuracy, P Acc, N Acc, balanced accuracy, FPR and TPR of a confusion matrix. */
export function metricsFromConfusion(confusion: ConfusionMatrix): ThresholdMetrics {
  const { tp, fp, tn, fn } = confusion;
  const positives = tp + fn;
  const negatives = tn + fp;
  const tpr = positives > 0 ? tp / positives : NaN;
  const fpr = negatives > 0 ? fp / negatives : NaN;
  const negativeAccuracy = negatives > 0 ? tn / negatives : NaN;
  const f1Denominator = 2 * tp + fp + fn;
  return {
    precision: tp + fp > 0 ? tp / (tp + fp) : 0,
    recall: positives > 0 ? tp / positives : 0,
    f1: f1Denominator > 0 ? (2 * tp) / f1Denominator : 0,
    accuracy: positives + negatives > 0 ? (tp + tn) / (positives + negatives) : NaN,
    positiveAccuracy: tpr,
    negativeAccuracy,
    balancedAccuracy: (tpr + negativeAccuracy) / 2,
    fpr,
    tpr,
  };
}

function requireBothClasses(curve: BinaryCurve, what: string): void {
  if (curve.positives === 0 || curve.negatives === 0) {
    throw new Error(
      `${what}: needs both same-product (1) and different-product (0) pairs, got ${curve.positives} and ` +
        `${curve.negatives}; choose thresholds on a set that has both.`,
    );
  }
}

/**
 * The threshold with the highest F1, sweeping every distinct score. The threshold is a score value,
 * so `score >= threshold` reproduces the optimum exactly. Ties in F1 (compared as exact rationals
 * 2TP / (2TP + FP + FN)) keep the HIGHEST threshold (fewest pairs predicted same).
 * Throws when one class is missing.
 */
export function f1OptimalThreshold(labels: ArrayLike<number>, scores: ArrayLike<number>): F1OptimalThreshold {
  const curve = binaryCurve(labels, scores);
  requireBothClasses(curve, "f1OptimalThreshold");
  const { tps, fps, thresholds, positives } = curve;
  let best = -1;
  let bestF1 = -1;
  for (let i = 0; i < tps.length; i++) {
    const f1 = (2 * tps[i]) / (tps[i] + fps[i] + positives);
    if (f1 > bestF1) {
      bestF1 = f1;
      best = i;
    }
  }
  return {
    threshold: thresholds[best],
    f1: bestF1,
    precision: tps[best] / (tps[best] + fps[best]),
    recall: tps[best] / positives,
  };
}

/**
 * The threshold with the largest TPR whose FPR is at most `targetFpr`, among every distinct score and
 * `max(score) + 1` (predict nothing same; the first threshold of `rocCurve`). Ties in TPR keep the
 * highest threshold (lowest FPR). The achieved FPR and TPR are recomputed from the confusion matrix at
 * the returned threshold (the reference printed FPR = TPR = 1.0 there). Throws when one class is missing.
 */
export function thresholdForTargetFpr(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  targetFpr: number,
): FprTargetThreshold {
  if (!(targetFpr >= 0 && targetFpr <= 1)) {
    throw new Error(`thresholdForTargetFpr: targetFpr = ${targetFpr}; expected a rate between 0 and 1 (e.g. 0.05).`);
  }
  const curve = binaryCurve(labels, scores);
  requireBothClasses(curve, "thresholdForTargetFpr");
  const { tps, fps, thresholds, negatives } = curve;
  let threshold = thresholds[0] + 1;
  let bestTp = 0;
  for (let i = 0; i < tps.length; i++) {
    if (fps[i] / negatives > targetFpr) break; // fps only grows as the threshold falls
    if (tps[i] > bestTp) {
      bestTp = tps[i];
      threshold = thresholds[i];
    }
  }
  const achieved = metricsFromConfusion(confusionAtThreshold(labels, scores, threshold));
  return { targetFpr, threshold, achievedFpr: achieved.fpr, achievedTpr: achieved.tpr };
}

/** `thresholdForTargetFpr` for each FPR of a grid (the reference's "TPR at FPR" table). */
export function tprAtFprGrid(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  targetFprs: readonly number[] = [0.01, 0.02, 0.05, 0.1, 0.2],
): FprTargetThreshold[] {
  return targetFprs.map((target) => thresholdForTargetFpr(labels, scores, target));
}

/** All pair metrics at one threshold, plus threshold-free ROC AUC and average precision. */
export function pairReport(labels: ArrayLike<number>, scores: ArrayLike<number>, threshold: PairThreshold): PairReport {
  const confusion = confusionAtThreshold(labels, scores, threshold.score);
  const positives = confusion.tp + confusion.fn;
  const negatives = confusion.tn + confusion.fp;
  return {
    threshold,
    pairs: labels.length,
    positives,
    negatives,
    confusion,
    ...metricsFromConfusion(confusion),
    rocAuc: positives > 0 && negatives > 0 ? rocAuc(labels, scores) : NaN,
    averagePrecision: averagePrecision(labels, scores),
  };
}

/**
 * Chooses a threshold on VALIDATION pairs by a rule: `{ kind: "f1" }` (F1-optimal) or
 * `{ kind: "fpr", target }` (largest TPR with FPR <= target). Apply the result to test pairs with
 * `applyThreshold`, which never re-tunes it.
 */
export function chooseThreshold(
  validationLabels: ArrayLike<number>,
  validationScores: ArrayLike<number>,
  rule: ThresholdRule,
): ChosenThreshold {
  let score: number;
  if (rule.kind === "f1") score = f1OptimalThreshold(validationLabels, validationScores).threshold;
  else if (rule.kind === "fpr") {
    score = thresholdForTargetFpr(validationLabels, validationScores, rule.target).threshold;
  } else {throw new Error(
      `chooseThreshold: unknown rule ${JSON.stringify(rule)}; use { kind: "f1" } or { kind: "fpr", target }.`,
    );}
  const threshold = thresholdAtScore(score, rule);
  return { threshold, validation: pairReport(validationLabels, validationScores, threshold) };
}

/** Applies a threshold chosen on validation, unchanged, to test pairs and reports every pair metric there. */
export function applyThreshold(
  chosen: ChosenThreshold,
  testLabels: ArrayLike<number>,
  testScores: ArrayLike<number>,
): PairReport {
  return pairReport(testLabels, testScores, chosen.threshold);
}

/** A pair report as one flat table row: the threshold's columns, the counts, the confusion cells and every rate. */
export function pairReportRow(report: PairReport): Record<string, number | string | null> {
  const { threshold, confusion, ...metrics } = report;
  return { ...thresholdColumns(threshold), ...metrics, ...confusion };
}
