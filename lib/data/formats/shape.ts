/**
 * What every reader of a published dataset shape returns (lib/data/formats/*.ts): the records with their
 * own attribute names, the labelled pairs with their given splits, and the lines skipped as malformed.
 * lib/data/import_pairs.ts maps the attributes to product fields, checks and writes the layout, once.
 *
 * @module
 */
import { createHash } from "node:crypto";

/** The published shapes `importPairs` reads. */
export const PAIR_FORMATS = ["pairs", "records", "magellan", "ditto"] as const;
export type PairFormat = typeof PAIR_FORMATS[number];

/** One record as the shape gives it. */
export interface ShapeRecord {
  /** The source's id (side-prefixed), or one derived from the values (`recordIdFromValues`). */
  id: string;
  side: "left" | "right";
  /** Every attribute by its own name; null when missing. */
  values: Record<string, string | null>;
  /** file:line (or file:row) and side, for reports. */
  source: string;
  /** Folder of the file it came from (relative image paths resolve from it). */
  dir: string;
}

/** One labelled pair of records, in the split the shape gives it. */
export interface ShapePair {
  left: string;
  right: string;
  label: 0 | 1;
  split: string;
  /** file:line or file:row. */
  source: string;
  file: string;
}

/** A line or row left out because it was malformed (only when the user allows skipping). */
export interface SkippedLine {
  file: string;
  /** 1-based line (Ditto) or data row (CSV). */
  line: number;
  message: string;
}

/** A shape's content. */
export interface ShapeContent {
  format: PairFormat;
  records: ShapeRecord[];
  pairs: ShapePair[];
  /** Every attribute name, in first-seen order. */
  attributes: string[];
  skipped: SkippedLine[];
  /** True when the shape has no record ids and they were derived from the values. */
  derivedIds: boolean;
}

/** How the readers treat a malformed line: throw (default) or skip it and report it. */
export interface ShapeReadOptions {
  skipMalformed?: boolean;
}

/** Whitespace collapsed, trimmed, lower-cased, NFKC: the form two spellings of one value share. */
export function normaliseValue(value: string): string {
  return value.normalize("NFKC").replace(/\s+/gu, " ").trim().toLowerCase();
}

/**
 * A stable record id from its values: the side's prefix ("a" left, "b" right) and 16 hex digits of the
 * SHA-256 of the normalised non-missing values by attribute name, so the same record recurring in many
 * pairs (or splits) gets the same id, whatever the order or spacing of its attributes.
 */
export function recordIdFromValues(side: "left" | "right", values: Record<string, string | null>): string {
  const key = Object.keys(values).sort()
    .flatMap((name) => {
      const v = values[name];
      return v === null || normaliseValue(v) === "" ? [] : [`${name}\u0001${normaliseValue(v)}`];
    })
    .join("\u0002");
  return `${side === "left" ? "a" : "b"}-${createHash("sha256").update(key).digest("hex").slice(0, 16)}`;
}

/** Collects malformed lines: throws the first unless skipping is allowed. */
export class MalformedLines {
  readonly skipped: SkippedLine[] = [];
  constructor(private readonly options: ShapeReadOptions) {}

  /** Reports `message` about `file` line `line`: throws, or records it for skipping. */
  report(file: string, line: number, message: string, unit = "line"): void {
    if (!this.options.skipMalformed) {
      throw new Error(`${file} ${unit} ${line}: ${message} (allow skipping malformed lines to import the rest)`);
    }
    this.skipped.push({ file, line, message });
  }
}

/** The split a file's name gives ("train.txt" -> train, "valid.csv" -> valid), before normalisation. */
export function splitFromFileName(path: string): string {
  const base = path.split(/[\\/]/).pop()!;
  return base.replace(/(\.[A-Za-z0-9]+)+$/, "");
}
