/**
 * The extra files of a dataset imported from labelled product pairs (import_pairs.ts), on top of the
 * suite's own layout (layout.ts):
 *
 *   tables_<dataset>/processed/<dataset>.parquet   one row per product (columns: IMPORTED_PRODUCT_COLUMNS)
 *   tables_<dataset>/processed/import_issues.parquet  conflicts, duplicates and dropped pairs
 *   tables_<dataset>/processed/import_manifest.json   what was imported, how it was split, the counts
 *   tables_<dataset>/splits/<split>_pairs.parquet and <split>_query_candidates.parquet, assignment.parquet
 *   tables_<dataset>/tokenizer/                       a WordPiece tokenizer learnt from the training split
 *   images_<dataset>/_no_image.png                    the neutral image of products without one
 *
 * The manifest is written last: a dataset whose manifest exists was imported completely.
 *
 * @module
 */
import { join } from "node:path";
import { dataDir } from "../paths.ts";
import { type DatasetLayout, datasetLayout } from "./layout.ts";
import type { Pair, PairKind, QueryCandidate, SplitData } from "./pairs.ts";
import { splitFiles } from "./pairs.ts";
import pl from "nodejs-polars";

/** The placeholder image's file name under `images_<dataset>/`. */
export const PLACEHOLDER_IMAGE = "_no_image.png";

/** The layout of an imported dataset: the suite's layout plus the import's own files. */
export interface ImportedLayout extends DatasetLayout {
  manifest: string;
  importIssues: string;
  tokenizerDir: string;
  placeholderImage: string;
}

/** The imported layout of `dataset` under `root` (default `dataDir()`). */
export function importedLayout(dataset: string, root: string = dataDir()): ImportedLayout {
  const layout = datasetLayout(dataset, root);
  return {
    ...layout,
    manifest: join(layout.processedDir, "import_manifest.json"),
    importIssues: join(layout.processedDir, "import_issues.parquet"),
    tokenizerDir: join(layout.tablesDir, "tokenizer"),
    placeholderImage: join(layout.imagesDir, PLACEHOLDER_IMAGE),
  };
}

/** A problem met during the import (written to `processed/import_issues.parquet`). */
export interface ImportIssue {
  kind:
    | "record-conflict"
    | "duplicate-pair"
    | "pair-label-conflict"
    | "self-pair"
    | "cross-split-pair"
    | "bad-price"
    | "image-failed"
    | "malformed-line";
  /** The product id (or "left|right" for a pair). */
  id: string;
  /** The fields that differ (record conflicts), else "". */
  fields: string;
  /** Where: file:row(:side) of each record or pair involved. */
  rows: string[];
  /** The differing values, field=value, or the bad value. */
  values: string[];
  message: string;
}

/** Per-split counts recorded in the manifest. */
export interface ImportedSplitInfo {
  split: string;
  pairs: number;
  positives: number;
  negatives: number;
  products: number;
  /** The source files the split's pairs came from. */
  files: string[];
}

/** What `import_manifest.json` holds. */
export interface ImportManifest {
  kind: "imported-pairs";
  dataset: string;
  /** "given": splits as the source gave them (products may be shared); "leak-free": split here by entity. */
  splitMode: "given" | "leak-free";
  splits: ImportedSplitInfo[];
  products: number;
  productsWithImage: number;
  /** Products shared by two splits (all 0 for "leak-free"). */
  overlaps: { a: string; b: string; shared_skus: number }[];
  issues: Record<string, number>;
  /** Source fields mapped to the products table's columns. */
  fields: Record<string, string | null>;
  /** The shape read (absent in manifests written before the format readers). */
  format?: "pairs" | "records" | "magellan" | "ditto";
  /** Source attributes kept under their own names (the products table's `attributes` column, JSON). */
  attributes?: string[];
  /** Columns that identify the entity (cluster or group ids): dropped, never text or a feature. */
  entityColumns?: string[];
  /** True when the source had no record ids and each side's ids were derived from its values. */
  derivedIds?: boolean;
  /** Distinct products per side. */
  recordsPerSide?: { left: number; right: number };
  /** Malformed lines or rows skipped (each an issue of kind "malformed-line"). */
  skippedLines?: number;
  sources: string[];
  /** The WordPiece tokenizer folder learnt from the training split, when one was made. */
  tokenizer: string | null;
  /** "text" when no product has an image (the image tower then only sees the placeholder). */
  recommendedMode: "text" | "full";
  importedAt: string;
}

/**
 * A record's other attributes (the products table's `attributes` column, JSON) as one text,
 * "name: value; name: value", in the source's order; "" when there are none.
 */
export function attributesText(attributes: string | null | undefined): string {
  if (!attributes) return "";
  let parsed: unknown;
  try {
    parsed = JSON.parse(attributes);
  } catch {
    throw new Error(`attributes ${JSON.stringify(attributes.slice(0, 60))} are not a JSON object`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new Error(`attributes ${JSON.stringify(attributes.slice(0, 60))} are not a JSON object`);
  }
  return Object.entries(parsed as Record<string, unknown>)
    .filter(([, v]) => v !== null && String(v).trim() !== "")
    .map(([k, v]) => `${k}: ${String(v).trim()}`)
    .join("; ");
}

/** Reads the manifest of an imported dataset, or null when `dataset` was not imported from pairs. */
export async function readImportManifest(dataset: string, root: string = dataDir()): Promise<ImportManifest | null> {
  const path = importedLayout(dataset, root).manifest;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  const manifest = JSON.parse(text) as ImportManifest;
  if (manifest.kind !== "imported-pairs") throw new Error(`${path}: not an import manifest (kind ${manifest.kind})`);
  return manifest;
}

/**
 * The splits of an imported dataset as `SplitData` (what `makeSplits` returns for the regex-labelled
 * datasets), read back from `splits/`, so `splitCounts` and `splitOverlaps` (pairs.ts) work on them.
 */
export async function readImportedSplits(dataset: string, root: string = dataDir()): Promise<SplitData[]> {
  const manifest = await readImportManifest(dataset, root);
  const layout = importedLayout(dataset, root);
  if (!manifest) throw new Error(`${layout.manifest} is missing: ${dataset} was not imported from pairs`);
  return manifest.splits.map(({ split }) => {
    const files = splitFiles(layout.splitsDir, split);
    const pairs = (pl.readParquet(files.pairs).toRecords() as Record<string, unknown>[]).map((r): Pair => ({
      sku_left: String(r.sku_left),
      sku_right: String(r.sku_right),
      label: Number(r.label),
      kind: String(r.kind) as PairKind,
      query_sku: String(r.query_sku),
    }));
    const queryCandidates = (pl.readParquet(files.queryCandidates).toRecords() as Record<string, unknown>[]).map((
      r,
    ): QueryCandidate => ({
      query_sku: String(r.query_sku),
      candidate_sku: String(r.candidate_sku),
      class: String(r.class) as QueryCandidate["class"],
      label: Number(r.label),
    }));
    const skus = [...new Set(pairs.flatMap((p) => [p.sku_left, p.sku_right]))].sort();
    return { split, skus, queries: [...new Set(pairs.map((p) => p.query_sku))], pairs, queryCandidates };
  });
}

/** Import issues as flat table rows (rows and values joined). */
export function importIssueRows(issues: readonly ImportIssue[]): Record<string, string>[] {
  return issues.map((issue) => ({ ...issue, rows: issue.rows.join(" "), values: issue.values.join("; ") }));
}
