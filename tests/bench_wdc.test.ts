/**
 * The WDC Products benchmark (lib/bench/wdc_benchmark.ts) end to end on a tiny fixture written here: a
 * WDC-like folder of gzipped JSON-lines pair files (the five files of the small size, WDC's columns and
 * "None" markers) in a temp dir; never the real benchmark copy. A quick run: import, one trial of one epoch,
 * both baselines, the report files.
 */
import { describe, it } from "node:test";
import { expect } from "expect";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { selectBackend } from "../lib/backend.ts";
import {
  parseWdcTrial,
  renderWdcMarkdown,
  runWdcBenchmark,
  WDC_PUBLISHED_ANCHORS,
  WDC_TEST_SPLITS,
  type WdcBenchmarkOptions,
  writeWdcReports,
} from "../lib/bench/wdc_benchmark.ts";
import { WDC_PREFIX } from "../lib/data/wdc_products.ts";
import { readImportManifest } from "../lib/data/imported_dataset.ts";
import { tf } from "../lib/tf.ts";

await selectBackend("cpu", { quiet: true });

const BRANDS = ["Logitech", "Samsung", "Seagate", "Bosch", "Canon", "Sony", "Makita", "Philips"];
const ITEMS = ["headset", "monitor", "drive", "drill", "camera", "speaker", "saw", "shaver"];

/** Offer `variant` of entity `entity` (a WDC side: id, brand, title, description, price, currency, cluster). */
function offer(entity: number, variant: number, file: string): Record<string, string> {
  const brand = BRANDS[entity % BRANDS.length];
  const item = ITEMS[Math.floor(entity / BRANDS.length) % ITEMS.length];
  const model = `${String.fromCharCode(65 + (entity % 26))}${100 + entity}`;
  const titles = [
    `${brand} ${model} ${item}`,
    `${item} ${brand} ${model} black`,
    `${brand} ${item} ${model} new`,
  ];
  return {
    id: `${file}-${entity}-${variant}`,
    brand: variant === 1 ? "None" : brand,
    title: titles[variant % titles.length],
    description: variant === 2 ? "None" : `${brand} ${item} model ${model} with warranty`,
    price: variant === 0 ? `${20 + entity}.99` : "None",
    priceCurrency: variant === 0 ? "EUR" : "None",
    cluster_id: String(1000 + entity),
  };
}

/** A wide pair row in WDC's layout. */
function pairRow(left: Record<string, string>, right: Record<string, string>, label: number, hard: boolean) {
  const row: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(left)) row[`${k}_left`] = v;
  for (const [k, v] of Object.entries(right)) row[`${k}_right`] = v;
  return { ...row, pair_id: `${left.id}#${right.id}`, label, is_hard_negative: hard };
}

/** A file's pairs: per entity one positive and two negatives (one against a same-brand entity). */
function pairFile(file: string, entities: number[]): string {
  const rows = [];
  for (const [i, e] of entities.entries()) {
    const other = entities[(i + 1) % entities.length];
    rows.push(pairRow(offer(e, 0, file), offer(e, 1 + (i % 2), file), 1, false));
    rows.push(pairRow(offer(e, 0, file), offer(other, 1, file), 0, true));
    rows.push(pairRow(offer(e, 2, file), offer(entities[(i + 3) % entities.length], 0, file), 0, false));
  }
  return rows.map((r) => JSON.stringify(r)).join("\n") + "\n";
}

/** Writes the five WDC files of the small size into `dir`. */
async function writeWdcFolder(dir: string): Promise<void> {
  const seen = [...Array(12).keys()];
  const unseen = [...Array(12).keys()].map((i) => 40 + i);
  const files: Record<string, number[]> = {
    "000un_train_small": seen,
    "000un_valid_small": seen,
    "000un_gs": seen,
    "050un_gs": [...seen.slice(0, 6), ...unseen.slice(0, 6)],
    "100un_gs": unseen,
  };
  for (const [stem, entities] of Object.entries(files)) {
    await Deno.writeFile(
      join(dir, `${WDC_PREFIX}${stem}.json.gz`),
      gzipSync(new TextEncoder().encode(pairFile(stem, entities))),
    );
  }
}

