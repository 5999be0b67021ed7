/**
 * The embedded catalog index on LanceDB (`@lancedb/lancedb`, a folder on disk): table columns `sku`
 * (utf8), `vector` (fixed-size list of float32) and one nullable column per schema attribute
 * (float64 or utf8). Upserts are `mergeInsert("sku")` (plain appends into an empty table). `build`
 * leaves small tables without a vector index (every search is exact, flat) and gives large ones an IVF
 * index (IVF-PQ by default; IVF-HNSW-SQ or IVF-flat on request) trained for the index's metric, plus
 * scalar indexes on the attributes. Filters are compiled to SQL (`toLanceWhere`) and run as LanceDB
 * prefilters: the filter is applied inside the vector search, so k rows come back whenever k rows pass.
 *
 * Under Deno, LanceDB and the arrow tables given to it must share one apache-arrow instance: LanceDB
 * loads the CommonJS build, so this module loads apache-arrow with `createRequire` (an ESM import gives
 * a second copy whose tables LanceDB rejects: "Table and inner RecordBatch schemas must be equivalent").
 *
 * @module
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import type * as Lance from "@lancedb/lancedb";
import type * as Arrow from "apache-arrow";
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

const require = createRequire(import.meta.url);

interface Modules {
  lancedb: typeof Lance;
  arrow: typeof Arrow;
}
let modules: Modules | undefined;

/**
 * LanceDB and the apache-arrow instance it uses (both CommonJS). LanceDB's native logger prints WARN
 * lines (e.g. "No existing dataset ... it will be created" for every new table) unless LANCEDB_LOG says
 * otherwise: when unset, it is set to "error" before the first load.
 */
function load(): Modules {
  if (!modules && Deno.env.get("LANCEDB_LOG") === undefined) Deno.env.set("LANCEDB_LOG", "error");
  modules ??= { lancedb: require("@lancedb/lancedb"), arrow: require("apache-arrow") };
  return modules;
}

function sqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

function sqlNumber(value: number): string {
  if (!Number.isFinite(value)) throw new Error(`toLanceWhere: ${value} is not a finite number`);
  return String(value);
}

/**
 * Compiles a filter to a LanceDB SQL `where` clause (null when the filter is empty). Columns are
 * back-quoted, strings single-quoted; SQL's NULL rule gives the filter's "missing fails" meaning.
 */
export function toLanceWhere(filter: IndexFilter | undefined, schema: AttributeSchema): string | null {
  if (!filter) return null;
  validateFilter(filter, schema, "toLanceWhere");
  const parts: string[] = [];
  for (const [field, condition] of Object.entries(filter)) {
    const column = `\`${field}\``;
    const isString = field === "sku" || schema[field] === "string";
    const literal = (v: number | string) => isString ? sqlString(String(v)) : sqlNumber(v as number);
    const c = condition as NumberCondition & StringCondition;
    const ops = [["eq", "="], ["ne", "!="], ["gt", ">"], ["gte", ">="], ["lt", "<"], ["lte", "<="]] as const;
    for (const [op, sql] of ops) {
      const value = c[op] as number | string | undefined;
      if (value !== undefined) parts.push(`${column} ${sql} ${literal(value)}`);
    }
    if (c.in !== undefined) {
      parts.push(c.in.length ? `${column} IN (${(c.in as (string | number)[]).map(literal).join(", ")})` : "FALSE");
    }
    if (c.notIn !== undefined) {
      parts.push(
        c.notIn.length
          ? `${column} NOT IN (${(c.notIn as (string | number)[]).map(literal).join(", ")})`
          : `${column} IS NOT NULL`,
      );
    }
  }
  return parts.length ? parts.join(" AND ") : null;
}

/** A divisor of `dim` giving PQ sub-vectors of 4-16 values (closest to 8), else 1. */
export function defaultSubVectors(dim: number): number {
  let best = 1;
  let bestScore = Infinity;
  for (let width = 4; width <= 16; width++) {
    if (dim % width !== 0) continue;
    const score = Math.abs(width - 8) - (width % 8 === 0 ? 0.5 : 0);
    if (score < bestScore) {
      best = dim / width;
      bestScore = score;
    }
  }
  return best;
}

