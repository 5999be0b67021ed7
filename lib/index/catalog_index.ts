/**
 * One small interface for a catalog of product embeddings with attributes, searchable top-k with a
 * filter inside the search (`filter.ts`'s typed predicate), and a factory choosing the backend:
 *
 * - `lancedb` (default): embedded, on disk in a folder (`lancedb_index.ts`); exact (flat) search for
 *   small tables, an IVF index (IVF-PQ, IVF-HNSW-SQ or IVF-flat) when `build()` sees a large one;
 *   filters are LanceDB prefilters.
 * - `qdrant`: a Qdrant server by URL (`qdrant_index.ts`), chosen when a URL is given (QDRANT_URL).
 *
 * ```ts
 * const index = await openCatalogIndex({ dim: 462, metric: "euclidean", path: "data/index/siamese" });
 * await index.upsert({ skus, vectors, attributes: { price, stock, sales, rating, seller } });
 * await index.build();
 * const hits = await index.search(queryVector, { k: 10, filter: economicQueryFilter(query) });
 * ```
 *
 * Distances follow `lib/eval/retrieval.ts`: smaller = closer; "euclidean" is the true (not squared)
 * L2 distance, "cosine" is 1 - cos. `exactSearch` is the plain-TS reference every backend must match.
 *
 * @module
 */
import { type AttributeSchema, type AttributeValue, checkSchema, ECONOMIC_SCHEMA, type IndexFilter } from "./filter.ts";
import { matchesFilter, validateFilter } from "./filter.ts";

/** "euclidean" (L2) or "cosine" (1 - cos), as in lib/eval/retrieval.ts. */
export type IndexMetric = "euclidean" | "cosine";

/** Attribute columns of an upsert batch: one entry per SKU (null = missing). */
export type AttributeColumns = Readonly<Record<string, ArrayLike<number | null> | readonly (string | null)[]>>;

/** Rows to insert or replace (by SKU). */
export interface CatalogBatch {
  skus: readonly string[];
  /** Row-major [skus.length, dim]. */
  vectors: Float32Array;
  /** Columns named in the index's schema; a schema column absent here is null for these rows. */
  attributes?: AttributeColumns;
}

/** One search result. */
export interface SearchHit {
  sku: string;
  distance: number;
}

/** Options of `CatalogIndex.search`. */
export interface SearchOptions {
  k: number;
  /** Applied inside the search (prefilter), never after it. */
  filter?: IndexFilter;
  /** Force exact (flat) search, bypassing any vector index. */
  exact?: boolean;
  /** IVF partitions probed (LanceDB). */
  nprobes?: number;
  /** Re-rank `k * refineFactor` candidates on full vectors (LanceDB IVF-PQ / SQ). */
  refineFactor?: number;
  /** HNSW candidate list size (LanceDB IVF-HNSW, Qdrant `hnsw_ef`). */
  ef?: number;
}

/** Vector index kinds `build` can create (LanceDB names; Qdrant always builds HNSW). */
export type VectorIndexKind = "ivf_pq" | "ivf_hnsw_sq" | "ivf_flat";

/** Options of `CatalogIndex.build`. */
export interface BuildOptions {
  /** Below this many rows no vector index is built: search stays exact. Default 50,000. */
  flatBelow?: number;
  /** Default "ivf_pq". */
  kind?: VectorIndexKind;
  /** IVF partitions. Default: about sqrt(rows). */
  partitions?: number;
  /** PQ sub-vectors (must divide dim). Default: a divisor of dim giving sub-vectors of 4-16 values. */
  subVectors?: number;
  /** HNSW graph degree (ivf_hnsw_sq). */
  m?: number;
  /** HNSW construction list size (ivf_hnsw_sq). */
  efConstruction?: number;
  /** Also build scalar indexes on the numeric and string attributes (speeds up prefilters). Default true. */
  scalarIndexes?: boolean;
}

/** What `build` did. */
export interface BuildInfo {
  rows: number;
  /** "flat" when no vector index was built. */
  vectorIndex: VectorIndexKind | "flat" | "hnsw";
  seconds: number;
}

