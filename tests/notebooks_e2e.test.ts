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

describe("notebook suite, end to end", () => {
  it("runs every notebook of the test preset through nbconvert and writes the report", async () => {
    const data = await Deno.makeTempDir({ prefix: "e2e-data-" });
    const reports = await Deno.makeTempDir({ prefix: "e2e-reports-" });
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", join(projectRoot, "scripts", "notebooks.ts"), "--preset", "test"],
      cwd: projectRoot,
      env: { CLIP_SIAMESE_DATA: data, CLIP_SIAMESE_REPORTS: reports, EPOCHS: "4", TFJS_BACKEND: "wasm" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const log = new TextDecoder().decode(run.stdout) + new TextDecoder().decode(run.stderr);
    if (!run.success) throw new Error(`the suite failed:\n${log.slice(-4000)}`);

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
    for (const model of ["SiameseRuCLIP", "SBERT zero-shot", "raw tower features"]) {
      expect(rendered[model].test_roc_auc).toBeGreaterThan(0.5);
      expect(rendered[model].test_roc_auc).toBeLessThanOrEqual(1);
    }
    const report = await Deno.readTextFile(join(reports, "report.html"));
    expect(report).toContain("SiameseRuCLIP evaluation report");
    if (/<script[^>]*\bsrc="https?:/.test(report)) throw new Error("the report loads a script from the network");

    const predictions = [...Deno.readDirSync(join(data, "predictions", "demo_geo"))].map((e) => e.name).filter((n) =>
      n.endsWith(".parquet")
    );
    expect(predictions.length).toBeGreaterThan(0);
    const metadata = await readParquetKeyValueMetadata(join(data, "predictions", "demo_geo", predictions[0]));
    expect(Object.keys(metadata).join(" ")).toMatch(/threshold/);
    await Deno.stat(join(data, "train_results", "demo", "best", "model.safetensors"));
  });
});
