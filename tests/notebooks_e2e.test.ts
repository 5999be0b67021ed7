/**
 * End to end: the whole notebook suite executed through `jupyter nbconvert` with the Deno kernel,
 * as `deno task demo` does, on the generated demo marketplace in a temporary data folder, with few
 * epochs. Checks what a user looks at: every notebook executed without errors, every cell that
 * should show something showed it, HTML renderings, the report and its metrics.
 */
import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { projectRoot } from "../lib/paths.ts";
import { loadSuite } from "../lib/notebook/runner.ts";
import { readParquetKeyValueMetadata } from "../lib/eval/predictions.ts";
import { type CellRecord, runCellsInKernel } from "./kernel_client.ts";
import { runImportedSuite, runScript } from "./helpers.ts";
import { LocalRunStore } from "../lib/experiment/run_record.ts";
import { BENCHMARK_METHODS } from "../lib/experiment/benchmark.ts";

interface NotebookCell {
  cell_type: string;
  source: string[] | string;
  outputs?: { output_type: string; ename?: string; evalue?: string }[];
}

/** True when a cell's code (imports and comments aside) calls something that shows output. */
function expectsOutput(source: string): boolean {
  const code = source.split("\n").filter((l) => !/^\s*(import |\/\/)/.test(l)).join("\n");
  return /\b(show(Table|Plot|Markdown)|console\.log)\(/.test(code);
}

/** Files under `dir` whose text contains one of `needles`, with the first match's context. */
async function filesContaining(dir: string, needles: string[]): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) found.push(...await filesContaining(path, needles));
    else if (/\.(ipynb|html|json|md|csv)$/.test(entry.name)) {
      const text = await Deno.readTextFile(path);
      for (const needle of needles) {
        const at = text.indexOf(needle);
        if (at >= 0) found.push(`${path}: …${text.slice(Math.max(0, at - 80), at + needle.length + 40)}…`);
      }
    }
  }
  return found;
}

/** Progress bars of one cell: updates arrive while it runs (before idle), none late, each ends at 100%. */
function checkBars(record: CellRecord): void {
  const bars = new Map<string, { t: number; text: string; late: boolean }[]>();
  for (const m of record.messages) {
    if (!m.display_id?.startsWith("progress-") || m.text === undefined) continue;
    bars.set(m.display_id, [...(bars.get(m.display_id) ?? []), { t: m.t, text: m.text, late: m.late }]);
  }
  expect(bars.size).toBeGreaterThan(0);
  for (const [id, updates] of bars) {
    if (updates.some((u) => u.late)) throw new Error(`bar ${id}: updates after the cell's idle`);
    expect(updates.at(-1)!.text).toMatch(/\(100%\)/);
  }
  const all = [...bars.values()].flat();
  // Several draws, spread over the cell's run: the bar moved while the cell ran.
  expect(all.length).toBeGreaterThan(bars.size);
  expect(Math.min(...all.map((u) => u.t))).toBeLessThan(record.idle_at! / 2);
}

