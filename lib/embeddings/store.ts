/**
 * Product embeddings on disk: one parquet per model under
 * `data/embeddings/<dataset>/<tag>.parquet` with columns `sku` (string) and `embedding`
 * (list of float32), plus `<tag>.json` beside it describing how they were made (model, checkpoint,
 * dimension, distance, created). Tags: `siamese_<run>`, `sbert_<model>`, `towers_<weights>`.
 */
import pl from "nodejs-polars";
import { join } from "node:path";
import { dataDir } from "../paths.ts";
import { writeFileAtomic, writeJsonAtomic } from "../fs.ts";

export interface EmbeddingTable {
  skus: string[];
  /** Row-major [skus.length, dim]. */
  vectors: Float32Array;
  dim: number;
  info: EmbeddingInfo;
}

export interface EmbeddingInfo {
  tag: string;
  /** What produced them: "siamese", "sbert", "towers". */
  kind: string;
  /** Checkpoint folder or model id. */
  source: string;
  /** How to compare: "euclidean" (Siamese, towers) or "cosine" (SBERT; vectors are unit length). */
  distance: "euclidean" | "cosine";
  dim?: number;
  count?: number;
  created?: string;
  [key: string]: unknown;
}

/** `data/embeddings/<dataset>/<tag>.parquet` */
export function embeddingPath(dataset: string, tag: string, root = dataDir()): string {
  if (!/^[\w.-]+$/.test(tag)) {
    throw new Error(`embedding tag ${JSON.stringify(tag)} may only hold letters, digits, "_", "-" and "."`);
  }
  return join(root, "embeddings", dataset, `${tag}.parquet`);
}

/** Writes the parquet and its JSON description atomically. */
export async function writeEmbeddings(path: string, table: EmbeddingTable): Promise<void> {
  const { skus, vectors, dim } = table;
  if (vectors.length !== skus.length * dim) {
    throw new Error(`writeEmbeddings: ${vectors.length} values for ${skus.length} SKUs x ${dim} dims`);
  }
  const rows = skus.map((_, i) => Array.from(vectors.subarray(i * dim, (i + 1) * dim)));
  const frame = pl.DataFrame({ sku: skus, embedding: pl.Series("embedding", rows, pl.List(pl.Float32)) });
  await writeFileAtomic(path, new Uint8Array(frame.writeParquet()));
  await writeJsonAtomic(path.replace(/\.parquet$/, ".json"), {
    ...table.info,
    dim,
    count: skus.length,
    created: new Date().toISOString(),
  });
}

/** Reads embeddings written by `writeEmbeddings`; a missing file names what produces it. */
export async function readEmbeddings(path: string): Promise<EmbeddingTable> {
  let frame: pl.DataFrame;
  try {
    frame = pl.readParquet(path);
  } catch (error) {
    throw new Error(
      `${path}: cannot read embeddings (${
        (error as Error).message.split("\n")[0]
      }); run the compute_embeddings notebooks first`,
    );
  }
  for (const column of ["sku", "embedding"]) {
    if (!frame.columns.includes(column)) {
      throw new Error(`${path}: no "${column}" column (found ${frame.columns.join(", ")})`);
    }
  }
  const skus = frame.getColumn("sku").toArray().map(String);
  const lists = frame.getColumn("embedding").toArray() as unknown as ArrayLike<number>[];
  const dim = lists.length ? lists[0].length : 0;
  const vectors = new Float32Array(skus.length * dim);
  lists.forEach((row, i) => {
    if (row.length !== dim) {
      throw new Error(`${path}: row ${i} (sku ${skus[i]}) has ${row.length} values, expected ${dim}`);
    }
    vectors.set(Array.from(row), i * dim);
  });
  let info: EmbeddingInfo;
  try {
    info = JSON.parse(await Deno.readTextFile(path.replace(/\.parquet$/, ".json")));
  } catch {
    info = {
      tag: path.split("/").pop()!.replace(/\.parquet$/, ""),
      kind: "unknown",
      source: "unknown",
      distance: "euclidean",
    };
  }
  return { skus, vectors, dim, info };
}

/** Row index of each SKU. */
export function skuIndex(table: EmbeddingTable): Map<string, number> {
  return new Map(table.skus.map((sku, i) => [sku, i]));
}
