/**
 * The typed filter of catalog-index searches, one predicate language for every backend: an object
 * of field -> condition, all conditions ANDed, e.g.
 *
 * ```ts
 * { price: { gte: 70, lte: 130 }, stock: { gt: 0 }, seller: { ne: "s1" }, sku: { notIn: ["q1"] } }
 * ```
 *
 * Numeric fields take `eq, ne, gt, gte, lt, lte, in, notIn`; string fields (`sku`, `seller`, string
 * attributes) take `eq, ne, in, notIn`. A missing value (null, absent, NaN) fails every condition,
 * `ne` and `notIn` included (SQL's NULL rule, and the economic filter's: missing values never pass).
 * An empty `in: []` matches nothing. Backends compile it (LanceDB: SQL `where`, `lancedb_index.ts`;
 * Qdrant: filter JSON, `qdrant_index.ts`); `matchesFilter` is the plain-TS meaning they must agree with.
 *
 * `economicQueryFilter` turns the economic filter's rule (`lib/eval/economic_filter.ts`: sales >
 * minSales, stock > minBalance, rating > minRating, |price - queryPrice| <= tolerance x queryPrice)
 * into this filter for one query, so top-k search can filter inside the search instead of after it.
 *
 * @module
 */
import { DEFAULT_ECONOMIC_FILTER, type EconomicFilterOptions } from "../eval/economic_filter.ts";

/** The type of an attribute column. */
export type AttributeType = "number" | "string";

/** Attribute columns of an index (besides `sku` and the vector): name -> type. */
export type AttributeSchema = Readonly<Record<string, AttributeType>>;

/** The product attributes of the economic filter, plus the seller. */
export const ECONOMIC_SCHEMA: AttributeSchema = Object.freeze({
  seller: "string",
  price: "number",
  sales: "number",
  stock: "number",
  rating: "number",
});

/** Conditions on a numeric field. */
export interface NumberCondition {
  eq?: number;
  ne?: number;
  gt?: number;
  gte?: number;
  lt?: number;
  lte?: number;
  in?: readonly number[];
  notIn?: readonly number[];
}

/** Conditions on a string field. */
export interface StringCondition {
  eq?: string;
  ne?: string;
  in?: readonly string[];
  notIn?: readonly string[];
}

/** Field -> condition, ANDed. `sku` is always a string field. */
export type IndexFilter = Readonly<Record<string, NumberCondition | StringCondition>>;

/** Operators allowed per type. */
export const OPERATORS: Readonly<Record<AttributeType, readonly string[]>> = {
  number: ["eq", "ne", "gt", "gte", "lt", "lte", "in", "notIn"],
  string: ["eq", "ne", "in", "notIn"],
};

/** Field names allowed in attribute schemas (also safe as SQL identifiers and payload keys). */
export const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Reserved column names that attributes cannot take. */
export const RESERVED_FIELDS: readonly string[] = ["sku", "vector", "id", "_distance", "_rowid"];

/** Checks an attribute schema: identifier names, known types, no reserved names. */
export function checkSchema(schema: AttributeSchema, where: string): void {
  for (const [name, type] of Object.entries(schema)) {
    if (!FIELD_NAME.test(name) || RESERVED_FIELDS.includes(name)) {
      throw new Error(
        `${where}: attribute name ${JSON.stringify(name)} is not allowed: use letters, digits and "_" ` +
          `(not starting with a digit), and none of ${RESERVED_FIELDS.join(", ")}`,
      );
    }
    if (type !== "number" && type !== "string") {
      throw new Error(`${where}: attribute ${name} has type ${JSON.stringify(type)}; use "number" or "string"`);
    }
  }
}

/** The type of a filter field: `sku` is a string, others come from the schema; undefined when unknown. */
export function fieldType(field: string, schema: AttributeSchema): AttributeType | undefined {
  if (field === "sku") return "string";
  return Object.hasOwn(schema, field) ? schema[field] : undefined;
}

/**
 * Checks a filter against the index's schema; throws naming the field (or operator, or value) and what
 * is allowed. `where` names the caller.
 */
export function validateFilter(filter: IndexFilter, schema: AttributeSchema, where: string): void {
  if (filter === null || typeof filter !== "object" || Array.isArray(filter)) {
    throw new Error(`${where}: filter ${JSON.stringify(filter)} is not an object of field -> condition`);
  }
  const known = ["sku", ...Object.keys(schema)];
  for (const [field, condition] of Object.entries(filter)) {
    const type = fieldType(field, schema);
    if (!type) {
      throw new Error(
        `${where}: filter field ${JSON.stringify(field)} is not in the index; fields: ${known.join(", ")}`,
      );
    }
    if (condition === null || typeof condition !== "object" || Array.isArray(condition)) {
      throw new Error(`${where}: filter field ${field} has condition ${JSON.stringify(condition)}; expected an object`);
    }
    for (const [op, value] of Object.entries(condition)) {
      if (value === undefined) continue;
      if (!OPERATORS[type].includes(op)) {
        throw new Error(
          `${where}: filter field ${field} (${type}) has operator ${JSON.stringify(op)}; allowed: ${
            OPERATORS[type].join(", ")
          }`,
        );
      }
      const values = op === "in" || op === "notIn" ? value : [value];
      if (!Array.isArray(values)) throw new Error(`${where}: filter ${field}.${op} must be an array`);
      for (const v of values) {
        const ok = type === "number" ? typeof v === "number" && Number.isFinite(v) : typeof v === "string";
        if (!ok) {
          throw new Error(
            `${where}: filter ${field}.${op} has value ${JSON.stringify(v)}; expected ${
              type === "number" ? "a finite number" : "a string"
            }`,
          );
        }
      }
    }
  }
}

