/**
 * Which published shape a set of paths is in, when the user leaves `FORMAT=auto`: a Magellan/DeepMatcher
 * folder (tableA.csv + tableB.csv), Ditto lines (`COL <attribute> VAL ...`, files or folders of
 * train/valid/test.txt), a record table with a pair list (`RECORDS` given), or pair tables. Ambiguous or
 * unreadable input is an error that names each path and what was seen, and asks for FORMAT.
 *
 * @module
 */
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { DITTO_SPLIT_FILES } from "./ditto.ts";
import { isMagellanFolder, MAGELLAN_TABLES } from "./magellan.ts";
import type { PairFormat } from "./shape.ts";

/** The detected format and why. */
export interface DetectedFormat {
  format: PairFormat;
  reason: string;
}

/** The first non-empty line of a file (at most 64 KiB read; gzip and parquet give binary, which is fine). */
function firstLine(path: string): string {
  const fd = openSync(path, "r");
  try {
    const buffer = new Uint8Array(65536);
    const n = readSync(fd, buffer, 0, buffer.length, 0);
    const text = new TextDecoder("utf-8", { fatal: false }).decode(buffer.subarray(0, n));
    return text.split("\n").find((l) => l.trim() !== "") ?? "";
  } finally {
    closeSync(fd);
  }
}

const isDittoLine = (line: string) => /^\s*COL\s+\S+\s+VAL(\s|$)/.test(line) && line.includes("\t");

/** What one path looks like. */
function kindOf(path: string): { kind: PairFormat | "unknown"; seen: string } {
  if (!existsSync(path)) return { kind: "unknown", seen: "does not exist" };
  if (statSync(path).isDirectory()) {
    if (isMagellanFolder(path)) {
      return { kind: "magellan", seen: `a folder with ${Object.values(MAGELLAN_TABLES).join(" and ")}` };
    }
    const ditto = DITTO_SPLIT_FILES.map((f) => join(path, f)).filter((p) => existsSync(p));
    if (ditto.length > 0 && ditto.every((p) => isDittoLine(firstLine(p)))) {
      return { kind: "ditto", seen: `a folder of Ditto lines (${ditto.map((p) => p.split("/").pop()).join(", ")})` };
    }
    return {
      kind: "unknown",
      seen: `a folder with neither ${Object.values(MAGELLAN_TABLES).join(" + ")} nor Ditto's ${
        DITTO_SPLIT_FILES.join(", ")
      }`,
    };
  }
  const line = firstLine(path);
  if (isDittoLine(line)) return { kind: "ditto", seen: 'lines of "COL <attribute> VAL <value> ... \\t ... \\t label"' };
  if (/\.(jsonl|json|ndjson|csv|parquet)(\.gz)?$/i.test(path)) return { kind: "pairs", seen: "a pair table" };
  return { kind: "unknown", seen: `a file starting ${JSON.stringify(line.slice(0, 40))}` };
}

/**
 * The format of `paths` (pair files, a Magellan folder, Ditto files or folders) given the record tables
 * `records` (non-empty only for the records shape). Throws when the paths disagree or none is recognised.
 */
export function detectPairFormat(paths: readonly string[], records: readonly string[] = []): DetectedFormat {
  if (paths.length === 0) throw new Error("detectPairFormat: no path given");
  const kinds = paths.map((p) => ({ path: resolve(p), ...kindOf(resolve(p)) }));
  const listing = kinds.map((k) => `${k.path}: ${k.seen}`).join("; ");
  const formats = new Set(kinds.map((k) => k.kind));
  const only = formats.size === 1 ? [...formats][0] : null;
  if (only === "pairs" && records.length > 0) {
    return { format: "records", reason: `record tables (${records.length}) and pair lists` };
  }
  if (only === null || only === "unknown" || (records.length > 0 && only !== "pairs")) {
    throw new Error(
      `cannot tell the format of ${listing}${records.length ? ` (with record tables ${records.join(", ")})` : ""}: ` +
        "set FORMAT to one of pairs, records, magellan, ditto",
    );
  }
  if (only === "magellan" && kinds.length > 1) {
    throw new Error(`a Magellan/DeepMatcher import reads one folder; got ${kinds.length}: ${listing}`);
  }
  return { format: only, reason: kinds[0].seen };
}
