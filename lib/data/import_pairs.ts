/**
 * Imports a labelled product-pair dataset into the suite's own layout (see imported_dataset.ts), so the
 * training, embedding and testing notebooks can run on it with `DATASET=<name>`.
 *
 * Sources (pair_tables.ts reads JSON lines, CSV, either optionally gzipped, and parquet; the published
 * shapes have their readers in formats/, each returning formats/shape.ts' ShapeContent):
 * - "magellan": a Magellan/DeepMatcher folder (formats/magellan.ts); "ditto": Ditto's lines (formats/ditto.ts);
 * - "wide": one row per pair, `<field>_left` / `<field>_right` columns (suffixes configurable), a
 *   `label` (1 = same product, 0 = not), optionally `pair_id`, a split column and a hard-negative flag;
 * - "records": record tables (one, or a left and a right one) plus pair lists (`id_left`, `id_right`,
 *   `label`, ...).
 * A field mapping names the source columns of the product id, name/title, description, brand, price,
 * currency, image (a path relative to the table's folder, or a URL), cluster id and category, or is left out
 * to map them by name; all may be absent (without an id, wide tables' records get ids from their values). Missing-value markers ("None" as in WDC, "", "NaN", ...) become null.
 *
 * Products table (`processed/<dataset>.parquet`, also `.csv`), one row per product that any kept pair uses:
 *   sku            the source id (with the side's prefix in records mode, when one is given)
 *   name, description, brand, category, cluster_id, price (as written), price_currency   from the mapping
 *   final_price    the price as a number (null when absent or unreadable; unreadable ones are issues)
 *   image_url      the image reference as the source gives it (null when none)
 *   image_name     the file under images_<dataset>/; products without a (readable) image get the
 *                  placeholder `_no_image.png`, an image of the ImageNet mean colour, which the towers see
 *                  as (nearly) the all-zero normalised input the suite already gives a missing image
 *   has_image      false for those products (train with MODE=text when no product has one)
 *   seller         synthesized: the side the product was first seen on ("left" or "right"); pair datasets
 *                  have no query seller, and the regex labeller that uses it is not run on them
 *   sales, balance, rating   synthesized as null (unknown): the economic filter counts them as missing
 *   attributes     every other source attribute of the record, JSON {name: value} (null when none); never the
 *                  columns that identify the entity (formats/field_names.ts)
 *   source         file:row (and side) of the record that was kept
 *
 * Splits: splits given by the source (a split per file, or a split column) are kept as given (names
 * "valid"/"validation"/"dev" become "val"); a product may then sit in several splits (reported in the
 * manifest's `overlaps`). Without given splits, the suite's leak-free split (split.ts) applies with
 * entities as groups: products joined by a positive pair or a shared cluster id form one group, each
 * negative partner follows one of its groups, and a pair whose two products land in different splits is
 * dropped (counted as "cross-split-pair" issues).
 *
 * Rendered pairs (`splits/<split>_pairs.parquet`): sku_left, sku_right, label, kind, query_sku, pair_id,
 * source, where kind is "query-positive" for a positive (the left product is taken as the query), "hard"
 * for a negative flagged as a hard negative, "soft" for any other negative. The ranking table
 * (`<split>_query_candidates.parquet`) has one row per labelled pair (query = left product): only the
 * labelled candidates of a query are known. Records without conflicts are merged (a null is filled from a
 * later record); two different non-null values of one field for one id are a conflict: the first record
 * is kept and the conflict reported (or thrown, with `onConflict: "error"`).
 *
 * @module
 */
