/**
 * Reading and writing the source exports: .xlsx (first worksheet, first row = header) and .csv.
 * Cells come back as strings, numbers, booleans or null; nothing is coerced here.
 */
import ExcelJS from "exceljs";
import { extname } from "node:path";
import { writeFileAtomic } from "../fs.ts";

/** A cell value as read from a spreadsheet. */
export type Cell = string | number | boolean | null;

/** A table read from a file: its header (as written) and rows keyed by header. */
export interface SourceTable {
  path: string;
  columns: string[];
  rows: Record<string, Cell>[];
}

function cellValue(value: ExcelJS.CellValue): Cell {
  if (value === null || value === undefined) return null;
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") return value;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "object") {
    const v = value as unknown as Record<string, unknown>;
    if ("result" in v) return cellValue(v.result as ExcelJS.CellValue); // formula
    if ("richText" in v && Array.isArray(v.richText)) return v.richText.map((r: { text: string }) => r.text).join("");
    if ("text" in v) return String(v.text); // hyperlink
    if ("error" in v) return null;
  }
  return String(value);
}

/** Reads the first worksheet of an .xlsx file. */
export async function readXlsx(path: string): Promise<SourceTable> {
  const workbook = new ExcelJS.Workbook();
  try {
    await workbook.xlsx.load(await Deno.readFile(path) as unknown as ArrayBuffer);
  } catch (error) {
    throw new Error(
      `${path}: not a readable .xlsx file (${(error as Error).message}); re-export it from the spreadsheet`,
    );
  }
  const sheet = workbook.worksheets[0];
  if (!sheet) throw new Error(`${path}: the workbook has no worksheet`);
  const header = (sheet.getRow(1).values as ExcelJS.CellValue[]).slice(1).map((v) => String(cellValue(v) ?? "").trim());
  const rows: Record<string, Cell>[] = [];
  sheet.eachRow({ includeEmpty: false }, (row, rowNumber) => {
    if (rowNumber === 1) return;
    const values = row.values as ExcelJS.CellValue[];
    const record: Record<string, Cell> = {};
    header.forEach((name, i) => {
      if (name) record[name] = cellValue(values[i + 1]);
    });
    rows.push(record);
  });
  return { path, columns: header.filter((h) => h !== ""), rows };
}

/** Splits CSV text into rows of fields (RFC 4180 quotes; "," or ";" delimiter guessed from the header). */
export function parseCsv(text: string): string[][] {
  const clean = text.replace(/^\uFEFF/, "");
  const firstLine = clean.slice(0, clean.indexOf("\n") === -1 ? clean.length : clean.indexOf("\n"));
  const delimiter = (firstLine.match(/;/g)?.length ?? 0) > (firstLine.match(/,/g)?.length ?? 0) ? ";" : ",";
  const rows: string[][] = [];
  let field = "";
  let row: string[] = [];
  let quoted = false;
  for (let i = 0; i < clean.length; i++) {
    const ch = clean[i];
    if (quoted) {
      if (ch === '"' && clean[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === delimiter) {
      row.push(field);
      field = "";
    } else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && clean[i + 1] === "\n") i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else field += ch;
  }
  if (field !== "" || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows.filter((r) => !(r.length === 1 && r[0] === ""));
}

/** Reads a .csv file (empty fields become null). */
export async function readCsv(path: string): Promise<SourceTable> {
  const [header, ...body] = parseCsv(await Deno.readTextFile(path));
  if (!header) throw new Error(`${path}: the CSV file is empty`);
  const columns = header.map((h) => h.trim());
  const rows = body.map((fields) => {
    const record: Record<string, Cell> = {};
    columns.forEach((name, i) => (record[name] = fields[i] === undefined || fields[i] === "" ? null : fields[i]));
    return record;
  });
  return { path, columns, rows };
}

/** Reads an .xlsx or .csv source export, chosen by extension. */
export function readSourceTable(path: string): Promise<SourceTable> {
  const ext = extname(path).toLowerCase();
  if (ext === ".xlsx") return readXlsx(path);
  if (ext === ".csv") return readCsv(path);
  return Promise.reject(new Error(`${path}: unsupported source format "${ext}"; use .xlsx or .csv`));
}

/** Writes rows to an .xlsx file (one worksheet, header row first), atomically. */
export async function writeXlsx(
  path: string,
  columns: readonly string[],
  rows: readonly Record<string, Cell>[],
  sheetName = "Sheet1",
): Promise<void> {
  const workbook = new ExcelJS.Workbook();
  const sheet = workbook.addWorksheet(sheetName);
  sheet.addRow([...columns]);
  for (const row of rows) sheet.addRow(columns.map((c) => row[c] ?? null));
  const buffer = await workbook.xlsx.writeBuffer();
  await writeFileAtomic(path, new Uint8Array(buffer as ArrayBuffer));
}

/** Quotes one CSV field when needed. */
function csvField(value: unknown): string {
  if (value === null || value === undefined) return "";
  const text = Array.isArray(value) ? JSON.stringify(value) : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Writes rows to a .csv file (comma-separated, RFC 4180 quoting), atomically. */
export function writeCsv(
  path: string,
  columns: readonly string[],
  rows: readonly Record<string, unknown>[],
): Promise<void> {
  const lines = [columns.map(csvField).join(","), ...rows.map((row) => columns.map((c) => csvField(row[c])).join(","))];
  return writeFileAtomic(path, lines.join("\n") + "\n");
}
