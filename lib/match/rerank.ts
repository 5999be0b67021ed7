/**
 * Two-stage ranking: the first stage retrieves each query's top-k candidates by embedding distance (through
 * the catalog index, `evaluateTopK`); the second scores each (query, candidate) pair with the pair
 * classifier (pair_scorer.ts) and re-orders the k by its probability. Both stages are measured on the same
 * lists with the same metrics (ranking.ts' `topKRankingRow`, each query's positives among all its allowed
 * candidates), so recall@k at the cut-off k cannot change; recall at smaller cut-offs, MRR, mAP and nDCG
 * show what re-ranking does.
 *
 * @module
 */
import { type TopKEvaluation, topKSummary } from "../eval/flows.ts";
import { topKRankingRow } from "../eval/ranking.ts";
import { join } from "node:path";
import { exists } from "../fs.ts";
import { shownPath } from "../paths.ts";
import type { NamedEmbeddings } from "../eval/inputs.ts";
import { CLASSIFIER_NAMES } from "./evaluation.ts";
import { loadPairScorer, pairClassifiersDir, type PairScorer } from "./pair_scorer.ts";
import { type GalleryBlock, type GalleryCard, savedGalleries, thumbnailUri } from "../notebook/gallery.ts";
import type { Figure } from "../notebook/display.ts";
import { comparisonFigure } from "../eval/figures.ts";

/** A first-stage top-k list re-ordered by the pair classifier. */
export interface RerankedList {
  query: string;
  /** Best first, by the classifier's probability (ties: the first stage's order). */
  skus: string[];
  labels: number[];
  probabilities: number[];
  /** Each candidate's 1-based rank in the first stage. */
  firstStageRanks: number[];
  /** Each candidate's first-stage distance. */
  distances: number[];
}

/** Both stages of one model's top-k, measured alike. */
export interface RerankedTopK {
  scorer: string;
  /** The first stage (as `evaluateTopK` returned it). */
  before: TopKEvaluation;
  /**
   * The second stage as a top-k evaluation of its own (model "<first stage> → <scorer>"; its neighbours'
   * distances are 1 - probability), so every table and headline helper of the top-k flow reads it.
   */
  after: TopKEvaluation;
  lists: RerankedList[];
}

/** Re-orders each query's first-stage top-k by the scorer's probability and measures both orders. */
export async function rerankTopK(
  before: TopKEvaluation,
  scorer: Pick<PairScorer, "name" | "score">,
): Promise<RerankedTopK> {
  const left = before.neighbours.flatMap((n) => n.skus.map(() => n.query));
  const right = before.neighbours.flatMap((n) => n.skus);
  const probabilities = await scorer.score(left, right, `re-ranking ${before.model}'s top-${before.k}`);
  let offset = 0;
  const lists = before.neighbours.map((n): RerankedList => {
    const p = probabilities.subarray(offset, offset += n.skus.length);
    const order = n.skus.map((_, i) => i).sort((a, b) => p[b] - p[a] || a - b);
    return {
      query: n.query,
      skus: order.map((i) => n.skus[i]),
      labels: order.map((i) => n.labels[i]),
      probabilities: order.map((i) => p[i]),
      firstStageRanks: order.map((i) => i + 1),
      distances: order.map((i) => n.distances[i]),
    };
  });
  const perQuery = lists.map((list, q) => {
    const first = before.perQuery[q];
    const row = topKRankingRow(list.query, list.labels, first.positives, before.k, before.ks);
    row.allowed = first.allowed;
    return row;
  });
  const after: TopKEvaluation = {
    model: `${before.model} → ${scorer.name}`,
    distance: before.distance,
    k: before.k,
    ks: [...before.ks],
    catalogSize: before.catalogSize,
    search: `${before.search}, re-ranked by ${scorer.name}`,
    summary: topKSummary(perQuery),
    perQuery,
    neighbours: lists.map((l) => ({
      query: l.query,
      skus: l.skus,
      labels: l.labels,
      distances: l.probabilities.map((p) => 1 - p),
    })),
  };
  return { scorer: scorer.name, before, after, lists };
}

