/**
 * The pairs of an import before they are written: deduplication within a split, and the leak-free split
 * of pairs that come without one. The leak-free split is split.ts' `assignSplits` with entities as its
 * groups: products joined by a positive pair or by a shared cluster id form one group (so an entity never
 * spans two splits), each negative partner outside every group follows one of the groups it was paired
 * with, and every other product is drawn by the ratios. A pair whose two products still land in
 * different splits is dropped and reported.
 *
 * @module
 */
import type { ImportIssue } from "./imported_dataset.ts";
import type { QueryLabels } from "./labeller.ts";
import { assignSplits, UnionFind } from "./split.ts";

/** One labelled pair as read from the source. */
export interface ImportedPair {
  left: string;
  right: string;
  label: 0 | 1;
  /** Flagged as a hard negative by the source. */
  hard: boolean;
  pairId: string;
  /** The split the source gives (null: none). */
  split: string | null;
  /** file:row of the pair. */
  source: string;
  file: string;
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`;
}

/** Drops self-pairs, duplicate pairs of a split (kept once) and pairs whose label disagrees (all dropped). */
export function dedupePairs(pairs: readonly ImportedPair[], issues: ImportIssue[]): ImportedPair[] {
  const bySplitKey = new Map<string, ImportedPair[]>();
  for (const p of pairs) {
    if (p.left === p.right) {
      issues.push({
        kind: "self-pair",
        id: p.left,
        fields: "",
        rows: [p.source],
        values: [],
        message: "a pair of a product with itself; dropped",
      });
      continue;
    }
    const key = `${p.split ?? ""}\u0001${pairKey(p.left, p.right)}`;
    const list = bySplitKey.get(key) ?? [];
    list.push(p);
    bySplitKey.set(key, list);
  }
  const kept: ImportedPair[] = [];
  for (const list of bySplitKey.values()) {
    const first = list[0];
    const id = `${first.left}|${first.right}`;
    if (list.some((p) => p.label !== first.label)) {
      issues.push({
        kind: "pair-label-conflict",
        id,
        fields: "label",
        rows: list.map((p) => p.source),
        values: list.map((p) => `label=${p.label}`),
        message: "the same pair has both labels; all its copies dropped",
      });
      continue;
    }
    if (list.length > 1) {
      issues.push({
        kind: "duplicate-pair",
        id,
        fields: "",
        rows: list.map((p) => p.source),
        values: [],
        message: `the same pair ${list.length} times; kept once`,
      });
    }
    kept.push({ ...first, hard: list.some((p) => p.hard) });
  }
  return kept;
}

/**
 * The leak-free split of pairs without given splits: entities (products joined by positives or by a shared
 * cluster id) are the groups of split.ts' `assignSplits`; negative partners follow one of their groups.
 * Returns the pairs with their split; pairs across two splits are dropped and reported in `issues`.
 */
export function leakFreePairSplit(
  pairs: readonly ImportedPair[],
  clusterOf: (sku: string) => string | null,
  options: { ratios: number[]; splitNames: string[]; seed: number },
  issues: ImportIssue[],
): ImportedPair[] {
  const union = new UnionFind();
  const skus = [...new Set(pairs.flatMap((p) => [p.left, p.right]))].sort();
  const grouped = new Set<string>();
  for (const p of pairs) {
    if (p.label === 1) {
      union.union(p.left, p.right);
      grouped.add(p.left).add(p.right);
    }
  }
  const byCluster = new Map<string, string>();
  for (const sku of skus) {
    const cluster = clusterOf(sku);
    if (cluster === null) continue;
    const first = byCluster.get(cluster);
    if (first === undefined) byCluster.set(cluster, sku);
    else {
      union.union(first, sku);
      grouped.add(first).add(sku);
    }
  }
  const members = new Map<string, string[]>();
  for (const sku of skus) {
    if (!grouped.has(sku)) continue;
    const root = union.find(sku);
    members.set(root, [...(members.get(root) ?? []), sku]);
  }
  const hardOf = new Map<string, Set<string>>();
  for (const p of pairs) {
    if (p.label !== 0) continue;
    for (const [a, b] of [[p.left, p.right], [p.right, p.left]]) {
      if (!grouped.has(a) || grouped.has(b)) continue;
      const root = union.find(a);
      if (!hardOf.has(root)) hardOf.set(root, new Set());
      hardOf.get(root)!.add(b);
    }
  }
  const queries: QueryLabels[] = [...members.entries()].map(([root, list]) => ({
    query_sku: list[0],
    query_name: "",
    has_rule: true,
    query_sizes: "",
    positives: list.slice(1),
    hard: [...(hardOf.get(root) ?? [])].sort(),
    soft: [],
  }));
  const assignment = assignSplits(queries, skus, options);
  const kept: ImportedPair[] = [];
  for (const p of pairs) {
    const a = assignment.splitOf.get(p.left)!, b = assignment.splitOf.get(p.right)!;
    if (a === b) kept.push({ ...p, split: a });
    else {
      issues.push({
        kind: "cross-split-pair",
        id: `${p.left}|${p.right}`,
        fields: "",
        rows: [p.source],
        values: [`left in ${a}`, `right in ${b}`],
        message: "its two products fell in different splits of the leak-free split; dropped",
      });
    }
  }
  return kept;
}
