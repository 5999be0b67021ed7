/**
 * What the testing notebooks read: a split's rendered pairs and its query-candidate table (written by
 * the data-splitting notebook), the products' economics (from the processed table) and named embedding
 * tables. Every reader names the file and the notebook that writes it when something is missing.
 *
 * @module
 */
import { join } from "node:path";
import pl from "nodejs-polars";
import { type SplitData, splitFiles } from "../data/pairs.ts";
import { embeddingPath, type EmbeddingTable, readEmbeddings } from "../embeddings/store.ts";
import type { ProductEconomics } from "./economic_filter.ts";

/** How two embeddings are compared: Euclidean distance, or 1 - cosine similarity. */
export type EmbeddingDistance = "euclidean" | "cosine";

/** An embedding table under the name it has in tables and plots ("SiameseRuCLIP", "SBERT zero-shot", ...). */
export interface NamedEmbeddings {
  name: string;
  /** The vectors; a pair scorer's table lists its products with `dim` 0 and no vectors. */
  table: EmbeddingTable;
  /** Overrides `table.info.distance` (e.g. to compare tower features by both distances). */
  distance?: EmbeddingDistance;
  /**
   * A model that compares two products without a dense vector each (the lexical baseline's sparse TF-IDF):
   * the distance of each (left, right) pair, throwing naming a product it does not know. Such a model
   * takes part in every pair and ranking comparison, not in vector search.
   */
  pairDistances?: (left: readonly string[], right: readonly string[], where: string) => Float64Array;
}

/** Vectors computed in memory (not read from the store) under a name: one row of `dim` per SKU. */
export function inMemoryEmbeddings(
  name: string,
  skus: string[],
  vectors: Float32Array,
  dim: number,
  distance: EmbeddingDistance,
): NamedEmbeddings {
  return { name, table: { skus, vectors, dim, info: { tag: name, kind: name, source: name, distance } } };
}

/** The rendered pairs of one split (label 1 = same product), as parallel arrays. */
export interface PairSet {
  split: string;
  skuLeft: string[];
  skuRight: string[];
  labels: Int32Array;
  kinds: string[];
  querySkus: string[];
}

/** The query-candidate (ranking) table of one split, as parallel arrays. */
export interface QueryCandidateSet {
  split: string;
  querySkus: string[];
  candidateSkus: string[];
  /** The labeller's class: "positive", "hard" or "soft". */
  classes: string[];
  labels: Int32Array;
}

function readSplitFrame(path: string, required: readonly string[]): pl.DataFrame {
  let frame: pl.DataFrame;
  try {
    frame = pl.readParquet(path);
  } catch (error) {
    throw new Error(
      `cannot read ${path} (${(error as Error).message.split("\n")[0]}); run the ` +
        "contrastive_train_data-splitting-by-query notebook for this dataset first",
    );
  }
  const missing = required.filter((c) => !frame.columns.includes(c));
  if (missing.length > 0) {
    throw new Error(`${path}: missing column(s) ${missing.join(", ")} (found ${frame.columns.join(", ")})`);
  }
  return frame;
}

function labelsOf(frame: pl.DataFrame, path: string): Int32Array {
  const values = frame.getColumn("label").toArray() as number[];
  const labels = new Int32Array(values.length);
  values.forEach((value, i) => {
    if (value !== 0 && value !== 1) {
      throw new Error(`${path}: row ${i} has label ${value}; expected 1 (same product) or 0`);
    }
    labels[i] = value;
  });
  return labels;
}

const strings = (frame: pl.DataFrame, column: string): string[] => frame.getColumn(column).toArray().map(String);

/** The rendered pairs of a split made in memory (pairs.ts `SplitData`), as a PairSet. */
export function pairSetOf(split: SplitData): PairSet {
  return {
    split: split.split,
    skuLeft: split.pairs.map((p) => p.sku_left),
    skuRight: split.pairs.map((p) => p.sku_right),
    labels: Int32Array.from(split.pairs, (p) => p.label),
    kinds: split.pairs.map((p) => p.kind),
    querySkus: split.pairs.map((p) => p.query_sku),
  };
}

/** The query-candidate table of a split made in memory, as a QueryCandidateSet. */
export function queryCandidateSetOf(split: SplitData): QueryCandidateSet {
  return {
    split: split.split,
    querySkus: split.queryCandidates.map((q) => q.query_sku),
    candidateSkus: split.queryCandidates.map((q) => q.candidate_sku),
    classes: split.queryCandidates.map((q) => q.class),
    labels: Int32Array.from(split.queryCandidates, (q) => q.label),
  };
}

