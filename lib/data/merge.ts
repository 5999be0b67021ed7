/**
 * The merge step of make_OZ_geo_5500: normalise the two source exports' column names, check the
 * required columns, parse SKUs and numbers (reporting what is unusable), left-join the crawler's
 * description and image URL onto the analytics rows by SKU, and compute
 * `balance = balance_fbo + balance_fbs` and `image_name` (the image id in its URL).
 */
import { basename } from "node:path";
import { resolveImageReference } from "./download.ts";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import {
  ANALYTICS_RENAMES,
  CRAWLER_KEPT,
  normalizeColumnName,
  NUMERIC_ANALYTICS_COLUMNS,
  REQUIRED_ANALYTICS_COLUMNS,
  REQUIRED_CRAWLER_COLUMNS,
} from "./columns.ts";
import { type Cell, readSourceTable, type SourceTable } from "./source_table.ts";

/** One problem found in the inputs: where, what, and what was done about it. */
export interface MergeIssue {
  source: string;
  /** 1-based spreadsheet row (the header is row 1); 0 when not tied to a row. */
  row: number;
  sku: string;
  column: string;
  problem: string;
  value: string;
  action: string;
}

/** A merged product row (normalised column names). */
export type ProductRow = Record<string, string | number | null>;

/** The merged table and the problems met on the way. */
export interface MergeResult {
  columns: string[];
  rows: ProductRow[];
  issues: MergeIssue[];
}

/** Normalises a table's headers; throws when required columns are missing or two headers collide. */
export function normalizeTable(table: SourceTable, required: readonly string[], renames: Record<string, string> = {}): {
  columns: string[];
  rows: Record<string, Cell>[];
} {
  const mapping = new Map<string, string>();
  const seen = new Map<string, string>();
  for (const original of table.columns) {
    const normalized = normalizeColumnName(original);
    const renamed = renames[normalized] ?? normalized;
    if (seen.has(renamed)) {
      throw new Error(
        `${table.path}: columns "${seen.get(renamed)}" and "${original}" both normalise to "${renamed}"; rename one`,
      );
    }
    seen.set(renamed, original);
    mapping.set(original, renamed);
  }
  const missing = required.filter((name) => !seen.has(renames[name] ?? name));
  if (missing.length) {
    throw new Error(
      `${table.path}: missing required column(s) ${missing.join(", ")} (after normalising names; found: ${
        [...seen.keys()].join(", ")
      }). Check that this is the right export.`,
    );
  }
  const rows = table.rows.map((row) => {
    const out: Record<string, Cell> = {};
    for (const [original, value] of Object.entries(row)) {
      const name = mapping.get(original);
      if (name) out[name] = value;
    }
    return out;
  });
  return { columns: [...seen.keys()], rows };
}

/** Parses a SKU cell (an integer, possibly written as text or "123.0"); null when it is not one. */
export function parseSku(value: Cell): string | null {
  if (value === null) return null;
  const text = String(value).trim().replace(/\.0+$/, "");
  return /^\d+$/.test(text) ? text.replace(/^0+(?=\d)/, "") : null;
}

/**
 * Parses a number cell leniently: spaces, non-breaking spaces, currency signs and "%" are dropped
 * and a decimal comma is accepted ("1 234,50 ₽" -> 1234.5). Returns undefined when not a number.
 */
export function parseNumber(value: Cell): number | null | undefined {
  if (value === null) return null;
  if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
  if (typeof value === "boolean") return undefined;
  const text = value.trim().replace(/[\s\u00a0\u202f]/g, "").replace(/(₽|руб\.?|rub|%)$/i, "").replace(",", ".");
  if (text === "" || text === "-" || text === "—") return null;
  const number = Number(text);
  return Number.isFinite(number) && /^[-+]?\d*\.?\d+(e[-+]?\d+)?$/i.test(text) ? number : undefined;
}

/** The image file name: the last path segment of the URL ("https://cdn/x/7012345678.jpg" -> "7012345678.jpg"). */
export function imageNameFromUrl(url: string): string | null {
  const resolved = resolveImageReference(url);
  if (!resolved) return null;
  const path = resolved.pathname;
  const name = decodeURIComponent(basename(path));
  return /^[\w.-]+\.(jpe?g|png|webp|gif|avif)$/i.test(name)
    ? name
    : /^[\w.-]+$/.test(name) && name !== ""
    ? name
    : null;
}

function cellText(value: Cell): string {
  return value === null ? "" : String(value);
}

