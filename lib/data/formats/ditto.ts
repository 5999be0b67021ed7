/**
 * Ditto's line format (the shape Ditto's benchmark copies ship in: `train.txt`, `valid.txt`, `test.txt`):
 * one pair per line, `<left entity> \t <right entity> \t <label>`, each entity written
 * `COL <attribute> VAL <value> COL <attribute> VAL <value> ...`. Records have no ids: each side's record
 * gets a stable id from its values (shape.ts' `recordIdFromValues`), so a record recurring across pairs
 * and splits is one record. The split of a file is its name (`valid` becomes `val` at import) unless given.
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { existsSync, statSync } from "node:fs";
import {
  MalformedLines,
  recordIdFromValues,
  type ShapeContent,
  type ShapePair,
  type ShapeReadOptions,
  type ShapeRecord,
  splitFromFileName,
} from "./shape.ts";

/** A Ditto file and, when not its name, its split. */
export interface DittoFile {
  path: string;
  split?: string;
}

/** The split files looked for in a Ditto folder, in order. */
export const DITTO_SPLIT_FILES = ["train.txt", "valid.txt", "test.txt"] as const;

const TAG = /(?:^|\s)COL\s+(\S+)\s+VAL(?=\s|$)/g;

/**
 * One entity's attributes (`COL title VAL sony bravia COL price VAL 499.0` -> {title: "sony bravia",
 * price: "499.0"}; an empty value is null; an attribute written twice has its values joined). Returns a
 * string saying what is wrong when the text is not an entity.
 */
export function parseDittoEntity(text: string): Record<string, string | null> | string {
  const trimmed = text.trim();
  if (!trimmed.startsWith("COL ")) {
    return `expected an entity starting "COL <attribute> VAL", got ${JSON.stringify(trimmed.slice(0, 40))}`;
  }
  const tags = [...trimmed.matchAll(TAG)];
  if (tags.length === 0 || tags[0].index !== 0) {
    return `expected "COL <attribute> VAL <value> ...", got ${JSON.stringify(trimmed.slice(0, 40))}`;
  }
  const values: Record<string, string | null> = {};
  tags.forEach((tag, i) => {
    const end = i + 1 < tags.length ? tags[i + 1].index! : trimmed.length;
    const value = trimmed.slice(tag.index! + tag[0].length, end).trim();
    const name = tag[1];
    const previous = values[name];
    values[name] = value === "" ? previous ?? null : previous ? `${previous} ${value}` : value;
  });
  return values;
}

/** A Ditto folder as its split files; a file as itself. Throws naming the path when neither is usable. */
export function dittoFiles(paths: readonly DittoFile[]): DittoFile[] {
  return paths.flatMap((file) => {
    const path = resolve(file.path);
    if (!existsSync(path)) throw new Error(`${path}: no such Ditto file or folder`);
    if (!statSync(path).isDirectory()) return [{ ...file, path }];
    const found = DITTO_SPLIT_FILES.map((name) => join(path, name)).filter((p) => existsSync(p));
    if (found.length === 0) {
      throw new Error(`${path}: a Ditto folder holds ${DITTO_SPLIT_FILES.join(", ")}; none is there`);
    }
    return found.map((p) => ({ path: p }));
  });
}

/** Reads Ditto files (or folders) into records and pairs; a malformed line throws unless skipping is allowed. */
export async function readDitto(paths: readonly DittoFile[], options: ShapeReadOptions = {}): Promise<ShapeContent> {
  const malformed = new MalformedLines(options);
  const records: ShapeRecord[] = [];
  const pairs: ShapePair[] = [];
  const attributes: string[] = [];
  const seen = new Set<string>();
  for (const file of dittoFiles(paths)) {
    const text = await Deno.readTextFile(file.path);
    const split = file.split ?? splitFromFileName(file.path);
    const name = file.path.split(/[\\/]/).pop()!;
    text.split("\n").forEach((raw, i) => {
      const line = raw.replace(/\r$/, "");
      if (line.trim() === "") return;
      const lineNo = i + 1;
      const parts = line.split("\t");
      if (parts.length !== 3) {
        malformed.report(
          file.path,
          lineNo,
          `expected 3 tab-separated fields (left entity, right entity, label), got ${parts.length}: ${
            JSON.stringify(line.slice(0, 60))
          }`,
        );
        return;
      }
      const label = parts[2].trim();
      if (label !== "0" && label !== "1") {
        malformed.report(file.path, lineNo, `label ${JSON.stringify(label)}; allowed: 1 (same) or 0 (different)`);
        return;
      }
      const sides = (["left", "right"] as const).map((side, s) => ({ side, values: parseDittoEntity(parts[s]) }));
      const bad = sides.find((s) => typeof s.values === "string");
      if (bad) {
        malformed.report(file.path, lineNo, `${bad.side} entity: ${bad.values}`);
        return;
      }
      const ids = sides.map(({ side, values }) => {
        const v = values as Record<string, string | null>;
        for (const a of Object.keys(v)) if (!seen.has(a)) seen.add(a), attributes.push(a);
        const id = recordIdFromValues(side, v);
        records.push({ id, side, values: v, source: `${name}:${lineNo}:${side}`, dir: dirname(file.path) });
        return id;
      });
      pairs.push({
        left: ids[0],
        right: ids[1],
        label: label === "1" ? 1 : 0,
        split,
        source: `${name}:${lineNo}`,
        file: file.path,
      });
    });
  }
  return { format: "ditto", records, pairs, attributes, skipped: malformed.skipped, derivedIds: true };
}
