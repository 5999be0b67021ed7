/**
 * The regex pair labeller (make_OZ_geo_5500_pairwise-regex): for every query product that has a
 * rule, classify every candidate (every product not sold by the query seller) as
 *   positive: all must-patterns match, no must-not matches, and a size within the margin of one of
 *             the query's sizes (checked only when the query has a size);
 *   hard:     all must-patterns match but a must-not matches or the size check fails
 *             (a candidate without a parsable size fails it);
 *   soft:     some must-pattern does not match.
 */
import pl from "nodejs-polars";
import type { CompiledRule, CompiledRules } from "./rules.ts";
import { anySizeMatches, formatSize, parseSizes, type ProductSize } from "./sizes.ts";

/** A candidate's class for one query. */
export type CandidateClass = "positive" | "hard" | "soft";

/** What the labeller needs of a product. */
export interface LabelledProduct {
  sku: string;
  name: string;
  description: string;
  seller: string;
}

/** The labelling text of a product: name + ". " + description. */
export function productText(product: { name: string | null; description: string | null }): string {
  return `${product.name ?? ""}. ${product.description ?? ""}`;
}

/** Classifies one candidate text against a rule; `querySizes` null or empty skips the size check. */
export function classifyCandidate(
  text: string,
  rule: Pick<CompiledRule, "must" | "mustNot">,
  querySizes: ProductSize[] | null,
  sizeMargin: number,
): CandidateClass {
  if (!rule.must.every((pattern) => pattern.test(text))) return "soft";
  if (rule.mustNot.some((pattern) => pattern.test(text))) return "hard";
  if (querySizes && querySizes.length > 0 && !anySizeMatches(parseSizes(text), querySizes, sizeMargin)) return "hard";
  return "positive";
}

/** One query's labelling result. */
export interface QueryLabels {
  query_sku: string;
  query_name: string;
  has_rule: boolean;
  query_sizes: string;
  positives: string[];
  hard: string[];
  soft: string[];
}

/** The labeller's output: one row per query, and one row per (query, candidate). */
export interface LabellingResult {
  queries: QueryLabels[];
  candidates: { query_sku: string; candidate_sku: string; class: CandidateClass }[];
}

/** Labels all candidates of every query product of `querySeller`. */
export function labelCandidates(
  products: readonly LabelledProduct[],
  rules: CompiledRules,
  querySeller: string,
): LabellingResult {
  const queryProducts = products.filter((p) => p.seller === querySeller);
  if (queryProducts.length === 0) {
    throw new Error(
      `no products of the query seller "${querySeller}"; check the seller column or the QUERY_SELLER parameter`,
    );
  }
  const candidateProducts = products.filter((p) => p.seller !== querySeller);
  const texts = candidateProducts.map((p) => productText(p));
  const queries: QueryLabels[] = [];
  const candidates: LabellingResult["candidates"] = [];
  for (const query of queryProducts) {
    const rule = rules.queries.get(query.sku);
    const querySizes = rule ? rule.sizes ?? parseSizes(productText(query)) : [];
    const row: QueryLabels = {
      query_sku: query.sku,
      query_name: query.name,
      has_rule: rule !== undefined,
      query_sizes: querySizes.map(formatSize).join(", "),
      positives: [],
      hard: [],
      soft: [],
    };
    if (rule) {
      candidateProducts.forEach((candidate, i) => {
        const cls = classifyCandidate(texts[i], rule, querySizes, rules.sizeMargin);
        (cls === "positive" ? row.positives : cls === "hard" ? row.hard : row.soft).push(candidate.sku);
        candidates.push({ query_sku: query.sku, candidate_sku: candidate.sku, class: cls });
      });
    }
    queries.push(row);
  }
  return { queries, candidates };
}

/** Products for the labeller from the processed table (sku, name, description, seller). */
export function productsFromFrame(frame: pl.DataFrame): LabelledProduct[] {
  for (const column of ["sku", "name", "description", "seller"]) {
    if (!frame.columns.includes(column)) {
      throw new Error(`processed table has no "${column}" column; re-run make_OZ_geo_5500`);
    }
  }
  const sku = frame.getColumn("sku").toArray();
  const name = frame.getColumn("name").toArray();
  const description = frame.getColumn("description").toArray();
  const seller = frame.getColumn("seller").toArray();
  return sku.map((s, i) => ({
    sku: String(s),
    name: String(name[i] ?? ""),
    description: String(description[i] ?? ""),
    seller: String(seller[i] ?? ""),
  }));
}

/** The per-query mapping as a table (list columns of SKUs, plus counts). */
export function mappingFrame(queries: readonly QueryLabels[]): pl.DataFrame {
  return pl.DataFrame({
    query_sku: queries.map((q) => q.query_sku),
    query_name: queries.map((q) => q.query_name),
    has_rule: queries.map((q) => q.has_rule),
    query_sizes: queries.map((q) => q.query_sizes),
    n_positive: queries.map((q) => q.positives.length),
    n_hard: queries.map((q) => q.hard.length),
    n_soft: queries.map((q) => q.soft.length),
    positives: pl.Series("positives", queries.map((q) => q.positives), pl.List(pl.Utf8)),
    hard: pl.Series("hard", queries.map((q) => q.hard), pl.List(pl.Utf8)),
    soft: pl.Series("soft", queries.map((q) => q.soft), pl.List(pl.Utf8)),
  });
}

/** Reads a mapping table back into query labels. */
export function mappingFromFrame(frame: pl.DataFrame): QueryLabels[] {
  return (frame.toRecords() as Record<string, unknown>[]).map((r) => ({
    query_sku: String(r.query_sku),
    query_name: String(r.query_name),
    has_rule: Boolean(r.has_rule),
    query_sizes: String(r.query_sizes ?? ""),
    positives: ((r.positives as string[] | null) ?? []).map(String),
    hard: ((r.hard as string[] | null) ?? []).map(String),
    soft: ((r.soft as string[] | null) ?? []).map(String),
  }));
}