/** A catalog index. Methods reject with errors naming the bad field or value. */
export interface CatalogIndex {
  readonly backend: "lancedb" | "qdrant";
  readonly dim: number;
  readonly metric: IndexMetric;
  readonly schema: AttributeSchema;
  /** Inserts rows, replacing rows of the same SKU. SKUs within one batch must be distinct. */
  upsert(batch: CatalogBatch): Promise<void>;
  /** Builds the vector index (when the table is large enough) and attribute indexes. */
  build(options?: BuildOptions): Promise<BuildInfo>;
  /** Top-k nearest rows to `query` among those passing `filter`, closest first. */
  search(query: Float32Array | readonly number[], options: SearchOptions): Promise<SearchHit[]>;
  count(): Promise<number>;
  /** Bytes on disk (LanceDB); null when not known (a server). */
  diskBytes(): Promise<number | null>;
  close(): Promise<void>;
}

/** Options of `openCatalogIndex`. */
export interface OpenIndexOptions {
  dim: number;
  /** Default "euclidean". */
  metric?: IndexMetric;
  /** Attribute columns. Default `ECONOMIC_SCHEMA` (seller, price, sales, stock, rating). */
  schema?: AttributeSchema;
  /** Table / collection name. Default "catalog". */
  name?: string;
  /** LanceDB: the database folder. */
  path?: string;
  /** Qdrant server URL; default env QDRANT_URL. When set (and backend not "lancedb"), Qdrant is used. */
  url?: string;
  /** Force a backend. */
  backend?: "lancedb" | "qdrant";
  /** Drop an existing table / collection of that name first. Default false. */
  overwrite?: boolean;
  /** Qdrant API key; default env QDRANT_API_KEY. */
  apiKey?: string;
}

/** Checks the options shared by every backend; throws naming the bad value. */
export function checkOpenOptions(
  options: OpenIndexOptions,
  where: string,
): Required<Pick<OpenIndexOptions, "dim" | "metric" | "schema" | "name">> {
  const { dim } = options;
  if (!Number.isInteger(dim) || dim < 1) throw new Error(`${where}: dim = ${dim}; expected an integer >= 1`);
  const metric = options.metric ?? "euclidean";
  if (metric !== "euclidean" && metric !== "cosine") {
    throw new Error(`${where}: metric ${JSON.stringify(metric)} is not known; use "euclidean" or "cosine"`);
  }
  const schema = options.schema ?? ECONOMIC_SCHEMA;
  checkSchema(schema, where);
  const name = options.name ?? "catalog";
  if (!/^[\w-]+$/.test(name)) {
    throw new Error(`${where}: name ${JSON.stringify(name)} may hold letters, digits, _ and -`);
  }
  return { dim, metric, schema, name };
}

/**
 * Opens (creating when absent) a catalog index: Qdrant when `backend` is "qdrant" or a URL is given
 * (option or QDRANT_URL) and `backend` is not "lancedb"; otherwise LanceDB in `path`.
 */
export async function openCatalogIndex(options: OpenIndexOptions): Promise<CatalogIndex> {
  const url = options.url ?? Deno.env.get("QDRANT_URL");
  const backend = options.backend ?? (url ? "qdrant" : "lancedb");
  if (backend === "qdrant") {
    if (!url) throw new Error("openCatalogIndex: backend qdrant needs a url (option url or QDRANT_URL)");
    const { openQdrantIndex } = await import("./qdrant_index.ts");
    return openQdrantIndex({ ...options, url });
  }
  if (backend !== "lancedb") {
    throw new Error(`openCatalogIndex: backend ${JSON.stringify(backend)} is not known; use "lancedb" or "qdrant"`);
  }
  if (!options.path) throw new Error("openCatalogIndex: the lancedb backend needs a path (the database folder)");
  const { openLanceIndex } = await import("./lancedb_index.ts");
  return openLanceIndex({ ...options, path: options.path });
}

