/**
 * Sharded, resumable embedding of a catalog: N machines (or N runs) each encode one shard of the SKUs
 * and write their own part file next to the unsharded output; `mergeShardParts` joins the parts into
 * the ordinary single embedding table (`store.ts`), rows in the catalog's SKU order, so the merged
 * parquet is the same file an unsharded run writes (byte-for-byte when the encoder gives each SKU the
 * same vector whatever batch it is in; the JSON description differs only in `created`).
 *
 * - Shards: `SHARD=i/N` (`parseShard`, `shardFromEnv`), 0 <= i < N. A SKU belongs to shard
 *   `fnv1a32(utf8(sku)) mod N`: FNV-1a, 32-bit (offset basis 2166136261, prime 16777619) over the SKU
 *   string's UTF-8 bytes. It depends on the SKU alone, so the assignment is the same on every machine,
 *   in every catalog order, and a SKU stays in its shard when other SKUs are added or removed.
 * - Parts: `<dir>/<tag>.part-<i>-of-<N>.parquet` with `<tag>.part-<i>-of-<N>.json` (`shardPartPath`).
 *   The parquet is written atomically first, then its JSON, also atomically; a part is complete when
 *   the JSON names shard i/N, the same `key` (encoder identity), the same SKU-list hash and a row count
 *   equal to the parquet's. A complete part is skipped on a re-run; an interrupted shard resumes from
 *   `<part>.partial.safetensors` (`encodeResumable`).
 *
 * Use (any model: the encoder maps a batch of SKUs, with their catalog rows, to row-major vectors):
 *
 * ```ts
 * const shard = shardFromEnv(); // {index, count} from SHARD, {0, 1} when unset
 * const output = embeddingPath(dataset, tag);
 * await embedShard({ output, skus, shard, dim, key, info: { tag, kind, source, distance: "euclidean" },
 *   encode: (batchSkus, rows) => computeEmbeddings(model, inputs, rows) });
 * // then, once every shard has run (any machine that sees all parts):
 * await mergeShardParts({ output, skus, count: shard.count });
 * ```
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { encodeResumable } from "./resumable.ts";
import { type EmbeddingInfo, readEmbeddings, writeEmbeddings } from "./store.ts";
import { exists, sha256Hex } from "../fs.ts";

/** One shard of N: `index` in 0..count-1. */
export interface ShardSpec {
  index: number;
  count: number;
}

/** The whole catalog as one shard. */
export const WHOLE: Readonly<ShardSpec> = Object.freeze({ index: 0, count: 1 });

/**
 * Parses `i/N` (integers, 0 <= i < N). `source` says where the text came from, for the error, e.g.
 * `SHARD = "3/2" (from the environment): expected i/N with 0 <= i < N`.
 */
export function parseShard(text: string, source = "the environment", name = "SHARD"): ShardSpec {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const index = match ? Number(match[1]) : NaN;
  const count = match ? Number(match[2]) : NaN;
  if (!match || !Number.isSafeInteger(index) || !Number.isSafeInteger(count) || count < 1 || index >= count) {
    throw new Error(`${name} = ${JSON.stringify(text)} (from ${source}): expected i/N with 0 <= i < N, e.g. "0/2"`);
  }
  return { index, count };
}

/** The shard named by the environment variable `name` (default SHARD); the whole catalog when unset or empty. */
export function shardFromEnv(name = "SHARD"): ShardSpec {
  const text = Deno.env.get(name);
  return text === undefined || text.trim() === "" ? { ...WHOLE } : parseShard(text, "the environment", name);
}

/** FNV-1a 32-bit hash of the UTF-8 bytes of `text` (unsigned). */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

function checkShard(shard: ShardSpec, where: string): void {
  const { index, count } = shard;
  if (!Number.isInteger(count) || count < 1 || !Number.isInteger(index) || index < 0 || index >= count) {
    throw new Error(`${where}: shard ${index}/${count} is not valid; expected i/N with 0 <= i < N`);
  }
}

/** The shard a SKU belongs to among `count` shards: `fnv1a32(sku) % count`. */
export function shardOf(sku: string, count: number): number {
  if (!Number.isInteger(count) || count < 1) throw new Error(`shardOf: count = ${count}; expected an integer >= 1`);
  return fnv1a32(sku) % count;
}

/** The catalog rows (positions in `skus`) of one shard, in catalog order. */
export function shardRows(skus: readonly string[], shard: ShardSpec): number[] {
  checkShard(shard, "shardRows");
  const rows: number[] = [];
  for (let r = 0; r < skus.length; r++) if (shardOf(String(skus[r]), shard.count) === shard.index) rows.push(r);
  return rows;
}

