import { describe, it } from "node:test";
import { expect } from "expect";
import {
  describeFailures,
  economicFilter,
  economicFilterPairs,
  type ProductEconomics,
} from "../lib/eval/economic_filter.ts";

const query: ProductEconomics = { sku: "Q", sales: 10, balance: 5, rating: 4.8, price: 1000 };
const good: ProductEconomics = { sku: "A", sales: 3, balance: 1, rating: 4.5, price: 1200 };

describe("economic filter (reference defaults: sales > 0, balance > 0, rating > 4.3, price ±30%)", () => {
  it("keeps a candidate passing every check and explains each failure", () => {
    const candidates: ProductEconomics[] = [
      good,
      { ...good, sku: "no-sales", sales: 0 },
      { ...good, sku: "no-stock", balance: 0 },
      { ...good, sku: "rating-at-bound", rating: 4.3 }, // rating must be strictly above 4.3
      { ...good, sku: "too-cheap", price: 690 }, // 31% below
      { ...good, sku: "price-at-bound", price: 1300 }, // exactly +30% passes
      { ...good, sku: "nulls", sales: null, rating: undefined, price: NaN },
    ];
    const { mask, failures, counts } = economicFilter(query, candidates);
    expect(Array.from(mask)).toEqual([1, 0, 0, 0, 0, 1, 0]);
    expect(counts.total).toBe(7);
    expect(counts.kept).toBe(2);
    expect(counts.failed).toEqual({ sales: 2, stock: 1, rating: 2, price: 2 });
    expect(counts.missing).toEqual({ sales: 1, stock: 0, rating: 1, price: 1 });
    expect(describeFailures(failures[0])).toEqual([]);
    expect(describeFailures(failures[4])).toEqual(["price out of range"]);
    expect(describeFailures(failures[6])).toEqual([
      "sales missing",
      "rating missing",
      "price missing (candidate or query)",
    ]);
  });

  it("all bounds are parameters", () => {
    const candidate = { ...good, rating: 4.1, price: 1450 };
    expect(economicFilter(query, [candidate]).mask[0]).toBe(0);
    expect(economicFilter(query, [candidate], { minRating: 4.0, priceTolerance: 0.5 }).mask[0]).toBe(1);
    expect(economicFilter(query, [good], { minSales: 5 }).mask[0]).toBe(0);
    expect(() => economicFilter(query, [good], { priceTolerance: -1 })).toThrow(/priceTolerance = -1/);
  });

  it("a query without a price fails every candidate's price check, counted separately", () => {
    const { mask, counts } = economicFilter({ ...query, price: null }, [good, good]);
    expect(Array.from(mask)).toEqual([0, 0]);
    expect(counts.queryPriceMissing).toBe(2);
    expect(counts.missing.price).toBe(0);
  });

  it("filters pairs by SKU and names an unknown SKU", () => {
    const products = new Map<string | number, ProductEconomics>([["Q", query], ["A", good], [
      "B",
      { ...good, sku: "B", balance: null },
    ]]);
    const result = economicFilterPairs([{ query: "Q", candidate: "A" }, { query: "Q", candidate: "B" }], products);
    expect(Array.from(result.mask)).toEqual([1, 0]);
    expect(result.counts.missing.stock).toBe(1);
    expect(() => economicFilterPairs([{ query: "Q", candidate: "Z" }], products)).toThrow(/candidate SKU Z/);
  });
});