import pl from "nodejs-polars";
import sharp from "sharp";
import { basename, dirname, extname, isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { sha256Hex, writeFileAtomic, writeJsonAtomic } from "../fs.ts";
import { dataDir, shownPath } from "../paths.ts";
import { saveWordPieceTokenizer, trainWordPiece } from "../text/wordpiece_training.ts";
import { downloadImages, type ImageJob } from "./download.ts";
import {
  type ImportedLayout,
  importedLayout,
  type ImportedSplitInfo,
  type ImportIssue,
  type ImportManifest,
  PLACEHOLDER_IMAGE,
} from "./imported_dataset.ts";
import { dedupePairs, type ImportedPair, leakFreePairSplit } from "./pair_splits.ts";
import { splitFiles } from "./pairs.ts";
import { cleanCell, DEFAULT_MISSING_MARKERS, type PairTable, readPairTable, requireColumns } from "./pair_tables.ts";
import { mapFieldsByName } from "./formats/field_names.ts";
import { readDitto } from "./formats/ditto.ts";
import { readMagellan } from "./formats/magellan.ts";
import { type PairFormat, recordIdFromValues, type SkippedLine } from "./formats/shape.ts";
import { writeCsv } from "./source_table.ts";
import { SPLIT_NAMES } from "./split.ts";

/** Product fields a source may map. */
export const PRODUCT_FIELDS = [
  "name",
  "description",
  "brand",
  "price",
  "currency",
  "image",
  "cluster",
  "category",
] as const;
/** One mappable product field. */
export type ProductField = typeof PRODUCT_FIELDS[number];

/**
 * Source column names of the product fields (without `_left`/`_right` in wide tables). Every field may be
 * absent; without `id`, wide pair tables get ids derived from each side's values (record tables need one).
 */
export type FieldMapping = { id?: string } & Partial<Record<ProductField, string>>;

/** Names of the pair columns. */
export interface PairColumns {
  /** Default "label". */
  label?: string;
  /** Default "pair_id" (used when the file has it). */
  pairId?: string;
  /** A column holding each pair's split (none by default). */
  split?: string;
  /** A column flagging hard negatives (true/1/yes); none by default. */
  hardNegative?: string;
  /** Wide tables: default "_left" / "_right". */
  leftSuffix?: string;
  rightSuffix?: string;
  /** Records mode: the pair list's id columns, default "id_left" / "id_right". */
  idLeft?: string;
  idRight?: string;
}

/** A pair file and, when the source gives it, the split all its pairs belong to. */
export interface PairFile {
  path: string;
  split?: string;
}

/** Where the pairs come from. */
export type PairSource =
  | { kind: "wide"; files: PairFile[] }
  /** A Magellan/DeepMatcher folder: tableA.csv, tableB.csv, train/valid/test.csv (formats/magellan.ts). */
  | { kind: "magellan"; dir: string }
  /** Ditto's `COL a VAL v ... \t ... \t label` files, or folders of train/valid/test.txt (formats/ditto.ts). */
  | { kind: "ditto"; files: PairFile[] }
  | {
    kind: "records";
    /** Record tables: `left` alone holds both sides' products, or `left` and `right` each hold one side's. */
    records: { left: string[]; right?: string[]; leftPrefix?: string; rightPrefix?: string };
    pairs: PairFile[];
  };

/** Options of `importPairs`. */
export interface ImportPairsOptions {
  dataset: string;
  /** Data folder root (default `dataDir()`). */
  root?: string;
  source: PairSource;
  /**
   * The source's columns of each product field; absent: mapped by name (formats/field_names.ts: title or
   * name -> name, manufacturer or brand -> brand, ...). Unmapped attributes are kept as attributes, except
   * those that identify the entity (cluster or group ids), which are never kept.
   */
  fields?: FieldMapping;
  /** Skip malformed lines or rows (each reported as a "malformed-line" issue) instead of stopping (default false). */
  skipMalformed?: boolean;
  columns?: PairColumns;
  /** Strings read as missing (default pair_tables.ts' `DEFAULT_MISSING_MARKERS`). */
  missingMarkers?: string[];
  /** Leak-free split (used only when the source gives no split): ratios, default [0.6, 0.2, 0.2]. */
  ratios?: number[];
  /** Default train, val, test. */
  splitNames?: string[];
  /** Default 42. */
  seed?: number;
  /** "report" (default): keep the first record and list the conflict; "error": throw on the first one. */
  onConflict?: "report" | "error";
  /** Learn a WordPiece tokenizer from the training split's names and descriptions (default: no). */
  tokenizer?: { vocabSize?: number; lowercase?: boolean; trainSplit?: string } | false;
  /** Image download settings (concurrency, timeouts) for image URLs. */
  download?: { concurrency?: number; timeoutMs?: number; retries?: number };
}

/** One id whose records disagree. */
export interface RecordConflict {
  id: string;
  /** field -> each distinct value seen and the rows holding it, the kept value first. */
  values: Record<string, { value: string; rows: string[] }[]>;
  /** Where each record of the id came from (first = kept). */
  rows: string[];
}

/** What `importPairs` did. */
export interface ImportPairsResult {
  /** The shape read. */
  format: PairFormat;
  layout: ImportedLayout;
  manifest: ImportManifest;
  conflicts: RecordConflict[];
  issues: ImportIssue[];
  /** Every file written. */
  files: string[];
}

/** A record's values: the product fields, and its other attributes under `attribute:<name>` keys. */
type Fields = Record<string, string | null>;

const ATTRIBUTE = "attribute:";

interface ProductEntry {
  sku: string;
  fields: Fields;
  side: "left" | "right";
  source: string;
  /** Folder of the table the record came from (image paths are relative to it). */
  dir: string;
  rows: string[];
  /** Where each field's kept value came from. */
  fieldSources: Record<string, string>;
  /** field -> value -> the rows holding it, for fields whose records disagree. */
  conflict: Map<string, Map<string, string[]>> | null;
}

const SPLIT_ALIASES: Record<string, string> = { valid: "val", validation: "val", dev: "val" };

/** A split name as written in the layout ("valid"/"validation"/"dev" -> "val"); throws naming `where`. */
export function normalizeSplitName(name: string, where: string): string {
  const trimmed = name.trim();
  const normalized = SPLIT_ALIASES[trimmed.toLowerCase()] ?? trimmed;
  if (!/^[A-Za-z0-9_.-]+$/.test(normalized)) {
    throw new Error(`${where}: split ${JSON.stringify(name)} may only hold letters, digits, "_", "-" and "."`);
  }
  return normalized;
}

/** Parses a label cell: only 0 and 1 (also written 0.0 / 1.0) are allowed; throws naming file and row. */
export function parseLabel(value: string | null, where: string, column: string): 0 | 1 {
  const text = value?.trim();
  if (text === "1" || text === "1.0") return 1;
  if (text === "0" || text === "0.0") return 0;
  throw new Error(
    `${where}: label ${value === null ? "is missing" : JSON.stringify(value)} (column "${column}"); ` +
      "allowed: 1 (same product) or 0 (different products)",
  );
}

function truthy(value: string | null): boolean {
  return value !== null && ["1", "1.0", "true", "yes", "y", "t"].includes(value.trim().toLowerCase());
}

/**
 * A price text as a number, or null when unreadable. Currency signs and codes around the number and
 * spaces are dropped; with both "," and "." the later one is the decimal mark; a lone "," followed by one
 * or two digits is a decimal comma, otherwise "," groups thousands ("€ 198,00" -> 198, "5,200.00" -> 5200).
 */
export function parsePrice(text: string | null): number | null {
  if (text === null) return null;
  let t = text.replace(/[\s\u00a0\u202f]/g, "").replace(/^[^\d+\-.,]+|[^\d.,]+$/gu, "");
  const comma = t.lastIndexOf(","), dot = t.lastIndexOf(".");
  if (comma >= 0 && dot >= 0) t = comma > dot ? t.replace(/\./g, "").replace(",", ".") : t.replace(/,/g, "");
  else if (comma >= 0) t = /^[+-]?\d+,\d{1,2}$/.test(t) ? t.replace(",", ".") : t.replace(/,(?=\d{3}(\D|$))/g, "");
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return null;
  const value = Number(t);
  return Number.isFinite(value) ? value : null;
}

class Catalog {
  readonly entries = new Map<string, ProductEntry>();
  constructor(private readonly onConflict: "report" | "error") {}

  add(sku: string, fields: Fields, side: "left" | "right", source: string, dir: string): void {
    const entry = this.entries.get(sku);
    if (!entry) {
      const fieldSources = Object.fromEntries(
        Object.keys(fields).filter((f) => fields[f] !== null).map((f) => [f, source]),
      );
      this.entries.set(sku, {
        sku,
        fields: { ...fields },
        side,
        source,
        dir,
        rows: [source],
        fieldSources,
        conflict: null,
      });
      return;
    }
    entry.rows.push(source);
    for (const field of Object.keys(fields)) {
      const kept = entry.fields[field] ?? null, value = fields[field];
      if (value === null) continue;
      if (kept === null) {
        entry.fields[field] = value;
        entry.fieldSources[field] = source;
        continue;
      }
      const byValue = entry.conflict?.get(field);
      if (kept === value) {
        byValue?.get(value)?.push(source);
        continue;
      }
      if (this.onConflict === "error") {
        throw new Error(
          `product ${sku}: ${field} differs between ${entry.fieldSources[field]} (${
            JSON.stringify(kept)
          }) and ${source} ` +
            `(${JSON.stringify(value)}); fix the source or import with onConflict "report"`,
        );
      }
      entry.conflict ??= new Map();
      const values = byValue ?? new Map([[kept, [entry.fieldSources[field]!]]]);
      values.set(value, [...(values.get(value) ?? []), source]);
      entry.conflict.set(field, values);
    }
  }

  conflicts(): RecordConflict[] {
    return [...this.entries.values()].filter((e) => e.conflict).map((e) => ({
      id: e.sku,
      values: Object.fromEntries(
        [...e.conflict!].map(([field, byValue]) => [field, [...byValue].map(([value, rows]) => ({ value, rows }))]),
      ),
      rows: e.rows,
    }));
  }
}

/** How a source's columns become a record: the field mapping, the attributes kept, the entity columns dropped. */
interface RecordShape {
  fields: FieldMapping;
  attributes: string[];
  entityColumns: string[];
}

/** The record shape of `columns`: the given mapping (or one by name), every other column an attribute. */
function recordShape(columns: readonly string[], given: FieldMapping | undefined): RecordShape {
  const byName = mapFieldsByName(columns, given ?? {});
  const fields: FieldMapping = given ? { ...given } : { ...byName.fields, ...(byName.id ? { id: byName.id } : {}) };
  const mapped = new Set(Object.values(fields));
  const entityColumns = [...new Set([...byName.entityColumns, ...(fields.cluster ? [fields.cluster] : [])])];
  return { fields, attributes: columns.filter((c) => !mapped.has(c) && !entityColumns.includes(c)), entityColumns };
}

function fieldsFrom(row: Record<string, string | null>, shape: RecordShape, suffix: string): Fields {
  const fields: Fields = Object.fromEntries(
    PRODUCT_FIELDS.map((f) => [f, shape.fields[f] === undefined ? null : row[`${shape.fields[f]}${suffix}`] ?? null]),
  );
  for (const a of shape.attributes) fields[ATTRIBUTE + a] = row[`${a}${suffix}`] ?? null;
  return fields;
}

/** A record's values without its entity columns, from which an id is derived when the source has none. */
function identityValues(row: Record<string, string | null>, shape: RecordShape, suffix: string) {
  const columns = [...PRODUCT_FIELDS.flatMap((f) => f === "cluster" || !shape.fields[f] ? [] : [shape.fields[f]!])];
  return Object.fromEntries([...columns, ...shape.attributes].map((c) => [c, row[`${c}${suffix}`] ?? null]));
}

function mappedColumns(mapping: FieldMapping, suffix: string): string[] {
  return [
    ...(mapping.id ? [mapping.id] : []),
    ...PRODUCT_FIELDS.flatMap((f) => mapping[f] === undefined ? [] : [mapping[f]!]),
  ].map((c) => `${c}${suffix}`);
}

/** "file.csv:12": the file's name and the 1-based data row (the manifest lists the full paths). */
function rowWhere(table: PairTable, r: number): string {
  return `${basename(table.path)}:${r + 1}`;
}

/** "/full/path/file.csv row 12", for error messages. */
function rowError(table: PairTable, r: number): string {
  return `${table.path} row ${r + 1}`;
}

function requireId(value: string | null, where: string, column: string): string {
  if (value === null || value.trim() === "") {
    throw new Error(`${where}: the product id (column "${column}") is missing`);
  }
  return value.trim();
}

/** What reading a source gave: the pairs (records went into the catalog), and how the records were shaped. */
interface ReadSource {
  format: PairFormat;
  pairs: ImportedPair[];
  shape: RecordShape;
  derivedIds: boolean;
  skipped: SkippedLine[];
}

async function readPairsAndRecords(options: ImportPairsOptions, catalog: Catalog): Promise<ReadSource> {
  const source = options.source;
  if (source.kind === "magellan" || source.kind === "ditto") return await readShape(options, catalog);
  const c = options.columns ?? {};
  const label = c.label ?? "label";
  const pairIdColumn = c.pairId ?? "pair_id";
  const read = (path: string) => readPairTable(path, { missingMarkers: options.missingMarkers });
  const pairs: ImportedPair[] = [];
  const pairFields = (table: PairTable, row: Record<string, string | null>, r: number, file: PairFile) => {
    const where = rowError(table, r);
    const given = file.split ?? (c.split ? row[c.split] : null);
    const fields = {
      label: parseLabel(row[label], where, label),
      hard: c.hardNegative ? truthy(row[c.hardNegative]) : false,
      split: given === null || given === undefined ? null : normalizeSplitName(given, where),
      source: rowWhere(table, r),
      file: table.path,
    };
    const pair = (left: string, right: string): ImportedPair => ({
      ...fields,
      left,
      right,
      pairId: row[pairIdColumn] ?? `${left}#${right}`,
    });
    return { ...fields, where, pair };
  };
  const extra = [label, ...(c.split ? [c.split] : []), ...(c.hardNegative ? [c.hardNegative] : [])];
  const pairColumns = new Set([...extra, pairIdColumn]);
  if (source.kind === "wide") {
    const left = c.leftSuffix ?? "_left", right = c.rightSuffix ?? "_right";
    let shape: RecordShape | null = null;
    for (const file of source.files) {
      const table = await read(file.path);
      const base = table.columns.filter((col) =>
        col.endsWith(left) && table.columns.includes(
          col.slice(0, -left.length) + right,
        )
      ).map((col) => col.slice(0, -left.length)).filter((col) => !pairColumns.has(col));
      shape ??= recordShape(base, options.fields);
      requireColumns(
        table,
        [...mappedColumns(shape.fields, left), ...mappedColumns(shape.fields, right)],
        "the pairs",
      );
      requireColumns(table, extra, "the pair labels");
      const dir = dirname(resolve(table.path));
      const fileShape: RecordShape = { ...shape, attributes: shape.attributes.filter((a) => base.includes(a)) };
      table.rows.forEach((row, r) => {
        const p = pairFields(table, row, r, file);
        const ids = ([[left, "left"], [right, "right"]] as const).map(([suffix, side]) =>
          fileShape.fields.id
            ? requireId(row[`${fileShape.fields.id}${suffix}`], p.where, `${fileShape.fields.id}${suffix}`)
            : recordIdFromValues(side, identityValues(row, fileShape, suffix))
        );
        catalog.add(ids[0], fieldsFrom(row, fileShape, left), "left", `${p.source}:left`, dir);
        catalog.add(ids[1], fieldsFrom(row, fileShape, right), "right", `${p.source}:right`, dir);
        pairs.push(p.pair(ids[0], ids[1]));
      });
    }
    return { format: "pairs", pairs, shape: shape!, derivedIds: !shape!.fields.id, skipped: [] };
  }
  const { records } = source;
  const known: Record<"left" | "right", Set<string>> = { left: new Set(), right: new Set() };
  const sides: ["left" | "right", string[], string][] = [["left", records.left, records.leftPrefix ?? ""]];
  if (records.right) sides.push(["right", records.right, records.rightPrefix ?? ""]);
  let shape: RecordShape | null = null;
  for (const [side, paths, prefix] of sides) {
    for (const path of paths) {
      const table = await read(path);
      shape ??= recordShape(table.columns, options.fields);
      const idColumn = shape.fields.id;
      if (!idColumn) {
        throw new Error(
          `${table.path}: record tables need an id column to join the pair list on; none is mapped (FIELDS id=...)` +
            ` or named like one among ${table.columns.map((col) => JSON.stringify(col)).join(", ")}`,
        );
      }
      requireColumns(table, mappedColumns(shape.fields, ""), "the product records");
      const dir = dirname(resolve(table.path));
      const tableShape: RecordShape = {
        ...shape,
        attributes: shape.attributes.filter((a) => table.columns.includes(a)),
      };
      table.rows.forEach((row, r) => {
        const id = prefix + requireId(row[idColumn], rowError(table, r), idColumn);
        catalog.add(id, fieldsFrom(row, tableShape, ""), side, rowWhere(table, r), dir);
        known[side].add(id);
      });
    }
  }
  const idLeft = c.idLeft ?? "id_left", idRight = c.idRight ?? "id_right";
  const recordFiles = [...records.left, ...(records.right ?? [])].join(", ");
  for (const file of source.pairs) {
    const table = await read(file.path);
    requireColumns(table, [idLeft, idRight, ...extra], "the pair list");
    table.rows.forEach((row, r) => {
      const p = pairFields(table, row, r, file);
      const ids = ([[idLeft, "left", records.leftPrefix], [idRight, "right", records.rightPrefix]] as const).map(
        ([column, side, prefix]) => {
          const id = (records.right ? prefix ?? "" : records.leftPrefix ?? "") +
            requireId(row[column], p.where, column);
          const pool = records.right ? known[side] : known.left;
          if (!pool.has(id)) {
            throw new Error(
              `${p.where}: ${side} product ${JSON.stringify(id)} (column "${column}") is not in ${recordFiles}`,
            );
          }
          return id;
        },
      );
      pairs.push(p.pair(ids[0], ids[1]));
    });
  }
  return { format: "records", pairs, shape: shape!, derivedIds: false, skipped: [] };
}

/** A published shape (Magellan folder, Ditto lines) read by its reader in formats/, into the catalog. */
async function readShape(options: ImportPairsOptions, catalog: Catalog): Promise<ReadSource> {
  const source = options.source;
  const content = source.kind === "magellan"
    ? await readMagellan(source.dir, {
      skipMalformed: options.skipMalformed,
      missingMarkers: options.missingMarkers,
      idColumn: options.fields?.id,
    })
    : source.kind === "ditto"
    ? await readDitto(source.files, { skipMalformed: options.skipMalformed })
    : null;
  if (!content) throw new Error(`readShape: ${source.kind} is not a published shape`);
  const { id: _id, ...given } = options.fields ?? {};
  const shape = recordShape(content.attributes, options.fields ? given : undefined);
  const markers = new Set(options.missingMarkers ?? DEFAULT_MISSING_MARKERS);
  for (const record of content.records) {
    const row = Object.fromEntries(Object.entries(record.values).map(([k, v]) => [k, cleanCell(v, markers)]));
    catalog.add(record.id, fieldsFrom(row, shape, ""), record.side, record.source, record.dir);
  }
  const pairs = content.pairs.map((p): ImportedPair => ({
    left: p.left,
    right: p.right,
    label: p.label,
    hard: false,
    split: normalizeSplitName(p.split, `${p.file} (${p.source})`),
    source: p.source,
    file: p.file,
    pairId: `${p.left}#${p.right}`,
  }));
  return { format: content.format, pairs, shape, derivedIds: content.derivedIds, skipped: content.skipped };
}

function extensionOf(reference: string): string {
  let path = reference;
  try {
    path = new URL(reference).pathname;
  } catch { /* a plain path */ }
  const ext = extname(path).toLowerCase();
  return [".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".avif"].includes(ext) ? ext : ".jpg";
}

function imageUrl(reference: string, dir: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(reference.trim())) return reference.trim();
  const path = isAbsolute(reference) ? reference : resolve(dir, reference);
  return pathToFileURL(path).href;
}

/** Writes the placeholder image (ImageNet mean colour) once; returns its path. */
async function writePlaceholder(path: string): Promise<void> {
  const png = await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: 124, g: 116, b: 104 } } })
    .png().toBuffer();
  await writeFileAtomic(path, new Uint8Array(png));
}

