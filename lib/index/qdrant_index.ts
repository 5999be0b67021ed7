/**
 * The catalog index on a Qdrant server (`@qdrant/js-client-rest`), used when a URL is given (option
 * `url` or env QDRANT_URL; API key from QDRANT_API_KEY). One collection per index, one point per SKU:
 * the point id is a UUID made from SHA-256 of the SKU (so an upsert of the same SKU replaces its point),
 * the payload holds `sku` and the attributes. Filters are compiled to Qdrant filter JSON
 * (`toQdrantFilter`) and applied by Qdrant inside the HNSW search. Distances: "euclidean" -> Qdrant's
 * Euclid (its score is the L2 distance), "cosine" -> Cosine (score = cos; returned as 1 - cos).
 *
 * Qdrant's `must_not` passes rows whose field is missing; to keep the filter's "missing fails"
 * meaning, `ne` / `notIn` also require the field to be present and not null.
 *
 * @module
 */
import {
  type BuildInfo,
  type BuildOptions,
  type CatalogBatch,
  type CatalogIndex,
  checkBatch,
  checkOpenOptions,
  checkSearch,
  type IndexMetric,
  type OpenIndexOptions,
  type SearchHit,
  type SearchOptions,
} from "./catalog_index.ts";
import {
  type AttributeSchema,
  filterMatchesNothing,
  type IndexFilter,
  type NumberCondition,
  type StringCondition,
  validateFilter,
} from "./filter.ts";

/** A Qdrant filter (the subset this module writes). */
export interface QdrantFilter {
  must: Record<string, unknown>[];
  must_not: Record<string, unknown>[];
}

/** Compiles a filter to Qdrant filter JSON (null when empty). */
export function toQdrantFilter(filter: IndexFilter | undefined, schema: AttributeSchema): QdrantFilter | null {
  if (!filter) return null;
  validateFilter(filter, schema, "toQdrantFilter");
  const must: Record<string, unknown>[] = [];
  const mustNot: Record<string, unknown>[] = [];
  const present = new Set<string>();
  for (const [key, condition] of Object.entries(filter)) {
    const c = condition as NumberCondition & StringCondition;
    const range: Record<string, number> = {};
    for (const op of ["gt", "gte", "lt", "lte"] as const) if (c[op] !== undefined) range[op] = c[op]!;
    if (Object.keys(range).length) must.push({ key, range });
    if (c.eq !== undefined) must.push({ key, match: { value: c.eq } });
    if (c.in !== undefined) must.push({ key, match: { any: [...c.in] } });
    if (c.ne !== undefined) {
      mustNot.push({ key, match: { value: c.ne } });
      present.add(key);
    }
    if (c.notIn !== undefined) {
      if (c.notIn.length) mustNot.push({ key, match: { any: [...c.notIn] } });
      present.add(key);
    }
  }
  for (const key of present) mustNot.push({ is_empty: { key } }, { is_null: { key } });
  return must.length || mustNot.length ? { must, must_not: mustNot } : null;
}

/** The point id of a SKU: a UUID from the first 16 bytes of SHA-256(sku). */
export async function skuPointId(sku: string): Promise<string> {
  const bytes = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(sku))).slice(0, 16);
  bytes[6] = (bytes[6] & 0x0f) | 0x50;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The part of QdrantClient this module uses. */
interface Client {
  collectionExists(name: string): Promise<{ exists: boolean }>;
  deleteCollection(name: string): Promise<unknown>;
  createCollection(name: string, args: Record<string, unknown>): Promise<unknown>;
  getCollection(name: string): Promise<{ config: { params: { vectors?: unknown } }; points_count?: number | null }>;
  upsert(name: string, args: Record<string, unknown>): Promise<unknown>;
  createPayloadIndex(name: string, args: Record<string, unknown>): Promise<unknown>;
  updateCollection(name: string, args: Record<string, unknown>): Promise<unknown>;
  count(name: string, args: Record<string, unknown>): Promise<{ count: number }>;
  query(name: string, args: Record<string, unknown>): Promise<{ points: { score: number; payload?: unknown }[] }>;
}

const UPSERT_BATCH = 256;