/** The metrics the before/after table and figure show: recall at each cut-off below k, then MRR, mAP, nDCG at k. */
export function rerankMetrics(reranked: RerankedTopK): string[] {
  const { k, ks } = reranked.before;
  return [
    ...ks.filter((cut) => cut < k).map((cut) => `recall@${cut}`),
    `recall@${k}`,
    `mrr@${k}`,
    `map@${k}`,
    `ndcg@${k}`,
  ];
}

/**
 * One row per stage: its metrics (means over the queries with a positive); with `filtered` (the same
 * re-ranking of the economically filtered top-k), its two rows follow.
 */
export function rerankRows(reranked: RerankedTopK, filtered?: RerankedTopK | null): Record<string, string | number>[] {
  const metrics = rerankMetrics(reranked);
  const rows = (r: RerankedTopK, suffix: string) =>
    [
      [`1: ${r.before.model}, top-${r.before.k} (${r.before.search})`, r.before] as const,
      [`2: re-ranked by ${r.scorer}`, r.after] as const,
    ].map(([stage, e]) => ({ stage: stage + suffix, ...Object.fromEntries(metrics.map((m) => [m, e.summary[m]])) }));
  return [...rows(reranked, ""), ...(filtered ? rows(filtered, ", economically filtered") : [])];
}

/** Bars of each metric before and after re-ranking. */
export function rerankFigure(reranked: RerankedTopK, title: string): Figure {
  const stages = [
    { model: "1: top-k by distance", metrics: reranked.before.summary },
    { model: `2: re-ranked by ${reranked.scorer}`, metrics: reranked.after.summary },
  ];
  return comparisonFigure(stages, rerankMetrics(reranked), title);
}

/** What a notebook saves of its second stage for the report: the table, the figure, the gallery (each when there). */
export function rerankResult(
  parts: { rows: Record<string, unknown>[]; figure: Figure | null; gallery: GalleryBlock[] },
) {
  const title = "before and after re-ranking";
  return {
    tables: parts.rows.length ? [{ title, rows: parts.rows }] : [],
    figures: parts.figure ? [{ title, figure: parts.figure }] : [],
    galleries: savedGalleries(`queries ${title}`, parts.gallery),
  };
}

/** How each query's first positive moved: the change of its reciprocal rank, with the ranks before and after. */
export interface RankChange {
  query: string;
  /** Position in `lists`. */
  index: number;
  before: number | null;
  after: number | null;
  /** Reciprocal rank after less before (0 when the query has no positive in its top-k). */
  gain: number;
}

/** Each query's change of its first positive's rank, for the queries with a positive among their top-k. */
export function rankChanges(reranked: RerankedTopK): RankChange[] {
  const rr = (rank: number | null) => (rank ? 1 / rank : 0);
  return reranked.lists.flatMap((list, index) => {
    const before = reranked.before.perQuery[index].firstPositiveRank;
    const after = reranked.after.perQuery[index].firstPositiveRank;
    if (before === null) return [];
    return [{ query: list.query, index, before, after, gain: rr(after) - rr(before) }];
  });
}

/**
 * A few queries worth looking at: those re-ranking helped most, then the one it hurt most (when any), then
 * unchanged ones, `count` in all.
 */
export function galleryQueries(reranked: RerankedTopK, count = 3): RankChange[] {
  const changes = rankChanges(reranked);
  const helped = changes.filter((c) => c.gain > 0).sort((a, b) => b.gain - a.gain || a.index - b.index);
  const hurt = changes.filter((c) => c.gain < 0).sort((a, b) => a.gain - b.gain || a.index - b.index);
  const same = changes.filter((c) => c.gain === 0);
  const worst = hurt.slice(0, count > 1 ? 1 : 0);
  const picked = [...helped.slice(0, count - worst.length), ...worst];
  return [...picked, ...same, ...helped.slice(count - worst.length), ...hurt.slice(worst.length)].slice(0, count);
}