async function fetchImages(
  products: ProductEntry[],
  layout: ImportedLayout,
  options: ImportPairsOptions,
  issues: ImportIssue[],
): Promise<Map<string, string>> {
  const jobs: ImageJob[] = [];
  for (const p of products) {
    const ref = p.fields.image;
    if (ref === null) continue;
    const safe = p.sku.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 80);
    const hash = await sha256Hex([new TextEncoder().encode(p.sku)], 8);
    jobs.push({ sku: p.sku, url: imageUrl(ref, p.dir), imageName: `${safe}-${hash}${extensionOf(ref)}` });
  }
  const names = new Map<string, string>();
  if (jobs.length === 0) return names;
  const results = await downloadImages(jobs, {
    imagesDir: layout.imagesDir,
    dataRoot: layout.root,
    ...options.download,
  });
  for (const r of results) {
    if (r.status !== "failed") names.set(r.sku, r.image_name);
    else {
      issues.push({
        kind: "image-failed",
        id: r.sku,
        fields: "image",
        rows: [],
        values: [r.url],
        message: `${r.error}; the placeholder image is used`,
      });
    }
  }
  return names;
}

/** The products table's columns, in order. */
export const IMPORTED_PRODUCT_COLUMNS = [
  "sku",
  "name",
  "description",
  "brand",
  "category",
  "cluster_id",
  "price",
  "price_currency",
  "final_price",
  "image_url",
  "image_name",
  "has_image",
  "seller",
  "sales",
  "balance",
  "rating",
  "attributes",
  "source",
] as const;

