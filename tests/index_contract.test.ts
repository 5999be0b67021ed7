import { describe, it } from "node:test";
import { expect } from "expect";
import { mulberry32 } from "./helpers.ts";
import { join } from "node:path";
import {
  type CatalogIndex,
  type CatalogRows,
  exactSearch,
  type IndexMetric,
  openCatalogIndex,
  type SearchHit,
} from "../lib/index/catalog_index.ts";
import { economicQueryFilter, type IndexFilter, matchesFilter } from "../lib/index/filter.ts";
import { defaultSubVectors, toLanceWhere } from "../lib/index/lancedb_index.ts";
import { toQdrantFilter } from "../lib/index/qdrant_index.ts";
import { ECONOMIC_SCHEMA } from "../lib/index/filter.ts";
import { economicFilter } from "../lib/eval/economic_filter.ts";

const rng = mulberry32;

function catalog(n: number, dim: number, seed: number): Required<CatalogRows> {
  const random = rng(seed);
  const vectors = Float32Array.from({ length: n * dim }, () => random() * 2 - 1);
  const price: (number | null)[] = [];
  const stock: (number | null)[] = [];
  const sales: (number | null)[] = [];
  const rating: (number | null)[] = [];
  const seller: (string | null)[] = [];
  for (let i = 0; i < n; i++) {
    price.push(i % 41 === 0 ? null : Math.round(50 + random() * 150));
    stock.push(random() < 0.2 ? 0 : Math.floor(random() * 30));
    sales.push(random() < 0.1 ? 0 : Math.floor(random() * 100));
    rating.push(i % 53 === 0 ? null : Math.round((3.5 + random() * 1.5) * 10) / 10);
    seller.push(i % 67 === 0 ? null : `s${Math.floor(random() * 7)}`);
  }
  return {
    skus: Array.from({ length: n }, (_, i) => `sku-${i}`),
    vectors,
    dim,
    attributes: { price, stock, sales, rating, seller },
  };
}

/** Same hits, order equal up to ties (distances within 1e-4; skus equal as sets within tie groups). */
function expectSameHits(actual: SearchHit[], expected: SearchHit[], label: string): void {
  expect({ label, n: actual.length }).toEqual({ label, n: expected.length });
  for (let i = 0; i < expected.length; i++) {
    expect({ label, i, d: Math.abs(actual[i].distance - expected[i].distance) < 1e-4 }).toEqual({ label, i, d: true });
  }
  // Outside ties the order is the same; within distance-equal groups the SKU sets are.
  const groups = (hits: SearchHit[]) => {
    const out: string[][] = [];
    hits.forEach((h, i) => {
      if (i > 0 && Math.abs(h.distance - expected[i - 1].distance) < 1e-4 && out.length) out.at(-1)!.push(h.sku);
      else out.push([h.sku]);
    });
    return out.map((g) => g.sort().join(","));
  };
  const lastDistance = expected.at(-1)?.distance;
  const strict = (hits: SearchHit[]) =>
    hits.filter((_, i) => lastDistance === undefined || Math.abs(expected[i].distance - lastDistance) >= 1e-4);
  expect({ label, skus: groups(strict(actual)) }).toEqual({ label, skus: groups(strict(expected)) });
}

type Opener = (metric: IndexMetric, dim: number) => Promise<CatalogIndex>;

