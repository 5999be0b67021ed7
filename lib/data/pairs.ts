/**
 * Pair rendering per split, from the regex labels and a split assignment.
 *
 * Training pairs (label 1 = same product):
 *   positive: "query-positive" (query, positive) and "positive-positive" (two distinct positives of
 *             one query), at most `maxPositivePairsPerQuery` per query (0 = no cap), seeded sample;
 *   negative: round(positives × posNegRatio) per query, of which round(… × hardSoftRatio) pair a
 *             random anchor (the query or one of its positives) with a hard negative ("hard"), the
 *             rest with a soft negative ("soft"); when a query has too few hard negatives in its
 *             split the remainder is soft.
 * Ranking table: every (query, candidate) of the split, with the labeller's class and label.
 * Only SKUs of the pair's own split are used, so the splits share no product.
 */
import pl from "nodejs-polars";
import { writeFileAtomic } from "../fs.ts";
import { join } from "node:path";
import type { CandidateClass, QueryLabels } from "./labeller.ts";
import { SeededRandom } from "./random.ts";
import type { SplitAssignment } from "./split.ts";

/** Kinds of rendered pairs. */
export type PairKind = "query-positive" | "positive-positive" | "hard" | "soft";

/** One rendered pair. */
export interface Pair {
  sku_left: string;
  sku_right: string;
  label: number;
  kind: PairKind;
  query_sku: string;
}

/** One row of the ranking (query-candidate) table. */
export interface QueryCandidate {
  query_sku: string;
  candidate_sku: string;
  class: CandidateClass;
  label: number;
}

/** Pair rendering parameters. */
export interface PairOptions {
  seed: number;
  posNegRatio: number;
  hardSoftRatio: number;
  /** 0 = no cap. */
  maxPositivePairsPerQuery: number;
}

