/**
 * Importing labelled product pairs (lib/data/import_pairs.ts): each source format, given splits kept,
 * the leak-free split otherwise, images and the placeholder, and every bad-input case. Fixtures are tiny
 * tables written into a temp folder by the tests.
 */
import { describe, it } from "node:test";
import { expect } from "expect";
import pl from "nodejs-polars";
import sharp from "sharp";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { importPairs, type ImportPairsOptions, parseLabel, parsePrice } from "../lib/data/import_pairs.ts";
import { readImportedSplits, readImportManifest } from "../lib/data/imported_dataset.ts";
import { readPairTable } from "../lib/data/pair_tables.ts";
import { splitOverlaps } from "../lib/data/pairs.ts";
import { readPairSet, readQueryCandidateSet } from "../lib/eval/inputs.ts";
import { productRecords } from "../lib/train/session.ts";
import { loadTokenizer } from "../lib/text/tokenizer.ts";

type Row = Record<string, string | number | boolean | null>;

function side(id: string, title: string | null, extra: Row = {}): Row {
  return { id, title, description: `${title ?? ""} description`, brand: "None", price: "10.50", ...extra };
}

/** A wide pair row from two sides. */
function pair(left: Row, right: Row, label: number | string, more: Row = {}): Row {
  const row: Row = {};
  for (const [k, v] of Object.entries(left)) row[`${k}_left`] = v;
  for (const [k, v] of Object.entries(right)) row[`${k}_right`] = v;
  return { ...row, label, pair_id: `${left.id}#${right.id}`, ...more };
}

const A = side("1", "Samsung Galaxy A52 128GB black", { cluster_id: "c1" });
const B = side("2", "Galaxy A52 Samsung 128 GB", { cluster_id: "c1" });
const C = side("3", "Xiaomi Redmi Note 10", { cluster_id: "c2", brand: "Xiaomi" });
const D = side("4", "Redmi Note 10 Pro Xiaomi", { cluster_id: "c2" });
const E = side("5", "Seagate IronWolf 4TB", { cluster_id: "c3", price: "None" });
const F = side("6", "WD Red 4TB NAS", { cluster_id: "c4" });
const G = side("7", "Кабель USB-C белый", { cluster_id: "c5" });
const H = side("8", "Кабель USB-C белый 1 м", { cluster_id: "c5" });

async function writeJsonlGz(path: string, rows: Row[]): Promise<string> {
  await Deno.writeFile(path, gzipSync(new TextEncoder().encode(rows.map((r) => JSON.stringify(r)).join("\n") + "\n")));
  return path;
}

async function writeCsvFile(path: string, rows: Row[]): Promise<string> {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const quote = (v: unknown) => v === null || v === undefined ? "" : `"${String(v).replaceAll('"', '""')}"`;
  await Deno.writeTextFile(
    path,
    [columns.join(","), ...rows.map((r) => columns.map((c) => quote(r[c])).join(","))].join("\n") + "\n",
  );
  return path;
}

async function writeParquetFile(path: string, rows: Row[]): Promise<string> {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const frame = pl.DataFrame(columns.map((c) => {
    const values = rows.map((r) => r[c] ?? null);
    return typeof values.find((v) => v !== null) === "number"
      ? pl.Series(c, values as (number | null)[], pl.Int64)
      : pl.Series(c, values.map((v) => (v === null ? null : String(v))), pl.Utf8);
  }));
  await Deno.writeFile(path, new Uint8Array(frame.writeParquet()));
  return path;
}

const WIDE_FIELDS = { id: "id", name: "title", description: "description", brand: "brand", price: "price" };

async function tempRoot(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "import-pairs-" });
}

function readTable(path: string): Record<string, unknown>[] {
  return pl.readParquet(path).toRecords() as Record<string, unknown>[];
}

