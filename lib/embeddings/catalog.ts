/**
 * Embedding a dataset's catalog with any encoder, the job of the embedding notebooks: rows are
 * encoded in batches with progress, resumably (an interrupted run continues from its partial file), and
 * written with their description to `data/embeddings/<dataset>/<tag>.parquet`.
 *
 * Sharded (`shard: "i/N"`, the notebooks' SHARD): only the SKUs of slice i (by SKU hash, shard.ts) are
 * encoded, into their own part beside the table; a finished part is never redone, and the run that finds
 * all N parts complete merges them into the table, equal to an unsharded run's.
 *
 * @module
 */
import { embedShard, mergeShardParts, parseShard, partProblem, shardPartPath, type ShardSpec } from "./shard.ts";
import { type EmbeddingInfo, embeddingPath, readEmbeddings } from "./store.ts";
import { dataDir, shownPath } from "../paths.ts";

/** What to embed and how. */
export interface EmbedCatalogOptions {
  dataset: string;
  /** The embedding table's tag (file name), e.g. `siamese_<run>`. */
  tag: string;
  /** What produces the vectors: "siamese", "towers", "sbert". */
  kind: string;
  /** The checkpoint or model, as shown to users. */
  source: string;
  distance: EmbeddingInfo["distance"];
  /** The catalog's SKUs, in row order. */
  skus: readonly string[];
  dim: number;
  /** Identity of encoder and inputs: a partial file with another key is discarded, never mixed in. */
  key: string;
  batchSize: number;
  /** Encodes catalog rows (indices into `skus`) into rows.length * dim values. */
  encode: (rows: number[]) => Promise<Float32Array>;
  /** "i/N" (or a parsed spec): encode only that slice; empty / absent = the whole catalog. */
  shard?: string | ShardSpec;
  root?: string;
  progress?: boolean;
}

/** What `embedCatalog` did. */
export interface EmbeddedCatalog {
  /** The table (when complete) or this shard's part. */
  path: string;
  /** All rows of the table, in `skus` order; `null` while parts are missing. */
  vectors: Float32Array | null;
  dim: number;
  /** Rows taken from an earlier, interrupted run. */
  resumedRows: number;
  shard: ShardSpec;
  /** Parts of the table that are complete (N of N once merged). */
  partsDone: number;
  /** True when this shard's part was already complete and nothing was encoded. */
  skipped: boolean;
}

/** Encodes the catalog (or one shard of it, resumably) and writes the table once every part is there. */
export async function embedCatalog(options: EmbedCatalogOptions): Promise<EmbeddedCatalog> {
  const { tag, dim } = options;
  const output = embeddingPath(options.dataset, tag, options.root ?? dataDir());
  const shard = typeof options.shard === "string"
    ? (options.shard.trim() ? parseShard(options.shard, "the SHARD parameter") : { index: 0, count: 1 })
    : options.shard ?? { index: 0, count: 1 };
  const info: EmbeddingInfo = { tag, kind: options.kind, source: options.source, distance: options.distance };
  const part = await embedShard({
    output,
    skus: options.skus,
    shard,
    dim,
    key: options.key,
    info,
    batchSize: options.batchSize,
    progress: options.progress,
    encode: (_skus, rows) => options.encode(rows),
  });
  let partsDone = 0;
  for (let index = 0; index < shard.count; index++) {
    const problem = await partProblem(shardPartPath(output, { index, count: shard.count }), {
      shard: { index, count: shard.count },
      key: options.key,
    });
    if (problem === null) partsDone++;
  }
  const result = { dim, resumedRows: part.resumedRows, shard, partsDone, skipped: part.skipped };
  if (partsDone < shard.count) return { ...result, path: part.path, vectors: null };
  await mergeShardParts({ output, skus: options.skus, count: shard.count, key: options.key, removeParts: true });
  return { ...result, path: output, vectors: (await readEmbeddings(output)).vectors };
}

/** Rows of `dim` values each, concatenated into one row-major matrix (an encoder's output for `embedCatalog`). */
export function concatRows(rows: readonly Float32Array[], dim: number): Float32Array {
  const out = new Float32Array(rows.length * dim);
  rows.forEach((row, i) => {
    if (row.length !== dim) throw new Error(`concatRows: row ${i} has ${row.length} values, expected ${dim}`);
    out.set(row, i * dim);
  });
  return out;
}

/** One table row per `embedCatalog` result: the file, its size, which shard and how many parts are done. */
export function embeddedCatalogRow(result: EmbeddedCatalog): Record<string, string | number | boolean> {
  return {
    file: shownPath(result.path),
    dim: result.dim,
    shard: `${result.shard.index}/${result.shard.count}`,
    parts_done: `${result.partsDone} of ${result.shard.count}`,
    complete: result.vectors !== null,
    resumed_rows: result.resumedRows,
    skipped: result.skipped,
  };
}
