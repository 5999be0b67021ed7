/**
 * Scoring the regex labeller against the demo's ground truth (sku -> product_id): a candidate is
 * truly positive for a query when it is the same product. Precision and recall of "positive" are
 * computed over all labelled (query, candidate) pairs.
 */
import pl from "nodejs-polars";
import type { QueryLabels } from "./labeller.ts";

/** Precision/recall of the "positive" class, overall and per query. */
export interface LabellerScore {
  precision: number;
  recall: number;
  f1: number;
  truePositives: number;
  falsePositives: number;
  falseNegatives: number;
  perQuery: {
    query_sku: string;
    predicted: number;
    actual: number;
    true_positives: number;
    precision: number;
    recall: number;
  }[];
}

/** Reads the ground truth file (sku -> product_id). */
export function readGroundTruth(path: string): Map<string, string> {
  let frame: pl.DataFrame;
  try {
    frame = pl.readParquet(path);
  } catch (error) {
    throw new Error(
      `cannot read the ground truth ${path} (${(error as Error).message}); it exists only for the generated demo`,
    );
  }
  const skus = frame.getColumn("sku").toArray();
  const ids = frame.getColumn("product_id").toArray();
  return new Map(skus.map((s, i) => [String(s), String(ids[i])]));
}

/**
 * Scores labelled queries: `candidateSkus` are the SKUs that were candidates (products of other
 * sellers present in the processed table), so true positives missing from the table do not count.
 */
export function scoreLabeller(
  queries: readonly QueryLabels[],
  identity: ReadonlyMap<string, string>,
  candidateSkus: readonly string[],
): LabellerScore {
  let tp = 0, fp = 0, fn = 0;
  const perQuery: LabellerScore["perQuery"] = [];
  for (const query of queries.filter((q) => q.has_rule)) {
    const productId = identity.get(query.query_sku);
    if (productId === undefined) throw new Error(`query SKU ${query.query_sku} is not in the ground truth`);
    const actual = new Set(candidateSkus.filter((s) => s !== query.query_sku && identity.get(s) === productId));
    const truePositives = query.positives.filter((s) => actual.has(s)).length;
    tp += truePositives;
    fp += query.positives.length - truePositives;
    fn += actual.size - truePositives;
    perQuery.push({
      query_sku: query.query_sku,
      predicted: query.positives.length,
      actual: actual.size,
      true_positives: truePositives,
      precision: query.positives.length ? truePositives / query.positives.length : 0,
      recall: actual.size ? truePositives / actual.size : 0,
    });
  }
  const precision = tp + fp ? tp / (tp + fp) : 0;
  const recall = tp + fn ? tp / (tp + fn) : 0;
  return {
    precision,
    recall,
    f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0,
    truePositives: tp,
    falsePositives: fp,
    falseNegatives: fn,
    perQuery,
  };
}