describe("pair tables", () => {
  it("reads JSON lines, CSV and parquet as text, with missing markers as null", async () => {
    const dir = await tempRoot();
    const rows: Row[] = [{ id: "007", title: "None", n: 3 }, { id: "8", title: "ok", n: null }];
    for (
      const path of [
        await writeJsonlGz(join(dir, "t.jsonl.gz"), rows),
        await writeCsvFile(join(dir, "t.csv"), rows),
        await writeParquetFile(join(dir, "t.parquet"), [{ id: "007", title: "None", n: 3 }, {
          id: "8",
          title: "ok",
          n: null,
        }]),
      ]
    ) {
      const table = await readPairTable(path);
      expect(table.columns).toEqual(["id", "title", "n"]);
      expect(table.rows).toEqual([{ id: "007", title: null, n: "3" }, { id: "8", title: "ok", n: null }]);
    }
    await expect(readPairTable(join(dir, "t.xlsx"))).rejects.toThrow(/t\.xlsx: unknown table format/);
    await Deno.writeTextFile(join(dir, "bad.jsonl"), '{"id": 1}\n{oops\n');
    await expect(readPairTable(join(dir, "bad.jsonl"))).rejects.toThrow(/bad\.jsonl: line 2 is not valid JSON/);
  });

  it("parses labels and prices strictly", () => {
    expect(parseLabel("1", "f.csv row 3", "label")).toBe(1);
    expect(parseLabel("0.0", "f.csv row 3", "label")).toBe(0);
    expect(() => parseLabel("2", "f.csv row 3", "label")).toThrow(/f\.csv row 3: label "2" \(column "label"\)/);
    expect(() => parseLabel(null, "f.csv row 4", "match")).toThrow(/row 4: label is missing \(column "match"\)/);
    expect(parsePrice("154.10")).toBe(154.1);
    expect(parsePrice("€ 198,00")).toBe(198);
    expect(parsePrice("5,200.00")).toBe(5200);
    expect(parsePrice("1.299,90 EUR")).toBe(1299.9);
    expect(parsePrice("2.099E1")).toBe(20.99);
    expect(parsePrice("call us")).toBe(null);
  });
});

