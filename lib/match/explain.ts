/**
 * Why the classifier decided as it did on single pairs: the test pairs it got most wrong (the negatives
 * it scored highest, the positives it scored lowest) and, for each, the features that pushed its score
 * most (SHAP contributions to the log-odds), beside the two records' names, and as a gallery with the two
 * records' photos.
 *
 * @module
 */
import type { PairSet } from "../eval/inputs.ts";
import type { EvidenceRecord } from "./pair_evidence.ts";
import type { ClassifierTrial } from "./evaluation.ts";
import { type GalleryBlock, thumbnailUri } from "../notebook/gallery.ts";

/** A test pair worth explaining. */
export interface NotablePair {
  kind: "false positive" | "false negative";
  /** Row of the test pairs. */
  row: number;
}

/** The `count` highest-scored negatives above the threshold and lowest-scored positives below it. */
export function notablePairs(trial: ClassifierTrial, set: PairSet, count = 3): NotablePair[] {
  const threshold = trial.chosen.threshold.score;
  const rows = Array.from(set.labels, (_, i) => i);
  const falsePositives = rows.filter((i) => set.labels[i] === 0 && trial.testScores[i] >= threshold)
    .sort((a, b) => trial.testScores[b] - trial.testScores[a]).slice(0, count);
  const falseNegatives = rows.filter((i) => set.labels[i] === 1 && trial.testScores[i] < threshold)
    .sort((a, b) => trial.testScores[a] - trial.testScores[b]).slice(0, count);
  return [
    ...falsePositives.map((row) => ({ kind: "false positive" as const, row })),
    ...falseNegatives.map((row) => ({ kind: "false negative" as const, row })),
  ];
}

/** One table row per notable pair: both names, the probability, and the `top` strongest contributions. */
export async function explainPairs(
  trial: ClassifierTrial,
  set: PairSet,
  records: ReadonlyMap<string, EvidenceRecord>,
  pairs: readonly NotablePair[],
  top = 4,
): Promise<Record<string, string | number>[]> {
  if (pairs.length === 0) return [];
  const m = trial.testMatrix;
  const width = m.names.length;
  const picked = new Float32Array(pairs.length * width);
  pairs.forEach((p, i) => picked.set(m.values.subarray(p.row * width, (p.row + 1) * width), i * width));
  const c = await trial.classifier.contributions({ names: m.names, values: picked, rows: pairs.length });
  return pairs.map((p, i) => {
    const strongest = m.names.map((name, j) => ({ name, value: c.values[i * width + j] }))
      .sort((a, b) => Math.abs(b.value) - Math.abs(a.value)).slice(0, top)
      .map((f) => `${f.name} ${f.value >= 0 ? "+" : ""}${f.value.toFixed(2)}`);
    return {
      kind: p.kind,
      left: records.get(set.skuLeft[p.row])?.name ?? set.skuLeft[p.row],
      right: records.get(set.skuRight[p.row])?.name ?? set.skuRight[p.row],
      probability: Number(trial.testScores[p.row].toFixed(4)),
      "strongest contributions (log-odds)": strongest.join(", "),
    };
  });
}

/** Names and photos of the products, by SKU (`productPhotos`). */
export interface PairPhotos {
  names: ReadonlyMap<string, string>;
  photos: ReadonlyMap<string, string | null>;
}

/**
 * The explained pairs (`explainPairs`' rows, in the order of `pairs`) as a gallery: per pair, its kind and
 * probability, the strongest contributions, and the two records side by side with their photos.
 */
export async function explainedPairsGallery(
  explained: readonly Record<string, string | number>[],
  set: PairSet,
  pairs: readonly NotablePair[],
  products: PairPhotos,
): Promise<GalleryBlock[]> {
  const card = async (sku: string, side: string) => ({
    image: await thumbnailUri(products.photos.get(sku)),
    title: products.names.get(sku) || sku,
    lines: [`${side} · ${sku}`],
  });
  return await Promise.all(pairs.map(async (p, i) => ({
    heading: `${p.kind}: probability ${explained[i].probability} (labelled ${
      set.labels[p.row] ? "same" : "different"
    })`,
    note: `strongest contributions (log-odds): ${explained[i]["strongest contributions (log-odds)"]}`,
    rows: [{
      label: "pair",
      cards: [await card(set.skuLeft[p.row], "left"), await card(set.skuRight[p.row], "right")],
    }],
  })));
}
