/**
 * The head residual's scale, chosen on validation after training.
 *
 * A model with a `headResidual` s embeds a product as [head(x), s * x], so a pair's squared distance is
 * d_head² + s² d_raw²: s weighs the trained head against the raw tower distance the training started from,
 * and no weight depends on it. Training runs at one scale (the suite's default); afterwards each scale of
 * a grid is scored on the validation pairs from the same two distances (the products are embedded once),
 * and the best one is kept. On the demo the head ranks a query's candidates worse than the raw features
 * while separating pairs better, and the scale that balances the two differs per split.
 *
 * The score is the mean of the threshold-free metrics the suite reports: pair AP over the validation
 * pairs (the rendered pairs, as the rendered-pairs test scores them), and MRR and mAP over each validation
 * query's candidates (the split's query-candidate pairs, as the query test ranks them). Without
 * query-candidate pairs only AP counts. Ties keep the scale the model was trained at.
 *
 * @module
 */
import { join } from "node:path";
import type { SiameseRuCLIP } from "../model/siamese.ts";
import { shownPath } from "../paths.ts";
import { averagePrecision, scoresFromDistances } from "../eval/pair_metrics.ts";
import { queryPairRanking } from "../eval/ranking.ts";
import { updateCheckpointConfig } from "../model/checkpoint.ts";
import { computeEmbeddings } from "./embed.ts";
import type { ProductInputs } from "./product_inputs.ts";
import type { ScoringInputs } from "./strategies.ts";
import { RESIDUAL_SCALE_GRID } from "./config.ts";
import { type PairIndexSet, pairIndexSet } from "./trainer.ts";

/** One scale's validation numbers. */
export interface ResidualScaleRow {
  scale: number;
  /** Pair AP over every validation pair. */
  ap: number;
  /** Over the validation queries' candidates; null without them. */
  mrr: number | null;
  map: number | null;
  /** What the choice maximises: the mean of the metrics above that are not null. */
  score: number;
}

/** The result of `chooseResidualScale`. */
export interface ResidualScaleChoice {
  /** The scale the model had (was trained at). */
  trainedScale: number;
  /** The scale chosen (the model now has it). */
  scale: number;
  /** Every scale tried, in the grid's order (the trained scale included). */
  rows: ResidualScaleRow[];
  /** What the score averages. */
  scoredBy: string;
}

/** Options of `chooseResidualScale`. */
export interface ResidualScaleOptions {
  model: SiameseRuCLIP;
  inputs: ProductInputs;
  /** The validation pairs (pair AP). */
  validation: PairIndexSet;
  /** The validation split's query-candidate pairs, the query on the left (MRR, mAP): `queryCandidatePairs`. */
  queryCandidates?: PairIndexSet;
  /** The training mode's cached inputs (`trainingStrategy(mode).scoringInputs`). */
  scoring?: ScoringInputs;
  /** Scales to try (each > 0); default `RESIDUAL_SCALE_GRID`. The trained scale is always tried. */
  scales?: readonly number[];
}

/** The head and raw squared distances of each pair, from embeddings [head, s x] at the model's scale s. */
function distanceParts(
  embeddings: Float32Array,
  dim: number,
  headDim: number,
  scale: number,
  left: ArrayLike<number>,
  right: ArrayLike<number>,
): { head: Float64Array; raw: Float64Array } {
  const head = new Float64Array(left.length);
  const raw = new Float64Array(left.length);
  for (let i = 0; i < left.length; i++) {
    const a = left[i] * dim;
    const b = right[i] * dim;
    let h = 0;
    let r = 0;
    for (let k = 0; k < dim; k++) {
      const d = embeddings[a + k] - embeddings[b + k];
      if (k < headDim) h += d * d;
      else r += d * d;
    }
    head[i] = h;
    raw[i] = r / (scale * scale);
  }
  return { head, raw };
}

/**
 * Scores each scale on the validation pairs, sets the best on the model (`setHeadResidual`) and returns
 * the table. The model must have a head residual; see the module comment.
 */