describe("importPairs: wide tables with given splits", () => {
  it("imports gzipped JSON lines, one file per split, keeping the splits as given", async () => {
    const root = await tempRoot();
    const train = await writeJsonlGz(join(root, "train.json.gz"), [
      pair(A, B, 1, { is_hard_negative: false }),
      pair(A, C, 0, { is_hard_negative: true }),
      pair(B, F, 0, { is_hard_negative: false }),
    ]);
    const soft = { is_hard_negative: "None" };
    const valid = await writeJsonlGz(join(root, "valid.json.gz"), [pair(C, D, 1, soft), pair(C, E, 0, soft)]);
    const seen = await writeJsonlGz(join(root, "gs_seen.json.gz"), [pair(A, B, 1, soft), pair(B, C, 0, soft)]);
    const unseen = await writeJsonlGz(join(root, "gs_unseen.json.gz"), [pair(G, H, 1, soft), pair(G, E, 0, soft)]);
    const result = await importPairs({
      dataset: "wide_given",
      root,
      source: {
        kind: "wide",
        files: [
          { path: train, split: "train" },
          { path: valid, split: "valid" },
          { path: seen, split: "test" },
          { path: unseen, split: "test_unseen" },
        ],
      },
      fields: { ...WIDE_FIELDS, cluster: "cluster_id" },
      columns: { hardNegative: "is_hard_negative" },
    });
    const m = result.manifest;
    expect(m.splitMode).toBe("given");
    expect(m.splits.map((s) => [s.split, s.pairs, s.positives])).toEqual([
      ["train", 3, 1],
      ["val", 2, 1],
      ["test", 2, 1],
      ["test_unseen", 2, 1],
    ]);
    expect(m.products).toBe(8);
    expect(m.recommendedMode).toBe("text");
    // Given splits are kept even where they share products (A and B are in train and test).
    expect(m.overlaps.find((o) => o.a === "train" && o.b === "test")!.shared_skus).toBe(3);
    expect(await readImportManifest("wide_given", root)).toEqual(m);

    const products = readTable(result.layout.processedParquet);
    expect(products.map((p) => p.sku)).toEqual(["1", "2", "3", "4", "5", "6", "7", "8"]);
    const first = products[0];
    expect(first).toMatchObject({
      name: "Samsung Galaxy A52 128GB black",
      brand: null, // "None" is a missing value
      price: "10.50",
      final_price: 10.5,
      image_name: "_no_image.png",
      has_image: false,
      sales: null,
      balance: null,
      rating: null,
      seller: "left",
      source: "train.json.gz:1:left",
    });
    expect(products[4].final_price).toBe(null); // E's price is "None"
    expect(products[2].brand).toBe("Xiaomi");
    const placeholder = await sharp(result.layout.placeholderImage).raw().toBuffer({ resolveWithObject: true });
    expect([placeholder.info.width, placeholder.info.channels]).toEqual([32, 3]);
    expect([...placeholder.data.subarray(0, 3)]).toEqual([124, 116, 104]);

    const trainPairs = readPairSet(result.layout.splitsDir, "train");
    expect(trainPairs.skuLeft).toEqual(["1", "1", "2"]);
    expect(trainPairs.skuRight).toEqual(["2", "3", "6"]);
    expect([...trainPairs.labels]).toEqual([1, 0, 0]);
    expect(trainPairs.kinds).toEqual(["query-positive", "hard", "soft"]);
    expect(trainPairs.querySkus).toEqual(["1", "1", "2"]);
    const ranking = readQueryCandidateSet(result.layout.splitsDir, "test_unseen");
    expect(ranking.classes).toEqual(["positive", "soft"]);
    const splits = await readImportedSplits("wide_given", root);
    expect(splits.map((s) => s.split)).toEqual(["train", "val", "test", "test_unseen"]);
    expect(splitOverlaps(splits).find((o) => o.a === "val" && o.b === "test_unseen")!.shared_skus).toBe(1);

    // What the training and embedding notebooks read.
    const records = productRecords("wide_given", root);
    expect(records).toHaveLength(8);
    expect(records[0]).toEqual({
      sku: "1",
      name: "Samsung Galaxy A52 128GB black",
      description: "Samsung Galaxy A52 128GB black description",
      imagePath: result.layout.placeholderImage,
    });
  });

  it("imports CSV with a split column and keeps ids as written", async () => {
    const root = await tempRoot();
    const rows = [
      pair({ ...A, id: "001" }, { ...B, id: "002" }, 1, { split: "train" }),
      pair({ ...A, id: "001" }, { ...C, id: "003" }, 0, { split: "train" }),
      pair({ ...C, id: "003" }, { ...D, id: "004" }, 1, { split: "validation" }),
      pair({ ...E, id: "005" }, { ...F, id: "006" }, 0, { split: "test" }),
    ];
    const path = await writeCsvFile(join(root, "pairs.csv"), rows);
    const result = await importPairs({
      dataset: "csv_given",
      root,
      source: { kind: "wide", files: [{ path }] },
      fields: WIDE_FIELDS,
      columns: { split: "split" },
    });
    expect(result.manifest.splits.map((s) => s.split)).toEqual(["train", "val", "test"]);
    expect(readTable(result.layout.processedParquet).map((p) => p.sku)).toEqual([
      "001",
      "002",
      "003",
      "004",
      "005",
      "006",
    ]);
    const csv = await Deno.readTextFile(result.layout.processedCsv);
    expect(csv.split("\n")[0]).toContain("sku,name,description,brand");
  });
});