class QdrantIndex implements CatalogIndex {
  readonly backend = "qdrant" as const;
  constructor(
    readonly dim: number,
    readonly metric: IndexMetric,
    readonly schema: AttributeSchema,
    private readonly client: Client,
    private readonly name: string,
  ) {}

  async upsert(batch: CatalogBatch): Promise<void> {
    checkBatch(batch, this.dim, this.schema, "qdrant upsert");
    for (let start = 0; start < batch.skus.length; start += UPSERT_BATCH) {
      const end = Math.min(batch.skus.length, start + UPSERT_BATCH);
      const points = [];
      for (let r = start; r < end; r++) {
        const payload: Record<string, unknown> = { sku: batch.skus[r] };
        for (const field of Object.keys(this.schema)) {
          const v = batch.attributes?.[field]?.[r];
          payload[field] = v === undefined || (typeof v === "number" && Number.isNaN(v)) ? null : v;
        }
        points.push({
          id: await skuPointId(batch.skus[r]),
          vector: Array.from(batch.vectors.subarray(r * this.dim, (r + 1) * this.dim)),
          payload,
        });
      }
      await this.client.upsert(this.name, { wait: true, points });
    }
  }

  async build(options: BuildOptions = {}): Promise<BuildInfo> {
    const started = performance.now();
    if (options.scalarIndexes ?? true) {
      for (const [field, type] of [["sku", "string"], ...Object.entries(this.schema)]) {
        await this.client.createPayloadIndex(this.name, {
          wait: true,
          field_name: field,
          field_schema: type === "string" ? "keyword" : "float",
        });
      }
    }
    const rows = await this.count();
    return { rows, vectorIndex: "hnsw", seconds: (performance.now() - started) / 1000 };
  }

  async search(query: Float32Array | readonly number[], options: SearchOptions): Promise<SearchHit[]> {
    checkSearch(query, options, this.dim, this.schema, "qdrant search");
    if (options.filter && filterMatchesNothing(options.filter)) return [];
    const filter = toQdrantFilter(options.filter, this.schema);
    const params: Record<string, unknown> = { exact: options.exact ?? false };
    if (options.ef !== undefined) params.hnsw_ef = options.ef;
    const result = await this.client.query(this.name, {
      query: Array.from(query),
      limit: options.k,
      with_payload: ["sku"],
      params,
      ...(filter ? { filter } : {}),
    });
    return result.points.map((p) => ({
      sku: String((p.payload as { sku: string }).sku),
      distance: this.metric === "cosine" ? 1 - p.score : p.score,
    }));
  }

  async count(): Promise<number> {
    return (await this.client.count(this.name, { exact: true })).count;
  }

  diskBytes(): Promise<number | null> {
    return Promise.resolve(null);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Opens (or creates) a Qdrant collection as a catalog index; an existing one must have the same size and distance. */
export async function openQdrantIndex(options: OpenIndexOptions & { url: string }): Promise<CatalogIndex> {
  const { dim, metric, schema, name } = checkOpenOptions(options, "openQdrantIndex");
  const { QdrantClient } = await import("@qdrant/js-client-rest");
  const client = new QdrantClient({
    url: options.url,
    apiKey: options.apiKey ?? Deno.env.get("QDRANT_API_KEY"),
    checkCompatibility: false,
  }) as unknown as Client;
  const distance = metric === "euclidean" ? "Euclid" : "Cosine";
  let exists: boolean;
  try {
    exists = (await client.collectionExists(name)).exists;
  } catch (error) {
    throw new Error(`openQdrantIndex: cannot reach Qdrant at ${options.url} (${(error as Error).message})`);
  }
  if (exists && options.overwrite) {
    await client.deleteCollection(name);
    exists = false;
  }
  if (exists) {
    const vectors = (await client.getCollection(name)).config.params.vectors as { size?: number; distance?: string };
    if (vectors?.size !== dim || vectors?.distance !== distance) {
      throw new Error(
        `openQdrantIndex: collection ${name} has vectors ${JSON.stringify(vectors)}, not size ${dim} ${distance}; ` +
          "pass overwrite: true or another name",
      );
    }
  } else {
    await client.createCollection(name, { vectors: { size: dim, distance } });
  }
  return new QdrantIndex(dim, metric, schema, client, name);
}
