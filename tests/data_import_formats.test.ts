/**
 * Published entity-matching shapes (lib/data/formats/): Ditto lines, Magellan/DeepMatcher folders, pair
 * tables without record ids, mapping by name, entity columns dropped, detection, and malformed lines.
 * The fixtures are written here in each exact shape: a few dozen records whose records recur across the
 * train/valid/test pair splits (as in the published benchmarks), with one malformed line.
 */
import { describe, it } from "node:test";
import { expect } from "expect";
import pl from "nodejs-polars";
import { join } from "node:path";
import { importPairs } from "../lib/data/import_pairs.ts";
import { splitProtocol } from "../lib/data/pairwise.ts";
import { attributesText, readImportedSplits } from "../lib/data/imported_dataset.ts";
import { productRecords } from "../lib/train/session.ts";
import { parseDittoEntity, readDitto } from "../lib/data/formats/ditto.ts";
import { readMagellan } from "../lib/data/formats/magellan.ts";
import { detectPairFormat } from "../lib/data/formats/detect.ts";
import { mapFieldsByName } from "../lib/data/formats/field_names.ts";
import { recordIdFromValues } from "../lib/data/formats/shape.ts";
import { record, splitPairs, writeDittoFixture, writeMagellanFixture } from "./format_fixtures.ts";
import { importOptionsFromParams, type ImportParams, importSummary, pairFormatOf } from "../lib/data/import_params.ts";

const tempDir = (prefix: string) => Deno.makeTempDir({ prefix });

function products(path: string): Record<string, unknown>[] {
  return pl.readParquet(path).toRecords() as Record<string, unknown>[];
}

describe("Ditto lines", () => {
  it("reads an entity's attributes, empty values as missing", () => {
    expect(parseDittoEntity("COL title VAL sony bravia 40  COL price VAL 499.0 COL brand VAL ")).toEqual({
      title: "sony bravia 40",
      price: "499.0",
      brand: null,
    });
    expect(parseDittoEntity("title sony")).toMatch(/expected an entity starting "COL <attribute> VAL"/);
  });

  it("stops at a malformed line naming the file and line, or skips it when allowed", async () => {
    const dir = await writeDittoFixture(await tempDir("ditto-"));
    await expect(readDitto([{ path: dir }])).rejects.toThrow(
      `${join(dir, "valid.txt")} line 4: expected 3 tab-separated fields (left entity, right entity, label), got 2`,
    );
    const content = await readDitto([{ path: dir }], { skipMalformed: true });
    expect(content.skipped).toEqual([expect.objectContaining({ file: join(dir, "valid.txt"), line: 4 })]);
    expect(content.pairs.length).toBe(2 * (6 + 3 + 3));
    expect(content.attributes).toEqual(["title", "manufacturer", "price", "modelno"]);
    // A record recurring in two splits has one id.
    const id = recordIdFromValues("right", record(6, "right"));
    expect(new Set(content.pairs.filter((p) => p.right === id).map((p) => p.split))).toEqual(
      new Set(["train", "valid"]),
    );
  });

  it("imports into the layout: ids from values, attributes by name, the given splits, the skipped line listed", async () => {
    const dir = await writeDittoFixture(await tempDir("ditto-"));
    const root = await tempDir("ditto-root-");
    const result = await importPairs({
      dataset: "ditto_fixture",
      root,
      source: { kind: "ditto", files: [{ path: dir }] },
      skipMalformed: true,
    });
    const m = result.manifest;
    expect(result.format).toBe("ditto");
    expect(m.splitMode).toBe("given");
    expect(m.splits.map((s) => [s.split, s.pairs, s.positives])).toEqual([["train", 12, 6], ["val", 6, 3], [
      "test",
      6,
      3,
    ]]);
    expect(m.recordsPerSide).toEqual({ left: 12, right: 12 });
    expect(m.derivedIds).toBe(true);
    expect(m.fields).toMatchObject({ id: null, name: "title", brand: "manufacturer", price: "price" });
    expect(m.attributes).toEqual(["modelno"]);
    expect(m.skippedLines).toBe(1);
    expect(m.issues["malformed-line"]).toBe(1);
    expect(result.issues.find((i) => i.kind === "malformed-line")!.rows[0]).toMatch(/valid\.txt:4$/);
    expect(m.overlaps.find((o) => o.a === "train" && o.b === "val")!.shared_skus).toBeGreaterThan(0);
    const rows = products(result.layout.processedParquet);
    const sony = rows.find((r) => r.sku === recordIdFromValues("left", record(0, "left")))!;
    expect(sony).toMatchObject({ name: "sony bravia tv so100", brand: "sony", final_price: 20, seller: "left" });
    expect(JSON.parse(String(sony.attributes))).toEqual({ modelno: "so100" });
    const right = rows.find((r) => r.sku === recordIdFromValues("right", record(0, "right")))!;
    expect(right.brand).toBe(null); // "COL manufacturer VAL " is missing, not ""
    expect(importSummary(m, { format: "ditto", reason: "Ditto lines", detected: true })).toContain(
      "format **ditto** (detected: Ditto lines); distinct records: 12 left, 12 right (ids derived",
    );
    const splits = await readImportedSplits("ditto_fixture", root);
    expect(splits.map((s) => s.pairs.length)).toEqual([12, 6, 6]);
  });
});