export async function chooseResidualScale(options: ResidualScaleOptions): Promise<ResidualScaleChoice> {
  const { model, inputs, validation } = options;
  const trainedScale = model.headResidual;
  if (trainedScale === null) {
    throw new Error("chooseResidualScale: the model has no head residual (HEAD_RESIDUAL 0); nothing to choose");
  }
  const grid = options.scales ?? RESIDUAL_SCALE_GRID;
  for (const scale of grid) {
    if (!(typeof scale === "number" && Number.isFinite(scale) && scale > 0)) {
      throw new Error(`residual scales: ${JSON.stringify(scale)} is not a number > 0 (in [${grid.join(", ")}])`);
    }
  }
  if (validation.labels.length === 0) throw new Error("chooseResidualScale: no validation pairs");
  const scales = [...new Set([...grid, trainedScale])].sort((a, b) => a - b);
  const ranking = options.queryCandidates && options.queryCandidates.labels.length > 0 ? options.queryCandidates : null;

  const sets = ranking ? [validation, ranking] : [validation];
  const rows = [...new Set(sets.flatMap((set) => [...set.left, ...set.right]))].sort((a, b) => a - b);
  const embeddings = await computeEmbeddings(model, inputs, rows, {
    ...options.scoring,
    batchSize: 64,
    progress: false,
  });
  const position = new Map(rows.map((row, i) => [row, i]));
  const partsOf = (set: PairIndexSet) =>
    distanceParts(
      embeddings,
      model.embeddingDim,
      model.embeddingDim - model.featureDim,
      trainedScale,
      Int32Array.from(set.left, (r) => position.get(r)!),
      Int32Array.from(set.right, (r) => position.get(r)!),
    );
  const scoresAt = (parts: { head: Float64Array; raw: Float64Array }, scale: number) =>
    scoresFromDistances(parts.head.map((h, i) => Math.sqrt(h + scale * scale * parts.raw[i])));
  const pairParts = partsOf(validation);
  const rankingParts = ranking ? partsOf(ranking) : null;

  const table: ResidualScaleRow[] = scales.map((scale) => {
    const ap = averagePrecision(validation.labels, scoresAt(pairParts, scale));
    if (!ranking || !rankingParts) return { scale, ap, mrr: null, map: null, score: ap };
    const { summary } = queryPairRanking({
      queries: ranking.left,
      left: ranking.left,
      right: ranking.right,
      scores: scoresAt(rankingParts, scale),
      labels: ranking.labels,
    });
    return { scale, ap, mrr: summary.mrr, map: summary.map, score: (ap + summary.mrr + summary.map) / 3 };
  });
  let best = table.find((row) => row.scale === trainedScale)!;
  for (const row of table) if (row.score > best.score) best = row;
  model.setHeadResidual(best.scale);
  return {
    trainedScale,
    scale: best.scale,
    rows: table,
    scoredBy: ranking
      ? "mean of validation pair AP, MRR and mAP (each validation query's candidates)"
      : "validation pair AP (no query-candidate pairs given)",
  };
}

/** A split's query-candidate pairs as a PairIndexSet, the query on the left (for `queryCandidates`). */
export function queryCandidatePairs(
  inputs: ProductInputs,
  candidates: readonly { query_sku: string; candidate_sku: string; label: number }[],
): PairIndexSet {
  return pairIndexSet(
    inputs,
    candidates.map((c) => ({ skuLeft: c.query_sku, skuRight: c.candidate_sku, label: c.label })),
  );
}

/**
 * The training notebook's step: on a model holding a checkpoint's weights, chooses the scale among
 * `scales` (`chooseResidualScale`) and writes it into the checkpoint's config.json, where the embedding
 * and testing notebooks read it. Returns null, changing nothing, when the model has no residual or
 * `scales` is empty.
 */
export async function chooseCheckpointResidualScale(
  options: ResidualScaleOptions & { checkpointDir: string },
): Promise<ResidualScaleChoice | null> {
  if (options.model.headResidual === null || (options.scales && options.scales.length === 0)) return null;
  const choice = await chooseResidualScale(options);
  await updateCheckpointConfig(options.checkpointDir, options.model.config);
  return choice;
}

/** What the training notebook says after `chooseCheckpointResidualScale` (its result, or why nothing was chosen). */
export function residualScaleMessage(
  choice: ResidualScaleChoice | null,
  model: SiameseRuCLIP,
  checkpointDir: string,
): string {
  if (choice) {
    return `Scale **${choice.scale}** kept (trained at ${choice.trainedScale}; by the ${choice.scoredBy}), ` +
      `written to \`${shownPath(join(checkpointDir, "config.json"))}\`.`;
  }
  return model.headResidual === null
    ? "No head residual (`HEAD_RESIDUAL` 0): nothing to choose."
    : "`RESIDUAL_SCALES` is empty: the trained scale is kept.";
}