/** The rendered data of one split. */
export interface SplitData {
  split: string;
  skus: string[];
  queries: string[];
  pairs: Pair[];
  queryCandidates: QueryCandidate[];
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

/** Renders pairs and the ranking table of every split. */
export function renderSplits(
  queries: readonly QueryLabels[],
  assignment: SplitAssignment,
  querySellerSkus: ReadonlySet<string>,
  options: PairOptions,
): SplitData[] {
  if (!(options.posNegRatio >= 0)) throw new Error(`POS_NEG_RATIO must be >= 0, got ${options.posNegRatio}`);
  if (!(options.hardSoftRatio >= 0 && options.hardSoftRatio <= 1)) {
    throw new Error(`HARD_SOFT_RATIO must be in [0, 1], got ${options.hardSoftRatio}`);
  }
  const random = new SeededRandom(options.seed);
  const skusBySplit = new Map<string, string[]>(assignment.splitNames.map((s) => [s, []]));
  for (const [sku, split] of assignment.splitOf) skusBySplit.get(split)!.push(sku);
  return assignment.splitNames.map((split) => {
    const splitRandom = random.fork(split);
    const skus = skusBySplit.get(split)!.sort();
    const inSplit = (sku: string) => assignment.splitOf.get(sku) === split;
    const splitQueries = queries.filter((q) => q.has_rule && inSplit(q.query_sku));
    const candidates = skus.filter((s) => !querySellerSkus.has(s));
    const seen = new Set<string>();
    const pairs: Pair[] = [];
    const queryCandidates: QueryCandidate[] = [];
    for (const query of splitQueries) {
      const q = query.query_sku;
      const positives = query.positives.filter(inSplit);
      const hard = query.hard.filter(inSplit);
      const positiveSet = new Set(positives);
      const hardSet = new Set(hard);
      const soft = candidates.filter((s) => !positiveSet.has(s) && !hardSet.has(s));
      for (const candidate of candidates) {
        const cls: CandidateClass = positiveSet.has(candidate) ? "positive" : hardSet.has(candidate) ? "hard" : "soft";
        queryCandidates.push({ query_sku: q, candidate_sku: candidate, class: cls, label: cls === "positive" ? 1 : 0 });
      }
      let positivePairs: Pair[] = positives.map((p) => ({
        sku_left: q,
        sku_right: p,
        label: 1,
        kind: "query-positive" as const,
        query_sku: q,
      }));
      for (let i = 0; i < positives.length; i++) {
        for (let j = i + 1; j < positives.length; j++) {
          positivePairs.push({
            sku_left: positives[i],
            sku_right: positives[j],
            label: 1,
            kind: "positive-positive",
            query_sku: q,
          });
        }
      }
      positivePairs = splitRandom.shuffle(positivePairs.filter((p) => !seen.has(pairKey(p.sku_left, p.sku_right))));
      if (options.maxPositivePairsPerQuery > 0) {
        positivePairs = positivePairs.slice(0, options.maxPositivePairsPerQuery);
      }
      for (const p of positivePairs) seen.add(pairKey(p.sku_left, p.sku_right));
      pairs.push(...positivePairs);
      const negatives = Math.round(positivePairs.length * options.posNegRatio);
      const wantHard = Math.round(negatives * options.hardSoftRatio);
      const anchors = [q, ...positives];
      const draw = (pool: string[], count: number, kind: PairKind): number => {
        let made = 0;
        for (let attempt = 0; made < count && pool.length > 0 && attempt < count * 20; attempt++) {
          const left = splitRandom.pick(anchors);
          const right = splitRandom.pick(pool);
          const key = pairKey(left, right);
          if (seen.has(key)) continue;
          seen.add(key);
          pairs.push({ sku_left: left, sku_right: right, label: 0, kind, query_sku: q });
          made++;
        }
        return made;
      };
      const madeHard = draw(hard, wantHard, "hard");
      draw(soft, negatives - madeHard, "soft");
    }
    return { split, skus, queries: splitQueries.map((q) => q.query_sku), pairs, queryCandidates };
  });
}

/** Counts per split: products, queries, pairs by kind, query-candidate rows and positives. */
export function splitCounts(splits: readonly SplitData[]): Record<string, string | number>[] {
  return splits.map((s) => {
    const byKind = (kind: PairKind) => s.pairs.filter((p) => p.kind === kind).length;
    return {
      split: s.split,
      products: s.skus.length,
      queries: s.queries.length,
      pairs: s.pairs.length,
      "query-positive": byKind("query-positive"),
      "positive-positive": byKind("positive-positive"),
      hard: byKind("hard"),
      soft: byKind("soft"),
      query_candidates: s.queryCandidates.length,
      candidate_positives: s.queryCandidates.filter((r) => r.label === 1).length,
    };
  });
}

/**
 * SKUs shared between every two splits, counted over everything each split uses (its products,
 * both sides of its pairs, its queries and candidates). All zero for a leak-free split.
 */
export function splitOverlaps(splits: readonly SplitData[]): { a: string; b: string; shared_skus: number }[] {
  const used = splits.map(splitSkus);
  const out: { a: string; b: string; shared_skus: number }[] = [];
  for (let i = 0; i < splits.length; i++) {
    for (let j = i + 1; j < splits.length; j++) {
      let shared = 0;
      for (const sku of used[i]) if (used[j].has(sku)) shared++;
      out.push({ a: splits[i].split, b: splits[j].split, shared_skus: shared });
    }
  }
  return out;
}

/** Every product a split uses: its own, its pairs' and its query-candidate rows'. */
export function splitSkus(s: SplitData): Set<string> {
  const set = new Set<string>(s.skus);
  for (const p of s.pairs) set.add(p.sku_left).add(p.sku_right);
  for (const r of s.queryCandidates) set.add(r.query_sku).add(r.candidate_sku);
  return set;
}

/** The pairs of a split as a table. */
export function pairsFrame(pairs: readonly Pair[]): pl.DataFrame {
  return pl.DataFrame({
    sku_left: pl.Series("sku_left", pairs.map((p) => p.sku_left), pl.Utf8),
    sku_right: pl.Series("sku_right", pairs.map((p) => p.sku_right), pl.Utf8),
    label: pl.Series("label", pairs.map((p) => p.label), pl.Int32),
    kind: pl.Series("kind", pairs.map((p) => p.kind), pl.Utf8),
    query_sku: pl.Series("query_sku", pairs.map((p) => p.query_sku), pl.Utf8),
  });
}

/** The ranking table of a split. */
export function queryCandidatesFrame(rows: readonly QueryCandidate[]): pl.DataFrame {
  return pl.DataFrame({
    query_sku: pl.Series("query_sku", rows.map((r) => r.query_sku), pl.Utf8),
    candidate_sku: pl.Series("candidate_sku", rows.map((r) => r.candidate_sku), pl.Utf8),
    class: pl.Series("class", rows.map((r) => r.class), pl.Utf8),
    label: pl.Series("label", rows.map((r) => r.label), pl.Int32),
  });
}

/** File names under `splits/`. */
export function splitFiles(splitsDir: string, split: string): { pairs: string; queryCandidates: string } {
  return {
    pairs: join(splitsDir, `${split}_pairs.parquet`),
    queryCandidates: join(splitsDir, `${split}_query_candidates.parquet`),
  };
}

/** Writes `assignment.parquet` (sku, split), `groups.parquet` and each split's pairs and ranking table. */
export async function writeSplits(
  splitsDir: string,
  assignment: SplitAssignment,
  splits: readonly SplitData[],
): Promise<string[]> {
  const written: string[] = [];
  const save = async (path: string, frame: pl.DataFrame) => {
    await writeFileAtomic(path, new Uint8Array(frame.writeParquet()));
    written.push(path);
  };
  const entries = [...assignment.splitOf.entries()].sort(([a], [b]) => a.localeCompare(b));
  await save(
    join(splitsDir, "assignment.parquet"),
    pl.DataFrame({ sku: entries.map(([s]) => s), split: entries.map(([, s]) => s) }),
  );
  await save(
    join(splitsDir, "groups.parquet"),
    pl.DataFrame({
      group_id: assignment.groups.map((g) => g.groupId),
      split: assignment.groups.map((g) => g.split),
      n_queries: assignment.groups.map((g) => g.querySkus.length),
      n_products: assignment.groups.map((g) => g.skus.length),
      query_skus: pl.Series("query_skus", assignment.groups.map((g) => g.querySkus), pl.List(pl.Utf8)),
    }),
  );
  for (const s of splits) {
    const files = splitFiles(splitsDir, s.split);
    await save(files.pairs, pairsFrame(s.pairs));
    await save(files.queryCandidates, queryCandidatesFrame(s.queryCandidates));
  }
  return written;
}
