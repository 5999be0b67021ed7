/**
 * Leak-free splitting by query. The rule:
 *  1. Queries that share any positive are merged into one group (union-find); a group is the
 *     unit of splitting, so a positive never sits in two splits.
 *  2. Groups go to splits greedily (largest first, seeded tie order), each to the split furthest
 *     below its target share of grouped products; the query and all its positives go with it.
 *  3. A hard negative not yet placed goes to the split of one of the queries it is a hard negative
 *     of (seeded choice), so hard pairs stay possible where they are needed.
 *  4. Every other product goes to a split drawn at random by the ratios (seeded).
 * Every product of the table belongs to exactly one split; pairs and query-candidate rows of a
 * split use only that split's products (see pairs.ts).
 */
import type { QueryLabels } from "./labeller.ts";
import { SeededRandom } from "./random.ts";

/** Default split names. */
export const SPLIT_NAMES = ["train", "val", "test"] as const;

/** Parses "0.6,0.2,0.2" into ratios summing to 1; errors name the parameter. */
export function parseSplitRatios(text: string, count = SPLIT_NAMES.length): number[] {
  const values = text.split(/[,;\s]+/).filter((s) => s !== "").map(Number);
  if (values.length !== count || values.some((v) => !Number.isFinite(v) || v < 0)) {
    throw new Error(`SPLIT_RATIOS=${JSON.stringify(text)}: give ${count} non-negative numbers such as "0.6,0.2,0.2"`);
  }
  const sum = values.reduce((a, b) => a + b, 0);
  if (!(sum > 0)) throw new Error(`SPLIT_RATIOS=${JSON.stringify(text)}: the ratios sum to 0`);
  return values.map((v) => v / sum);
}

/** A group of queries that share positives. */
export interface QueryGroup {
  groupId: number;
  querySkus: string[];
  /** The queries and their positives. */
  skus: string[];
  split: string;
}

/** The assignment of every product to one split. */
export interface SplitAssignment {
  splitNames: string[];
  /** sku -> split name. */
  splitOf: Map<string, string>;
  groups: QueryGroup[];
}

/** Disjoint sets of strings (path compression), for grouping by transitive links. */
export class UnionFind {
  private parent = new Map<string, string>();
  find(x: string): string {
    let root = x;
    while (this.parent.has(root) && this.parent.get(root) !== root) root = this.parent.get(root)!;
    this.parent.set(x, root);
    return root;
  }
  union(a: string, b: string): void {
    const ra = this.find(a), rb = this.find(b);
    if (ra !== rb) this.parent.set(rb, ra);
  }
}

/** Merges queries sharing positives into groups (query order kept inside a group). */
export function groupQueries(queries: readonly QueryLabels[]): { querySkus: string[]; skus: string[] }[] {
  const unionFind = new UnionFind();
  const ownerOf = new Map<string, string>();
  for (const query of queries) {
    unionFind.find(query.query_sku);
    for (const sku of [query.query_sku, ...query.positives]) {
      const owner = ownerOf.get(sku);
      if (owner === undefined) ownerOf.set(sku, query.query_sku);
      else unionFind.union(owner, query.query_sku);
    }
  }
  const groups = new Map<string, { querySkus: string[]; skus: Set<string> }>();
  for (const query of queries) {
    const root = unionFind.find(query.query_sku);
    if (!groups.has(root)) groups.set(root, { querySkus: [], skus: new Set() });
    const group = groups.get(root)!;
    group.querySkus.push(query.query_sku);
    for (const sku of [query.query_sku, ...query.positives]) group.skus.add(sku);
  }
  return [...groups.values()].map((g) => ({ querySkus: g.querySkus, skus: [...g.skus] }));
}

/** Assigns every SKU of `allSkus` to exactly one split, by the rule in the module comment. */
export function assignSplits(
  queries: readonly QueryLabels[],
  allSkus: readonly string[],
  options: { ratios: number[]; seed: number; splitNames?: string[] },
): SplitAssignment {
  const splitNames = options.splitNames ?? [...SPLIT_NAMES];
  const ratios = options.ratios;
  if (ratios.length !== splitNames.length) {
    throw new Error(`${ratios.length} split ratios given for ${splitNames.length} splits (${splitNames.join(", ")})`);
  }
  const random = new SeededRandom(options.seed);
  const known = new Set(allSkus);
  const present = queries.filter((q) => known.has(q.query_sku)).map((q) => ({
    ...q,
    positives: q.positives.filter((s) => known.has(s)),
    hard: q.hard.filter((s) => known.has(s)),
  }));
  const rawGroups = random.fork("groups").shuffle(groupQueries(present)).sort((a, b) => b.skus.length - a.skus.length);
  const totalGrouped = rawGroups.reduce((n, g) => n + g.skus.length, 0);
  const filled = splitNames.map(() => 0);
  const splitOf = new Map<string, string>();
  const groups: QueryGroup[] = rawGroups.map((group, groupId) => {
    let best = 0;
    let bestDeficit = -Infinity;
    splitNames.forEach((_, i) => {
      const deficit = ratios[i] * totalGrouped - filled[i];
      if (ratios[i] > 0 && deficit > bestDeficit + 1e-9) {
        best = i;
        bestDeficit = deficit;
      }
    });
    filled[best] += group.skus.length;
    for (const sku of group.skus) splitOf.set(sku, splitNames[best]);
    return { groupId, querySkus: group.querySkus, skus: group.skus, split: splitNames[best] };
  });
  // Hard negatives follow one of their queries.
  const hardRandom = random.fork("hard");
  const hardOwners = new Map<string, string[]>();
  for (const query of present) {
    for (const sku of query.hard) {
      if (!hardOwners.has(sku)) hardOwners.set(sku, []);
      hardOwners.get(sku)!.push(splitOf.get(query.query_sku)!);
    }
  }
  for (const sku of allSkus) {
    const owners = hardOwners.get(sku);
    if (owners && !splitOf.has(sku)) splitOf.set(sku, hardRandom.pick(owners));
  }
  // Everything else by the ratios.
  const restRandom = random.fork("rest");
  for (const sku of allSkus) {
    if (splitOf.has(sku)) continue;
    let u = restRandom.next();
    let index = 0;
    while (index < ratios.length - 1 && u >= ratios[index]) u -= ratios[index++];
    splitOf.set(sku, splitNames[index]);
  }
  return { splitNames, splitOf, groups };
}