function contract(backend: string, open: Opener | null): void {
  describe(`catalog index contract: ${backend}`, () => {
    if (!open) {
      it(`skipped: set QDRANT_URL to run the ${backend} contract`, () => {
        console.log(`[index_contract] ${backend}: skipped (QDRANT_URL is not set)`);
      });
      return;
    }
    for (const metric of ["euclidean", "cosine"] as const) {
      it(`${metric}: exact top-k equals brute force, with and without filters`, async () => {
        const rows = catalog(600, 24, metric === "euclidean" ? 1 : 2);
        const index = await open(metric, rows.dim);
        try {
          await index.upsert(rows);
          await index.build();
          expect(await index.count()).toBe(600);
          const random = rng(7);
          const filters: (IndexFilter | undefined)[] = [
            undefined,
            { price: { gte: 80, lte: 140 } },
            { stock: { gt: 0 }, seller: { ne: "s3" } },
            { sku: { notIn: ["sku-1", "sku-2", "sku-3", "sku-10"] }, rating: { gte: 4.3 } },
            { seller: { in: ["s1", "s2"] }, sales: { lt: 50 } },
            economicQueryFilter({ price: 120, sku: "sku-5", seller: "s0" }),
            { price: { gt: 1e9 } }, // matches nothing: an empty result, not an error
          ];
          for (let q = 0; q < 4; q++) {
            const query = Float32Array.from({ length: rows.dim }, () => random() * 2 - 1);
            for (const filter of filters) {
              const label = `${metric} query ${q} filter ${JSON.stringify(filter)}`;
              const expected = exactSearch(rows, query, { k: 15, metric, filter });
              const actual = await index.search(query, { k: 15, filter, exact: true });
              expectSameHits(actual, expected, label);
              // the in-search filter equals brute force followed by the post-filter
              const post = exactSearch(rows, query, { k: rows.skus.length, metric }).filter((h) => {
                const r = Number(h.sku.slice(4));
                return !filter ||
                  matchesFilter(filter, (f) => f === "sku" ? h.sku : rows.attributes[f][r] as number | string | null);
              }).slice(0, 15);
              expectSameHits(actual, post, `${label} (post-filter)`);
            }
          }
        } finally {
          await index.close();
        }
      });
    }

    it("upsert of an existing SKU replaces its row", async () => {
      const rows = catalog(50, 8, 3);
      const index = await open("euclidean", 8);
      try {
        await index.upsert(rows);
        const target = Float32Array.from({ length: 8 }, (_, j) => 10 + j);
        await index.upsert({ skus: ["sku-7"], vectors: target, attributes: { price: [999], stock: [1] } });
        expect(await index.count()).toBe(50);
        const hits = await index.search(target, { k: 1, exact: true });
        expect(hits[0].sku).toBe("sku-7");
        expect(hits[0].distance).toBeLessThan(1e-5);
        const byPrice = await index.search(target, { k: 5, exact: true, filter: { price: { eq: 999 } } });
        expect(byPrice.map((h) => h.sku)).toEqual(["sku-7"]);
        // the replaced row's other attributes are now missing: it fails any condition on them
        const bySales = await index.search(target, { k: 50, exact: true, filter: { sales: { gte: 0 } } });
        expect(bySales.map((h) => h.sku)).not.toContain("sku-7");
        await expect(index.upsert({ skus: ["a", "a"], vectors: new Float32Array(16) })).rejects.toThrow(
          'SKU "a" is twice in one batch',
        );
      } finally {
        await index.close();
      }
    });

    it("rejects bad filter fields, operators and values, naming them", async () => {
      const index = await open("euclidean", 4);
      try {
        await index.upsert(catalog(10, 4, 4));
        const q = new Float32Array(4);
        await expect(index.search(q, { k: 3, filter: { colour: { eq: "red" } } })).rejects.toThrow(
          'filter field "colour" is not in the index; fields: sku, seller, price, sales, stock, rating',
        );
        await expect(index.search(q, { k: 3, filter: { seller: { gt: 3 } as never } })).rejects.toThrow(
          'filter field seller (string) has operator "gt"; allowed: eq, ne, in, notIn',
        );
        await expect(index.search(q, { k: 3, filter: { price: { lte: "10" as never } } })).rejects.toThrow(
          'filter price.lte has value "10"; expected a finite number',
        );
        await expect(index.search(q, { k: 0 })).rejects.toThrow("k = 0; expected an integer >= 1");
        await expect(index.search(new Float32Array(3), { k: 1 })).rejects.toThrow(
          "query has 3 values; the index has dim 4",
        );
        expect(await index.search(q, { k: 3, filter: { price: { in: [] } } })).toEqual([]);
      } finally {
        await index.close();
      }
    });
  });
}

const lanceRoot = await Deno.makeTempDir({ prefix: "index-contract-" });
let tables = 0;
contract(
  "lancedb",
  (metric, dim) =>
    openCatalogIndex({ backend: "lancedb", path: join(lanceRoot, "db"), name: `t${tables++}`, dim, metric }),
);
const qdrantUrl = Deno.env.get("QDRANT_URL");
contract(
  "qdrant",
  qdrantUrl
    ? (metric, dim) =>
      openCatalogIndex({
        backend: "qdrant",
        url: qdrantUrl,
        name: `contract_${tables++}`,
        dim,
        metric,
        overwrite: true,
      })
    : null,
);

