/**
 * The benchmark pipeline (lib/experiment/benchmark.ts) end to end on fixtures written here, never on a real
 * benchmark copy: a WDC-like folder of gzipped JSON-lines pair files (the preset imports it), a Ditto-shaped
 * and a Magellan-shaped folder (imported as `import_pairwise_dataset` does). Quick runs: one trial of one
 * epoch, every baseline, the pair classifiers, the reports; a restarted run reads its finished trial back;
 * a failing trial is reported while the others go on.
 */
import { describe, it } from "node:test";
import { expect } from "expect";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { selectBackend } from "../lib/backend.ts";
import { BENCHMARK_METHODS, parseTrial, runBenchmark } from "../lib/experiment/benchmark.ts";
import { benchmarkPlan, WDC_PUBLISHED_ANCHORS, WDC_TEST_SPLITS } from "../lib/experiment/benchmark_presets.ts";
import {
  benchmarkSummary,
  formatCell,
  provenanceLine,
  renderBenchmarkMarkdown,
  writeBenchmarkReports,
} from "../lib/experiment/benchmark_report.ts";
import { importPairs } from "../lib/data/import_pairs.ts";
import { WDC_PREFIX } from "../lib/data/wdc_products.ts";
import { readImportManifest } from "../lib/data/imported_dataset.ts";
import { LocalRunStore } from "../lib/experiment/run_record.ts";
import { tf } from "../lib/tf.ts";
import { writeDittoFixture, writeMagellanFixture } from "./format_fixtures.ts";

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

const METRICS = ["precision", "recall", "f1", "rocAuc", "averagePrecision", "validationF1", "mrr", "map"] as const;

