/**
 * The importer configuration of the WDC Products benchmark (80% corner cases; Peeters, Der, Bizer,
 * EDBT 2024): field mapping and file roles for the copy in `../shared/data/wdc-products/` (see its
 * README). Files are gzipped JSON lines, one pair per row with `<field>_left` / `<field>_right`
 * columns, `label`, `pair_id` and `is_hard_negative`; missing values are null or the string "None".
 *
 * Splits as the benchmark gives them: `train` and `val` of one size (small with small, medium with
 * medium), and three test sets: `test` (000un_gs, every entity seen in training, the benchmark's usual
 * headline set), `test_half_unseen` (050un_gs) and `test_unseen` (100un_gs). WDC has no images and no
 * tokenizer: products get the placeholder image (train with MODE=text) and, on request, a WordPiece
 * vocabulary learnt from the training split.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { projectRoot } from "../paths.ts";
import type { FieldMapping, ImportPairsOptions, PairFile } from "./import_pairs.ts";

/** The environment variable that overrides the folder. */
export const WDC_PRODUCTS_ENV = "WDC_PRODUCTS_DIR";
/** The file-name prefix of the 80%-corner-case variant. */
export const WDC_PREFIX = "wdcproducts80cc20rnd";
/** Training/validation sizes shipped in the copy. */
export const WDC_SIZES = ["small", "medium"] as const;
/** One training size. */
export type WdcSize = typeof WDC_SIZES[number];

/** The WDC columns mapped to the products table (`<column>_left` / `<column>_right` in the files). */
export const WDC_FIELDS: FieldMapping = {
  id: "id",
  name: "title",
  description: "description",
  brand: "brand",
  price: "price",
  currency: "priceCurrency",
  cluster: "cluster_id",
};

/** The test sets: split name -> file stem. */
export const WDC_TEST_SETS: Record<string, string> = {
  test: "000un_gs",
  test_half_unseen: "050un_gs",
  test_unseen: "100un_gs",
};

/** The folder: `dir`, else `$WDC_PRODUCTS_DIR`, else `../shared/data/wdc-products` from the project root. */
export function wdcProductsDir(dir?: string): string {
  const chosen = dir ?? Deno.env.get(WDC_PRODUCTS_ENV) ?? join(projectRoot, "..", "shared", "data", "wdc-products");
  return resolve(projectRoot, chosen);
}

/** The pair files and their splits for a training size. */
export function wdcFiles(dir: string, size: WdcSize = "small"): PairFile[] {
  if (!(WDC_SIZES as readonly string[]).includes(size)) {
    throw new Error(
      `WDC Products size ${JSON.stringify(size)} is not shipped here; use one of ${WDC_SIZES.join(", ")}`,
    );
  }
  const file = (stem: string) => join(dir, `${WDC_PREFIX}${stem}.json.gz`);
  return [
    { path: file(`000un_train_${size}`), split: "train" },
    { path: file(`000un_valid_${size}`), split: "val" },
    ...Object.entries(WDC_TEST_SETS).map(([split, stem]) => ({ path: file(stem), split })),
  ];
}

/** Options of `wdcImportOptions`. */
export interface WdcImportOptions {
  /** Dataset name (default `wdc_products_<size>`). */
  dataset?: string;
  /** The benchmark folder (see `wdcProductsDir`). */
  dir?: string;
  size?: WdcSize;
  root?: string;
  /** Learn a WordPiece tokenizer from the training split (default 30,000 tokens at most; false = none). */
  tokenizer?: { vocabSize?: number } | false;
}

/** The `importPairs` options that import WDC Products; throws naming each missing file. */
export async function wdcImportOptions(options: WdcImportOptions = {}): Promise<ImportPairsOptions> {
  const size = options.size ?? "small";
  const dir = wdcProductsDir(options.dir);
  const files = wdcFiles(dir, size);
  const missing: string[] = [];
  for (const f of files) {
    try {
      await Deno.stat(f.path);
    } catch {
      missing.push(f.path);
    }
  }
  if (missing.length > 0) {
    throw new Error(
      `WDC Products files missing: ${missing.join(", ")} (folder ${dir}; set ${WDC_PRODUCTS_ENV} to the folder ` +
        "holding the benchmark's .json.gz files)",
    );
  }
  return {
    dataset: options.dataset ?? `wdc_products_${size}`,
    ...(options.root ? { root: options.root } : {}),
    source: { kind: "wide", files },
    fields: WDC_FIELDS,
    columns: { label: "label", pairId: "pair_id", hardNegative: "is_hard_negative" },
    tokenizer: options.tokenizer === false ? false : { vocabSize: options.tokenizer?.vocabSize ?? 30000 },
  };
}