describe("filter compilation", () => {
  it("compiles to LanceDB SQL and Qdrant JSON", () => {
    const filter: IndexFilter = {
      price: { gte: 70, lte: 130 },
      stock: { gt: 0 },
      seller: { ne: "o'brien" },
      sku: { notIn: ["a", "b"] },
    };
    expect(toLanceWhere(filter, ECONOMIC_SCHEMA)).toBe(
      "`price` >= 70 AND `price` <= 130 AND `stock` > 0 AND `seller` != 'o''brien' AND `sku` NOT IN ('a', 'b')",
    );
    expect(toQdrantFilter(filter, ECONOMIC_SCHEMA)).toEqual({
      must: [{ key: "price", range: { gte: 70, lte: 130 } }, { key: "stock", range: { gt: 0 } }],
      must_not: [
        { key: "seller", match: { value: "o'brien" } },
        { key: "sku", match: { any: ["a", "b"] } },
        { is_empty: { key: "seller" } },
        { is_null: { key: "seller" } },
        { is_empty: { key: "sku" } },
        { is_null: { key: "sku" } },
      ],
    });
    expect(() => toLanceWhere({ "price; DROP": { gt: 1 } }, ECONOMIC_SCHEMA)).toThrow('filter field "price; DROP"');
    expect(defaultSubVectors(462)).toBe(66);
    expect(defaultSubVectors(512)).toBe(64);
  });

  it("economicQueryFilter keeps what economicFilter keeps", () => {
    const rows = catalog(400, 2, 9);
    const a = rows.attributes;
    const candidates = rows.skus.map((sku, i) => ({
      sku,
      price: a.price[i] as number | null,
      balance: a.stock[i] as number | null,
      sales: a.sales[i] as number | null,
      rating: a.rating[i] as number | null,
    }));
    for (const price of [100, 63, null]) {
      const { mask } = economicFilter({ sku: "q", price }, candidates);
      const filter = economicQueryFilter({ price });
      const kept = candidates.map((c) =>
        matchesFilter(filter, (f) => f === "stock" ? c.balance : (c as Record<string, number | string | null>)[f])
          ? 1
          : 0
      );
      expect(kept).toEqual(Array.from(mask));
    }
    expect(() => economicQueryFilter({ price: 1 }, { priceTolerance: -1 })).toThrow("priceTolerance = -1");
  });
});

describe("demo-sized in-search filter", () => {
  it("2,000 x 462, 20 queries, k=10: in-search economic filter = exact search + post-filter", async () => {
    const rows = catalog(2_000, 462, 11);
    const index = await openCatalogIndex({ backend: "lancedb", path: join(lanceRoot, "demo"), dim: 462 });
    try {
      await index.upsert(rows);
      const info = await index.build();
      expect(info.vectorIndex).toBe("flat");
      const a = rows.attributes;
      for (let q = 0; q < 20; q++) {
        const r = q * 97;
        const query = rows.vectors.subarray(r * 462, (r + 1) * 462);
        const filter = economicQueryFilter(
          { price: a.price[r] as number | null, sku: rows.skus[r], seller: a.seller[r] as string | null },
          { minRating: 4.0 },
        );
        const inSearch = await index.search(query, { k: 10, filter });
        const all = exactSearch(rows, query, { k: rows.skus.length });
        const post = all.filter((h) => {
          const i = Number(h.sku.slice(4));
          return matchesFilter(filter, (f) => f === "sku" ? h.sku : a[f][i] as number | string | null);
        }).slice(0, 10);
        expectSameHits(inSearch, post, `demo query ${q}`);
        if (a.price[r] !== null) expect(inSearch.length).toBe(10);
      }
    } finally {
      await index.close();
    }
  });
});

describe("lancedb: attributes that are all missing", () => {
  it("returns no hits (not an error) when the filter needs a value no row has", async () => {
    const rows = catalog(50, 8, 3);
    const index = await openCatalogIndex({ backend: "lancedb", path: join(lanceRoot, "nulls"), dim: rows.dim });
    try {
      const none = Array.from({ length: 50 }, () => null);
      await index.upsert({ skus: rows.skus, vectors: rows.vectors, attributes: { price: none, stock: none } });
      await index.build();
      const query = rows.vectors.slice(0, rows.dim);
      expect(await index.search(query, { k: 5, filter: { price: { gte: 10, lte: 20 } } })).toEqual([]);
      expect((await index.search(query, { k: 5 })).length).toBe(5);
    } finally {
      await index.close();
    }
  });
});
