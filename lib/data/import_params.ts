/**
 * The import notebook's parameters as `importPairs` options: a public benchmark by name (WDC Products),
 * or any pair table given as files and a field mapping.
 *
 *   PAIR_FILES   "pairs_train.jsonl.gz:train,pairs_valid.csv:val,more.parquet"  (":split" optional)
 *   FIELDS       "id=id,name=title,description=description,brand=brand,price=price,image=image_url"
 *   RECORDS      "offers.csv"  (two-table shape: records + a pair list in PAIR_FILES with id_left/id_right)
 *
 * Paths are relative to the project root (as every path parameter of the suite).
 *
 * @module
 */
import { resolveProjectPath } from "../hub/model_source.ts";
import { type FieldMapping, type ImportPairsOptions, type PairFile, PRODUCT_FIELDS } from "./import_pairs.ts";
import { wdcImportOptions, type WdcSize } from "./wdc_products.ts";

/** Where the pairs come from: a known benchmark, or the files of PAIR_FILES. */
export const PAIR_SOURCES = ["wdc-products", "pair-table"] as const;
export type PairSourceKind = typeof PAIR_SOURCES[number];

/** The import notebook's parameters. */
export interface ImportParams {
  DATASET: string;
  SOURCE: PairSourceKind;
  WDC_SIZE: WdcSize;
  WDC_DIR: string;
  PAIR_FILES: string;
  RECORDS: string;
  FIELDS: string;
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

/** "field=column,..." as a field mapping; `id` is required, unknown fields are errors listing the known ones. */
export function parseFieldMapping(text: string, name = "FIELDS"): FieldMapping {
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
  if (!mapping.id) throw new Error(`${name} = ${JSON.stringify(text)}: the id field is required (e.g. "id=id,...")`);
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
  return {
    dataset: params.DATASET,
    source: records.length ? { kind: "records", records: { left: records }, pairs } : { kind: "wide", files: pairs },
    fields: parseFieldMapping(params.FIELDS),
    seed: params.SEED,
    tokenizer: params.LEARN_TOKENIZER ? {} : false,
  };
}