/** Reads `<splitsDir>/<split>_pairs.parquet`. */
export function readPairSet(splitsDir: string, split: string): PairSet {
  const path = splitFiles(splitsDir, split).pairs;
  const frame = readSplitFrame(path, ["sku_left", "sku_right", "label", "kind", "query_sku"]);
  return {
    split,
    skuLeft: strings(frame, "sku_left"),
    skuRight: strings(frame, "sku_right"),
    labels: labelsOf(frame, path),
    kinds: strings(frame, "kind"),
    querySkus: strings(frame, "query_sku"),
  };
}

/** Reads `<splitsDir>/<split>_query_candidates.parquet`. */
export function readQueryCandidateSet(splitsDir: string, split: string): QueryCandidateSet {
  const path = splitFiles(splitsDir, split).queryCandidates;
  const frame = readSplitFrame(path, ["query_sku", "candidate_sku", "class", "label"]);
  return {
    split,
    querySkus: strings(frame, "query_sku"),
    candidateSkus: strings(frame, "candidate_sku"),
    classes: strings(frame, "class"),
    labels: labelsOf(frame, path),
  };
}

/** Which processed columns feed the economic filter. */
export interface EconomicsColumns {
  /** Default "final_price" (what the buyer pays). */
  price?: string;
  /** Default "sales". */
  sales?: string;
  /** Default "balance" (= balance_fbo + balance_fbs). */
  balance?: string;
  /** Default "rating". */
  rating?: string;
}

/** The economics of every product of the processed table, by SKU (missing values become null). */
export function productEconomics(
  processed: pl.DataFrame,
  columns: EconomicsColumns = {},
): Map<string, ProductEconomics> {
  const names = { price: "final_price", sales: "sales", balance: "balance", rating: "rating", ...columns };
  const missing = ["sku", ...Object.values(names)].filter((c) => !processed.columns.includes(c));
  if (missing.length > 0) {
    throw new Error(
      `processed table: missing column(s) ${missing.join(", ")} for the economic filter; ` +
        `pick existing ones (PRICE_COLUMN etc.) among ${processed.columns.join(", ")}`,
    );
  }
  const numbers = (column: string): (number | null)[] =>
    processed.getColumn(column).toArray().map((v) => v === null || v === undefined ? null : Number(v));
  const skus = strings(processed, "sku");
  const [price, sales, balance, rating] = [names.price, names.sales, names.balance, names.rating].map(numbers);
  return new Map(
    skus.map((sku, i) => [sku, { sku, price: price[i], sales: sales[i], balance: balance[i], rating: rating[i] }]),
  );
}

/** The distance a named table is compared with. */
export function distanceOf(model: NamedEmbeddings): EmbeddingDistance {
  const distance = model.distance ?? model.table.info.distance;
  if (distance !== "euclidean" && distance !== "cosine") {
    throw new Error(`${model.name}: unknown distance ${JSON.stringify(distance)}; use "euclidean" or "cosine"`);
  }
  return distance;
}

/**
 * Distance of each (left, right) SKU pair under the model's distance (Euclidean, or 1 - cos with a zero
 * vector at distance 1). Throws naming the first SKU without an embedding.
 */
export function pairDistances(
  model: NamedEmbeddings,
  left: readonly string[],
  right: readonly string[],
  where = "pairs",
): Float64Array {
  if (left.length !== right.length) {
    throw new Error(`${where}: ${left.length} left SKUs but ${right.length} right SKUs`);
  }
  if (model.pairDistances) return model.pairDistances(left, right, where);
  const { skus, vectors, dim } = model.table;
  const rowOf = new Map(skus.map((sku, i) => [sku, i]));
  const metric = distanceOf(model);
  const norms = new Float64Array(skus.length);
  if (metric === "cosine") {
    for (let r = 0; r < skus.length; r++) {
      let sum = 0;
      for (let j = r * dim; j < (r + 1) * dim; j++) sum += vectors[j] * vectors[j];
      norms[r] = Math.sqrt(sum);
    }
  }
  const lookup = (sku: string, i: number, side: string): number => {
    const row = rowOf.get(sku);
    if (row === undefined) {
      throw new Error(
        `${where}: ${side} SKU ${sku} of pair ${i} has no embedding in "${model.name}" ` +
          `(${model.table.info.tag ?? "table"}, ${skus.length} SKUs); recompute the embeddings for this dataset`,
      );
    }
    return row * dim;
  };
  const distances = new Float64Array(left.length);
  for (let i = 0; i < left.length; i++) {
    const a = lookup(left[i], i, "left");
    const b = lookup(right[i], i, "right");
    if (metric === "euclidean") {
      let sum = 0;
      for (let j = 0; j < dim; j++) {
        const diff = vectors[a + j] - vectors[b + j];
        sum += diff * diff;
      }
      distances[i] = Math.sqrt(sum);
    } else {
      let dot = 0;
      for (let j = 0; j < dim; j++) dot += vectors[a + j] * vectors[b + j];
      const norm = norms[a / dim] * norms[b / dim];
      distances[i] = norm > 0 ? 1 - dot / norm : 1;
    }
  }
  return distances;
}

