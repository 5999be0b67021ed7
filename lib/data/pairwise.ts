/**
 * The make_OZ_geo_5500_pairwise-regex step and the split step as library calls, reading and
 * writing the dataset layout:
 *   pairwise/<dataset>_pairwise.parquet   one row per query: lists of positive / hard / soft SKUs
 *   pairwise/<dataset>_candidates.parquet one row per (query, candidate) with its class
 *   splits/...                            see pairs.ts
 */
import pl from "nodejs-polars";
import { join } from "node:path";
import { writeFileAtomic } from "../fs.ts";
import { dataDir } from "../paths.ts";
import { QUERY_SELLER } from "./demo_catalog.ts";
import { labelCandidates, mappingFrame, mappingFromFrame, productsFromFrame, type QueryLabels } from "./labeller.ts";
import { type DatasetLayout, datasetLayout } from "./layout.ts";
import { readProcessed } from "./make_dataset.ts";
import { type PairOptions, renderSplits, type SplitData, writeSplits } from "./pairs.ts";
import { loadRules } from "./rules.ts";
import { assignSplits, type SplitAssignment } from "./split.ts";

/** Paths of the labelling outputs. */
export function pairwisePaths(layout: DatasetLayout): { mapping: string; candidates: string } {
  return {
    mapping: join(layout.pairwiseDir, `${layout.dataset}_pairwise.parquet`),
    candidates: join(layout.pairwiseDir, `${layout.dataset}_candidates.parquet`),
  };
}

/** Result of the labelling step. */
export interface PairwiseResult {
  layout: DatasetLayout;
  queries: QueryLabels[];
  mapping: pl.DataFrame;
  /** Candidate SKUs (products not sold by the query seller). */
  candidateSkus: string[];
}

/** Labels the processed table of `dataset` with the rules file and writes the mapping. */
export async function runPairwiseLabelling(options: {
  dataset: string;
  rulesPath: string;
  querySeller?: string;
  root?: string;
}): Promise<PairwiseResult> {
  const layout = datasetLayout(options.dataset, options.root ?? dataDir());
  const rules = await loadRules(options.rulesPath);
  const products = productsFromFrame(readProcessed(options.dataset, layout.root));
  const seller = options.querySeller ?? QUERY_SELLER;
  const result = labelCandidates(products, rules, seller);
  const mapping = mappingFrame(result.queries);
  const paths = pairwisePaths(layout);
  await Deno.mkdir(layout.pairwiseDir, { recursive: true });
  await writeFileAtomic(paths.mapping, new Uint8Array(mapping.writeParquet()));
  const candidates = pl.DataFrame({
    query_sku: result.candidates.map((c) => c.query_sku),
    candidate_sku: result.candidates.map((c) => c.candidate_sku),
    class: result.candidates.map((c) => c.class),
  });
  await writeFileAtomic(paths.candidates, new Uint8Array(candidates.writeParquet()));
  return {
    layout,
    queries: result.queries,
    mapping,
    candidateSkus: products.filter((p) => p.seller !== seller).map((p) => p.sku),
  };
}

/** Class counts per query, for the summary table and plots. */
export function labellingSummary(queries: readonly QueryLabels[]): Record<string, string | number | boolean>[] {
  return queries.map((q) => ({
    query_sku: q.query_sku,
    query_name: q.query_name,
    has_rule: q.has_rule,
    sizes: q.query_sizes,
    positive: q.positives.length,
    hard: q.hard.length,
    soft: q.soft.length,
  }));
}

/** Result of the split step. */
export interface SplitResult {
  assignment: SplitAssignment;
  splits: SplitData[];
  files: string[];
}

/** Splits `dataset` by query and renders the pairs of each split (reads the labelling output). */
export async function makeSplits(
  options: PairOptions & {
    dataset: string;
    ratios: number[];
    querySeller?: string;
    root?: string;
  },
): Promise<SplitResult> {
  const layout = datasetLayout(options.dataset, options.root ?? dataDir());
  const processed = readProcessed(options.dataset, layout.root);
  const products = productsFromFrame(processed);
  let mapping: pl.DataFrame;
  try {
    mapping = pl.readParquet(pairwisePaths(layout).mapping);
  } catch {
    throw new Error(
      `no labelling output for ${options.dataset}; run make_OZ_geo_5500_pairwise-regex (runPairwiseLabelling) first`,
    );
  }
  const queries = mappingFromFrame(mapping);
  const seller = options.querySeller ?? QUERY_SELLER;
  const assignment = assignSplits(queries, products.map((p) => p.sku), { ratios: options.ratios, seed: options.seed });
  const querySellerSkus = new Set(products.filter((p) => p.seller === seller).map((p) => p.sku));
  const splits = renderSplits(queries, assignment, querySellerSkus, options);
  const files = await writeSplits(layout.splitsDir, assignment, splits);
  return { assignment, splits, files };
}