describe("importPairs: the leak-free split when none is given", () => {
  it("splits parquet pairs by entity, so no product is in two splits", async () => {
    const root = await tempRoot();
    const products = Array.from(
      { length: 60 },
      (_, i) => side(`p${i}`, `product ${i} model ${i % 7}`, { cluster_id: `e${Math.floor(i / 3)}` }),
    );
    const rows: Row[] = [];
    for (let e = 0; e < 20; e++) {
      const [a, b, c] = products.slice(3 * e, 3 * e + 3);
      rows.push(pair(a, b, 1), pair(b, c, 1), pair(a, products[(3 * e + 7) % 60], 0));
    }
    const path = await writeParquetFile(join(root, "pairs.parquet"), rows);
    const result = await importPairs({
      dataset: "leakfree",
      root,
      source: { kind: "wide", files: [{ path }] },
      fields: { ...WIDE_FIELDS, cluster: "cluster_id" },
      seed: 7,
    });
    expect(result.manifest.splitMode).toBe("leak-free");
    expect(result.manifest.splits.map((s) => s.split)).toEqual(["train", "val", "test"]);
    expect(result.manifest.overlaps.every((o) => o.shared_skus === 0)).toBe(true);
    const splits = await readImportedSplits("leakfree", root);
    expect(splitOverlaps(splits).every((o) => o.shared_skus === 0)).toBe(true);
    // Every positive is kept, and each entity (cluster) sits in one split.
    const kept = splits.flatMap((s) => s.pairs);
    expect(kept.filter((p) => p.label === 1)).toHaveLength(40);
    const splitOf = new Map<string, string>();
    for (const s of splits) for (const sku of s.skus) splitOf.set(sku, s.split);
    for (let e = 0; e < 20; e++) {
      expect(new Set([0, 1, 2].map((k) => splitOf.get(`p${3 * e + k}`))).size).toBe(1);
    }
    // Each negative either stayed inside one split or was dropped and reported.
    const dropped = result.issues.filter((i) => i.kind === "cross-split-pair").length;
    expect(kept.filter((p) => p.label === 0).length + dropped).toBe(20);
    expect(result.manifest.splits[0].pairs).toBeGreaterThan(result.manifest.splits[2].pairs);
  });
});

describe("importPairs: record tables plus a pair list", () => {
  it("joins two record tables to the pairs, copies images and gives the others the placeholder", async () => {
    const root = await tempRoot();
    const src = join(root, "src");
    await Deno.mkdir(join(src, "img"), { recursive: true });
    await sharp({ create: { width: 8, height: 6, channels: 3, background: { r: 200, g: 10, b: 10 } } }).png()
      .toFile(join(src, "img", "a1.png"));
    await Deno.writeTextFile(join(src, "img", "broken.jpg"), "not an image");
    const left = await writeCsvFile(join(src, "shop_a.csv"), [
      { pid: "1", name: "Кофемашина DeLonghi Magnifica", text: "автоматическая", picture: "img/a1.png" },
      { pid: "2", name: "Чайник Bosch 1.7 л", text: "None", picture: "img/broken.jpg" },
    ]);
    const right = await writeJsonlGz(join(src, "shop_b.jsonl.gz"), [
      { pid: "1", name: "DeLonghi Magnifica S coffee machine", text: "automatic", picture: null },
      { pid: "9", name: "Bosch kettle 1.7 l", text: null, picture: null },
    ]);
    const pairs = await writeCsvFile(join(src, "matches.csv"), [
      { id_left: "1", id_right: "1", label: 1, split: "train" },
      { id_left: "2", id_right: "9", label: 1, split: "test" },
      { id_left: "2", id_right: "1", label: 0, split: "train" },
    ]);
    const result = await importPairs({
      dataset: "records",
      root,
      source: {
        kind: "records",
        records: { left: [left], right: [right], leftPrefix: "a:", rightPrefix: "b:" },
        pairs: [{ path: pairs }],
      },
      fields: { id: "pid", name: "name", description: "text", image: "picture" },
      columns: { split: "split" },
    });
    const products = readTable(result.layout.processedParquet);
    expect(products.map((p) => [p.sku, p.has_image, p.seller])).toEqual([
      ["a:1", true, "left"],
      ["a:2", false, "left"],
      ["b:1", false, "right"],
      ["b:9", false, "right"],
    ]);
    expect(products[1].description).toBe(null);
    expect(products[1].image_name).toBe("_no_image.png");
    const image = await sharp(join(result.layout.imagesDir, String(products[0].image_name))).metadata();
    expect([image.width, image.height]).toEqual([8, 6]);
    const failed = result.issues.filter((i) => i.kind === "image-failed");
    expect(failed.map((i) => i.id)).toEqual(["a:2"]);
    expect(result.manifest.productsWithImage).toBe(1);
    expect(result.manifest.recommendedMode).toBe("full");
    const train = readPairSet(result.layout.splitsDir, "train");
    expect(train.skuLeft).toEqual(["a:1", "a:2"]);
    expect(train.skuRight).toEqual(["b:1", "b:1"]);
    const issues = readTable(result.layout.importIssues);
    expect(issues.map((i) => i.kind)).toEqual(["image-failed"]);
  });

  it("names a pair-list id that no record table holds", async () => {
    const root = await tempRoot();
    const records = await writeCsvFile(join(root, "records.csv"), [{ id: "1", title: "x" }, { id: "2", title: "y" }]);
    const pairs = await writeCsvFile(join(root, "pairs.csv"), [
      { id_left: "1", id_right: "2", label: 1 },
      { id_left: "1", id_right: "3", label: 0 },
    ]);
    await expect(importPairs({
      dataset: "records_bad",
      root,
      source: { kind: "records", records: { left: [records] }, pairs: [{ path: pairs }] },
      fields: { id: "id", name: "title" },
    })).rejects.toThrow(/pairs\.csv row 2: right product "3" \(column "id_right"\) is not in .*records\.csv/);
  });
});

