/**
 * Where a dataset's files live under `dataDir()`:
 *
 *   tables_<dataset>/source/*.xlsx|csv          the two source exports (crawler + analytics)
 *   tables_<dataset>/source_images/             demo only: the stand-in for the marketplace image host
 *   tables_<dataset>/processed/<dataset>.parquet  merged table (also .csv), one row per product
 *   tables_<dataset>/processed/download_report.parquet, merge_issues.parquet
 *   tables_<dataset>/pairwise/                  regex labelling output
 *   tables_<dataset>/splits/                    leak-free splits and rendered pairs
 *   tables_<dataset>/ground_truth/product_identity.parquet  demo only: sku -> product_id, for scoring
 *   images_<dataset>/<image_name>               downloaded images
 */
import { join } from "node:path";
import { dataDir, shippedDir } from "../paths.ts";

/** The real dataset's name. */
export const REAL_DATASET = "OZ_geo_5500";
/** The generated demo marketplace's name. */
export const DEMO_DATASET = "demo_geo";

/** All paths of one dataset, rooted at `root` (default `dataDir()`). */
export interface DatasetLayout {
  dataset: string;
  root: string;
  tablesDir: string;
  sourceDir: string;
  sourceImagesDir: string;
  processedDir: string;
  processedParquet: string;
  processedCsv: string;
  downloadReport: string;
  mergeIssues: string;
  imagesDir: string;
  pairwiseDir: string;
  splitsDir: string;
  groundTruth: string;
}

/** The layout of `dataset` under `root` (default `dataDir()`). */
export function datasetLayout(dataset: string, root: string = dataDir()): DatasetLayout {
  if (!/^[A-Za-z0-9_.-]+$/.test(dataset)) {
    throw new Error(`dataset name ${JSON.stringify(dataset)} may only hold letters, digits, "_", "-" and "."`);
  }
  const tablesDir = join(root, `tables_${dataset}`);
  const processedDir = join(tablesDir, "processed");
  return {
    dataset,
    root,
    tablesDir,
    sourceDir: join(tablesDir, "source"),
    sourceImagesDir: join(tablesDir, "source_images"),
    processedDir,
    processedParquet: join(processedDir, `${dataset}.parquet`),
    processedCsv: join(processedDir, `${dataset}.csv`),
    downloadReport: join(processedDir, "download_report.parquet"),
    mergeIssues: join(processedDir, "merge_issues.parquet"),
    imagesDir: join(root, `images_${dataset}`),
    pairwiseDir: join(tablesDir, "pairwise"),
    splitsDir: join(tablesDir, "splits"),
    groundTruth: join(tablesDir, "ground_truth", "product_identity.parquet"),
  };
}

/** The shipped, versioned labelling rules of a dataset: `data/shipped/rules/<dataset>.rules.json`. */
export function shippedRulesPath(dataset: string): string {
  return join(shippedDir, "rules", `${dataset}.rules.json`);
}