/** An embedding table to load: its display name and its tag under `data/embeddings/<dataset>/`. */
export interface EmbeddingSpec {
  name: string;
  tag: string;
  distance?: EmbeddingDistance;
}

/** The tables that loaded, and those that did not with the reason (so a notebook can go on without them). */
export interface LoadedEmbeddings {
  models: NamedEmbeddings[];
  missing: { name: string; tag: string; reason: string }[];
}

/**
 * Loads the named embedding tables of a dataset. A missing table is reported (with the notebook that makes
 * it), not thrown, so that the comparison runs on whatever exists; throws when none loads.
 */
export async function loadNamedEmbeddings(dataset: string, specs: readonly EmbeddingSpec[]): Promise<LoadedEmbeddings> {
  const models: NamedEmbeddings[] = [];
  const missing: LoadedEmbeddings["missing"] = [];
  for (const spec of specs) {
    if (!spec.tag) continue;
    try {
      const table = await readEmbeddings(embeddingPath(dataset, spec.tag));
      models.push({ name: spec.name, table, ...(spec.distance ? { distance: spec.distance } : {}) });
    } catch (error) {
      missing.push({ name: spec.name, tag: spec.tag, reason: (error as Error).message });
    }
  }
  if (models.length === 0) {
    throw new Error(
      `no embeddings of dataset ${dataset} could be read (${
        missing.map((m) => `${m.tag}: ${m.reason}`).join("; ")
      }); ` +
        "run the notebooks of notebooks/2_embeddings first",
    );
  }
  return { models, missing };
}

/** The testing notebooks' tag parameters. */
export interface SuiteModelParams {
  RUN: string;
  SIAMESE_TAG: string;
  SBERT_TAG: string;
  TOWERS_TAG: string;
}

/** The suite's three models, named as every table and figure names them: the trained model first. */
export function suiteModelSpecs(params: SuiteModelParams): EmbeddingSpec[] {
  return [
    { name: "SiameseRuCLIP", tag: params.SIAMESE_TAG || `siamese_${params.RUN}` },
    { name: "SBERT zero-shot", tag: params.SBERT_TAG },
    { name: "raw tower features", tag: params.TOWERS_TAG },
  ];
}

/** One table row per loaded embedding table: name, tag, kind, source, products, dim, distance. */
export function embeddingRows(models: readonly NamedEmbeddings[]): Record<string, string | number>[] {
  return models.map((m) => ({
    model: m.name,
    tag: m.table.info.tag,
    kind: m.table.info.kind,
    source: String(m.table.info.source),
    products: m.table.skus.length,
    dim: m.table.dim,
    distance: distanceOf(m),
  }));
}

/** Markdown list of the tables that did not load, with why ("" when all loaded). */
export function missingModelsNote(missing: LoadedEmbeddings["missing"]): string {
  return missing.map((m) => `- **${m.name}** (${m.tag}) not available: ${m.reason}`).join("\n");
}

/** Pairs, positives and negatives of rendered pair sets. */
export function pairSetCounts(sets: readonly PairSet[]): Record<string, string | number>[] {
  return sets.map((s) => {
    const positives = s.labels.reduce((n, l) => n + l, 0);
    return { split: s.split, pairs: s.labels.length, positives, negatives: s.labels.length - positives };
  });
}

/** Queries, pairs, positives and negatives per positive of a query-candidate set, as one table row. */
export function queryCandidateCounts(set: QueryCandidateSet): Record<string, string | number> {
  const positives = set.labels.reduce((n, l) => n + l, 0);
  return {
    split: set.split,
    queries: new Set(set.querySkus).size,
    pairs: set.labels.length,
    positives,
    "negatives per positive": Number(((set.labels.length - positives) / Math.max(1, positives)).toFixed(1)),
  };
}

/** SKU -> product name of a processed table (for showing neighbours). */
export function productNames(processed: pl.DataFrame): Map<string, string> {
  const skus = processed.getColumn("sku").toArray();
  const names = processed.getColumn("name").toArray();
  return new Map(skus.map((sku, i) => [String(sku), String(names[i] ?? "")]));
}

/**
 * SKU -> path of its photo (`<imagesDir>/<image_name>`) from a processed table's `image_name` column; null
 * where the table names none. Whether the file is there is for the reader (`thumbnailUri` shows "no photo").
 */
export function productPhotos(processed: pl.DataFrame, imagesDir: string): Map<string, string | null> {
  const skus = processed.getColumn("sku").toArray();
  const images = processed.columns.includes("image_name")
    ? processed.getColumn("image_name").toArray()
    : skus.map(() => null);
  return new Map(skus.map((sku, i) => [String(sku), images[i] ? join(imagesDir, String(images[i])) : null]));
}
