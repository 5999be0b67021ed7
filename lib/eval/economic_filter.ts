/**
 * The reference's economic candidate filter: a competitor's product is worth matching only when it
 * sells (sales > 0), is in stock (balance > 0), is well rated (rating > 4.3) and is priced within
 * ±30% of the query product's price. Every bound is a parameter.
 *
 * A missing value (null, undefined or NaN) fails its check and is counted under `missing`, so rows are
 * never dropped silently. A query without a price makes every candidate fail the price check (counted
 * as `queryPriceMissing`).
 *
 * @module
 */

/** The economic fields of a product (a row of the analytics export). */
export interface ProductEconomics {
  sku: string | number;
  /** Units sold in the export's period. */
  sales?: number | null;
  /** Units in stock (the reference's balance = balance_fbo + balance_fbs). */
  balance?: number | null;
  /** Average rating, 0..5. */
  rating?: number | null;
  price?: number | null;
}

/** Bounds of the filter; defaults are the reference's. */
export interface EconomicFilterOptions {
  /** Keep sales > minSales. Default 0. */
  minSales?: number;
  /** Keep balance > minBalance. Default 0. */
  minBalance?: number;
  /** Keep rating > minRating. Default 4.3. */
  minRating?: number;
  /** Keep |price - queryPrice| <= priceTolerance * queryPrice. Default 0.3 (±30%). */
  priceTolerance?: number;
}

/** The reference's bounds. */
export const DEFAULT_ECONOMIC_FILTER: Required<EconomicFilterOptions> = {
  minSales: 0,
  minBalance: 0,
  minRating: 4.3,
  priceTolerance: 0.3,
};

/** The reasons a candidate can fail; one candidate can fail several. */
export type EconomicFailure = "sales" | "stock" | "rating" | "price";

/** Counts of the filter. Each failed check is counted, so a candidate may be counted under several reasons. */
export interface EconomicFilterCounts {
  total: number;
  kept: number;
  /** Candidates failing each check (missing values included). */
  failed: Record<EconomicFailure, number>;
  /** Candidates failing a check because the value is missing. */
  missing: Record<EconomicFailure, number>;
  /** Candidates failing the price check because the QUERY has no price. */
  queryPriceMissing: number;
}

/** The filter's result: `mask[i]` is 1 when candidate i passes every check. */
export interface EconomicFilterResult {
  mask: Uint8Array;
  /** Per candidate, bit flags of the failed checks (`FAILURE_BITS`); read them with `describeFailures`. */
  failures: Uint8Array;
  counts: EconomicFilterCounts;
}

/** Bit of each failed check in `EconomicFilterResult.failures`; the bit shifted left by 4 marks a missing value. */
export const FAILURE_BITS: Readonly<Record<EconomicFailure, number>> = { sales: 1, stock: 2, rating: 4, price: 8 };

/** Why a candidate failed, e.g. ["sales missing", "price out of range"]; [] when it passed. */
export function describeFailures(code: number): string[] {
  const reasons: string[] = [];
  for (const [reason, bit] of Object.entries(FAILURE_BITS)) {
    if (code & (bit << 4)) {
      reasons.push(reason === "price" ? "price missing (candidate or query)" : `${reason} missing`);
    } else if (code & bit) reasons.push(`${reason} out of range`);
  }
  return reasons;
}

/** A (query, candidate) pair by SKU. */
export interface SkuPair {
  query: string | number;
  candidate: string | number;
}

function isMissing(value: number | null | undefined): value is null | undefined {
  return value === null || value === undefined || Number.isNaN(value);
}

function resolveOptions(options: EconomicFilterOptions): Required<EconomicFilterOptions> {
  const resolved = { ...DEFAULT_ECONOMIC_FILTER, ...options };
  for (const [name, value] of Object.entries(resolved)) {
    if (!Number.isFinite(value)) throw new Error(`economicFilter: option ${name} = ${value}; expected a number.`);
  }
  if (resolved.priceTolerance < 0) {
    throw new Error(`economicFilter: priceTolerance = ${resolved.priceTolerance}; expected >= 0 (0.3 means ±30%).`);
  }
  return resolved;
}

function emptyCounts(): EconomicFilterCounts {
  return {
    total: 0,
    kept: 0,
    failed: { sales: 0, stock: 0, rating: 0, price: 0 },
    missing: { sales: 0, stock: 0, rating: 0, price: 0 },
    queryPriceMissing: 0,
  };
}

