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
import { type PairOptions, renderSplits, type SplitData, splitSkus, writeSplits } from "./pairs.ts";
import { loadRules } from "./rules.ts";
import { assignSplits, parseSplitRatios, type SplitAssignment } from "./split.ts";
import { readImportedSplits, readImportManifest } from "./imported_dataset.ts";

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

/** What `planSplits` and `makeSplits` need. */
export type SplitOptions = PairOptions & {
  dataset: string;
  ratios: number[];
  querySeller?: string;
  root?: string;
};

/** Splits `dataset` by query and renders the pairs of each split (reads the labelling output), writing nothing. */
export function planSplits(options: SplitOptions): Omit<SplitResult, "files"> {
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
  return { assignment, splits: renderSplits(queries, assignment, querySellerSkus, options) };
}

/** `planSplits`, then writes the splits under the dataset's `splits/` folder. */
export async function makeSplits(options: SplitOptions): Promise<SplitResult> {
  const { assignment, splits } = planSplits(options);
  const files = await writeSplits(
    datasetLayout(options.dataset, options.root ?? dataDir()).splitsDir,
    assignment,
    splits,
  );
  return { assignment, splits, files };
}

/** The split parameters the pairwise and training notebooks share. */
export interface SplitParams {
  DATASET: string;
  SPLIT_RATIOS: string;
  SEED: number;
  POS_NEG_RATIO: number;
  HARD_SOFT_RATIO: number;
  MAX_POSITIVE_PAIRS_PER_QUERY: number;
  QUERY_SELLER?: string;
}

/** The `SplitOptions` of a notebook's split parameters. */
export function splitOptionsFromParams(params: SplitParams): SplitOptions {
  return {
    dataset: params.DATASET,
    ratios: parseSplitRatios(params.SPLIT_RATIOS),
    seed: params.SEED,
    posNegRatio: params.POS_NEG_RATIO,
    hardSoftRatio: params.HARD_SOFT_RATIO,
    maxPositivePairsPerQuery: params.MAX_POSITIVE_PAIRS_PER_QUERY,
    ...(params.QUERY_SELLER ? { querySeller: params.QUERY_SELLER } : {}),
  };
}

/** `makeSplits` on a notebook's split parameters: the same split wherever it is made. */
export function makeSplitsFromParams(params: SplitParams): Promise<SplitResult> {
  return makeSplits(splitOptionsFromParams(params));
}

/** One table row per query group: its split, queries and products. */
export function splitGroupRows(assignment: SplitAssignment): Record<string, string | number>[] {
  return assignment.groups.map((g) => ({
    group: g.groupId,
    split: g.split,
    queries: g.querySkus.length,
    products: g.skus.length,
  }));
}

/** The splits training uses, and whether they are the source's own (given) or made here (leak-free). */
export interface TrainingSplits {
  splits: SplitData[];
  /** "given": an imported dataset's splits as its source gave them (products may be shared by design). */
  mode: "leak-free" | "given";
}

/**
 * The splits of `DATASET` for training: an imported dataset's (import_pairs.ts) as imported; otherwise the
 * leak-free split by query, made here from the labelling output (`makeSplitsFromParams`).
 */
export async function trainingSplits(params: SplitParams): Promise<TrainingSplits> {
  const manifest = await readImportManifest(params.DATASET);
  if (manifest) return { splits: await readImportedSplits(params.DATASET), mode: manifest.splitMode };
  return { splits: (await makeSplitsFromParams(params)).splits, mode: "leak-free" };
}

/** Records shared by two splits: how many, and a few of them. */
export type SharedRecords = {
  a: string;
  b: string;
  shared_skus: number;
  examples: string;
};

/** What the splits allow: the records they share (shown), and why training must not go ahead (or null). */
export interface SplitProtocol {
  mode: TrainingSplits["mode"];
  shared: SharedRecords[];
  /** One message naming what makes the splits unusable, or null. */
  refusal: string | null;
}

const unorderedPair = (a: string, b: string) => (a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`);

/**
 * Checks splits before training. The suite's own (leak-free) splits share no record. Given splits are a
 * dataset's protocol (public benchmarks reuse records across their train/valid/test pairs by design, and
 * every published number is on those splits): shared records are shown and training goes ahead, but the
 * same pair (the same two records, either order) in two splits is refused, naming the pair, since a model
 * would then be chosen or tested on a pair it trained on.
 */
export function splitProtocol(splits: readonly SplitData[], mode: TrainingSplits["mode"]): SplitProtocol {
  const used = splits.map(splitSkus);
  const shared: SharedRecords[] = [];
  for (let i = 0; i < splits.length; i++) {
    for (let j = i + 1; j < splits.length; j++) {
      const both = [...used[i]].filter((sku) => used[j].has(sku)).sort();
      shared.push({
        a: splits[i].split,
        b: splits[j].split,
        shared_skus: both.length,
        examples: both.slice(0, 3).join(", "),
      });
    }
  }
  if (mode === "leak-free") {
    const leaks = shared.filter((o) => o.shared_skus > 0);
    return {
      mode,
      shared,
      refusal: leaks.length
        ? `splits overlap (${leaks.map((o) => `${o.a}/${o.b}: ${o.shared_skus}`).join(", ")}): refusing to train`
        : null,
    };
  }
  const firstSplit = new Map<string, string>();
  const repeated: { left: string; right: string; splits: [string, string] }[] = [];
  for (const s of splits) {
    const keys = new Set<string>();
    for (const p of s.pairs) {
      const key = unorderedPair(p.sku_left, p.sku_right);
      if (keys.has(key)) continue;
      keys.add(key);
      const earlier = firstSplit.get(key);
      if (earlier === undefined) firstSplit.set(key, s.split);
      else repeated.push({ left: p.sku_left, right: p.sku_right, splits: [earlier, s.split] });
    }
  }
  const first = repeated[0];
  return {
    mode,
    shared,
    refusal: first
      ? `the pair ${JSON.stringify(first.left)} / ${JSON.stringify(first.right)} is in both ${first.splits[0]} and ` +
        `${first.splits[1]}${
          repeated.length > 1 ? ` (and ${repeated.length - 1} more pairs)` : ""
        }: a model would be ` +
        "chosen or tested on a pair it trained on; remove it from one of the splits and import again"
      : null,
  };
}

/** What `splitProtocol` allows, per split mode, for table titles. */
export const OVERLAP_RULES: Record<TrainingSplits["mode"], string> = {
  "leak-free": "must all be 0",
  given: "the dataset's own splits: records may recur, pairs may not",
};