/** What a gallery shows of a product: its name, photo and price. */
export interface ProductLookup {
  names: ReadonlyMap<string, string>;
  /** SKU -> photo path (`productPhotos`). */
  photos: ReadonlyMap<string, string | null>;
  economics?: ReadonlyMap<string | number, { price?: number | null }>;
}

function priceLine(products: ProductLookup, sku: string): string[] {
  const price = products.economics?.get(sku)?.price;
  return typeof price === "number" ? [`price ${price}`] : [];
}

/**
 * A gallery block per picked query: its photo and name, then its top-k before re-ranking (with each
 * candidate's distance) and after (with the classifier's probability and the rank it had), framed right or
 * wrong by the labels.
 */
export async function rerankGallery(
  reranked: RerankedTopK,
  picked: readonly RankChange[],
  products: ProductLookup,
): Promise<GalleryBlock[]> {
  const card = async (sku: string, lines: string[], label?: number): Promise<GalleryCard> => ({
    image: await thumbnailUri(products.photos.get(sku)),
    title: products.names.get(sku) || sku,
    lines: [...lines, ...priceLine(products, sku)],
    mark: label === undefined ? undefined : label === 1 ? "right" : "wrong",
  });
  const rank = (r: number | null) => (r === null ? "none" : `#${r}`);
  return await Promise.all(picked.map(async (change) => {
    const first = reranked.before.neighbours[change.index];
    const second = reranked.lists[change.index];
    return {
      heading: `query ${change.query}: first right candidate ${rank(change.before)} → ${rank(change.after)}`,
      rows: [
        { label: "query", cards: [await card(change.query, [change.query])] },
        {
          label: "before",
          cards: await Promise.all(
            first.skus.map((sku, r) =>
              card(sku, [`#${r + 1} · distance ${first.distances[r].toFixed(3)}`], first.labels[r])
            ),
          ),
        },
        {
          label: "after",
          cards: await Promise.all(second.skus.map((sku, r) =>
            card(
              sku,
              [`#${r + 1} (was #${second.firstStageRanks[r]}) · p ${second.probabilities[r].toFixed(3)}`],
              second.labels[r],
            )
          )),
        },
      ],
    };
  }));
}

/** The second stages a notebook may pick: a run's saved classifiers, or none. */
export const RERANKERS = ["full", "evidence", "bce-head", "none"] as const;

/** The saved classifier of each re-ranker: its folder under the run's `pair_classifier/` and its name. */
const RERANKER_CLASSIFIERS = {
  full: CLASSIFIER_NAMES.full,
  evidence: CLASSIFIER_NAMES.evidence,
  "bce-head": CLASSIFIER_NAMES.bceHead,
} as const;
export type Reranker = typeof RERANKERS[number];

/**
 * The pair classifier `clip_siamese_test` saved for `run` (`full`: with the Siamese features, `evidence`:
 * without, `bce-head`: the tfjs BCE head), ready to re-rank; null with a note saying why when there is none to use ("none" asked, or not
 * saved yet). A saved classifier that cannot be read, or that read other embeddings, throws.
 */
export async function loadRunPairScorer(
  run: string,
  which: Reranker,
  models: readonly NamedEmbeddings[],
  root?: string,
): Promise<{ scorer: PairScorer | null; note: string }> {
  if (!RERANKERS.includes(which)) {
    throw new Error(`RERANK = ${JSON.stringify(which)}; expected one of ${RERANKERS.join(", ")}`);
  }
  if (which === "none") return { scorer: null, note: "Re-ranking skipped (RERANK = none)." };
  const dir = join(pairClassifiersDir(run, root), which);
  if (!(await exists(dir))) {
    return {
      scorer: null,
      note: `No pair classifier saved for run **${run}** (${shownPath(dir)}): run \`clip_siamese_test\` with ` +
        `RUN=${run} first; the top-k above is the only stage.`,
    };
  }
  const scorer = await loadPairScorer(dir, { models, root, name: RERANKER_CLASSIFIERS[which] });
  return { scorer, note: `Second stage: **${scorer.name}**, saved by \`clip_siamese_test\` in ${shownPath(dir)}.` };
}