/** Applies the checks to one candidate, updating `counts`; returns its failure bits (0 = passes). */
function checkCandidate(
  query: ProductEconomics,
  candidate: ProductEconomics,
  bounds: Required<EconomicFilterOptions>,
  counts: EconomicFilterCounts,
): number {
  let code = 0;
  const check = (reason: EconomicFailure, value: number | null | undefined, ok: (v: number) => boolean): void => {
    if (isMissing(value)) {
      counts.missing[reason]++;
      counts.failed[reason]++;
      code |= FAILURE_BITS[reason] | (FAILURE_BITS[reason] << 4);
    } else if (!ok(value)) {
      counts.failed[reason]++;
      code |= FAILURE_BITS[reason];
    }
  };
  check("sales", candidate.sales, (v) => v > bounds.minSales);
  check("stock", candidate.balance, (v) => v > bounds.minBalance);
  check("rating", candidate.rating, (v) => v > bounds.minRating);
  if (isMissing(query.price)) {
    counts.queryPriceMissing++;
    counts.failed.price++;
    code |= FAILURE_BITS.price | (FAILURE_BITS.price << 4);
  } else {
    const queryPrice = query.price;
    check("price", candidate.price, (v) => Math.abs(v - queryPrice) <= bounds.priceTolerance * queryPrice);
  }
  counts.total++;
  if (code === 0) counts.kept++;
  return code;
}

/** Filters the candidates of one query product. */
export function economicFilter(
  query: ProductEconomics,
  candidates: readonly ProductEconomics[],
  options: EconomicFilterOptions = {},
): EconomicFilterResult {
  const bounds = resolveOptions(options);
  const counts = emptyCounts();
  const mask = new Uint8Array(candidates.length);
  const failures = new Uint8Array(candidates.length);
  for (let i = 0; i < candidates.length; i++) {
    failures[i] = checkCandidate(query, candidates[i], bounds, counts);
    mask[i] = failures[i] === 0 ? 1 : 0;
  }
  return { mask, failures, counts };
}

/**
 * Filters (query, candidate) pairs given the economics of every product by SKU. Throws, naming the SKU
 * and the pair, when a SKU is not in `products`.
 */
export function economicFilterPairs(
  pairs: readonly SkuPair[],
  products: ReadonlyMap<string | number, ProductEconomics>,
  options: EconomicFilterOptions = {},
): EconomicFilterResult {
  const bounds = resolveOptions(options);
  const counts = emptyCounts();
  const mask = new Uint8Array(pairs.length);
  const failures = new Uint8Array(pairs.length);
  const lookup = (sku: string | number, role: string, i: number): ProductEconomics => {
    const product = products.get(sku);
    if (!product) {
      throw new Error(
        `economicFilterPairs: pair ${i} has ${role} SKU ${sku}, which is not in the products table; ` +
          "add its row (missing fields may be null) or drop the pair.",
      );
    }
    return product;
  };
  for (let i = 0; i < pairs.length; i++) {
    const query = lookup(pairs[i].query, "query", i);
    const candidate = lookup(pairs[i].candidate, "candidate", i);
    failures[i] = checkCandidate(query, candidate, bounds, counts);
    mask[i] = failures[i] === 0 ? 1 : 0;
  }
  return { mask, failures, counts };
}

/** "sales > 0, balance > 0, rating > 4.3, final_price within ±30% of the query's" (defaults filled in). */
export function describeEconomicFilter(options: EconomicFilterOptions = {}, priceColumn = "price"): string {
  const o = { ...DEFAULT_ECONOMIC_FILTER, ...options };
  return `sales > ${o.minSales}, balance > ${o.minBalance}, rating > ${o.minRating}, ${priceColumn} within ±${
    Math.round(o.priceTolerance * 1000) / 10
  }% of the query's`;
}

/** "keeps 812 of 1,000 pairs; failures (a pair may fail several): sales 12 (missing 3), ..." in markdown. */
export function describeFilterCounts(counts: EconomicFilterCounts): string {
  const failures = Object.entries(counts.failed).map(([reason, n]) =>
    `${reason} ${n} (missing ${counts.missing[reason as EconomicFailure]})`
  );
  const noPrice = counts.queryPriceMissing ? `; ${counts.queryPriceMissing} pairs whose query has no price` : "";
  return `Economic filter keeps **${counts.kept}** of **${counts.total}** pairs. Failures (a pair may fail several): ` +
    `${failures.join(", ")}${noPrice}.`;
}