describe("WDC Products benchmark", () => {
  it("parses trial specifications and rejects unknown keys", () => {
    expect(parseWdcTrial("wide:lr=3e-3,batch=64,loss=online-contrastive")).toEqual({
      name: "wide",
      config: { learningRate: 3e-3, batchSize: 64, loss: "online-contrastive" },
    });
    expect(parseWdcTrial("plain")).toEqual({ name: "plain", config: {} });
    expect(parseWdcTrial("r:residual=0.2,lr=1e-3")).toEqual({
      name: "r",
      config: { learningRate: 1e-3 },
      headResidual: 0.2,
    });
    expect(() => parseWdcTrial("r:residual=0")).toThrow(/residual=0 is not a number > 0/);
    expect(() => parseWdcTrial("x:speed=3")).toThrow(/speed=3/);
  });

  it("imports a WDC-like folder, trains, scores the baselines and writes the table", async () => {
    const tmp = await Deno.makeTempDir({ prefix: "bench-wdc-" });
    try {
      const wdc = join(tmp, "wdc-products");
      await Deno.mkdir(wdc);
      await writeWdcFolder(wdc);
      const root = join(tmp, "data");
      const before = tf.memory().numTensors;
      const options: WdcBenchmarkOptions = {
        dir: wdc,
        root,
        quick: true,
        seed: 3,
        trials: [{ name: "t", config: { epochs: 1, batchSize: 16 } }],
        log: null,
      };
      const result = await runWdcBenchmark(options);
      expect(tf.memory().numTensors).toBe(before);
      expect(result.reusedImport).toBe(false);
      expect((await readImportManifest("wdc_products_small", root))?.tokenizer).toBeTruthy();

      const methods = [...new Set(result.rows.map((r) => r.method))];
      // Trained; the label-free pretrained towers (Euclidean, name cosine); the random towers; TF-IDF twice.
      expect(methods).toHaveLength(6);
      expect(result.pretraining?.products).toBeGreaterThan(1);
      expect(result.pretraining?.history).toHaveLength(result.pretraining!.config.epochs);
      expect(result.rows.filter((r) => r.kind === "trained")).toHaveLength(3);
      for (const method of methods) {
        expect(result.rows.filter((r) => r.method === method).map((r) => r.split)).toEqual(
          WDC_TEST_SPLITS.map((t) => t.split),
        );
      }
      for (const row of result.rows) {
        for (
          const key of [
            "precision",
            "recall",
            "f1",
            "rocAuc",
            "averagePrecision",
            "validationF1",
            "mrr",
            "map",
          ] as const
        ) {
          expect(row[key]).toBeGreaterThanOrEqual(0);
          expect(row[key]).toBeLessThanOrEqual(1);
        }
        expect(row.pairs).toBe(36);
        expect(row.positives).toBe(12);
        expect(row.queries).toBeGreaterThan(0);
      }
      expect(result.trials).toHaveLength(1);
      expect(result.trials[0].history).toHaveLength(1);
      expect(result.chosenTrial).toBe("t");
      expect(result.anchors).toEqual(WDC_PUBLISHED_ANCHORS);

      const reports = join(tmp, "reports");
      const written = await writeWdcReports(result, reports);
      const markdown = await Deno.readTextFile(written.markdown);
      expect(markdown).toBe(renderWdcMarkdown(result));
      for (const method of methods) expect(markdown).toContain(`| ${method} |`);
      expect(markdown).toContain("| GPT-4o-mini (zero-shot) | 0.816 | — | — |");
      expect(markdown).toContain("## Pair AP and ranking (AP / MRR / mAP");
      const json = JSON.parse(await Deno.readTextFile(written.json));
      expect(json.rows).toHaveLength(18);

      // A second run reuses the complete import.
      // A second run reuses the complete import; without pretraining, a head-mode trial with a residual whose
      // scale is chosen on validation.
      const again = await runWdcBenchmark({
        ...options,
        pretraining: null,
        trials: [{ name: "u", config: { epochs: 1, mode: "head" }, headResidual: 0.1 }],
      });
      expect(again.reusedImport).toBe(true);
      expect(again.pretraining).toBe(null);
      expect(new Set(again.rows.map((r) => r.method)).size).toBe(5);
      expect(again.trials[0].residualScale?.trained).toBe(0.1);
      expect(again.trials[0].residualScale?.chosen).toBeGreaterThan(0);
      expect(renderWdcMarkdown(again)).toMatch(/\| u \(chosen\) \(residual 0\.1 -> [0-9.]+\) \| head \|/);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  });
});