/** `<dir>/<tag>.part-<i>-of-<N>.parquet` beside the unsharded `output` (`<dir>/<tag>.parquet`). */
export function shardPartPath(output: string, shard: ShardSpec): string {
  checkShard(shard, "shardPartPath");
  if (!output.endsWith(".parquet")) {
    throw new Error(`shardPartPath: output ${JSON.stringify(output)} must end in .parquet (embeddingPath's form)`);
  }
  return join(dirname(output), `${basename(output, ".parquet")}.part-${shard.index}-of-${shard.count}.parquet`);
}

/** Hash of a SKU list (order matters), recorded in each part to recognise a part of another catalog. */
export function skuListHash(skus: readonly string[]): Promise<string> {
  return sha256Hex([new TextEncoder().encode(JSON.stringify(skus))]);
}

/** What a finished part's JSON records beyond `EmbeddingInfo`. */
export interface ShardPartInfo extends EmbeddingInfo {
  shard: ShardSpec;
  /** Encoder identity given to `embedShard`. */
  key: string;
  /** `skuListHash` of the part's SKUs, in order. */
  skusHash: string;
  count: number;
  dim: number;
}

async function readPartInfo(path: string): Promise<ShardPartInfo | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path.replace(/\.parquet$/, ".json"))) as ShardPartInfo;
  } catch {
    return null;
  }
}

/** Why a part at `path` is not complete for these expectations; null when it is. */
export async function partProblem(
  path: string,
  expected: { shard: ShardSpec; key?: string; skusHash?: string; count?: number },
): Promise<string | null> {
  if (!(await exists(path))) return "missing";
  const info = await readPartInfo(path);
  if (!info) return "no readable JSON description beside it (unfinished)";
  if (info.shard?.index !== expected.shard.index || info.shard?.count !== expected.shard.count) {
    return `its JSON says shard ${info.shard?.index}/${info.shard?.count}`;
  }
  if (expected.key !== undefined && info.key !== expected.key) return "it was made by another encoder (key differs)";
  if (expected.skusHash !== undefined && info.skusHash !== expected.skusHash) return "it holds another SKU list";
  if (expected.count !== undefined && info.count !== expected.count) {
    return `it holds ${info.count} rows, expected ${expected.count}`;
  }
  return null;
}

/** Options of `embedShard`. */
export interface EmbedShardOptions {
  /** The unsharded output, `<dir>/<tag>.parquet` (embeddingPath); the part goes beside it. */
  output: string;
  /** The whole catalog's SKUs, in order. */
  skus: readonly string[];
  shard: ShardSpec;
  dim: number;
  /** Identity of the encoder and its inputs (checkpoint hash, inputs fingerprint); parts of another key are redone. */
  key: string;
  /** Written into the part's JSON (tag, kind, source, distance) and carried into the merged table. */
  info: EmbeddingInfo;
  /** Encodes a batch: its SKUs and their catalog rows; returns batch length x dim values, row-major. */
  encode: (skus: string[], rows: number[]) => Promise<Float32Array>;
  batchSize?: number;
  /** Batches between partial saves. Default 8. */
  saveEvery?: number;
  progress?: boolean;
}

/** What `embedShard` did. */
export interface EmbedShardResult {
  path: string;
  /** Rows in this shard. */
  rows: number;
  /** True when a complete part was already there (nothing encoded). */
  skipped: boolean;
  /** Rows taken from an interrupted run's partial file. */
  resumedRows: number;
  /** Rows encoded by this call. */
  encodedRows: number;
}

/**
 * Encodes the shard's SKUs (catalog order) into its part file, resumably; skips a part that is already
 * complete for the same key and SKUs. With shard 0/1 the part is still a part file: merge it with count 1.
 */
export async function embedShard(options: EmbedShardOptions): Promise<EmbedShardResult> {
  const { shard, dim, key } = options;
  checkShard(shard, "embedShard");
  if (!Number.isInteger(dim) || dim < 1) throw new Error(`embedShard: dim = ${dim}; expected an integer >= 1`);
  const path = shardPartPath(options.output, shard);
  const rows = shardRows(options.skus, shard);
  const skus = rows.map((r) => String(options.skus[r]));
  const skusHash = await skuListHash(skus);
  if ((await partProblem(path, { shard, key, skusHash, count: rows.length })) === null) {
    return { path, rows: rows.length, skipped: true, resumedRows: 0, encodedRows: 0 };
  }
  const { vectors, resumedRows } = await encodeResumable({
    key: `${key}|shard ${shard.index}/${shard.count}|${skusHash}`,
    count: rows.length,
    dim,
    partialPath: `${path}.partial.safetensors`,
    batchSize: options.batchSize,
    saveEvery: options.saveEvery,
    label: `${options.info.tag} shard ${shard.index}/${shard.count}`,
    progress: options.progress,
    encode: (start, end) => options.encode(skus.slice(start, end), rows.slice(start, end)),
  });
  const info: ShardPartInfo = { ...options.info, shard: { ...shard }, key, skusHash, count: rows.length, dim };
  await writeEmbeddings(path, { skus, vectors, dim, info });
  return { path, rows: rows.length, skipped: false, resumedRows, encodedRows: rows.length - resumedRows };
}