/** Merges the analytics export (left) with the crawler export (right) on SKU. */
export function mergeSources(crawler: SourceTable, analytics: SourceTable): MergeResult {
  const issues: MergeIssue[] = [];
  const crawlerTable = normalizeTable(crawler, REQUIRED_CRAWLER_COLUMNS);
  const analyticsTable = normalizeTable(analytics, REQUIRED_ANALYTICS_COLUMNS, ANALYTICS_RENAMES);
  const crawlerName = basename(crawler.path);
  const analyticsName = basename(analytics.path);

  const crawlerBySku = new Map<string, Record<string, Cell>>();
  crawlerTable.rows.forEach((row, i) => {
    const sku = parseSku(row.sku);
    const issue = (problem: string, action: string) =>
      issues.push({
        source: crawlerName,
        row: i + 2,
        sku: sku ?? "",
        column: "sku",
        problem,
        value: cellText(row.sku),
        action,
      });
    if (sku === null) return issue("SKU is empty or not an integer", "row skipped");
    if (crawlerBySku.has(sku)) return issue("duplicate SKU", "later row skipped, first kept");
    crawlerBySku.set(sku, row);
  });

  const numeric = new Set<string>(NUMERIC_ANALYTICS_COLUMNS.map((c) => ANALYTICS_RENAMES[c] ?? c));
  const analyticsColumns = analyticsTable.columns;
  const columns = [...analyticsColumns, ...Object.values(CRAWLER_KEPT), "balance", "image_name"];
  const rows: ProductRow[] = [];
  const used = new Set<string>();
  analyticsTable.rows.forEach((row, i) => {
    const sku = parseSku(row.sku);
    const base = { source: analyticsName, row: i + 2, sku: sku ?? "" };
    if (sku === null) {
      issues.push({
        ...base,
        column: "sku",
        problem: "SKU is empty or not an integer",
        value: cellText(row.sku),
        action: "row skipped",
      });
      return;
    }
    if (used.has(sku)) {
      issues.push({
        ...base,
        column: "sku",
        problem: "duplicate SKU",
        value: sku,
        action: "later row skipped, first kept",
      });
      return;
    }
    used.add(sku);
    const out: ProductRow = {};
    for (const column of analyticsColumns) {
      const value = row[column] ?? null;
      if (column === "sku") out.sku = sku;
      else if (numeric.has(column)) {
        const number = parseNumber(value);
        if (number === undefined) {
          issues.push({ ...base, column, problem: "not a number", value: cellText(value), action: "set to null" });
        }
        out[column] = number ?? null;
      } else out[column] = value === null ? null : typeof value === "number" ? value : String(value);
    }
    const crawled = crawlerBySku.get(sku);
    if (!crawled) {
      issues.push({
        ...base,
        column: "sku",
        problem: "no crawler row for this SKU",
        value: sku,
        action: "no description or image",
      });
    }
    for (const [from, to] of Object.entries(CRAWLER_KEPT)) {
      const value = crawled?.[from] ?? null;
      out[to] = value === null ? null : String(value);
    }
    const fbo = out.balance_fbo as number | null;
    const fbs = out.balance_fbs as number | null;
    out.balance = fbo === null && fbs === null ? null : (fbo ?? 0) + (fbs ?? 0);
    const url = out.image_url as string | null;
    out.image_name = url ? imageNameFromUrl(url) : null;
    if (url && out.image_name === null) {
      issues.push({
        ...base,
        column: "image_url",
        problem: "cannot take an image name from the URL",
        value: url,
        action: "no image",
      });
    }
    rows.push(out);
  });
  for (const sku of crawlerBySku.keys()) {
    if (!used.has(sku)) {
      issues.push({
        source: crawlerName,
        row: 0,
        sku,
        column: "sku",
        problem: "crawled SKU missing from the analytics export",
        value: sku,
        action: "ignored",
      });
    }
  }
  return { columns, rows, issues };
}

/** The two exports found in a source folder, told apart by their columns. */
export interface SourceExports {
  crawler: SourceTable;
  analytics: SourceTable;
}

/**
 * Reads the crawler and analytics exports among the .xlsx/.csv files of `sourceDir`: the crawler
 * export is the one with a CoverImage column, the analytics export the one with Seller and Balance.
 */
export async function loadSourceExports(sourceDir: string): Promise<SourceExports> {
  let names: string[];
  try {
    names = (await readdir(sourceDir)).filter((n) => /\.(xlsx|csv)$/i.test(n) && !n.startsWith("~$")).sort();
  } catch {
    throw new Error(`source folder ${sourceDir} does not exist; put the two exports (.xlsx or .csv) there`);
  }
  let crawler: SourceTable | undefined;
  let analytics: SourceTable | undefined;
  for (const name of names) {
    const path = join(sourceDir, name);
    const table = await readSourceTable(path);
    const columns = new Set(table.columns.map(normalizeColumnName));
    if (columns.has("cover_image")) crawler ??= table;
    else if (columns.has("seller") && columns.has("balance")) analytics ??= table;
  }
  if (!crawler || !analytics) {
    throw new Error(
      `${sourceDir}: expected a crawler export (with a CoverImage column) and an analytics export (with Seller and ` +
        `Balance columns); found ${crawler ? "" : "no crawler export"}${!crawler && !analytics ? " and " : ""}${
          analytics ? "" : "no analytics export"
        } among [${names.join(", ")}]`,
    );
  }
  return { crawler, analytics };
}