describe("notebook suite, end to end", () => {
  it("runs every notebook of the test preset through nbconvert and writes the report", async () => {
    const data = await Deno.makeTempDir({ prefix: "e2e-data-" });
    const reports = await Deno.makeTempDir({ prefix: "e2e-reports-" });
    const { success, log } = await runScript("notebooks.ts", ["--preset", "test"], {
      CLIP_SIAMESE_DATA: data,
      CLIP_SIAMESE_REPORTS: reports,
      EPOCHS: "4",
      TFJS_BACKEND: "wasm",
    });
    if (!success) throw new Error(`the suite failed:\n${log.slice(-4000)}`);

    const suite = (await loadSuite()).filter((e) => e.presets.includes("test"));
    expect(suite.length).toBeGreaterThanOrEqual(12);
    for (const entry of suite) {
      const base = join(reports, "walkthrough", entry.path.replace(/^notebooks\//, "").replace(/\.ipynb$/, ""));
      const executed = JSON.parse(await Deno.readTextFile(`${base}.ipynb`)) as { cells: NotebookCell[] };
      const html = await Deno.readTextFile(`${base}.html`);
      for (const [index, cell] of executed.cells.entries()) {
        if (cell.cell_type !== "code") continue;
        const source = Array.isArray(cell.source) ? cell.source.join("") : cell.source;
        const errors = (cell.outputs ?? []).filter((o) => o.output_type === "error");
        if (errors.length) throw new Error(`${entry.name}, cell ${index + 1}: ${errors[0].ename}: ${errors[0].evalue}`);
        if (expectsOutput(source) && !(cell.outputs ?? []).length) {
          throw new Error(`${entry.name}, cell ${index + 1} shows nothing:\n${source.slice(0, 300)}`);
        }
      }
      if (html.includes("Plotly.newPlot") && !html.includes("/*plotly.js bundled*/")) {
        throw new Error(`${entry.name}: its HTML rendering draws plotly figures but does not include plotly.js`);
      }
    }

    const metrics = JSON.parse(await Deno.readTextFile(join(reports, "metrics.json")));
    const rendered = metrics.notebooks["contrastive_test_embs_from-pairwise-rendered"].headline;
    for (const model of ["SiameseRuCLIP", "SBERT zero-shot", "raw tower features", "TF-IDF cosine"]) {
      expect(rendered[model].test_roc_auc).toBeGreaterThan(0.5);
      expect(rendered[model].test_roc_auc).toBeLessThanOrEqual(1);
    }
    const report = await Deno.readTextFile(join(reports, "report.html"));
    expect(report).toContain("SiameseRuCLIP evaluation report");
    // Two-stage ranking: the top-k re-ranked by the classifier clip_siamese_test saved, with photos.
    const topK = metrics.notebooks["contrastive_test_embs_from-source"].headline;
    const secondStage = "SiameseRuCLIP → pair classifier (evidence + Siamese)";
    expect(topK[secondStage]["recall@10"]).toBe(topK.SiameseRuCLIP["recall@10"]);
    expect(report).toContain("queries before and after re-ranking");
    expect(report).toContain("the test pairs it got most wrong, with their photos");
    expect(report).toMatch(/<img src="data:image\/jpeg;base64,/);
    if (/<script[^>]*\bsrc="https?:/.test(report)) throw new Error("the report loads a script from the network");

    const predictions = [...Deno.readDirSync(join(data, "predictions", "demo_geo"))].map((e) => e.name).filter((n) =>
      n.endsWith(".parquet")
    );
    expect(predictions.length).toBeGreaterThan(0);
    const metadata = await readParquetKeyValueMetadata(join(data, "predictions", "demo_geo", predictions[0]));
    expect(Object.keys(metadata).join(" ")).toMatch(/threshold/);
    await Deno.stat(join(data, "train_results", "demo", "best", "model.safetensors"));
    // The training run left its record: finished, every epoch's curve, parameters with their origin, metrics.
    const store = new LocalRunStore(join(data, "runs"));
    const runRecords = (await store.list()).filter((r) => r.notebook === "contrastive_train_data-splitting-by-query");
    expect(runRecords.length).toBe(1);
    expect(runRecords[0]).toMatchObject({ status: "finished", dataset: "demo_geo", run: "demo", epochs: 4 });
    expect(runRecords[0].params.find((p) => p.name === "EPOCHS")).toMatchObject({ value: "4", origin: "environment" });
    expect(runRecords[0].metrics.test_f1).toBeGreaterThan(0);
    expect(runRecords[0].metrics.test_mrr).toBeGreaterThan(0);
    expect((await store.curves(runRecords[0].id)).map((row) => row.epoch)).toEqual([1, 2, 3, 4]);
    // So did every testing notebook run, with its headline numbers per model.
    const tested = (await store.list()).filter((r) => r.notebook === "contrastive_test_embs_from-pairwise-rendered");
    expect(tested.map((r) => r.status)).toEqual(["finished"]);
    expect(tested[0].metrics["TF-IDF cosine/test_roc_auc"]).toBeGreaterThan(0.5);
    expect(tested[0].artifacts.results).toMatch(/contrastive_test_embs_from-pairwise-rendered\.json$/);
    // The residual's scale chosen on validation is the one the best checkpoint's config carries on.
    const summary = JSON.parse(await Deno.readTextFile(join(data, "train_results", "demo", "summary.json")));
    const bestConfig = JSON.parse(await Deno.readTextFile(join(data, "train_results", "demo", "best", "config.json")));
    expect(summary.residualScale.trained).toBe(0.1);
    expect(summary.residualScale.rows.map((r: { scale: number }) => r.scale)).toContain(summary.residualScale.chosen);
    expect(bestConfig.headResidual).toBe(summary.residualScale.chosen);

    // The benchmark pipeline on the demo the notebooks just made (--quick: one trial of one epoch, every
    // baseline, both pair classifiers), its reports under reports/benchmarks/ named as a smoke run.
    const bench = await runScript("benchmark.ts", ["--dataset", "demo", "--quick"], {
      CLIP_SIAMESE_DATA: data,
      CLIP_SIAMESE_REPORTS: reports,
      TFJS_BACKEND: "wasm",
    });
    if (!bench.success) throw new Error(`deno task benchmark --dataset demo --quick failed:\n${bench.log}`);
    const benchmark = JSON.parse(await Deno.readTextFile(join(reports, "benchmarks", "demo-quick.json")));
    expect(benchmark.trials.map((t: { status: string }) => t.status)).toEqual(["finished"]);
    const benchMethods = new Set(benchmark.rows.map((r: { method: string }) => r.method));
    for (const method of [...Object.values(BENCHMARK_METHODS), "zero-shot sbert-tiny"]) {
      if (method !== BENCHMARK_METHODS.randomCosine) expect(benchMethods.has(method)).toBe(true);
    }
    expect(await Deno.readTextFile(join(reports, "benchmarks", "demo-quick.md"))).toContain("QUICK smoke run");

    // What users look at names no machine path: not the project's, not the data folder's.
    const leaks = await filesContaining(reports, [projectRoot, data, reports]);
    if (leaks.length) throw new Error(`absolute paths in executed notebooks or reports:\n${leaks.join("\n")}`);

    // The user's DATASET beats the preset: the demo's dataset is not reprocessed or rewritten.
    const processed = join(data, "tables_demo_geo", "processed", "demo_geo.parquet");
    const before = (await Deno.stat(processed)).mtime?.getTime();
    const mine = await runScript("notebooks.ts", ["--preset", "test", "make_OZ_geo_5500"], {
      CLIP_SIAMESE_DATA: data,
      CLIP_SIAMESE_REPORTS: reports,
      DATASET: "mine",
    });
    const mineLog = mine.log;
    expect(mine.success).toBe(false);
    expect(mineLog).toMatch(/FAILED notebooks\/1_dataset_creation\/make_OZ_geo_5500\.ipynb at In\[\d+\]/);
    expect(mineLog).toContain("tables_mine");
    expect((await Deno.stat(processed)).mtime?.getTime()).toBe(before);
    const partial = join(reports, "walkthrough", "1_dataset_creation", "failed", "make_OZ_geo_5500.ipynb");
    expect(await Deno.readTextFile(partial)).toContain("<td>mine</td>");

    // The training notebook in a live kernel, as a user runs it: bars move while the cell runs and
    // end at their final state; then every cell is run again (cleanup last) without breaking.
    const training = join(projectRoot, "notebooks", "3_training", "contrastive_train_data-splitting-by-query.ipynb");
    const cells = (JSON.parse(await Deno.readTextFile(training)) as { cells: NotebookCell[] }).cells;
    const code = [...cells.keys()].filter((i) => cells[i].cell_type === "code");
    const cleanup = code.at(-1)!;
    const records = await runCellsInKernel(training, {
      env: { CLIP_SIAMESE_DATA: data, CLIP_SIAMESE_REPORTS: reports, EPOCHS: "2", TFJS_BACKEND: "wasm", RUN: "live" },
      secondPass: [...code.filter((i) => i !== cleanup), cleanup],
      skip: [cleanup], // the first pass leaves the model alive for the second
      timeoutSeconds: 900,
    });
    for (const record of records) {
      const error = record.messages.find((m) => m.msg_type === "error");
      if (error) {
        throw new Error(`live kernel, pass ${record.pass}, cell ${record.cell}: ${error.ename}: ${error.evalue}`);
      }
    }
    const trainIndex = code.find((i) => /await runTrial\(/.test([cells[i].source].flat().join("")));
    const trainCell = records.find((r) => r.pass === 1 && r.cell === trainIndex);
    expect(trainCell).toBeDefined();
    checkBars(trainCell!);

    // Stop during training in a live kernel (Jupyter's Stop: SIGINT): the training ends at its next step with a
    // resumable checkpoint, the kernel and its variables stay, and the run goes on from the checkpoint.
    const stopped = await runCellsInKernel(training, {
      env: { CLIP_SIAMESE_DATA: data, CLIP_SIAMESE_REPORTS: reports, EPOCHS: "40", TFJS_BACKEND: "wasm", RUN: "stop" },
      steps: [
        ...code.filter((i) => i < trainIndex!).map((cell) => ({ cell })),
        { cell: trainIndex!, interruptWhen: "epoch 1/40" },
        {
          code: 'import { lastInterruption } from "../../lib/notebook/interrupt.ts";\n' +
            "console.log(`kept: ${P.RUN} ${inputs.size} products; resume from ${lastInterruption()?.resumeFrom}`);\n" +
            "P.RESUME = lastInterruption()!.resumeFrom!;\nP.EPOCHS = 2;",
        },
        { cell: trainIndex! },
        { cell: cleanup },
      ],
      timeoutSeconds: 900,
    });
    const interrupted = stopped.find((r) => r.interrupted_at !== undefined)!;
    expect(interrupted.reply_status).toBe("error");
    const stopError = interrupted.messages.find((m) => m.msg_type === "error")!;
    expect(stopError.ename).toBe("Interrupted");
    expect(stopError.evalue).toMatch(/^training stopped (at|after) epoch 1\/40.*Resume: set RESUME to /);
    const stopNotice = interrupted.messages.some((m) => /Press Stop again within 3 s/.test(m.text ?? ""));
    expect(stopNotice).toBe(true);
    const [kept, resumed, lastCell] = stopped.slice(-3);
    expect(kept.reply_status).toBe("ok");
    expect(kept.messages.map((m) => m.text ?? "").join("")).toMatch(/kept: stop \d+ products; resume from \S+/);
    for (const record of [resumed, lastCell]) {
      const error = record.messages.find((m) => m.msg_type === "error");
      if (error) throw new Error(`after Stop, cell ${record.cell}: ${error.ename}: ${error.evalue}`);
      expect(record.reply_status).toBe("ok");
    }

    // Two training runs with different parameters (the suite's EPOCHS=4 and the live kernel's EPOCHS=2), side by
    // side in compare_runs: the differing parameters first, the validation curves overlaid.
    const compare = await runScript("notebooks.ts", ["--preset", "test", "compare_runs"], {
      CLIP_SIAMESE_DATA: data,
      CLIP_SIAMESE_REPORTS: reports,
    });
    if (!compare.success) throw new Error(`compare_runs failed:\n${compare.log.slice(-4000)}`);
    const compared = JSON.parse(await Deno.readTextFile(join(reports, "results", "compare_runs.json")));
    const sideBySide = compared.tables[0].rows as Record<string, unknown>[];
    expect(sideBySide.length).toBeGreaterThanOrEqual(2);
    expect(new Set(sideBySide.map((r) => r.EPOCHS))).toEqual(new Set(["4", "2"]));
    expect(Object.keys(sideBySide[0]).indexOf("EPOCHS")).toBeLessThan(Object.keys(sideBySide[0]).indexOf("test_f1"));
    expect(compared.figures[0].figure.data.length).toBe(sideBySide.length);

    // Another dataset: pairs imported from a WDC-shaped pair table, then training, embedding and testing on it
    // through DATASET, with the vocabulary learnt from its training split.
    const source = await writePairTableFixture(await Deno.makeTempDir({ prefix: "e2e-pairs-" }));
    await runImportedSuite({
      data,
      reports,
      dataset: "pairs_fixture",
      run: "imported",
      source: { PAIR_FILES: source },
    });
    const importedMetrics = JSON.parse(await Deno.readTextFile(join(reports, "metrics.json")));
    const importedRendered = importedMetrics.notebooks["contrastive_test_embs_from-pairwise-rendered"];
    expect(importedRendered.dataset).toBe("pairs_fixture");
    expect(importedRendered.headline.SiameseRuCLIP.test_roc_auc).toBeGreaterThanOrEqual(0);
    // The label-free pretraining ran on the training split and the raw tower features started from it.
    const pretrained = JSON.parse(
      await Deno.readTextFile(join(data, "train_results", "imported", "text_tower_pretrained", "config.json")),
    );
    expect(pretrained.pretraining.epochs).toBe(2);
    expect(pretrained.pretraining.products).toBeGreaterThan(1);
  });
});

/**
 * A WDC-shaped pair table (one JSON line per pair, `<field>_left` / `<field>_right`, gzipped), one file per
 * split: 12 products of 4 offers each; positives within a product, negatives across. Returns PAIR_FILES.
 */
async function writePairTableFixture(dir: string): Promise<string> {
  const brands = ["logitech", "sony", "bosch", "canon", "philips", "garmin"];
  const kinds = ["headset", "camera", "drill", "kettle", "watch", "speaker"];
  const offer = (product: number, offer: number) => ({
    id: `${product}-${offer}`,
    title: `${brands[product % 6]} ${kinds[product % 6]} model ${100 + product}${offer % 2 ? " black" : ""}`,
    description: offer % 3 ? `${kinds[product % 6]} by ${brands[product % 6]}, offer ${offer}` : "None",
    brand: brands[product % 6],
    price: String(20 + product * 5 + offer),
  });
  const side = (o: Record<string, string>, suffix: string) =>
    Object.fromEntries(Object.entries(o).map(([key, value]) => [`${key}${suffix}`, value]));
  const files: string[] = [];
  for (const [split, products] of [["train", [0, 1, 2, 3, 4, 5]], ["val", [6, 7, 8]], ["test", [9, 10, 11]]] as const) {
    const lines: string[] = [];
    for (const p of products) {
      for (let a = 0; a < 4; a++) {
        for (let b = a + 1; b < 4; b++) {
          lines.push(JSON.stringify({ ...side(offer(p, a), "_left"), ...side(offer(p, b), "_right"), label: 1 }));
        }
        for (const q of products.filter((q) => q !== p)) {
          lines.push(JSON.stringify({ ...side(offer(p, a), "_left"), ...side(offer(q, a), "_right"), label: 0 }));
        }
      }
    }
    const path = join(dir, `${split}.jsonl.gz`);
    const gzipped = new Response(
      new Blob([lines.join("\n") + "\n"]).stream().pipeThrough(new CompressionStream("gzip")),
    );
    await Deno.writeFile(path, new Uint8Array(await gzipped.arrayBuffer()));
    files.push(`${path}:${split}`);
  }
  return files.join(",");
}