/** Checks an upsert batch against the index; throws naming the bad SKU, column or value. */
export function checkBatch(batch: CatalogBatch, dim: number, schema: AttributeSchema, where: string): void {
  const n = batch.skus.length;
  if (!(batch.vectors instanceof Float32Array) || batch.vectors.length !== n * dim) {
    throw new Error(`${where}: ${batch.vectors?.length} vector values for ${n} SKUs x dim ${dim}`);
  }
  const seen = new Set<string>();
  for (const sku of batch.skus) {
    if (typeof sku !== "string" || sku === "") throw new Error(`${where}: SKU ${JSON.stringify(sku)} is not a string`);
    if (seen.has(sku)) throw new Error(`${where}: SKU ${JSON.stringify(sku)} is twice in one batch`);
    seen.add(sku);
  }
  for (const [name, column] of Object.entries(batch.attributes ?? {})) {
    const type = Object.hasOwn(schema, name) ? schema[name] : undefined;
    if (!type) {
      throw new Error(
        `${where}: attribute ${JSON.stringify(name)} is not in the index schema (${Object.keys(schema).join(", ")})`,
      );
    }
    if (column.length !== n) throw new Error(`${where}: attribute ${name} has ${column.length} values for ${n} SKUs`);
    for (let i = 0; i < n; i++) {
      const v = column[i];
      if (v === null || v === undefined) continue;
      if (type === "number" ? typeof v !== "number" : typeof v !== "string") {
        throw new Error(
          `${where}: attribute ${name} of SKU ${batch.skus[i]} is ${JSON.stringify(v)}; expected a ${type}`,
        );
      }
    }
  }
  for (let i = 0; i < batch.vectors.length; i++) {
    if (!Number.isFinite(batch.vectors[i])) {
      throw new Error(`${where}: vector of SKU ${batch.skus[Math.floor(i / dim)]} holds ${batch.vectors[i]}`);
    }
  }
}

/** Checks search options and the query vector; throws naming the bad value. */
export function checkSearch(
  query: Float32Array | readonly number[],
  options: SearchOptions,
  dim: number,
  schema: AttributeSchema,
  where: string,
): void {
  if (!Number.isInteger(options.k) || options.k < 1) {
    throw new Error(`${where}: k = ${options.k}; expected an integer >= 1`);
  }
  if (query.length !== dim) throw new Error(`${where}: query has ${query.length} values; the index has dim ${dim}`);
  for (
    const [name, value] of [["nprobes", options.nprobes], ["refineFactor", options.refineFactor], ["ef", options.ef]]
  ) {
    if (value !== undefined && (!Number.isInteger(value) || (value as number) < 1)) {
      throw new Error(`${where}: ${name} = ${value}; expected an integer >= 1`);
    }
  }
  if (options.filter) validateFilter(options.filter, schema, where);
}

/** Rows held in memory for `exactSearch`: the plain-TS reference. */
export interface CatalogRows {
  skus: readonly string[];
  vectors: Float32Array;
  dim: number;
  attributes?: AttributeColumns;
}

/** Distance between a query and row `r` of `vectors` (true L2, or 1 - cos with a zero vector at distance 1). */
export function rowDistance(
  query: ArrayLike<number>,
  vectors: Float32Array,
  r: number,
  dim: number,
  metric: IndexMetric,
): number {
  const o = r * dim;
  if (metric === "euclidean") {
    let s = 0;
    for (let j = 0; j < dim; j++) {
      const d = query[j] - vectors[o + j];
      s += d * d;
    }
    return Math.sqrt(s);
  }
  let dot = 0, qq = 0, cc = 0;
  for (let j = 0; j < dim; j++) {
    dot += query[j] * vectors[o + j];
    qq += query[j] * query[j];
    cc += vectors[o + j] * vectors[o + j];
  }
  const norms = Math.sqrt(qq * cc);
  return norms > 0 ? 1 - dot / norms : 1;
}

/**
 * Exact top-k by brute force in plain TS, with the filter applied to every row before ranking; ties
 * by catalog order. The reference for the backends' contract.
 */
export function exactSearch(
  rows: CatalogRows,
  query: ArrayLike<number>,
  options: { k: number; metric?: IndexMetric; filter?: IndexFilter },
): SearchHit[] {
  const metric = options.metric ?? "euclidean";
  const attributes = rows.attributes ?? {};
  const hits: { sku: string; distance: number; r: number }[] = [];
  for (let r = 0; r < rows.skus.length; r++) {
    if (options.filter) {
      const value = (field: string): AttributeValue =>
        field === "sku" ? rows.skus[r] : (attributes[field]?.[r] as AttributeValue) ?? null;
      if (!matchesFilter(options.filter, value)) continue;
    }
    hits.push({ sku: rows.skus[r], distance: rowDistance(query, rows.vectors, r, rows.dim, metric), r });
  }
  hits.sort((a, b) => a.distance - b.distance || a.r - b.r);
  return hits.slice(0, options.k).map(({ sku, distance }) => ({ sku, distance }));
}
