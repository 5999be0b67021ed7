import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { DEMO_LISTINGS, DEMO_QUERIES, generateCatalog, QUERY_SELLER } from "../lib/data/demo_catalog.ts";
import { generateDemoMarketplace, imageUrl } from "../lib/data/demo_marketplace.ts";
import { demoRules } from "../lib/data/demo_rules.ts";
import { shippedRulesPath } from "../lib/data/layout.ts";
import { loadRules } from "../lib/data/rules.ts";
import { readSourceTable } from "../lib/data/source_table.ts";
import { makeDataset } from "../lib/data/make_dataset.ts";
import { makeSplits, runPairwiseLabelling } from "../lib/data/pairwise.ts";
import { splitOverlaps } from "../lib/data/pairs.ts";
import { readGroundTruth, scoreLabeller } from "../lib/data/score.ts";

let root = "";
before(async () => {
  root = await Deno.makeTempDir({ prefix: "data_demo_" });
});
after(async () => {
  await Deno.remove(root, { recursive: true });
});

async function digest(path: string): Promise<string> {
  const hash = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, "0")).join("");
}

describe("demo catalogue", () => {
  it("is deterministic for a seed and differs across seeds", () => {
    expect(generateCatalog({ seed: 5, listings: 300 })).toEqual(generateCatalog({ seed: 5, listings: 300 }));
    expect(generateCatalog({ seed: 6, listings: 300 }).listings[0]).not.toEqual(
      generateCatalog({ seed: 5, listings: 300 }).listings[0],
    );
  });

  it("has DEMO_QUERIES query products of ИНТЕРТРЕЙД, each listed by other sellers, with hard-negative variants", () => {
    const catalog = generateCatalog();
    expect(catalog.listings.length).toBe(DEMO_LISTINGS);
    expect(catalog.querySkus.length).toBe(DEMO_QUERIES);
    const productOf = new Map(catalog.listings.map((l) => [l.sku, l.productId]));
    const families = new Map(catalog.products.map((p) => [p.productId, p.familyId]));
    let withTwoVariants = 0;
    for (const sku of catalog.querySkus) {
      const product = productOf.get(sku)!;
      const others = catalog.listings.filter((l) => l.productId === product && l.seller !== QUERY_SELLER);
      expect(others.length).toBeGreaterThanOrEqual(3);
      const variants = catalog.products.filter((p) => p.familyId === families.get(product) && p.productId !== product);
      expect(variants.length).toBeGreaterThanOrEqual(1);
      if (variants.length >= 2) withTwoVariants += 1;
    }
    expect(withTwoVariants / catalog.querySkus.length).toBeGreaterThanOrEqual(0.9);
  });

  it("ships rules for exactly the default seed's queries", async () => {
    const shipped = await loadRules(shippedRulesPath("demo_geo"));
    const catalog = generateCatalog();
    expect([...shipped.queries.keys()].sort()).toEqual(catalog.querySkus.map(String).sort());
    const onDisk = JSON.parse(await Deno.readTextFile(shippedRulesPath("demo_geo")));
    expect(onDisk).toEqual(JSON.parse(JSON.stringify(demoRules(catalog))));
  });
});

describe("demo marketplace files", () => {
  it("writes the real layout deterministically, and the pipeline runs on it with zero split overlap", async () => {
    const options = { seed: 3, products: 200, queries: 6, brokenImages: 2 };
    const a = await generateDemoMarketplace({
      ...options,
      outDir: join(root, "a"),
      imageBaseUrl: "http://images.test/img",
    });
    const b = await generateDemoMarketplace({ ...options, outDir: join(root, "b"), dataRoot: join(root, "b") });
    expect(a.listings).toBe(200);
    expect(a.missingImages).toEqual(b.missingImages);
    const crawlerA = await readSourceTable(a.crawlerPath);
    const crawlerB = await readSourceTable(b.crawlerPath);
    expect(crawlerA.columns.length).toBe(19);
    expect((await readSourceTable(a.analyticsPath)).columns.length).toBe(42);
    expect(crawlerA.rows.map((r) => r.Description)).toEqual(crawlerB.rows.map((r) => r.Description));
    expect(String(crawlerA.rows[0].CoverImage)).toMatch(/^http:\/\/images\.test\/img\/\d+\.jpg$/);
    // Paths relative to the data folder, not file:// URLs of the machine that generated them.
    expect(String(crawlerB.rows[0].CoverImage)).toMatch(/^tables_demo_geo\/source_images\/\d+\.jpg$/);
    const image = String(crawlerB.rows[0].CoverImage).split("/").at(-1)!;
    const imagesA = join(root, "a", "tables_demo_geo", "source_images", image);
    const imagesB = join(root, "b", "tables_demo_geo", "source_images", image);
    expect(await digest(imagesA)).toBe(await digest(imagesB));

    // The data folder can move: its exports still find their images.
    const moved = join(root, "moved");
    await Deno.rename(join(root, "b"), moved);
    const made = await makeDataset({ dataset: "demo_geo", root: moved, retries: 0 });
    expect(made.counts.imagesFailed).toBe(4);
    const rulesPath = join(root, "rules.json");
    await Deno.writeTextFile(
      rulesPath,
      JSON.stringify(demoRules(generateCatalog({ seed: 3, listings: 200, queries: 6 }))),
    );
    const labelled = await runPairwiseLabelling({ dataset: "demo_geo", root: moved, rulesPath });
    expect(labelled.queries.filter((q) => q.has_rule).length).toBe(6);
    const score = scoreLabeller(labelled.queries, readGroundTruth(labelled.layout.groundTruth), labelled.candidateSkus);
    expect(score.truePositives).toBeGreaterThan(0);
    const split = await makeSplits({
      dataset: "demo_geo",
      root: moved,
      ratios: [0.6, 0.2, 0.2],
      seed: 1,
      posNegRatio: 1,
      hardSoftRatio: 0.5,
      maxPositivePairsPerQuery: 30,
    });
    expect(splitOverlaps(split.splits).map((o) => o.shared_skus)).toEqual([0, 0, 0]);
    expect(split.files.length).toBe(8);
  });

  it("builds image URLs from a base URL", () => {
    expect(imageUrl("http://localhost:8000/images/", "123.jpg")).toBe("http://localhost:8000/images/123.jpg");
  });
});