describe("Magellan/DeepMatcher folders", () => {
  it("imports both tables and the three pair lists as the given splits, the entity column dropped", async () => {
    const dir = await writeMagellanFixture(await tempDir("magellan-"));
    const root = await tempDir("magellan-root-");
    const result = await importPairs({ dataset: "magellan_fixture", root, source: { kind: "magellan", dir } });
    const m = result.manifest;
    expect(result.format).toBe("magellan");
    expect(m.splits.map((s) => [s.split, s.pairs])).toEqual([["train", 12], ["val", 6], ["test", 6]]);
    expect(m.recordsPerSide).toEqual({ left: 12, right: 12 });
    expect(m.derivedIds).toBe(false);
    expect(m.entityColumns).toEqual(["cluster_id"]);
    expect(m.attributes).toEqual(["modelno"]);
    const rows = products(result.layout.processedParquet);
    // The entity column is the products' cluster (for grouping), never an attribute (text or feature).
    expect(rows.every((r) => !String(r.attributes).includes("cluster"))).toBe(true);
    // Ids keep their table: a:3 is tableA's record 3, b:3 is tableB's (another product).
    const a3 = rows.find((r) => r.sku === "a:3")!, b3 = rows.find((r) => r.sku === "b:3")!;
    expect(a3.name).toBe(record(3, "left").title);
    expect(a3.cluster_id).toBe("c3");
    // No description: the record's other attributes are its second text (never the entity column).
    const records = productRecords("magellan_fixture", root);
    expect(records.find((r) => r.sku === "a:3")).toMatchObject({
      name: record(3, "left").title,
      description: "modelno: ph103",
    });
    expect(attributesText('{"modelno":"x1","color":null,"size":" 4 "}')).toBe("modelno: x1; size: 4");
    expect(() => attributesText("[1]")).toThrow(/attributes "\[1\]" are not a JSON object/);
    expect(b3.name).toBe(record((3 * 5) % 12, "right").title);
    const positives = (await readImportedSplits("magellan_fixture", root))[0].pairs.filter((p) => p.label === 1);
    expect(positives.map((p) => rows.find((r) => r.sku === p.sku_right)!.name)).toEqual(
      positives.map((p) => record(Number(p.sku_left.slice(2)), "right").title),
    );
  });

  it("names the file, row and value of a pair whose id is not in its table; skips it when allowed", async () => {
    const dir = await writeMagellanFixture(await tempDir("magellan-"), { badRow: true });
    await expect(readMagellan(dir)).rejects.toThrow(
      `${join(dir, "test.csv")} row 3: rtable_id "99" is not an id of tableB.csv`,
    );
    const content = await readMagellan(dir, { skipMalformed: true });
    expect(content.skipped.length).toBe(1);
    expect(content.pairs.length).toBe(24);
    await expect(readMagellan(join(dir, "nowhere"))).rejects.toThrow(
      /holds tableA\.csv and tableB\.csv .*no such folder/,
    );
  });
});

describe("pair tables without record ids", () => {
  it("derives stable ids from each side's values and counts distinct records per side", async () => {
    const dir = await tempDir("wide-noid-");
    const lines = (pairs: [number, number, 0 | 1][]) =>
      pairs.map(([a, b, label]) => {
        const row: Record<string, string | number> = { label };
        for (const [k, v] of Object.entries(record(a, "left"))) row[`${k}_left`] = v;
        for (const [k, v] of Object.entries(record(b, "right"))) row[`${k}_right`] = v;
        row.cluster_id_left = `c${a}`;
        row.cluster_id_right = `c${b}`;
        return JSON.stringify(row);
      }).join("\n") + "\n";
    await Deno.writeTextFile(join(dir, "train.jsonl"), lines(splitPairs("train")));
    // (6,6,1), (6,9,0), (7,7,1), (7,10,0): right records 6 and 7 seen in training, the pairs not.
    await Deno.writeTextFile(join(dir, "test.jsonl"), lines(splitPairs("valid").slice(0, 4)));
    const root = await tempDir("wide-noid-root-");
    const result = await importPairs({
      dataset: "noid",
      root,
      source: {
        kind: "wide",
        files: [{ path: join(dir, "train.jsonl"), split: "train" }, { path: join(dir, "test.jsonl"), split: "test" }],
      },
    });
    expect(result.manifest.derivedIds).toBe(true);
    expect(result.manifest.recordsPerSide).toEqual({ left: 6 + 2, right: 9 + 2 });
    expect(result.manifest.entityColumns).toEqual(["cluster_id"]);
    expect(result.manifest.fields.cluster).toBe("cluster_id");
    expect(result.manifest.overlaps[0].shared_skus).toBe(2); // right 6, 7
    const rows = products(result.layout.processedParquet);
    const four = rows.find((r) => r.sku === recordIdFromValues("left", record(4, "left")))!;
    expect(four).toMatchObject({ cluster_id: "c4", attributes: JSON.stringify({ modelno: "ga104" }) });
  });
});

