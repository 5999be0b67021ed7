/**
 * The import notebook's parameters as `importPairs` options: a public benchmark by name (WDC Products),
 * or any pair table given as files and a field mapping.
 *
 *   FORMAT       auto (default) | pairs | records | magellan | ditto
 *   PAIR_FILES   "pairs_train.jsonl.gz:train,pairs_valid.csv:val,more.parquet"  (":split" optional);
 *                a Magellan/DeepMatcher folder (tableA.csv, tableB.csv, train/valid/test.csv);
 *                Ditto files ("train.txt,valid.txt,test.txt", split from the name) or their folder
 *   FIELDS       "" (by name: title/name, description, brand/manufacturer, price, ...) or
 *                "id=id,name=title,description=description,brand=brand,price=price,image=image_url"
 *   RECORDS      "offers.csv"  (two-table shape: records + a pair list in PAIR_FILES with id_left/id_right)
 *   SKIP_MALFORMED  skip malformed lines (each reported) instead of stopping
 *
 * Paths are relative to the project root (as every path parameter of the suite).
 *
 * @module
 */
import { resolveProjectPath } from "../hub/model_source.ts";
import { type FieldMapping, type ImportPairsOptions, type PairFile, PRODUCT_FIELDS } from "./import_pairs.ts";
import { wdcImportOptions, type WdcSize } from "./wdc_products.ts";
import { type DetectedFormat, detectPairFormat } from "./formats/detect.ts";
import type { ImportManifest } from "./imported_dataset.ts";
import { PAIR_FORMATS } from "./formats/shape.ts";

/** FORMAT's values: the published shapes, or auto-detection. */
export const FORMAT_CHOICES = ["auto", ...PAIR_FORMATS] as const;
export type FormatChoice = typeof FORMAT_CHOICES[number];

/** Where the pairs come from: a known benchmark, or the files of PAIR_FILES. */
export const PAIR_SOURCES = ["wdc-products", "pair-table"] as const;
export type PairSourceKind = typeof PAIR_SOURCES[number];

/** The import notebook's parameters. */
export interface ImportParams {
  DATASET: string;
  SOURCE: PairSourceKind;
  WDC_SIZE: WdcSize;
  WDC_DIR: string;
  FORMAT: FormatChoice;
  PAIR_FILES: string;
  RECORDS: string;
  FIELDS: string;
  SKIP_MALFORMED: boolean;
  LEARN_TOKENIZER: boolean;
  SEED: number;
}

/** "path[:split],..." as pair files; an empty list is an error naming the parameter. */
export function parsePairFiles(text: string, name = "PAIR_FILES"): PairFile[] {
  const files = text.split(",").map((entry) => entry.trim()).filter(Boolean).map((entry) => {
    const match = /^(.*?)(?::([\w-]+))?$/.exec(entry)!;
    return { path: resolveProjectPath(match[1]), ...(match[2] ? { split: match[2] } : {}) };
  });
  if (!files.length) throw new Error(`${name} = ${JSON.stringify(text)}; expected "file[:split],file[:split],..."`);
  return files;
}

/**
 * "field=column,..." as a field mapping; empty: undefined (mapped by name at import). Unknown fields are
 * errors listing the known ones.
 */
export function parseFieldMapping(text: string, name = "FIELDS"): FieldMapping | undefined {
  if (text.trim() === "") return undefined;
  const mapping: Record<string, string> = {};
  for (const entry of text.split(",").map((e) => e.trim()).filter(Boolean)) {
    const [field, column] = entry.split("=").map((part) => part?.trim());
    if (!column || (field !== "id" && !(PRODUCT_FIELDS as readonly string[]).includes(field))) {
      throw new Error(
        `${name}: ${JSON.stringify(entry)}; expected field=column with field one of id, ${PRODUCT_FIELDS.join(", ")}`,
      );
    }
    mapping[field] = column;
  }
  return mapping as FieldMapping;
}

/** The `importPairs` options of the import notebook's parameters. */
export async function importOptionsFromParams(params: ImportParams): Promise<ImportPairsOptions> {
  const tokenizer = params.LEARN_TOKENIZER ? {} : false as const;
  if (params.SOURCE === "wdc-products") {
    const options = await wdcImportOptions({
      dataset: params.DATASET,
      size: params.WDC_SIZE,
      dir: params.WDC_DIR ? resolveProjectPath(params.WDC_DIR) : undefined,
      tokenizer,
    });
    return { ...options, seed: params.SEED };
  }
  const pairs = parsePairFiles(params.PAIR_FILES);
  const records = params.RECORDS.split(",").map((p) => p.trim()).filter(Boolean).map((p) => resolveProjectPath(p));
  const { format } = pairFormatOf(params);
  if (format === "magellan" && pairs.length !== 1) {
    throw new Error(`PAIR_FILES = ${JSON.stringify(params.PAIR_FILES)}: FORMAT=magellan reads one folder`);
  }
  if (format === "records" && records.length === 0) {
    throw new Error(`FORMAT=records needs RECORDS (the record tables) beside PAIR_FILES (the pair lists)`);
  }
  const source: ImportPairsOptions["source"] = format === "magellan"
    ? { kind: "magellan", dir: pairs[0].path }
    : format === "ditto"
    ? { kind: "ditto", files: pairs }
    : format === "records"
    ? { kind: "records", records: { left: records }, pairs }
    : { kind: "wide", files: pairs };
  return {
    dataset: params.DATASET,
    source,
    fields: parseFieldMapping(params.FIELDS),
    skipMalformed: params.SKIP_MALFORMED,
    seed: params.SEED,
    tokenizer: params.LEARN_TOKENIZER ? {} : false,
  };
}

/** The shape PAIR_FILES (and RECORDS) are read as: FORMAT, or the detected one with the reason. */
export function pairFormatOf(
  params: Pick<ImportParams, "FORMAT" | "PAIR_FILES" | "RECORDS">,
): DetectedFormat & { detected: boolean } {
  if (params.FORMAT !== "auto") return { format: params.FORMAT, reason: "FORMAT", detected: false };
  const paths = parsePairFiles(params.PAIR_FILES).map((f) => f.path);
  const records = params.RECORDS.split(",").map((p) => p.trim()).filter(Boolean);
  return { ...detectPairFormat(paths, records), detected: true };
}

/** One markdown paragraph saying what an import read and made (the import notebook's headline). */
export function importSummary(
  manifest: ImportManifest,
  format: (DetectedFormat & { detected: boolean }) | null,
): string {
  const parts = [
    `**${manifest.products}** products (${manifest.productsWithImage} with an image)`,
  ];
  if (manifest.format) {
    parts.push(
      `format **${manifest.format}**${format?.detected ? ` (detected: ${format.reason})` : ""}`,
    );
  }
  if (manifest.recordsPerSide) {
    parts.push(
      `distinct records: ${manifest.recordsPerSide.left} left, ${manifest.recordsPerSide.right} right` +
        (manifest.derivedIds ? " (ids derived from each record's values: the source has none)" : ""),
    );
  }
  if (manifest.attributes?.length) parts.push(`other attributes kept: ${manifest.attributes.join(", ")}`);
  if (manifest.entityColumns?.length) {
    parts.push(`entity columns dropped (the label in disguise): ${manifest.entityColumns.join(", ")}`);
  }
  if (manifest.skippedLines) parts.push(`**${manifest.skippedLines} malformed lines skipped** (listed below)`);
  parts.push(`splits **${manifest.splitMode}**`, `recommended training mode **${manifest.recommendedMode}**`);
  return parts.join("; ") + ".";
}
