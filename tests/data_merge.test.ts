import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import sharp from "sharp";
import pl from "nodejs-polars";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ANALYTICS_COLUMNS, CRAWLER_COLUMNS, normalizeColumnName } from "../lib/data/columns.ts";
import { datasetLayout } from "../lib/data/layout.ts";
import { makeDataset } from "../lib/data/make_dataset.ts";
import { imageNameFromUrl, mergeSources, parseNumber } from "../lib/data/merge.ts";
import { type Cell, readSourceTable, writeCsv, writeXlsx } from "../lib/data/source_table.ts";

let root = "";
before(async () => {
  root = await Deno.makeTempDir({ prefix: "data_merge_" });
});
after(async () => {
  await Deno.remove(root, { recursive: true });
});

describe("column names and values", () => {
  it("normalises the real exports' headers", () => {
    expect(["Sku", "CoverImage", "Balance FBS", "card link", "SKU", "Warehouses count"].map(normalizeColumnName))
      .toEqual(["sku", "cover_image", "balance_fbs", "card_link", "sku", "warehouses_count"]);
    expect(CRAWLER_COLUMNS.length).toBe(19);
    expect(ANALYTICS_COLUMNS.length).toBe(42);
  });
  it("parses numbers leniently and flags garbage", () => {
    expect(parseNumber("1 234,50 ₽")).toBe(1234.5);
    expect(parseNumber(12)).toBe(12);
    expect(parseNumber("")).toBe(null);
    expect(parseNumber("n/a")).toBe(undefined);
    expect(parseNumber("12abc")).toBe(undefined);
  });
  it("takes the image name from the URL", () => {
    expect(imageNameFromUrl("https://cdn1.ozone.ru/s3/multimedia-x/7012345678.jpg")).toBe("7012345678.jpg");
    expect(imageNameFromUrl("file:///tmp/a/6000000001.jpg")).toBe("6000000001.jpg");
    expect(imageNameFromUrl("not a url")).toBe(null);
  });
});

describe("xlsx and csv", () => {
  it("round-trips rows through .xlsx and .csv", async () => {
    const rows: Record<string, Cell>[] = [
      { Sku: 123456789, Description: 'Карта, "мира"\nвторая строка', Price: 99.5 },
      { Sku: 987654321, Description: null, Price: 0 },
    ];
    const xlsx = join(root, "rt.xlsx");
    await writeXlsx(xlsx, ["Sku", "Description", "Price"], rows);
    const back = await readSourceTable(xlsx);
    expect(back.columns).toEqual(["Sku", "Description", "Price"]);
    expect(back.rows).toEqual(rows);
    const csv = join(root, "rt.csv");
    await writeCsv(csv, ["Sku", "Description", "Price"], rows);
    const csvBack = await readSourceTable(csv);
    expect(csvBack.rows.map((r) => r.Description)).toEqual([rows[0].Description, null]);
    expect(csvBack.rows.map((r) => Number(r.Price))).toEqual([99.5, 0]);
  });
});

/** A hand-made export pair in the real column names (3 products, with problems on purpose). */
function handMade(
  imageUrl: (name: string) => string,
): { crawler: Record<string, Cell>[]; analytics: Record<string, Cell>[] } {
  const fill = (sku: Cell, image: string, description: string): Record<string, Cell> => ({
    ...Object.fromEntries(CRAWLER_COLUMNS.map((c) => [c, null])),
    Sku: sku,
    CoverImage: image,
    Description: description,
  });
  const analyticsRow = (sku: Cell, name: string, seller: string, balance: Cell, fbs: Cell, price: Cell) => ({
    ...Object.fromEntries(ANALYTICS_COLUMNS.map((c) => [c, null])),
    "SKU": sku,
    "Name": name,
    "Seller": seller,
    "Balance": balance,
    "Balance FBS": fbs,
    "Final price": price,
  });
  return {
    crawler: [
      fill(111111111, imageUrl("7000000001.jpg"), "Политическая карта мира 100x70 см"),
      fill("222222222", imageUrl("7000000002.jpg"), "Глобус"),
      fill(333333333, imageUrl("7000000003.jpg"), "Атлас"),
      fill(111111111, imageUrl("7000000009.jpg"), "дубликат"),
    ],
    analytics: [
      analyticsRow(111111111, "Карта мира политическая 100x70", "ИНТЕРТРЕЙД", 5, 2, "1 290 ₽"),
      analyticsRow(222222222, "Глобус 32 см", "ГеоМаркет", 3, null, "n/a"),
      analyticsRow(333333333, "Атлас 5 класс", "ГеоМаркет", null, null, 300),
      analyticsRow(222222222, "Глобус 32 см (дубль)", "Другой", 1, 1, 1),
      analyticsRow("abc", "без SKU", "X", 1, 1, 1),
    ],
  };
}