describe("mapping by name and detection", () => {
  it("maps fields by name, keeps the rest as attributes and drops entity columns", () => {
    const m = mapFieldsByName(["id", "Title", "manufacturer", "price", "modelno", "cluster_id", "group_id", "color"]);
    expect(m.fields).toEqual({ name: "Title", brand: "manufacturer", price: "price", cluster: "cluster_id" });
    expect(m.id).toBe("id");
    expect(m.entityColumns).toEqual(["cluster_id", "group_id"]);
    expect(m.attributes).toEqual(["modelno", "color"]);
  });

  it("detects each shape, and asks for FORMAT when it cannot tell", async () => {
    const ditto = await writeDittoFixture(await tempDir("ditto-"));
    const magellan = await writeMagellanFixture(await tempDir("magellan-"));
    expect(detectPairFormat([ditto]).format).toBe("ditto");
    expect(detectPairFormat([join(ditto, "train.txt"), join(ditto, "test.txt")]).format).toBe("ditto");
    expect(detectPairFormat([magellan]).format).toBe("magellan");
    expect(detectPairFormat([join(magellan, "train.csv")]).format).toBe("pairs");
    expect(detectPairFormat([join(magellan, "train.csv")], [join(magellan, "tableA.csv")]).format).toBe("records");
    expect(() => detectPairFormat([ditto, magellan])).toThrow(/cannot tell the format of .*set FORMAT to one of/);
    const params: ImportParams = {
      DATASET: "d",
      SOURCE: "pair-table",
      WDC_SIZE: "small",
      WDC_DIR: "",
      FORMAT: "auto",
      PAIR_FILES: magellan,
      RECORDS: "",
      FIELDS: "",
      SKIP_MALFORMED: false,
      LEARN_TOKENIZER: false,
      SEED: 1,
    };
    expect(pairFormatOf(params)).toMatchObject({ format: "magellan", detected: true });
    expect((await importOptionsFromParams(params)).source).toEqual({ kind: "magellan", dir: magellan });
    const forced = await importOptionsFromParams({
      ...params,
      FORMAT: "ditto",
      PAIR_FILES: ditto,
      SKIP_MALFORMED: true,
    });
    expect(forced).toMatchObject({ source: { kind: "ditto" }, skipMalformed: true, fields: undefined });
  });
});

describe("given splits are the dataset's protocol", () => {
  it("shows records shared across given splits and trains; refuses the same pair in two splits, naming it", async () => {
    const dir = await writeDittoFixture(await tempDir("ditto-"), { malformed: false });
    const root = await tempDir("ditto-root-");
    await importPairs({ dataset: "protocol", root, source: { kind: "ditto", files: [{ path: dir }] } });
    const splits = await readImportedSplits("protocol", root);
    const ok = splitProtocol(splits, "given");
    expect(ok.refusal).toBe(null);
    const trainVal = ok.shared.find((o) => o.a === "train" && o.b === "val")!;
    expect(trainVal.shared_skus).toBe(3); // right records 6-8
    expect(trainVal.examples.split(", ").length).toBe(3);
    // The suite's own splits may share nothing.
    expect(splitProtocol(splits, "leak-free").refusal).toMatch(
      /^splits overlap \(train\/val: 3, train\/test: 3, val\/test: 3\)/,
    );
    // The same two records in train and test (the reverse order counts too) is refused, naming the pair.
    const [train, , test] = splits;
    const repeat = { ...train.pairs[0], sku_left: train.pairs[0].sku_right, sku_right: train.pairs[0].sku_left };
    const leaked = splitProtocol([train, splits[1], { ...test, pairs: [...test.pairs, repeat] }], "given");
    expect(leaked.refusal).toBe(
      `the pair ${JSON.stringify(repeat.sku_left)} / ${JSON.stringify(repeat.sku_right)} is in both train and test: ` +
        "a model would be chosen or tested on a pair it trained on; remove it from one of the splits and import again",
    );
  });
});