describe("benchmark pipeline", () => {
  it("parses trial specifications and rejects unknown keys and values", () => {
    expect(parseTrial("wide:lr=3e-3,batch=64,loss=online-contrastive")).toEqual({
      name: "wide",
      config: { learningRate: 3e-3, batchSize: 64, loss: "online-contrastive" },
    });
    expect(parseTrial("plain")).toEqual({ name: "plain", config: {} });
    expect(parseTrial("r:residual=0.2,lr=1e-3")).toEqual({
      name: "r",
      config: { learningRate: 1e-3 },
      headResidual: 0.2,
    });
    expect(() => parseTrial("r:residual=0")).toThrow(/residual=0 is not a number > 0/);
    expect(() => parseTrial("x:speed=3")).toThrow(/speed=3/);
    expect(() => parseTrial("x:lr=fast")).toThrow(/lr=fast is not a number/);
  });

  it("a summary is the mean and spread over seeds; one seed shows no spread", () => {
    const row = (seed: number, f1: number) => ({
      method: "m",
      kind: "trained" as const,
      seed,
      split: "test",
      pairs: 4,
      positives: 2,
      precision: 1,
      recall: 1,
      f1,
      rocAuc: 1,
      averagePrecision: 1,
      threshold: 0,
      validationF1: 1,
      mrr: NaN,
      map: 1,
      queries: 2,
    });
    const [m] = benchmarkSummary({ rows: [row(1, 0.5), row(2, 0.7)] });
    expect(m.splits.test.f1.mean).toBeCloseTo(0.6, 12);
    expect(m.splits.test.f1.sd).toBeCloseTo(Math.sqrt(0.02), 12);
    expect(formatCell(m.splits.test.f1)).toBe("0.600 ± 0.141");
    expect(formatCell(m.splits.test.mrr)).toBe("—");
    expect(formatCell(benchmarkSummary({ rows: [row(1, 0.5)] })[0].splits.test.f1)).toBe("0.500");
  });

  it("the WDC preset imports the folder, runs trials and every baseline, writes the reports, resumes", async () => {
    const tmp = await Deno.makeTempDir({ prefix: "benchmark-wdc-" });
    try {
      const wdc = join(tmp, "wdc-products");
      await Deno.mkdir(wdc);
      await writeWdcFolder(wdc);
      const root = join(tmp, "data");
      const lines: string[] = [];
      const plan = await benchmarkPlan("wdc-products-80cc-small", { root, wdcDir: wdc, log: (l) => lines.push(l) });
      expect(lines[0]).toMatch(/importing WDC Products \(small\) as wdc_products_small/);
      expect((await readImportManifest("wdc_products_small", root))?.tokenizer).toBeTruthy();
      expect(plan.testSplits.map((t) => t.split)).toEqual(WDC_TEST_SPLITS.map((t) => t.split));

      const before = tf.memory().numTensors;
      const options = {
        quick: true,
        seeds: [3],
        trials: [
          { name: "t", config: { epochs: 1, batchSize: 16 } },
          { name: "broken", config: { epochs: 1, learningRate: -1 } },
        ],
        log: (l: string) => lines.push(l),
      };
      const result = await runBenchmark(plan, options);
      expect(tf.memory().numTensors).toBe(before);
      // The failing trial is reported; the other one is the seed's choice.
      expect(result.trials.map((t) => [t.name, t.status])).toEqual([["t", "finished"], ["broken", "failed"]]);
      expect(result.trials[1].error).toMatch(/learning/i);
      expect(lines.some((l) => /trial 2\/2 broken FAILED: .*; the other trials go on/.test(l))).toBe(true);
      expect(result.chosen).toEqual([{ seed: 3, trial: "t" }]);
      // Each trial left its run record: the finished one with its curve and test numbers, the failed one with why.
      const records = await new LocalRunStore(join(root, "runs")).list();
      const byTrial = (name: string) => records.find((r) => r.run === `wdc-products-80cc-small/seed-3/${name}`)!;
      expect(byTrial("t")).toMatchObject({ notebook: "benchmark", status: "finished", epochs: 1 });
      expect(byTrial("t").metrics["test_unseen/f1"]).toBe(
        result.rows.find((r) => r.kind === "trained" && r.split === "test_unseen")!.f1,
      );
      expect(byTrial("t").params.find((p) => p.name === "batchSize")).toMatchObject({ value: 16, origin: "preset" });
      expect(byTrial("broken")).toMatchObject({ status: "failed" });
      expect(byTrial("broken").error).toMatch(/learning/i);

      const methods = [...new Set(result.rows.map((r) => r.method))];
      expect(methods.sort()).toEqual(Object.values(BENCHMARK_METHODS).sort());
      for (const method of methods) {
        expect(result.rows.filter((r) => r.method === method).map((r) => r.split)).toEqual(
          WDC_TEST_SPLITS.map((t) => t.split),
        );
      }
      for (const row of result.rows) {
        for (const key of METRICS) {
          expect(row[key]).toBeGreaterThanOrEqual(0);
          expect(row[key]).toBeLessThanOrEqual(1);
        }
        expect([row.pairs, row.positives]).toEqual([36, 12]);
        expect(row.queries).toBeGreaterThan(0);
      }
      expect(result.pretraining?.[0].history).toHaveLength(1);

      const reports = join(tmp, "reports");
      const written = await writeBenchmarkReports(result, reports);
      const markdown = await Deno.readTextFile(written.markdown);
      expect(markdown).toBe(renderBenchmarkMarkdown(result));
      for (const method of methods) expect(markdown).toContain(`| ${method} |`);
      // Each anchor on the test split it was measured on.
      expect(markdown).toContain("| GPT-4o-mini (zero-shot) | — | 0.816 | — |");
      expect(markdown).toContain("| R-SupCon | 0.775 | 0.643 | 0.519 |");
      expect(markdown).toContain("| t (chosen) | ran |");
      expect(JSON.parse(await Deno.readTextFile(written.json)).rows).toHaveLength(methods.length * 3);
      const html = await Deno.readTextFile(written.html);
      expect(html).toContain("F1 at the validation-chosen threshold");
      if (/<script[^>]*\bsrc="https?:/.test(html)) throw new Error("the page loads a script from the network");
      expect(result.anchors).toEqual(WDC_PUBLISHED_ANCHORS);

      // Restarted: the import, the pretraining and the finished trial are read back, not redone.
      lines.length = 0;
      const again = await runBenchmark(await benchmarkPlan("wdc-products-80cc-small", { root, wdcDir: wdc }), {
        ...options,
        trials: [options.trials[0]],
        classifier: false,
      });
      expect(again.trials.map((t) => [t.name, t.reused])).toEqual([["t", true]]);
      // The report says which numbers were read back, and the command that makes them (seed 3 is not the default).
      expect(provenanceLine(again)).toMatch(
        new RegExp(
          `^\\*\\*QUICK smoke run, not a result\\.\\*\\* seed 3; \\d+ s, with 1 of 1 trials read back from an earlier run \\(they took ${
            again.trials[0].seconds!.toFixed(0)
          } s\\); .*Written by \`deno task benchmark --dataset wdc-products-80cc-small --seed 3 --quick\`\\.$`,
        ),
      );
      expect(lines.some((l) => /label-free pretraining read back/.test(l))).toBe(true);
      const trained = (r: typeof result) => r.rows.filter((x) => x.kind === "trained");
      expect(trained(again)).toEqual(trained(result));
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  });

  for (const shape of ["ditto", "magellan"] as const) {
    it(`runs on a ${shape}-shaped dataset imported as published`, async () => {
      const tmp = await Deno.makeTempDir({ prefix: `benchmark-${shape}-` });
      try {
        const root = join(tmp, "data");
        await Deno.mkdir(join(tmp, "src"));
        const source = shape === "ditto"
          ? {
            kind: "ditto" as const,
            files: [{ path: await writeDittoFixture(join(tmp, "src"), { malformed: false }) }],
          }
          : { kind: "magellan" as const, dir: await writeMagellanFixture(join(tmp, "src")) };
        await importPairs({ dataset: `${shape}_fixture`, root, source, tokenizer: {} });
        const plan = await benchmarkPlan(`${shape}_fixture`, { root });
        expect(plan.testSplits.map((t) => t.split)).toEqual(["test"]);
        const result = await runBenchmark(plan, { quick: true, seeds: [1, 2], log: null });
        expect(result.chosen.map((c) => c.seed)).toEqual([1, 2]);
        const summary = benchmarkSummary(result);
        const trained = summary.find((m) => m.method === BENCHMARK_METHODS.trained)!;
        expect(trained.splits.test.f1.n).toBe(2);
        expect(summary.find((m) => m.method === BENCHMARK_METHODS.lexicalTitle)!.splits.test.f1.n).toBe(1);
        expect(summary.map((m) => m.kind)).toEqual(
          [...summary.map((m) => m.kind)].sort((a, b) =>
            ["trained", "classifier", "baseline"].indexOf(a) - ["trained", "classifier", "baseline"].indexOf(b)
          ),
        );
      } finally {
        await Deno.remove(tmp, { recursive: true });
      }
    });
  }

  it("names an unknown dataset and how to import it", async () => {
    const root = await Deno.makeTempDir();
    try {
      await expect(benchmarkPlan("nope", { root })).rejects.toThrow(
        /--dataset nope: not a preset \(wdc-products-80cc-small, wdc-products-80cc-medium, demo\) and no imported dataset at .*import_pairwise_dataset/,
      );
      await expect(benchmarkPlan("demo", { root })).rejects.toThrow(/run deno task demo first/);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });
});