/** The record's other attributes as a JSON object (their own names, non-missing values), or null when none. */
function attributesJson(fields: Fields): string | null {
  const entries = Object.entries(fields).filter(([k, v]) => k.startsWith(ATTRIBUTE) && v !== null)
    .map(([k, v]) => [k.slice(ATTRIBUTE.length), v]);
  return entries.length === 0 ? null : JSON.stringify(Object.fromEntries(entries));
}

function productRows(products: ProductEntry[], images: Map<string, string>): Record<string, unknown>[] {
  return products.map((p) => ({
    sku: p.sku,
    name: p.fields.name,
    description: p.fields.description,
    brand: p.fields.brand,
    category: p.fields.category,
    cluster_id: p.fields.cluster,
    price: p.fields.price,
    price_currency: p.fields.currency,
    final_price: parsePrice(p.fields.price),
    image_url: p.fields.image,
    image_name: images.get(p.sku) ?? PLACEHOLDER_IMAGE,
    has_image: images.has(p.sku),
    seller: p.side,
    sales: null,
    balance: null,
    rating: null,
    attributes: attributesJson(p.fields),
    source: p.source,
  }));
}

function productsFrame(rows: Record<string, unknown>[]): pl.DataFrame {
  return pl.DataFrame(IMPORTED_PRODUCT_COLUMNS.map((column) => {
    const values = rows.map((r) => r[column]);
    if (column === "has_image") return pl.Series(column, values as boolean[], pl.Bool);
    if (["final_price", "sales", "balance", "rating"].includes(column)) {
      return pl.Series(column, values as (number | null)[], pl.Float64);
    }
    return pl.Series(column, values as (string | null)[], pl.Utf8);
  }));
}