/** Sum of file sizes under a folder (0 when absent). */
export async function folderBytes(path: string): Promise<number> {
  let total = 0;
  try {
    for await (const entry of Deno.readDir(path)) {
      const child = join(path, entry.name);
      if (entry.isDirectory) total += await folderBytes(child);
      else if (entry.isFile) total += (await Deno.stat(child)).size;
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return total;
}

/** Rows per arrow record batch handed to LanceDB. */
const BATCH_ROWS = 65_536;

class LanceIndex implements CatalogIndex {
  readonly backend = "lancedb" as const;
  constructor(
    readonly dim: number,
    readonly metric: IndexMetric,
    readonly schema: AttributeSchema,
    private readonly path: string,
    private readonly db: Lance.Connection,
    private readonly table: Lance.Table,
    private readonly arrowSchema: Arrow.Schema,
  ) {}

  private lanceMetric(): "l2" | "cosine" {
    return this.metric === "euclidean" ? "l2" : "cosine";
  }

  private toArrow(batch: CatalogBatch): Arrow.Table {
    const { arrow } = load();
    const n = batch.skus.length;
    const vectorType = this.arrowSchema.fields[1].type as Arrow.FixedSizeList;
    const batches: Arrow.RecordBatch[] = [];
    for (let start = 0; start < n; start += BATCH_ROWS) {
      const end = Math.min(n, start + BATCH_ROWS);
      const length = end - start;
      const children: Arrow.Data[] = [
        arrow.vectorFromArray(batch.skus.slice(start, end), new arrow.Utf8()).data[0],
        arrow.makeData({
          type: vectorType,
          length,
          nullCount: 0,
          child: arrow.makeData({
            type: new arrow.Float32(),
            length: length * this.dim,
            nullCount: 0,
            data: batch.vectors.subarray(start * this.dim, end * this.dim),
          }),
        }),
      ];
      for (const [name, type] of Object.entries(this.schema)) {
        const column = batch.attributes?.[name];
        if (type === "string") {
          const values = Array.from({ length }, (_, i) => (column?.[start + i] ?? null) as string | null);
          children.push(arrow.vectorFromArray(values, new arrow.Utf8()).data[0]);
        } else {
          const data = new Float64Array(length);
          const validity = new Uint8Array(Math.ceil(length / 8));
          let nulls = 0;
          for (let i = 0; i < length; i++) {
            const v = column?.[start + i] as number | null | undefined;
            if (v === null || v === undefined || Number.isNaN(v)) nulls++;
            else {
              data[i] = v;
              validity[i >> 3] |= 1 << (i & 7);
            }
          }
          children.push(
            arrow.makeData({ type: new arrow.Float64(), length, nullCount: nulls, nullBitmap: validity, data }),
          );
        }
      }
      const struct = arrow.makeData({
        type: new arrow.Struct(this.arrowSchema.fields),
        length,
        nullCount: 0,
        children,
      });
      batches.push(new arrow.RecordBatch(this.arrowSchema, struct));
    }
    return new arrow.Table(this.arrowSchema, batches);
  }

  async upsert(batch: CatalogBatch): Promise<void> {
    checkBatch(batch, this.dim, this.schema, "lancedb upsert");
    if (batch.skus.length === 0) return;
    const data = this.toArrow(batch);
    if ((await this.table.countRows()) === 0) await this.table.add(data);
    else await this.table.mergeInsert("sku").whenMatchedUpdateAll().whenNotMatchedInsertAll().execute(data);
  }

  async build(options: BuildOptions = {}): Promise<BuildInfo> {
    const { lancedb } = load();
    const started = performance.now();
    const rows = await this.table.countRows();
    if (options.scalarIndexes ?? true) {
      for (const [name, type] of [["sku", "string"], ...Object.entries(this.schema)]) {
        const config = type === "string" && name !== "sku" ? lancedb.Index.bitmap() : lancedb.Index.btree();
        await this.table.createIndex(name, { config, replace: true });
      }
    }
    const flatBelow = options.flatBelow ?? 50_000;
    if (rows < flatBelow) return { rows, vectorIndex: "flat", seconds: (performance.now() - started) / 1000 };
    const kind = options.kind ?? "ivf_pq";
    const numPartitions = options.partitions ?? Math.max(1, Math.round(Math.sqrt(rows)));
    const distanceType = this.lanceMetric();
    let config: Lance.Index;
    if (kind === "ivf_pq") {
      const numSubVectors = options.subVectors ?? defaultSubVectors(this.dim);
      if (this.dim % numSubVectors !== 0) {
        throw new Error(`lancedb build: subVectors = ${numSubVectors} does not divide dim ${this.dim}`);
      }
      config = lancedb.Index.ivfPq({ numPartitions, numSubVectors, distanceType });
    } else if (kind === "ivf_hnsw_sq") {
      config = lancedb.Index.hnswSq({
        numPartitions,
        distanceType,
        m: options.m,
        efConstruction: options.efConstruction,
      });
    } else if (kind === "ivf_flat") {
      config = lancedb.Index.ivfFlat({ numPartitions, distanceType });
    } else {
      throw new Error(`lancedb build: kind ${JSON.stringify(kind)} is not known; use ivf_pq, ivf_hnsw_sq or ivf_flat`);
    }
    await this.table.createIndex("vector", { config, replace: true });
    return { rows, vectorIndex: kind, seconds: (performance.now() - started) / 1000 };
  }

  async search(query: Float32Array | readonly number[], options: SearchOptions): Promise<SearchHit[]> {
    checkSearch(query, options, this.dim, this.schema, "lancedb search");
    if (options.filter && filterMatchesNothing(options.filter)) return [];
    const vector = query instanceof Float32Array ? query : Float32Array.from(query);
    let q = this.table.vectorSearch(vector).distanceType(this.lanceMetric()).limit(options.k)
      .select(["sku", "_distance"]);
    const where = toLanceWhere(options.filter, this.schema);
    if (where) q = q.where(where);
    if (options.exact) q = q.bypassVectorIndex();
    if (options.nprobes !== undefined) q = q.nprobes(options.nprobes);
    if (options.refineFactor !== undefined) q = q.refineFactor(options.refineFactor);
    if (options.ef !== undefined) q = q.ef(options.ef);
    const result = await q.toArrow();
    // No match: LanceDB may return a table without columns.
    if (result.numRows === 0 || !result.getChild("sku")) return [];
    const skus = result.getChild("sku")!.toArray() as string[];
    const distances = result.getChild("_distance")!.toArray() as Float32Array;
    const toDistance = this.metric === "euclidean" ? (d: number) => Math.sqrt(Math.max(0, d)) : (d: number) => d;
    return Array.from(skus, (sku, i) => ({ sku: String(sku), distance: toDistance(distances[i]) }));
  }

  count(): Promise<number> {
    return this.table.countRows();
  }

  diskBytes(): Promise<number> {
    return folderBytes(this.path);
  }

  close(): Promise<void> {
    this.table.close();
    this.db.close();
    return Promise.resolve();
  }
}

/** Opens (or creates) a LanceDB catalog index in `options.path`; an existing table must have the same dim and columns. */
export async function openLanceIndex(options: OpenIndexOptions & { path: string }): Promise<CatalogIndex> {
  const { dim, metric, schema, name } = checkOpenOptions(options, "openLanceIndex");
  const { lancedb, arrow } = load();
  const arrowSchema = new arrow.Schema([
    new arrow.Field("sku", new arrow.Utf8(), false),
    new arrow.Field("vector", new arrow.FixedSizeList(dim, new arrow.Field("item", new arrow.Float32(), true)), false),
    ...Object.entries(schema).map(([column, type]) =>
      new arrow.Field(column, type === "string" ? new arrow.Utf8() : new arrow.Float64(), true)
    ),
  ]);
  const db = await lancedb.connect(options.path);
  const names = await db.tableNames();
  let table: Lance.Table;
  if (names.includes(name) && !options.overwrite) {
    table = await db.openTable(name);
    const existing = await table.schema();
    const describe = (s: Arrow.Schema) => s.fields.map((f) => `${f.name}:${f.type}`).join(", ");
    if (describe(existing) !== describe(arrowSchema)) {
      table.close();
      db.close();
      throw new Error(
        `openLanceIndex: table ${name} in ${options.path} has columns (${describe(existing)}), not (${
          describe(arrowSchema)
        }); open it with its own dim and schema, or pass overwrite: true`,
      );
    }
  } else {
    table = await db.createEmptyTable(name, arrowSchema, { mode: "overwrite" });
  }
  return new LanceIndex(dim, metric, schema, options.path, db, table, arrowSchema);
}
