/**
 * Micro-benchmark of the pair metrics on random pairs (the full query-candidate task has 110,780).
 *
 * @module
 */
import { averagePrecision, f1OptimalThreshold, rocAuc, rocCurve, thresholdForTargetFpr } from "./pair_metrics.ts";

/** Milliseconds taken by each pair metric on `pairs` random pairs. */
export interface PairMetricsTimings {
  pairs: number;
  positives: number;
  rocCurveMs: number;
  rocAucMs: number;
  averagePrecisionMs: number;
  f1ThresholdMs: number;
  fprThresholdMs: number;
  totalMs: number;
}

/** A small seeded generator (mulberry32) returning floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Times ROC curve, ROC AUC, average precision, the F1-optimal threshold and the FPR-target threshold on
 * `pairs` random pairs with about 1 positive per 93 (as in the reference's 110,780 pairs), scores being
 * negated distances rounded to 4 decimals (so ties occur). One warm-up run precedes the timed run.
 */
export function benchmarkPairMetrics(pairs: number, seed = 7): PairMetricsTimings {
  if (!Number.isInteger(pairs) || pairs < 2) {
    throw new Error(`benchmarkPairMetrics: pairs = ${pairs}; expected an integer >= 2.`);
  }
  const random = seededRandom(seed);
  const labels = new Uint8Array(pairs);
  const scores = new Float64Array(pairs);
  for (let i = 0; i < pairs; i++) {
    labels[i] = random() < 1 / 93 ? 1 : 0;
    const distance = Math.abs(1.5 - 0.7 * labels[i] + 0.5 * (random() + random() + random() - 1.5));
    scores[i] = -Math.round(distance * 1e4) / 1e4;
  }
  labels[0] = 1;
  labels[1] = 0;
  const time = (job: () => unknown): number => {
    const start = performance.now();
    job();
    return performance.now() - start;
  };
  const jobs = {
    rocCurveMs: () => rocCurve(labels, scores),
    rocAucMs: () => rocAuc(labels, scores),
    averagePrecisionMs: () => averagePrecision(labels, scores),
    f1ThresholdMs: () => f1OptimalThreshold(labels, scores),
    fprThresholdMs: () => thresholdForTargetFpr(labels, scores, 0.05),
  };
  for (const job of Object.values(jobs)) job();
  const rocCurveMs = time(jobs.rocCurveMs);
  const rocAucMs = time(jobs.rocAucMs);
  const averagePrecisionMs = time(jobs.averagePrecisionMs);
  const f1ThresholdMs = time(jobs.f1ThresholdMs);
  const fprThresholdMs = time(jobs.fprThresholdMs);
  let positives = 0;
  for (const label of labels) positives += label;
  return {
    pairs,
    positives,
    rocCurveMs,
    rocAucMs,
    averagePrecisionMs,
    f1ThresholdMs,
    fprThresholdMs,
    totalMs: rocCurveMs + rocAucMs + averagePrecisionMs + f1ThresholdMs + fprThresholdMs,
  };
}