describe("merge on a hand-made export in the real layout", () => {
  it("errors naming the missing columns", () => {
    expect(() =>
      mergeSources(
        { path: "crawler.xlsx", columns: ["Sku", "Description"], rows: [] },
        { path: "analytics.xlsx", columns: ["SKU", "Name", "Seller", "Balance", "Balance FBS"], rows: [] },
      )
    ).toThrow(/crawler.xlsx: missing required column\(s\) cover_image/);
  });

  it("runs make_OZ_geo_5500 end to end: merge, report problems, download, write parquet and csv", async () => {
    const dataset = "hand_made";
    const layout = datasetLayout(dataset, root);
    const host = join(root, "host");
    await Deno.mkdir(host, { recursive: true });
    const jpeg = new Uint8Array(
      await sharp({ create: { width: 20, height: 20, channels: 3, background: "#888" } }).jpeg().toBuffer(),
    );
    await Deno.writeFile(join(host, "7000000001.jpg"), jpeg);
    await Deno.writeFile(join(host, "7000000002.jpg"), jpeg);
    await Deno.writeFile(join(host, "7000000003.jpg"), new TextEncoder().encode("not a jpeg"));
    const { crawler, analytics } = handMade((name) => pathToFileURL(join(host, name)).href);
    await writeXlsx(join(layout.sourceDir, "Ozon crawler export.xlsx"), CRAWLER_COLUMNS, crawler);
    await writeXlsx(join(layout.sourceDir, "mpstats_analytics.xlsx"), ANALYTICS_COLUMNS, analytics);

    const result = await makeDataset({ dataset, root, retries: 0 });
    expect(result.counts).toMatchObject({ merged: 3, imagesOk: 2, imagesFailed: 1, kept: 2 });
    const problems = result.issues.map((i) => `${i.source}:${i.sku}:${i.column}:${i.problem}`);
    expect(problems).toEqual(expect.arrayContaining([
      "Ozon crawler export.xlsx:111111111:sku:duplicate SKU",
      "mpstats_analytics.xlsx:222222222:sku:duplicate SKU",
      "mpstats_analytics.xlsx::sku:SKU is empty or not an integer",
      "mpstats_analytics.xlsx:222222222:final_price:not a number",
    ]));
    const table = pl.readParquet(layout.processedParquet);
    expect(table.columns.length).toBe(46);
    const rows = table.toRecords() as Record<string, unknown>[];
    expect(rows.map((r) => r.sku)).toEqual(["111111111", "222222222"]);
    expect(rows[0]).toMatchObject({
      final_price: 1290,
      balance_fbo: 5,
      balance_fbs: 2,
      balance: 7,
      image_name: "7000000001.jpg",
    });
    expect(rows[1]).toMatchObject({ final_price: null, balance: 3, description: "Глобус" });
    expect(await Deno.stat(join(layout.imagesDir, "7000000001.jpg"))).toBeTruthy();
    const csv = await readSourceTable(layout.processedCsv);
    expect(csv.rows.length).toBe(2);
    expect(pl.readParquet(layout.downloadReport).filter(pl.col("status").eq(pl.lit("failed"))).height).toBe(1);
  });

  it("says which export is missing from the source folder", async () => {
    const layout = datasetLayout("only_one", root);
    await writeXlsx(join(layout.sourceDir, "a.xlsx"), CRAWLER_COLUMNS, []);
    await expect(makeDataset({ dataset: "only_one", root })).rejects.toThrow(/no analytics export/);
  });
});