/** Whether a (validated) filter can match nothing by construction (an empty `in`). */
export function filterMatchesNothing(filter: IndexFilter): boolean {
  return Object.values(filter).some((c) => c.in !== undefined && c.in.length === 0);
}

/** A value of a row's attribute, as stored. */
export type AttributeValue = number | string | null | undefined;

function isMissing(value: AttributeValue): boolean {
  return value === null || value === undefined || (typeof value === "number" && Number.isNaN(value));
}

/** The plain-TS meaning of a filter on one row (`row(field)` gives the field's value; `sku` too). */
export function matchesFilter(filter: IndexFilter, row: (field: string) => AttributeValue): boolean {
  for (const [field, condition] of Object.entries(filter)) {
    const value = row(field);
    const c = condition as NumberCondition & StringCondition;
    if (isMissing(value)) {
      if (Object.values(c).some((v) => v !== undefined)) return false;
      continue;
    }
    const v = value as number & string;
    if (c.eq !== undefined && !(v === c.eq)) return false;
    if (c.ne !== undefined && !(v !== c.ne)) return false;
    if (c.gt !== undefined && !(v > c.gt)) return false;
    if (c.gte !== undefined && !(v >= c.gte)) return false;
    if (c.lt !== undefined && !(v < c.lt)) return false;
    if (c.lte !== undefined && !(v <= c.lte)) return false;
    if (c.in !== undefined && !(c.in as readonly (number | string)[]).includes(v)) return false;
    if (c.notIn !== undefined && (c.notIn as readonly (number | string)[]).includes(v)) return false;
  }
  return true;
}

/** A query product for `economicQueryFilter`: its price, and what to exclude. */
export interface EconomicQuery {
  /** The query's price; missing = no candidate passes (as in `economicFilter`). */
  price?: number | null;
  /** Excluded from the results (the query itself), via `sku: {notIn}`. */
  sku?: string | number;
  /** Candidates of this seller are excluded (`seller: {ne}`): only competitors' listings. */
  seller?: string | null;
}

/** Extra exclusions of `economicQueryFilter`. */
export interface EconomicQueryExtras {
  /** More SKUs to exclude. */
  excludeSkus?: readonly (string | number)[];
  /** Exclude the query's own seller. Default true when `query.seller` is given. */
  excludeSeller?: boolean;
}

/**
 * The economic filter of one query as an index filter: sales > minSales, stock > minBalance,
 * rating > minRating, price in [p - t*p, p + t*p] (p the query's price, t the tolerance), plus the
 * exclusions. The price band is the same rule as `economicFilter`'s |price - p| <= t*p up to float
 * rounding at the band's two edges. A query without a price gives a filter that matches nothing.
 */
export function economicQueryFilter(
  query: EconomicQuery,
  options: EconomicFilterOptions = {},
  extras: EconomicQueryExtras = {},
): IndexFilter {
  const bounds = { ...DEFAULT_ECONOMIC_FILTER, ...options };
  for (const [name, value] of Object.entries(bounds)) {
    if (!Number.isFinite(value)) throw new Error(`economicQueryFilter: option ${name} = ${value}; expected a number`);
  }
  if (bounds.priceTolerance < 0) {
    throw new Error(`economicQueryFilter: priceTolerance = ${bounds.priceTolerance}; expected >= 0 (0.3 means ±30%)`);
  }
  const filter: Record<string, NumberCondition | StringCondition> = {
    sales: { gt: bounds.minSales },
    stock: { gt: bounds.minBalance },
    rating: { gt: bounds.minRating },
  };
  const p = query.price;
  if (p === null || p === undefined || !Number.isFinite(p)) {
    filter.price = { in: [] };
  } else {
    const band = bounds.priceTolerance * p; // a negative price gives an empty band, as in economicFilter
    filter.price = { gte: p - band, lte: p + band };
  }
  const skus = [...(query.sku !== undefined ? [query.sku] : []), ...(extras.excludeSkus ?? [])].map(String);
  if (skus.length) filter.sku = { notIn: [...new Set(skus)] };
  if ((extras.excludeSeller ?? true) && typeof query.seller === "string") filter.seller = { ne: query.seller };
  return filter;
}
