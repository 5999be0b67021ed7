/**
 * Reading the tables of a labelled product-pair dataset: JSON lines (`.jsonl`, `.json`, optionally
 * gzipped), CSV (`.csv`, optionally gzipped) and parquet. Every value comes back as text or null, so ids
 * such as "02" keep their leading zeros whatever the format inferred; missing-value markers (the
 * string "None" that WDC Products uses, "", "NaN", ...) become null. Each row remembers where it came
 * from (file and 1-based row number) so that later errors can name it.
 *
 * @module
 */
import pl from "nodejs-polars";
import { Buffer } from "node:buffer";
import { gunzipSync } from "node:zlib";
import { basename } from "node:path";

/** Strings read as "no value" unless the caller gives its own list. */
export const DEFAULT_MISSING_MARKERS: readonly string[] = ["", "None", "none", "NaN", "nan", "null", "NULL", "N/A"];

/** One table as read: its columns and its rows, every cell text or null. */
export interface PairTable {
  /** The file it was read from. */
  path: string;
  /** Column names, in file order (JSON lines: in order of first appearance). */
  columns: string[];
  /** Rows; `rows[i]` is data row `i + 1` of the file. */
  rows: Record<string, string | null>[];
}

/** Options of `readPairTable`. */
export interface ReadTableOptions {
  /** Strings that mean "no value" (compared after trimming). Default `DEFAULT_MISSING_MARKERS`. */
  missingMarkers?: readonly string[];
}

/** The table formats understood, by file-name ending. */
export type TableFormat = "jsonl" | "csv" | "parquet";

/** The format and compression of a table file, from its name; throws naming the file for an unknown ending. */
export function tableFormat(path: string): { format: TableFormat; gzip: boolean } {
  const name = basename(path).toLowerCase();
  const gzip = name.endsWith(".gz");
  const bare = gzip ? name.slice(0, -3) : name;
  if (bare.endsWith(".jsonl") || bare.endsWith(".ndjson") || bare.endsWith(".json")) return { format: "jsonl", gzip };
  if (bare.endsWith(".csv")) return { format: "csv", gzip };
  if (bare.endsWith(".parquet") && !gzip) return { format: "parquet", gzip };
  throw new Error(
    `${path}: unknown table format; use .jsonl/.json (JSON lines), .csv (either optionally .gz) or .parquet`,
  );
}

/** A cell as text, or null when missing (null, undefined, NaN, or one of the markers after trimming). */
export function cleanCell(value: unknown, markers: ReadonlySet<string>): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === "number" && Number.isNaN(value)) return null;
  const text = typeof value === "object" ? JSON.stringify(value) : String(value);
  return markers.has(text.trim()) ? null : text;
}

async function readBytes(path: string, gzip: boolean): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    throw new Error(`cannot read ${path}: ${(error as Error).message}`);
  }
  if (!gzip) return bytes;
  try {
    return new Uint8Array(gunzipSync(bytes));
  } catch (error) {
    throw new Error(`${path}: not a valid gzip file (${(error as Error).message})`);
  }
}

function readJsonLines(path: string, text: string, markers: ReadonlySet<string>): PairTable {
  const columns: string[] = [];
  const seen = new Set<string>();
  const rows: Record<string, string | null>[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new Error(`${path}: line ${i + 1} is not valid JSON (${(error as Error).message})`);
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new Error(`${path}: line ${i + 1} is not a JSON object (one object per line is expected)`);
    }
    const row: Record<string, string | null> = {};
    for (const [key, cell] of Object.entries(value as Record<string, unknown>)) {
      if (!seen.has(key)) {
        seen.add(key);
        columns.push(key);
      }
      row[key] = cleanCell(cell, markers);
    }
    rows.push(row);
  });
  for (const row of rows) for (const column of columns) if (!(column in row)) row[column] = null;
  return { path, columns, rows };
}

function fromFrame(path: string, frame: pl.DataFrame, markers: ReadonlySet<string>): PairTable {
  const columns = frame.columns;
  const values = columns.map((c) => frame.getColumn(c).toArray() as unknown[]);
  const rows: Record<string, string | null>[] = [];
  for (let r = 0; r < frame.height; r++) {
    const row: Record<string, string | null> = {};
    columns.forEach((column, c) => (row[column] = cleanCell(values[c][r], markers)));
    rows.push(row);
  }
  return { path, columns, rows };
}

/** Reads one table file (format from its name, see `tableFormat`); errors name the file. */
export async function readPairTable(path: string, options: ReadTableOptions = {}): Promise<PairTable> {
  const markers = new Set(options.missingMarkers ?? DEFAULT_MISSING_MARKERS);
  const { format, gzip } = tableFormat(path);
  const bytes = await readBytes(path, gzip);
  if (format === "jsonl") return readJsonLines(path, new TextDecoder().decode(bytes), markers);
  let frame: pl.DataFrame;
  try {
    frame = format === "csv"
      ? pl.readCSV(Buffer.from(bytes), { inferSchemaLength: 0, quoteChar: '"' })
      : pl.readParquet(Buffer.from(bytes));
  } catch (error) {
    throw new Error(`cannot read ${path} as ${format}: ${(error as Error).message.split("\n")[0]}`);
  }
  return fromFrame(path, frame, markers);
}

/** Throws naming the file when any of `required` is not a column of the table. */
export function requireColumns(table: PairTable, required: readonly string[], what: string): void {
  const missing = required.filter((c) => !table.columns.includes(c));
  if (missing.length > 0) {
    throw new Error(
      `${table.path}: missing column(s) ${missing.map((c) => JSON.stringify(c)).join(", ")} needed for ${what} ` +
        `(the file has ${table.columns.map((c) => JSON.stringify(c)).join(", ") || "no columns"})`,
    );
  }
}