/** Options of `mergeShardParts`. */
export interface MergeShardOptions {
  /** The unsharded output path; parts are read from beside it. */
  output: string;
  /** The whole catalog's SKUs: the merged table's rows, in this order. */
  skus: readonly string[];
  /** N, the number of shards. */
  count: number;
  /** When given, every part must have been made with this key. */
  key?: string;
  /** Delete the part files after a successful merge. Default false. */
  removeParts?: boolean;
}

/** What `mergeShardParts` wrote. */
export interface MergeShardResult {
  path: string;
  rows: number;
  dim: number;
  parts: string[];
}

const SAME_FIELDS = ["tag", "kind", "source", "distance", "key"] as const;

/**
 * Joins the N part files into the ordinary embedding table at `output` (rows in `skus` order). Throws,
 * naming the part, when a part is missing or unfinished, when parts disagree on dim/tag/kind/source/
 * distance/key, when a SKU is in two parts with different vectors (identical duplicates are fine), or
 * when a catalog SKU is in no part.
 */
export async function mergeShardParts(options: MergeShardOptions): Promise<MergeShardResult> {
  const { output, count } = options;
  checkShard({ index: 0, count }, "mergeShardParts");
  const parts: string[] = [];
  const problems: string[] = [];
  for (let index = 0; index < count; index++) {
    const path = shardPartPath(output, { index, count });
    parts.push(path);
    const problem = await partProblem(path, { shard: { index, count }, key: options.key });
    if (problem) problems.push(`${basename(path)}: ${problem}`);
  }
  if (problems.length) {
    throw new Error(
      `mergeShardParts: ${problems.length} of ${count} parts of ${basename(output)} are not complete (` +
        `${problems.join("; ")}); run SHARD=i/${count} for each`,
    );
  }
  const vectorsBySku = new Map<string, { part: string; vector: Float32Array }>();
  let first: ShardPartInfo | null = null;
  for (const path of parts) {
    const table = await readEmbeddings(path);
    const info = table.info as ShardPartInfo;
    if (table.skus.length !== info.count || (table.skus.length > 0 && table.dim !== info.dim)) {
      throw new Error(
        `mergeShardParts: ${basename(path)} holds ${table.skus.length} rows of dim ${table.dim}; its JSON says ` +
          `${info.count} of dim ${info.dim}`,
      );
    }
    first ??= info;
    for (const field of [...SAME_FIELDS, "dim"] as const) {
      if (info[field] !== first[field]) {
        throw new Error(
          `mergeShardParts: ${basename(path)} has ${field} ${JSON.stringify(info[field])} but ${
            basename(parts[0])
          } has ${field} ${JSON.stringify(first[field])}; all parts must come from one model`,
        );
      }
    }
    for (let r = 0; r < table.skus.length; r++) {
      const sku = table.skus[r];
      const vector = table.vectors.subarray(r * table.dim, (r + 1) * table.dim);
      const seen = vectorsBySku.get(sku);
      if (seen && seen.vector.some((v, j) => !Object.is(v, vector[j]))) {
        throw new Error(
          `mergeShardParts: SKU ${JSON.stringify(sku)} is in ${basename(seen.part)} and ${
            basename(path)
          } with different vectors; re-run those shards with one encoder`,
        );
      }
      if (!seen) vectorsBySku.set(sku, { part: path, vector });
    }
  }
  const dim = first!.dim;
  const missing = options.skus.filter((sku) => !vectorsBySku.has(String(sku)));
  if (missing.length) {
    throw new Error(
      `mergeShardParts: ${missing.length} catalog SKUs are in no part (first: ${
        missing.slice(0, 5).map((s) => JSON.stringify(s)).join(", ")
      }); the parts were made for another catalog`,
    );
  }
  const vectors = new Float32Array(options.skus.length * dim);
  options.skus.forEach((sku, r) => vectors.set(vectorsBySku.get(String(sku))!.vector, r * dim));
  const { shard: _shard, key: _key, skusHash: _hash, count: _count, created: _created, ...info } = first!;
  await writeEmbeddings(output, { skus: options.skus.map(String), vectors, dim, info: { ...info, dim } });
  if (options.removeParts) {
    for (const path of parts) {
      await Deno.remove(path).catch(() => {});
      await Deno.remove(path.replace(/\.parquet$/, ".json")).catch(() => {});
    }
  }
  return { path: output, rows: options.skus.length, dim, parts };
}
