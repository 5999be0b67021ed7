/**
 * The Magellan / DeepMatcher folder shape: two record tables `tableA.csv` (left) and `tableB.csv`
 * (right), each with an `id` column and the attributes under their own names, and pair lists
 * `train.csv`, `valid.csv`, `test.csv` with `ltable_id, rtable_id, label`, one list per given split.
 * Ids become `a:<id>` and `b:<id>` (the two tables number their records independently).
 *
 * @module
 */
import { basename, join, resolve } from "node:path";
import { existsSync, statSync } from "node:fs";
import { readPairTable, requireColumns } from "../pair_tables.ts";
import { ID_SYNONYMS } from "./field_names.ts";
import {
  MalformedLines,
  type ShapeContent,
  type ShapePair,
  type ShapeReadOptions,
  type ShapeRecord,
  splitFromFileName,
} from "./shape.ts";

/** The record tables of a Magellan folder. */
export const MAGELLAN_TABLES = { left: "tableA.csv", right: "tableB.csv" } as const;
/** The pair lists looked for, in order (each one a given split). */
export const MAGELLAN_SPLIT_FILES = ["train.csv", "valid.csv", "test.csv"] as const;
/** The pair lists' columns. */
export const MAGELLAN_PAIR_COLUMNS = { left: "ltable_id", right: "rtable_id", label: "label" } as const;

/** True when `dir` is a folder holding both record tables. */
export function isMagellanFolder(dir: string): boolean {
  try {
    return statSync(dir).isDirectory() &&
      existsSync(join(dir, MAGELLAN_TABLES.left)) && existsSync(join(dir, MAGELLAN_TABLES.right));
  } catch {
    return false;
  }
}

/** Options of `readMagellan`. */
export interface MagellanOptions extends ShapeReadOptions {
  /** Strings read as missing (default pair_tables.ts' markers). */
  missingMarkers?: string[];
  /** The id column of the record tables (default: the column named like an id, usually `id`). */
  idColumn?: string;
}

const PREFIX = { left: "a:", right: "b:" } as const;

/** Reads a Magellan/DeepMatcher folder into records and pairs; malformed rows throw unless skipping is allowed. */
export async function readMagellan(folder: string, options: MagellanOptions = {}): Promise<ShapeContent> {
  const dir = resolve(folder);
  if (!isMagellanFolder(dir)) {
    throw new Error(
      `${dir}: a Magellan/DeepMatcher folder holds ${MAGELLAN_TABLES.left} and ${MAGELLAN_TABLES.right} ` +
        `(and ${MAGELLAN_SPLIT_FILES.join(", ")}); ${existsSync(dir) ? "they are not both there" : "no such folder"}`,
    );
  }
  const malformed = new MalformedLines(options);
  const read = (path: string) => readPairTable(path, { missingMarkers: options.missingMarkers });
  const records: ShapeRecord[] = [];
  const attributes: string[] = [];
  const known = { left: new Set<string>(), right: new Set<string>() };
  for (const side of ["left", "right"] as const) {
    const table = await read(join(dir, MAGELLAN_TABLES[side]));
    const idColumn = options.idColumn ?? table.columns.find((c) => ID_SYNONYMS.includes(c.toLowerCase()));
    if (idColumn === undefined || !table.columns.includes(idColumn)) {
      throw new Error(
        `${table.path}: no id column (${options.idColumn ?? "id"}) among ${
          table.columns.map((c) => JSON.stringify(c)).join(", ")
        }`,
      );
    }
    for (const c of table.columns) if (c !== idColumn && !attributes.includes(c)) attributes.push(c);
    table.rows.forEach((row, r) => {
      const raw = row[idColumn]?.trim();
      if (!raw) {
        malformed.report(table.path, r + 1, `the record id (column "${idColumn}") is missing`, "row");
        return;
      }
      const id = PREFIX[side] + raw;
      if (known[side].has(id)) {
        malformed.report(table.path, r + 1, `record id ${JSON.stringify(raw)} appears twice`, "row");
        return;
      }
      known[side].add(id);
      const { [idColumn]: _id, ...values } = row;
      records.push({ id, side, values, source: `${basename(table.path)}:${r + 1}`, dir });
    });
  }
  const pairFiles = MAGELLAN_SPLIT_FILES.map((f) => join(dir, f)).filter((p) => existsSync(p));
  if (pairFiles.length === 0) {
    throw new Error(`${dir}: no pair list (${MAGELLAN_SPLIT_FILES.join(", ")}) beside the record tables`);
  }
  const pairs: ShapePair[] = [];
  const { left, right, label } = MAGELLAN_PAIR_COLUMNS;
  for (const path of pairFiles) {
    const table = await read(path);
    requireColumns(table, [left, right, label], "the pair list");
    const split = splitFromFileName(path);
    table.rows.forEach((row, r) => {
      const value = row[label]?.trim();
      const labelValue = value === "1" || value === "1.0" ? 1 : value === "0" || value === "0.0" ? 0 : null;
      if (labelValue === null) {
        malformed.report(
          path,
          r + 1,
          `label ${value === undefined ? "is missing" : JSON.stringify(value)}; allowed: 1 (same) or 0 (different)`,
          "row",
        );
        return;
      }
      const ids: string[] = [];
      for (const [side, column] of [["left", left], ["right", right]] as const) {
        const id = PREFIX[side] + (row[column]?.trim() ?? "");
        if (!known[side].has(id)) {
          malformed.report(
            path,
            r + 1,
            `${column} ${JSON.stringify(row[column])} is not an id of ${MAGELLAN_TABLES[side]}`,
            "row",
          );
          return;
        }
        ids.push(id);
      }
      pairs.push({
        left: ids[0],
        right: ids[1],
        label: labelValue,
        split,
        source: `${basename(path)}:${r + 1}`,
        file: path,
      });
    });
  }
  return { format: "magellan", records, pairs, attributes, skipped: malformed.skipped, derivedIds: false };
}