describe("importPairs: bad input", () => {
  const wide = (root: string, path: string, extra: Partial<ImportPairsOptions> = {}): ImportPairsOptions => ({
    dataset: "bad",
    root,
    source: { kind: "wide", files: [{ path, split: "train" }] },
    fields: WIDE_FIELDS,
    ...extra,
  });

  it("names the missing columns and the file", async () => {
    const root = await tempRoot();
    const rows = [pair(A, B, 1)].map((r) => {
      const { description_right: _d, ...rest } = r;
      return rest;
    });
    const path = await writeJsonlGz(join(root, "no_desc.jsonl.gz"), rows);
    await expect(importPairs(wide(root, path))).rejects.toThrow(
      /no_desc\.jsonl\.gz: missing column\(s\) "description_right" needed for the pairs/,
    );
    const noLabel = await writeCsvFile(join(root, "no_label.csv"), [pair(A, B, 1)].map(({ label: _l, ...r }) => r));
    await expect(importPairs(wide(root, noLabel))).rejects.toThrow(/no_label\.csv: missing column\(s\) "label"/);
    await expect(importPairs(wide(root, path, { fields: { id: "id", title: "title" } as never }))).rejects.toThrow(
      /unknown field\(s\) title; allowed: id, name, description/,
    );
  });

  it("rejects a label other than 0/1, naming the file and row", async () => {
    const root = await tempRoot();
    const path = await writeCsvFile(join(root, "labels.csv"), [pair(A, B, 1), pair(A, C, 0), pair(B, C, 2)]);
    await expect(importPairs(wide(root, path))).rejects.toThrow(/labels\.csv row 3: label "2" \(column "label"\)/);
    const yes = await writeJsonlGz(join(root, "labels.jsonl.gz"), [pair(A, B, "yes")]);
    await expect(importPairs(wide(root, yes))).rejects.toThrow(/labels\.jsonl\.gz row 1: label "yes"/);
  });

  it("reports ids whose records conflict (which id, which fields, which rows), or throws when asked", async () => {
    const root = await tempRoot();
    const path = await writeCsvFile(join(root, "conflict.csv"), [
      pair(A, B, 1),
      pair({ ...A, title: "Samsung Galaxy A52 (other title)", price: "11.00" }, C, 0),
      pair(A, D, 0),
      pair(B, { ...A, brand: "Samsung" }, 1),
    ]);
    const result = await importPairs(wide(root, path));
    expect(result.conflicts).toHaveLength(1);
    const conflict = result.conflicts[0];
    expect(conflict.id).toBe("1");
    expect(Object.keys(conflict.values)).toEqual(["name", "price"]);
    expect(conflict.values.name).toEqual([
      {
        value: "Samsung Galaxy A52 128GB black",
        rows: ["conflict.csv:1:left", "conflict.csv:3:left", "conflict.csv:4:right"],
      },
      { value: "Samsung Galaxy A52 (other title)", rows: ["conflict.csv:2:left"] },
    ]);
    expect(conflict.rows).toEqual([
      "conflict.csv:1:left",
      "conflict.csv:2:left",
      "conflict.csv:3:left",
      "conflict.csv:4:right",
    ]);
    const product = readTable(result.layout.processedParquet).find((p) => p.sku === "1")!;
    expect(product.name).toBe("Samsung Galaxy A52 128GB black"); // the first record is kept
    expect(product.brand).toBe("Samsung"); // a missing value is filled, not a conflict
    const issue = readTable(result.layout.importIssues).find((i) => i.kind === "record-conflict")!;
    expect(issue).toMatchObject({ id: "1", fields: "name, price" });
    expect(String(issue.values)).toContain('price="11.00" (conflict.csv:2:left)');
    expect(result.manifest.issues["record-conflict"]).toBe(1);
    await expect(importPairs(wide(root, path, { onConflict: "error" }))).rejects.toThrow(
      /product 1: name differs between conflict\.csv:1:left \("Samsung Galaxy A52 128GB black"\) and conflict\.csv:2:left/,
    );
  });

  it("drops duplicate, self and contradictory pairs and reports them", async () => {
    const root = await tempRoot();
    const path = await writeCsvFile(join(root, "dups.csv"), [
      pair(A, B, 1),
      pair(B, A, 1),
      pair(C, D, 1),
      pair(D, C, 0),
      pair(E, E, 1),
      pair(E, F, 0),
    ]);
    const result = await importPairs(wide(root, path));
    const train = readPairSet(result.layout.splitsDir, "train");
    expect(train.skuLeft.map((l, i) => `${l}-${train.skuRight[i]}`)).toEqual(["1-2", "5-6"]);
    expect(result.issues.map((i) => i.kind).sort()).toEqual(["duplicate-pair", "pair-label-conflict", "self-pair"]);
    expect(result.issues.find((i) => i.kind === "pair-label-conflict")!.rows).toEqual(["dups.csv:3", "dups.csv:4"]);
  });

  it("refuses pairs where only some files give a split, and a missing id", async () => {
    const root = await tempRoot();
    const a = await writeCsvFile(join(root, "a.csv"), [pair(A, B, 1)]);
    const b = await writeCsvFile(join(root, "b.csv"), [pair(C, D, 1)]);
    await expect(importPairs({
      dataset: "mixed",
      root,
      source: { kind: "wide", files: [{ path: a, split: "train" }, { path: b }] },
      fields: WIDE_FIELDS,
    })).rejects.toThrow(/some pairs have a split and some do not.*with a split: .*a\.csv; without: .*b\.csv/);
    const noId = await writeCsvFile(join(root, "noid.csv"), [pair(A, { ...B, id: null }, 1)]);
    await expect(importPairs(wide(root, noId))).rejects.toThrow(
      /noid\.csv row 1: the product id \(column "id_right"\) is missing/,
    );
  });
});

