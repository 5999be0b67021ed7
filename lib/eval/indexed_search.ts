/**
 * Top-k per query through a catalog index (lib/index/): the candidates go into the index with their
 * economics as attributes, and each query's search carries its restrictions as a predicate inside the
 * search (the query's own allowed candidates, and the economic filter of `economicQueryFilter`), never
 * as a post-filter. `evaluateTopK` uses it when given `index`.
 *
 * @module
 */
import { join } from "node:path";
import { dataDir } from "../paths.ts";
import { type CatalogIndex, type IndexMetric, openCatalogIndex, type SearchHit } from "../index/catalog_index.ts";
import { economicQueryFilter, type IndexFilter } from "../index/filter.ts";
import type { EconomicFilterOptions, ProductEconomics } from "./economic_filter.ts";

/** Where the index lives: a LanceDB folder, or a Qdrant server when `url` (or QDRANT_URL) is set. */
export interface IndexLocation {
  path: string;
  url?: string;
  backend?: "lancedb" | "qdrant";
}

/** `data/index/<dataset>/<tag>`: the embedded index of one embedding table. */
export function indexPath(dataset: string, tag: string, root: string = dataDir()): string {
  return join(root, "index", dataset, tag);
}

/** One query of `indexedTopK`. */
export interface IndexedQuery {
  sku: string;
  vector: Float32Array;
  /** The SKUs it may retrieve; `null` = every catalog product. */
  allowed: readonly string[] | null;
}

/** Options of `indexedTopK`. */
export interface IndexedTopKOptions {
  location: IndexLocation;
  metric: IndexMetric;
  /** The catalog: SKUs and their vectors, row-major. */
  skus: readonly string[];
  vectors: Float32Array;
  dim: number;
  queries: readonly IndexedQuery[];
  k: number;
  /** When given, the economic filter is part of every query's predicate. */
  economics?: ReadonlyMap<string | number, ProductEconomics>;
  filter?: EconomicFilterOptions;
}

/** The economics of the catalog as the index's attribute columns (stock = balance). */
function economicColumns(skus: readonly string[], economics?: ReadonlyMap<string | number, ProductEconomics>) {
  const value = (sku: string, field: "price" | "sales" | "balance" | "rating"): number | null =>
    economics?.get(sku)?.[field] ?? null;
  return {
    price: skus.map((sku) => value(sku, "price")),
    sales: skus.map((sku) => value(sku, "sales")),
    stock: skus.map((sku) => value(sku, "balance")),
    rating: skus.map((sku) => value(sku, "rating")),
  };
}

/** Each query's predicate: its allowed SKUs and, with economics, the economic filter relative to it. */
export function queryPredicate(query: IndexedQuery, options: Pick<IndexedTopKOptions, "economics" | "filter">) {
  const filter: Record<string, IndexFilter[string]> = {};
  if (options.economics) {
    Object.assign(filter, economicQueryFilter({ price: options.economics.get(query.sku)?.price }, options.filter));
  }
  if (query.allowed) filter.sku = { in: [...query.allowed] };
  return Object.keys(filter).length ? filter : undefined;
}

/** Builds the index from the catalog (replacing an older one at the location) and searches every query. */
export async function indexedTopK(options: IndexedTopKOptions): Promise<{ backend: string; hits: SearchHit[][] }> {
  const index: CatalogIndex = await openCatalogIndex({
    dim: options.dim,
    metric: options.metric,
    overwrite: true,
    ...options.location,
  });
  try {
    await index.upsert({
      skus: options.skus,
      vectors: options.vectors,
      attributes: economicColumns(options.skus, options.economics),
    });
    await index.build();
    const hits: SearchHit[][] = [];
    for (const query of options.queries) {
      hits.push(await index.search(query.vector, { k: options.k, filter: queryPredicate(query, options) }));
    }
    return { backend: index.backend, hits };
  } finally {
    await index.close();
  }
}

/** How the top-k notebooks search: "index" (the catalog index; the filter inside the search) or "exact" (in memory). */
export const TOP_K_SEARCHES = ["index", "exact"] as const;
export type TopKSearch = typeof TOP_K_SEARCHES[number];

/** The index location of a search choice for one embedding table; `undefined` for exact search. */
export function searchLocation(search: TopKSearch, dataset: string, tag: string): IndexLocation | undefined {
  return search === "index" ? { path: indexPath(dataset, tag) } : undefined;
}