function pairsFrame(pairs: ImportedPair[]): pl.DataFrame {
  const kind = (p: ImportedPair) => p.label === 1 ? "query-positive" : p.hard ? "hard" : "soft";
  return pl.DataFrame([
    pl.Series("sku_left", pairs.map((p) => p.left), pl.Utf8),
    pl.Series("sku_right", pairs.map((p) => p.right), pl.Utf8),
    pl.Series("label", pairs.map((p) => p.label), pl.Int32),
    pl.Series("kind", pairs.map(kind), pl.Utf8),
    pl.Series("query_sku", pairs.map((p) => p.left), pl.Utf8),
    pl.Series("pair_id", pairs.map((p) => p.pairId), pl.Utf8),
    pl.Series("source", pairs.map((p) => p.source), pl.Utf8),
  ]);
}

function queryCandidatesFrame(pairs: ImportedPair[]): pl.DataFrame {
  const seen = new Set<string>();
  const rows = pairs.filter((p) => {
    const key = `${p.left}\u0000${p.right}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return pl.DataFrame([
    pl.Series("query_sku", rows.map((p) => p.left), pl.Utf8),
    pl.Series("candidate_sku", rows.map((p) => p.right), pl.Utf8),
    pl.Series("class", rows.map((p) => p.label === 1 ? "positive" : p.hard ? "hard" : "soft"), pl.Utf8),
    pl.Series("label", rows.map((p) => p.label), pl.Int32),
  ]);
}

function issuesFrame(issues: ImportIssue[]): pl.DataFrame {
  return pl.DataFrame([
    pl.Series("kind", issues.map((i) => i.kind), pl.Utf8),
    pl.Series("id", issues.map((i) => i.id), pl.Utf8),
    pl.Series("fields", issues.map((i) => i.fields), pl.Utf8),
    pl.Series("rows", issues.map((i) => i.rows.join("; ")), pl.Utf8),
    pl.Series("values", issues.map((i) => i.values.join("; ")), pl.Utf8),
    pl.Series("message", issues.map((i) => i.message), pl.Utf8),
  ]);
}

function overlapsOf(splitNames: string[], bySplit: Map<string, ImportedPair[]>) {
  const used = splitNames.map((s) => new Set(bySplit.get(s)!.flatMap((p) => [p.left, p.right])));
  const out: { a: string; b: string; shared_skus: number }[] = [];
  for (let i = 0; i < splitNames.length; i++) {
    for (let j = i + 1; j < splitNames.length; j++) {
      let shared = 0;
      for (const sku of used[i]) if (used[j].has(sku)) shared++;
      out.push({ a: splitNames[i], b: splitNames[j], shared_skus: shared });
    }
  }
  return out;
}

/** Imports a labelled pair dataset into `data/tables_<dataset>/` (see the module comment). */
export async function importPairs(options: ImportPairsOptions): Promise<ImportPairsResult> {
  const layout = importedLayout(options.dataset, options.root ?? dataDir());
  const unknown = Object.keys(options.fields ?? {}).filter((k) =>
    k !== "id" && !(PRODUCT_FIELDS as readonly string[]).includes(k)
  );
  if (unknown.length > 0) {
    throw new Error(`field mapping: unknown field(s) ${unknown.join(", ")}; allowed: id, ${PRODUCT_FIELDS.join(", ")}`);
  }
  const catalog = new Catalog(options.onConflict ?? "report");
  const issues: ImportIssue[] = [];
  const read = await readPairsAndRecords(options, catalog);
  const raw = read.pairs;
  for (const skipped of read.skipped) {
    issues.push({
      kind: "malformed-line",
      id: "",
      fields: "",
      rows: [`${shownPath(skipped.file)}:${skipped.line}`],
      values: [],
      message: `${skipped.message}; skipped`,
    });
  }
  if (raw.length === 0) throw new Error(`importPairs(${options.dataset}): the source files hold no pair`);
  const withSplit = raw.filter((p) => p.split !== null);
  let splitMode: "given" | "leak-free";
  let pairs: ImportedPair[];
  if (withSplit.length === raw.length) {
    splitMode = "given";
    pairs = dedupePairs(raw, issues);
  } else if (withSplit.length === 0) {
    splitMode = "leak-free";
    const splitNames = options.splitNames ?? [...SPLIT_NAMES];
    const ratios = options.ratios ?? [0.6, 0.2, 0.2];
    pairs = leakFreePairSplit(dedupePairs(raw, issues), (sku) => catalog.entries.get(sku)?.fields.cluster ?? null, {
      ratios,
      splitNames,
      seed: options.seed ?? 42,
    }, issues);
  } else {
    const files = (split: boolean) => [...new Set(raw.filter((p) => (p.split !== null) === split).map((p) => p.file))];
    throw new Error(
      `some pairs have a split and some do not: give every file a split (or a split column) or none; ` +
        `with a split: ${files(true).join(", ")}; without: ${files(false).join(", ")}`,
    );
  }
  const splitNames = splitMode === "given"
    ? [...new Set(pairs.map((p) => p.split!))]
    : (options.splitNames ?? [...SPLIT_NAMES]);
  const bySplit = new Map<string, ImportedPair[]>(splitNames.map((s) => [s, []]));
  for (const p of pairs) bySplit.get(p.split!)!.push(p);

  for (const c of catalog.conflicts()) {
    issues.push({
      kind: "record-conflict",
      id: c.id,
      fields: Object.keys(c.values).join(", "),
      rows: c.rows,
      values: Object.entries(c.values).flatMap(([f, vs]) =>
        vs.map((v) => `${f}=${JSON.stringify(v.value)} (${v.rows.join(", ")})`)
      ),
      message: `records of id ${c.id} differ in ${Object.keys(c.values).join(", ")}; the first (${c.rows[0]}) is kept`,
    });
  }
  const usedSkus = new Set(pairs.flatMap((p) => [p.left, p.right]));
  const products = [...catalog.entries.values()].filter((e) => usedSkus.has(e.sku)).sort((a, b) =>
    a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0
  );
  for (const p of products) {
    if (p.fields.price !== null && parsePrice(p.fields.price) === null) {
      issues.push({
        kind: "bad-price",
        id: p.sku,
        fields: "price",
        rows: [p.source],
        values: [p.fields.price],
        message: "not a number; final_price left empty",
      });
    }
  }

  const files: string[] = [];
  const save = async (path: string, frame: pl.DataFrame) => {
    await writeFileAtomic(path, new Uint8Array(frame.writeParquet()));
    files.push(path);
  };
  const images = await fetchImages(products, layout, options, issues);
  await writePlaceholder(layout.placeholderImage);
  files.push(layout.placeholderImage);
  const rows = productRows(products, images);
  await save(layout.processedParquet, productsFrame(rows));
  await writeCsv(layout.processedCsv, IMPORTED_PRODUCT_COLUMNS, rows);
  files.push(layout.processedCsv);
  const memberships = splitNames.flatMap((s) =>
    [...new Set(bySplit.get(s)!.flatMap((p) => [p.left, p.right]))].sort().map((sku) => [sku, s])
  );
  await save(
    `${layout.splitsDir}/assignment.parquet`,
    pl.DataFrame([
      pl.Series("sku", memberships.map(([sku]) => sku), pl.Utf8),
      pl.Series("split", memberships.map(([, s]) => s), pl.Utf8),
    ]),
  );
  const splitInfo: ImportedSplitInfo[] = [];
  for (const split of splitNames) {
    const list = bySplit.get(split)!;
    const paths = splitFiles(layout.splitsDir, split);
    await save(paths.pairs, pairsFrame(list));
    await save(paths.queryCandidates, queryCandidatesFrame(list));
    const positives = list.filter((p) => p.label === 1).length;
    splitInfo.push({
      split,
      pairs: list.length,
      positives,
      negatives: list.length - positives,
      products: new Set(list.flatMap((p) => [p.left, p.right])).size,
      files: [...new Set(list.map((p) => shownPath(p.file)))],
    });
  }
  await save(layout.importIssues, issuesFrame(issues));

  let tokenizer: string | null = null;
  if (options.tokenizer) {
    const trainSplit = options.tokenizer.trainSplit ?? "train";
    const trainPairs = bySplit.get(trainSplit);
    if (!trainPairs) {
      throw new Error(`tokenizer: no split "${trainSplit}" to learn it from (splits: ${splitNames.join(", ")})`);
    }
    const texts = productTexts(products, new Set(trainPairs.flatMap((p) => [p.left, p.right])));
    const vocabulary = await trainWordPiece(texts, options.tokenizer);
    tokenizer = await saveWordPieceTokenizer(layout.tokenizerDir, vocabulary);
    files.push(tokenizer);
  }

  const counts: Record<string, number> = {};
  for (const issue of issues) counts[issue.kind] = (counts[issue.kind] ?? 0) + 1;
  const manifest: ImportManifest = {
    kind: "imported-pairs",
    dataset: options.dataset,
    splitMode,
    splits: splitInfo,
    products: products.length,
    productsWithImage: images.size,
    overlaps: overlapsOf(splitNames, bySplit),
    issues: counts,
    fields: Object.fromEntries(["id", ...PRODUCT_FIELDS].map((f) => [f, read.shape.fields[f as "id"] ?? null])),
    format: read.format,
    attributes: read.shape.attributes,
    entityColumns: read.shape.entityColumns,
    derivedIds: read.derivedIds,
    recordsPerSide: {
      left: products.filter((p) => p.side === "left").length,
      right: products.filter((p) => p.side === "right").length,
    },
    skippedLines: read.skipped.length,
    sources: [...new Set(raw.map((p) => shownPath(p.file)))],
    tokenizer: tokenizer,
    recommendedMode: images.size === 0 ? "text" : "full",
    importedAt: new Date().toISOString(),
  };
  await writeJsonAtomic(layout.manifest, manifest);
  files.push(layout.manifest);
  return { format: read.format, layout, manifest, conflicts: catalog.conflicts(), issues, files };
}

/** The texts a tokenizer learns from: each selected product's name and description (non-empty ones). */
function productTexts(products: ProductEntry[], skus: ReadonlySet<string>): string[] {
  return products.filter((p) => skus.has(p.sku)).flatMap((p) =>
    [p.fields.name, p.fields.description].filter((t): t is string => t !== null && t.trim() !== "")
  );
}