describe("importPairs: a tokenizer from the training split", () => {
  it("learns WordPiece from training texts only and saves a folder the suite's loader reads", async () => {
    const root = await tempRoot();
    const train = await writeJsonlGz(join(root, "train.jsonl.gz"), [pair(A, B, 1), pair(G, H, 1), pair(A, G, 0)]);
    const test = await writeJsonlGz(join(root, "test.jsonl.gz"), [
      pair(side("20", "Zanzibarophone quixotry"), side("21", "Zanzibarophone quixotry deluxe"), 1),
    ]);
    const result = await importPairs({
      dataset: "with_tokenizer",
      root,
      source: { kind: "wide", files: [{ path: train, split: "train" }, { path: test, split: "test" }] },
      fields: WIDE_FIELDS,
      tokenizer: { vocabSize: 200 },
    });
    expect(result.manifest.tokenizer).toBe(result.layout.tokenizerDir);
    const tokenizer = await loadTokenizer(result.layout.tokenizerDir);
    expect(tokenizer.tokenize("кабель samsung")).toEqual(["кабель", "samsung"]);
    const vocab = (await Deno.readTextFile(join(result.layout.tokenizerDir, "vocab.txt"))).trim().split("\n");
    expect(vocab.slice(0, 5)).toEqual(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]);
    // Test-only words and letters never reach the vocabulary.
    expect(vocab.some((t) => /zanzibar|quix/.test(t))).toBe(false);
    expect(vocab).not.toContain("z");
    expect(vocab).not.toContain("q");
  });
});
