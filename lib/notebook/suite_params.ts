/**
 * Parameters several notebooks share, declared once: the dataset, a run name, split ratios,
 * the seed and the economic filter. Each returns a spec for `notebookParams`.
 *
 * @module
 */
import { parseSplitRatios } from "../data/split.ts";
import { parseShard } from "../embeddings/shard.ts";
import { NUMERIC_ANALYTICS_COLUMNS } from "../data/columns.ts";
import { choice, type ChoiceSpec, integer, number, text, type TextSpec } from "./params.ts";
import type { EconomicFilterOptions } from "../eval/economic_filter.ts";
import { TOWER_RUNTIMES, type TowerRuntimeChoice } from "../train/tower_runtime.ts";

const NAME = /^[A-Za-z0-9_.-]+$/;

function nameCheck(value: string): string | undefined {
  return NAME.test(value) ? undefined : `use letters, digits, "_", "-" and "." only`;
}

/** `DATASET`: a dataset folder name (its tables live in `data/tables_<DATASET>/`). */
export function dataset(defaultValue = "demo_geo"): TextSpec {
  return text(defaultValue, "dataset name: its tables are data/tables_<DATASET>/", {
    check: nameCheck,
    allowed: "a dataset name (letters, digits, _ - .)",
  });
}

/** `RUN`: the training run's name (its folder is `data/train_results/<RUN>/`). */
export function runName(defaultValue = "demo"): TextSpec {
  return text(defaultValue, "training run name: data/train_results/<RUN>/", {
    check: nameCheck,
    allowed: "a run name (letters, digits, _ - .)",
  });
}

/**
 * How the suite splits by query and renders each split's pairs when nothing is set: what the pairwise and
 * training notebooks offer (`splitRatios`, `pairRendering`) and `deno task seeds` uses.
 */
export const PAIR_RENDERING_DEFAULTS = {
  splitRatios: "0.6,0.2,0.2",
  posNegRatio: 3,
  hardSoftRatio: 0.5,
  maxPositivePairsPerQuery: 0,
} as const;

/** `SPLIT_RATIOS`: train/validation/test shares, e.g. "0.6,0.2,0.2". */
export function splitRatios(defaultValue: string = PAIR_RENDERING_DEFAULTS.splitRatios): TextSpec {
  return text(defaultValue, "train,val,test shares of the query groups", {
    check: (value) => {
      try {
        parseSplitRatios(value);
        return undefined;
      } catch {
        return `give 3 non-negative numbers with a positive sum, such as "0.6,0.2,0.2"`;
      }
    },
    allowed: "3 non-negative numbers, e.g. 0.6,0.2,0.2",
  });
}

/** `POS_NEG_RATIO`, `HARD_SOFT_RATIO`, `MAX_POSITIVE_PAIRS_PER_QUERY`: how each split's pairs are rendered. */
export const pairRendering = {
  POS_NEG_RATIO: number(PAIR_RENDERING_DEFAULTS.posNegRatio, { min: 0, exclusive: true }, "negatives per positive"),
  HARD_SOFT_RATIO: number(PAIR_RENDERING_DEFAULTS.hardSoftRatio, { min: 0, max: 1 }, "share of hard negatives"),
  MAX_POSITIVE_PAIRS_PER_QUERY: integer(PAIR_RENDERING_DEFAULTS.maxPositivePairsPerQuery, { min: 0 }, "0 = no cap"),
};

/** `SEED`: a non-negative integer seed. */
export const seed = (defaultValue = 42) => integer(defaultValue, { min: 0 }, "random seed");

/** The economic filter's thresholds (sales, stock, rating, price band). */
export const economicFilter = {
  MIN_SALES: number(0, { min: 0 }, "keep candidates with sales > MIN_SALES"),
  MIN_BALANCE: number(0, { min: 0 }, "keep candidates with stock > MIN_BALANCE"),
  MIN_RATING: number(4.3, { min: 0, max: 5 }, "keep candidates rated > MIN_RATING"),
  PRICE_TOLERANCE: number(0.3, { min: 0 }, "keep prices within ±PRICE_TOLERANCE of the query's"),
};

/** `PRICE_COLUMN`: which price of the processed table the economic filter compares. */
export function priceColumn(defaultValue = "final_price"): ChoiceSpec<string> {
  const prices = NUMERIC_ANALYTICS_COLUMNS.filter((column) => column.endsWith("_price"));
  return choice(prices, defaultValue, "the price the economic filter compares");
}

/** The economic filter's options from its parameters (`economicFilter`). */
export function economicFilterOptions(
  params: { MIN_SALES: number; MIN_BALANCE: number; MIN_RATING: number; PRICE_TOLERANCE: number },
): EconomicFilterOptions {
  return {
    minSales: params.MIN_SALES,
    minBalance: params.MIN_BALANCE,
    minRating: params.MIN_RATING,
    priceTolerance: params.PRICE_TOLERANCE,
  };
}

/** `SHARD`: "i/N" embeds only the i-th of N slices of the catalog (by SKU hash); empty = the whole catalog. */
export function shard(): TextSpec {
  return text("", "i/N: embed only slice i of N (by SKU hash), merged when all N parts exist; empty = all", {
    check: (value) => {
      if (value.trim() === "") return undefined;
      try {
        parseShard(value);
        return undefined;
      } catch {
        return `give i/N with 0 <= i < N, such as "0/2"`;
      }
    },
    allowed: 'empty, or i/N with 0 <= i < N (e.g. "1/4")',
  });
}

/** TOWER_RUNTIME: where the frozen towers run (lib/train/tower_runtime.ts). */
export function towerRuntime(): ChoiceSpec<TowerRuntimeChoice> {
  return choice(
    TOWER_RUNTIMES,
    "auto",
    "frozen towers: auto = onnxruntime on a CPU backend where it loads, else tfjs; or tfjs; or onnx",
  );
}
