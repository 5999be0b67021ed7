import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import {
  DRAIN_LINE,
  executeNotebook,
  locateFailedCell,
  prepareForBatch,
  selectNotebooks,
} from "../lib/notebook/runner.ts";
import { notebookDocument, percentToCells } from "../scripts/notebook_from_percent.ts";
import { ensureNotebookEnvironment } from "../scripts/setup.ts";

async function writeNotebook(dir: string, name: string, percent: string): Promise<string> {
  const path = join(dir, `${name}.ipynb`);
  await Deno.writeTextFile(path, JSON.stringify(notebookDocument(percentToCells(percent))));
  return path;
}

describe("notebook runner", () => {
  it("converts percent-format sources into markdown and code cells", () => {
    const cells = percentToCells(
      '// %% [markdown]\n// # Title\n// text\n// %%\nconst a = 1;\n\n// %% tags=["parameters"]\nconst b = 2;\n',
    );
    expect(cells.map((c) => c.cell_type)).toEqual(["markdown", "code", "code"]);
    expect(cells[0].source.join("")).toBe("# Title\ntext");
    expect(cells[2].metadata).toEqual({ tags: ["parameters"] });
  });

  it("selects notebooks by name and rejects unknown names", () => {
    const suite = [{ name: "a", path: "notebooks/x/a.ipynb", presets: ["demo"] }, {
      name: "b",
      path: "notebooks/x/b.ipynb",
      presets: [],
    }];
    expect(selectNotebooks(suite, [], "demo").map((e) => e.name)).toEqual(["a"]);
    expect(selectNotebooks(suite, ["b"], "demo").map((e) => e.name)).toEqual(["b"]);
    expect(() => selectNotebooks(suite, ["zzz"], "demo")).toThrow(/no notebook named "zzz".*known: a, b/);
  });

  it("appends a drain pause only to cells whose last statement prints", () => {
    const notebook = notebookDocument(percentToCells(
      "// %% [markdown]\n// console.log('not code')\n// %%\nconst a = 1;\nconsole.log(a);\n// trailing comment\n// %%\nconst b = 2;\nb\n// %%\nawait show(1);\n",
    )) as unknown as { cells: { cell_type: string; source: string[] }[] };
    const { prepared, originals } = prepareForBatch(notebook);
    const text = (
      cell: { source: string | string[] },
    ) => (Array.isArray(cell.source) ? cell.source.join("") : cell.source);
    expect(text(prepared.cells[1]).endsWith(DRAIN_LINE)).toBe(true);
    expect(text(prepared.cells[0])).not.toContain(DRAIN_LINE);
    expect(text(prepared.cells[2])).not.toContain(DRAIN_LINE); // ends in an expression: its value is shown
    expect(text(prepared.cells[3])).not.toContain(DRAIN_LINE);
    expect(originals).toEqual(notebook.cells.map((c) => c.source));
  });

  it("locates the failing cell from nbclient's error text", () => {
    const nb = JSON.stringify(
      notebookDocument(percentToCells("// %%\nconst a = 1;\n// %%\nthrow new Error('boom');\n")),
    );
    const stderr =
      "An error occurred while executing the following cell:\n------------------\nthrow new Error('boom');\n------------------\n\nError: boom\n    at <anonymous>:1:7\n";
    expect(locateFailedCell(nb, stderr)).toEqual({ cell: 2, error: "Error: boom" });
  });

  it("executes a notebook with the Deno kernel, passing parameters through the environment", async () => {
    await ensureNotebookEnvironment();
    const dir = await Deno.makeTempDir();
    const path = await writeNotebook(
      dir,
      "ok",
      "// %%\nconst n = Number(Deno.env.get('RUNNER_TEST_N') ?? 0);\nconsole.log(`n squared is ${n * n}`);\n",
    );
    const result = await executeNotebook(path, { outDir: join(dir, "out"), env: { RUNNER_TEST_N: "7" } });
    expect(result.ok).toBe(true);
    const executed = JSON.parse(await Deno.readTextFile(result.executed!));
    expect(JSON.stringify(executed.cells[0].outputs)).toContain("n squared is 49");
    expect(JSON.stringify(executed.cells[0].source)).not.toContain("added by the runner");
    expect(await Deno.readTextFile(result.html!)).toContain("n squared is 49");
  });

  it("stops on a failing cell and reports its number and the error", async () => {
    const dir = await Deno.makeTempDir();
    const path = await writeNotebook(
      dir,
      "bad",
      "// %% [markdown]\n// # A failing notebook\n// %%\nconst x = 1;\n// %%\nthrow new Error(`dataset missing: sku ${x}`);\n// %%\nconsole.log('never');\n",
    );
    const result = await executeNotebook(path, { outDir: join(dir, "out") });
    expect(result.ok).toBe(false);
    expect(result.failedCell).toBe(3);
    expect(result.error).toContain("dataset missing: sku 1");
  });
});
