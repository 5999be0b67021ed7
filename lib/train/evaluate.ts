/** Scoring pair sets with a model: labels and scores (-distance) for the metric functions. */
import type { SiameseRuCLIP } from "../model/siamese.ts";
import { scoresFromDistances } from "../eval/pair_metrics.ts";
import { computeEmbeddings, rowPairDistances } from "./embed.ts";
import type { ProductInputs } from "./product_inputs.ts";
import type { PairIndexSet } from "./trainer.ts";
import type { ScoringInputs } from "./strategies.ts";

export interface ScoredPairs {
  labels: Float32Array;
  distances: Float64Array;
  /** -distance: higher means more likely the same product. */
  scores: Float64Array;
}

/**
 * Embeds each product of the pairs once and scores the pairs: only the head runs when `features`
 * (all tower features) are given, the text towers and the head when `imageFeatures` are; a training
 * mode's inputs are `trainingStrategy(mode).scoringInputs(model, features)`.
 */
export async function scorePairs(
  model: SiameseRuCLIP,
  inputs: ProductInputs,
  pairs: PairIndexSet,
  options: ScoringInputs & { batchSize?: number } = {},
): Promise<ScoredPairs> {
  return (await scorePairSets(model, inputs, [pairs], options))[0];
}

/** `scorePairs` for several pair sets at once: a product in more than one set is embedded once. */
export async function scorePairSets(
  model: SiameseRuCLIP,
  inputs: ProductInputs,
  sets: readonly PairIndexSet[],
  options: ScoringInputs & { batchSize?: number } = {},
): Promise<ScoredPairs[]> {
  const rows = [...new Set(sets.flatMap((pairs) => [...pairs.left, ...pairs.right]))].sort((a, b) => a - b);
  const embeddings = await computeEmbeddings(model, inputs, rows, {
    features: options.features,
    imageFeatures: options.imageFeatures,
    batchSize: options.batchSize ?? 64,
    progress: false,
  });
  const position = new Map(rows.map((row, i) => [row, i]));
  return sets.map((pairs) => {
    const distances = rowPairDistances(
      embeddings,
      model.embeddingDim,
      Int32Array.from(pairs.left, (r) => position.get(r)!),
      Int32Array.from(pairs.right, (r) => position.get(r)!),
    );
    return { labels: pairs.labels, distances, scores: scoresFromDistances(distances) };
  });
}
