/**
 * make_OZ_geo_5500 as a library call: read both source exports, merge them, download and
 * validate the images, and write `processed/<dataset>.parquet` and `.csv` plus the download report
 * and the merge issues. Rows whose image failed are dropped from the processed table (as in the
 * reference) and listed in the report.
 */
import pl from "nodejs-polars";
import { writeFileAtomic } from "../fs.ts";
import { dataDir } from "../paths.ts";
import { downloadImages, type DownloadOptions, type ImageResult, type ProgressSink } from "./download.ts";
import { type DatasetLayout, datasetLayout } from "./layout.ts";
import { loadSourceExports, type MergeIssue, mergeSources, type ProductRow } from "./merge.ts";
import { writeCsv } from "./source_table.ts";

/** Options of `makeDataset`. */
export interface MakeDatasetOptions extends Omit<DownloadOptions, "imagesDir" | "progress"> {
  dataset: string;
  /** Root of the data folder, default `dataDir()`. */
  root?: string;
  /** Keep rows whose image failed (image_name set to null) instead of dropping them. Default false. */
  keepFailedImages?: boolean;
  /** Called with the number of images before the download starts; returns the progress bar. */
  progress?: (total: number) => ProgressSink;
}

/** What `makeDataset` did. */
export interface MakeDatasetResult {
  layout: DatasetLayout;
  table: pl.DataFrame;
  issues: MergeIssue[];
  downloads: ImageResult[];
  counts: {
    analyticsRows: number;
    crawlerRows: number;
    merged: number;
    imagesOk: number;
    imagesFailed: number;
    kept: number;
  };
}

const STRING_COLUMNS = new Set(["sku", "image_url", "image_name", "description", "name", "seller"]);

/** A polars DataFrame of product rows with stable column types (sku as text, numbers as Float64). */
export function productFrame(columns: readonly string[], rows: readonly ProductRow[]): pl.DataFrame {
  const series = columns.map((column) => {
    const values = rows.map((r) => r[column] ?? null);
    const numeric = !STRING_COLUMNS.has(column) && values.some((v) => v !== null) &&
      values.every((v) => v === null || typeof v === "number");
    return numeric
      ? pl.Series(column, values as (number | null)[], pl.Float64)
      : pl.Series(column, values.map((v) => (v === null ? null : String(v))), pl.Utf8);
  });
  return pl.DataFrame(series);
}

/** Runs the whole step for `dataset`. */
export async function makeDataset(options: MakeDatasetOptions): Promise<MakeDatasetResult> {
  const layout = datasetLayout(options.dataset, options.root ?? dataDir());
  const { crawler, analytics } = await loadSourceExports(layout.sourceDir);
  const merged = mergeSources(crawler, analytics);
  const jobs = merged.rows
    .filter((r) => r.image_url && r.image_name)
    .map((r) => ({ sku: String(r.sku), url: String(r.image_url), imageName: String(r.image_name) }));
  const downloads = await downloadImages(jobs, {
    ...options,
    imagesDir: layout.imagesDir,
    dataRoot: options.root ?? dataDir(),
    progress: options.progress?.(jobs.length),
  });
  const okSkus = new Set(downloads.filter((d) => d.status !== "failed").map((d) => d.sku));
  const rows = merged.rows
    .map((r) => (okSkus.has(String(r.sku)) ? r : { ...r, image_name: null }))
    .filter((r) => options.keepFailedImages || r.image_name !== null);
  for (const r of merged.rows) {
    if (!r.image_url) {
      merged.issues.push({
        source: "merged",
        row: 0,
        sku: String(r.sku),
        column: "image_url",
        problem: "no image URL",
        value: "",
        action: options.keepFailedImages ? "kept without image" : "row dropped",
      });
    }
  }
  const table = productFrame(merged.columns, rows);
  await Deno.mkdir(layout.processedDir, { recursive: true });
  await writeFileAtomic(layout.processedParquet, new Uint8Array(table.writeParquet()));
  await writeCsv(layout.processedCsv, merged.columns, rows);
  await writeFileAtomic(layout.downloadReport, new Uint8Array(downloadFrame(downloads).writeParquet()));
  await writeFileAtomic(layout.mergeIssues, new Uint8Array(issuesFrame(merged.issues).writeParquet()));
  return {
    layout,
    table,
    issues: merged.issues,
    downloads,
    counts: {
      analyticsRows: analytics.rows.length,
      crawlerRows: crawler.rows.length,
      merged: merged.rows.length,
      imagesOk: okSkus.size,
      imagesFailed: downloads.length - okSkus.size,
      kept: rows.length,
    },
  };
}

/** The download results as a table. */
export function downloadFrame(results: readonly ImageResult[]): pl.DataFrame {
  return pl.DataFrame({
    sku: results.map((r) => r.sku),
    image_name: results.map((r) => r.image_name),
    status: results.map((r) => r.status),
    attempts: results.map((r) => r.attempts),
    bytes: results.map((r) => r.bytes),
    error: results.map((r) => r.error),
    url: results.map((r) => r.url),
  });
}

/** The merge issues as a table. */
export function issuesFrame(issues: readonly MergeIssue[]): pl.DataFrame {
  const columns = ["source", "row", "sku", "column", "problem", "value", "action"] as const;
  return pl.DataFrame(
    Object.fromEntries(
      columns.map((c) => [c, c === "row" ? issues.map((i) => i.row) : issues.map((i) => String(i[c]))]),
    ),
  );
}

/** Reads the processed table of `dataset`; says which step to run when it is missing. */
export function readProcessed(dataset: string, root: string = dataDir()): pl.DataFrame {
  const layout = datasetLayout(dataset, root);
  try {
    return pl.readParquet(layout.processedParquet);
  } catch (error) {
    throw new Error(
      `cannot read ${layout.processedParquet} (${(error as Error).message}); run make_OZ_geo_5500 for ${dataset} first`,
    );
  }
}
