/**
 * The decision threshold of a pair model as one value: the score, the same threshold as a distance, and
 * the rule that chose it. Training records, the evaluation flows, the notebooks and the predictions
 * parquet all carry this value, so no caller converts between the two signs by hand.
 *
 * Scores are `-distance` (`scoresFromDistances` in pair_metrics.ts): a pair is predicted the same
 * product when `score >= threshold.score`, i.e. when `distance <= threshold.distance`.
 *
 * @module
 */

/** The kinds of rule that choose a threshold on validation: `fpr` (largest TPR with FPR <= a target), `f1`. */
export const THRESHOLD_RULE_KINDS = ["fpr", "f1"] as const;
export type ThresholdRuleKind = typeof THRESHOLD_RULE_KINDS[number];

/** How a threshold is chosen on validation pairs. */
export type ThresholdRule = { kind: "f1" } | { kind: "fpr"; target: number };

/** A pair model's decision threshold. */
export interface PairThreshold {
  /** Pairs with `score >= score` are predicted the same product (score = -distance). */
  readonly score: number;
  /** The same threshold as a distance: pairs with `distance <= distance` are predicted the same product. */
  readonly distance: number;
  /** The rule that chose it on the validation pairs. */
  readonly rule: ThresholdRule;
}

/** The threshold at score `score` (= -distance), chosen by `rule`. */
export function thresholdAtScore(score: number, rule: ThresholdRule): PairThreshold {
  if (Number.isNaN(score)) throw new Error(`threshold: the score is NaN (rule ${describeRule(rule)})`);
  return { score, distance: -score, rule };
}

/** True when a pair with this score is predicted the same product. */
export function predictsSame(threshold: PairThreshold, score: number): boolean {
  return score >= threshold.score;
}

/** A threshold rule from notebook parameters: "fpr" (with `targetFpr`) or "f1". */
export function thresholdRule(kind: string, targetFpr: number): ThresholdRule {
  if (kind === "f1") return { kind: "f1" };
  if (kind === "fpr") {
    if (!(targetFpr > 0 && targetFpr < 1)) {
      throw new Error(`TARGET_FPR = ${targetFpr}; expected a rate between 0 and 1 such as 0.05`);
    }
    return { kind: "fpr", target: targetFpr };
  }
  throw new Error(
    `THRESHOLD_RULE = ${JSON.stringify(kind)}; use ${THRESHOLD_RULE_KINDS.map((k) => `"${k}"`).join(" or ")}`,
  );
}

/** "largest TPR with FPR <= 0.05 on validation" or "F1-optimal on validation". */
export function describeRule(rule: ThresholdRule): string {
  return rule.kind === "fpr" ? `largest TPR with FPR <= ${rule.target} on validation` : "F1-optimal on validation";
}

/** "distance 0.4321 (F1-optimal on validation)". */
export function describeThreshold(threshold: PairThreshold, digits = 4): string {
  return `distance ${threshold.distance.toFixed(digits)} (${describeRule(threshold.rule)})`;
}

/** Flat columns of a threshold for tables and parquet metadata. */
export interface ThresholdColumns {
  threshold_distance: number;
  threshold_score: number;
  threshold_rule: ThresholdRuleKind;
  target_fpr: number | null;
}

/** The threshold as flat columns (tables, parquet key-value metadata). */
export function thresholdColumns(threshold: PairThreshold): ThresholdColumns {
  return {
    threshold_distance: threshold.distance,
    threshold_score: threshold.score,
    threshold_rule: threshold.rule.kind,
    target_fpr: threshold.rule.kind === "fpr" ? threshold.rule.target : null,
  };
}

/**
 * A threshold read back from JSON (a checkpoint's training state, a summary). Records written before
 * thresholds were values held a bare number: that was the F1-optimal distance.
 */
export function thresholdFromJson(value: unknown, where: string): PairThreshold {
  if (typeof value === "number") return thresholdAtScore(-value, { kind: "f1" });
  const record = value as Partial<PairThreshold> | null;
  if (record && typeof record.score === "number" && record.rule && typeof record.rule === "object") {
    const kind = (record.rule as { kind?: unknown }).kind;
    if (kind === "f1") return thresholdAtScore(record.score, { kind: "f1" });
    if (kind === "fpr") return thresholdAtScore(record.score, record.rule as ThresholdRule);
  }
  throw new Error(`${where}: ${JSON.stringify(value)} is not a threshold ({ score, distance, rule })`);
}
