import { after, describe, it } from "node:test";
import { expect } from "expect";
import { dirname, join } from "node:path";
import {
  executeNotebook,
  failureReport,
  interpreterFromScript,
  jupyterPython,
  runNotebooks,
  selectNotebooks,
} from "../lib/notebook/runner.ts";
import { notebookDocument, percentToCells } from "../scripts/notebook_from_percent.ts";
import { ensureNotebookEnvironment } from "../scripts/setup.ts";

interface Output {
  output_type: string;
  name?: string;
  text?: string | string[];
  data?: Record<string, string | string[]>;
  ename?: string;
  evalue?: string;
}

interface ExecutedCell {
  cell_type: string;
  source?: string | string[];
  metadata?: { tags?: string[] };
  execution_count?: number | null;
  outputs?: Output[];
}

const tempDirs: string[] = [];

/** A fresh temporary folder, removed after the tests. */
async function tempDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "notebook-runner-" });
  tempDirs.push(dir);
  return dir;
}

async function writeNotebook(dir: string, name: string, percent: string): Promise<string> {
  const path = join(dir, `${name}.ipynb`);
  await Deno.mkdir(dirname(path), { recursive: true });
  await Deno.writeTextFile(path, JSON.stringify(notebookDocument(percentToCells(percent))));
  return path;
}

/** The executed cells of a notebook, without the banner the runner puts atop a failed copy. */
async function readCells(path: string): Promise<ExecutedCell[]> {
  return (await readAllCells(path)).filter((c) => !c.metadata?.tags?.includes("failed-run"));
}

async function readAllCells(path: string): Promise<ExecutedCell[]> {
  return (JSON.parse(await Deno.readTextFile(path)) as { cells: ExecutedCell[] }).cells;
}

/** Everything a cell shows as text: its streams and the text/plain of its results and displays. */
function shownText(cell: ExecutedCell): string {
  const join = (value: string | string[] | undefined) => (Array.isArray(value) ? value.join("") : value ?? "");
  return (cell.outputs ?? []).map((o) => join(o.text) + join(o.data?.["text/plain"])).join("");
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

describe("notebook runner", () => {
  after(async () => {
    for (const dir of tempDirs) await Deno.remove(dir, { recursive: true }).catch(() => {});
  });

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

  it("finds the Python that runs jupyter from its shebang", async () => {
    expect(interpreterFromScript("#!/usr/bin/python3\nimport sys\n")).toBe("/usr/bin/python3");
    expect(interpreterFromScript("#!/usr/bin/env python3.11\n")).toBe("python3.11");
    expect(interpreterFromScript("#!/bin/sh\n'''exec' \"/opt/venv/bin/python\" \"$0\" \"$@\"\n' '''\n")).toBe(
      "/opt/venv/bin/python",
    );
    expect(interpreterFromScript("#!/bin/bash\necho hi\n")).toBeUndefined();
    const python = await jupyterPython();
    const check = await new Deno.Command(python, { args: ["-c", "import nbclient, nbconvert"], stderr: "piped" })
      .output();
    expect(check.success).toBe(true);
  });

  it("rejects a timeout that is not a positive whole number of seconds", async () => {
    await expect(executeNotebook("x.ipynb", { outDir: "/nonexistent", timeoutSeconds: 0.5 })).rejects.toThrow(
      /timeoutSeconds must be a positive whole number of seconds, got 0.5/,
    );
  });

  it("executes a notebook in its folder, passing parameters through the environment", async () => {
    await ensureNotebookEnvironment();
    const dir = await tempDir();
    await Deno.writeTextFile(join(dir, "helper.ts"), "export const offset = 100;\n");
    const source =
      "// %%\nimport { offset } from './helper.ts';\nconst n = Number(Deno.env.get('RUNNER_TEST_N') ?? 0);\n" +
      "console.log(`n squared is ${n * n}, cwd ${Deno.cwd()}`);\n// %%\nn * n + offset\n";
    const path = await writeNotebook(dir, "ok", source);
    const original = await Deno.readTextFile(path);
    const result = await executeNotebook(path, { outDir: join(dir, "out"), env: { RUNNER_TEST_N: "7" } });
    expect(result).toMatchObject({
      ok: true,
      executed: join(dir, "out", "ok.ipynb"),
      html: join(dir, "out", "ok.html"),
    });
    const cells = await readCells(result.executed!);
    expect(shownText(cells[0])).toContain(`n squared is 49, cwd ${await Deno.realPath(dir)}`);
    expect(shownText(cells[1])).toBe("149"); // NO_COLOR: no ANSI colours in the value
    expect(await Deno.readTextFile(result.html!)).toContain("n squared is 49");
    expect(await Deno.readTextFile(path)).toBe(original);
    expect([...Deno.readDirSync(dir)].map((e) => e.name).sort()).toEqual(["helper.ts", "ok.ipynb", "out"]);
    expect([...Deno.readDirSync(join(dir, "out"))].map((e) => e.name).sort()).toEqual(["ok.html", "ok.ipynb"]);
  });

  it("names a failing cell as Jupyter does (In[n]) and keeps the partly executed notebook", async () => {
    await ensureNotebookEnvironment();
    const root = await tempDir();
    await writeNotebook(
      root,
      "notebooks/x/bad",
      "// %% [markdown]\n// # A failing notebook\n// %%\nconst x = 1;\nconsole.log('first ran');\n// %%\n" +
        "console.log('second ran');\n// %%\n// load the data\nthrow new Error(`dataset missing: sku ${x}`);\n" +
        "// %%\nconsole.log('never');\n",
    );
    const lines: string[] = [];
    const entry = { name: "bad", path: "notebooks/x/bad.ipynb", presets: [] };
    const [result] = await runNotebooks([entry], { root, outDir: join(root, "reports"), log: (l) => lines.push(l) });
    expect(result).toMatchObject({ ok: false, kind: "cell-error", failedCell: "In[3]" });
    expect(result.failedSource).toEqual(["// load the data", "throw new Error(`dataset missing: sku ${x}`);"]);
    expect(result.error).toBe("Error: dataset missing: sku 1");
    expect(result.executed).toBe(join(root, "reports", "x", "failed", "bad.ipynb"));
    const cells = await readCells(result.executed!);
    expect(shownText(cells[1])).toBe("first ran\n");
    expect(shownText(cells[2])).toBe("second ran\n");
    expect(cells[3].outputs).toEqual([
      expect.objectContaining({ output_type: "error", evalue: "dataset missing: sku 1" }),
    ]);
    expect(cells[4].outputs).toEqual([]);
    expect(await Deno.readTextFile(result.html!)).toContain("dataset missing: sku 1");
    expect(await exists(join(root, "reports", "x", "bad.ipynb"))).toBe(false);
    const log = lines.join("\n");
    expect(log).toContain("FAILED notebooks/x/bad.ipynb at In[3] (after ");
    expect(log).toContain("    // load the data\n    throw new Error(`dataset missing: sku ${x}`);\n");
    expect(log).toContain("Error: dataset missing: sku 1\npartial notebook: reports/x/failed/bad.ipynb");
    expect(log).not.toContain(root);
    expect(log).not.toMatch(/Traceback|nbclient|\.py/);
  });

  it("reports a kernel that was killed with its signal, not a Python traceback", async () => {
    await ensureNotebookEnvironment();
    const dir = await tempDir();
    const path = await writeNotebook(
      dir,
      "killed",
      "// %%\nconsole.log('before');\n// %%\nconst big = 1;\nDeno.kill(Deno.pid, 'SIGKILL');\n// %%\nconsole.log('never');\n",
    );
    const result = await executeNotebook(path, { outDir: join(dir, "out") });
    expect(result).toMatchObject({ ok: false, kind: "kernel-died", failedCell: "In[2]" });
    expect(result.error).toMatch(/^the kernel died while running In\[2\] \(killed by signal 9, SIGKILL\)/);
    expect(result.error).toMatch(/out of memory/);
    expect(result.error).not.toMatch(/Traceback|DeadKernelError/);
    expect(shownText((await readCells(join(dir, "out", "failed", "killed.ipynb")))[0])).toBe("before\n");
    expect(failureReport("killed.ipynb", result)).toMatch(/^FAILED killed.ipynb at In\[2\] \(after [\d.]+s\):\n/);
  });

  it("reports a kernel whose JavaScript heap ran out, in V8's own words", async () => {
    await ensureNotebookEnvironment();
    const dir = await tempDir();
    const path = await writeNotebook(
      dir,
      "heap",
      "// %%\nconst keep: number[][] = [];\nwhile (true) keep.push(new Array(100_000).fill(Math.random()));\n",
    );
    const env = { DENO_V8_FLAGS: "--max-old-space-size=200" }; // reaches the kernel: a small heap fills fast
    const result = await executeNotebook(path, { outDir: join(dir, "out"), env });
    expect(result).toMatchObject({ ok: false, kind: "kernel-died", failedCell: "In[1]" });
    expect(result.error).toMatch(
      /^the kernel died while running In\[1\] \(killed by signal \d+, SIG\w+\): the JavaScript heap/,
    );
    expect(result.error).toContain("\nthe kernel said: Fatal JavaScript out of memory");
  });

  it("reports a cell that runs past the timeout", async () => {
    await ensureNotebookEnvironment();
    const dir = await tempDir();
    const path = await writeNotebook(
      dir,
      "slow",
      "// %%\nconst a = 1;\n// %%\nconsole.log('waiting');\nawait new Promise((r) => setTimeout(r, 60_000));\n",
    );
    const result = await executeNotebook(path, { outDir: join(dir, "out"), timeoutSeconds: 2 });
    expect(result).toMatchObject({ ok: false, kind: "timeout", failedCell: "In[2]" });
    expect(result.error).toBe("In[2] was still running after 2 s, the timeout for one cell");
    expect(shownText((await readCells(result.executed!))[1])).toBe("waiting\n");
  });

  it("reports an unknown kernel in one line", async () => {
    await ensureNotebookEnvironment();
    const dir = await tempDir();
    const path = await writeNotebook(dir, "nokernel", "// %%\nconst a = 1;\n");
    const result = await executeNotebook(path, { outDir: join(dir, "out"), kernel: "no-such-kernel" });
    expect(result).toMatchObject({ ok: false, kind: "runner-error" });
    expect(result.error).toMatch(/^no Jupyter kernel named "no-such-kernel"; installed: .*deno/);
  });

  it("keeps output that the kernel sends after a cell's idle status", async () => {
    await ensureNotebookEnvironment();
    const dir = await tempDir();
    const cells = [
      "// %%\nfunction busy(ms: number) {\n  const t = performance.now();\n  while (performance.now() - t < ms);\n}",
    ];
    for (let i = 0; i < 30; i++) {
      // A burst of printing makes the kernel's stdout forwarding lag behind the cell's end.
      const last = i % 2 ? `const x${i} = ${i};` : `Math.sqrt(${i * i});`;
      cells.push(
        `// %%\nbusy(${20 + (i * 7) % 31});\nfor (let k = 0; k < 100; k++) console.log(\`row ${i}.\${k}\`);\n` +
          `console.log("line ${i}");\n${last}`,
      );
    }
    const display = (type: string, text: string) =>
      `Deno.jupyter.broadcast("${type}", { data: { "text/plain": "${text}" }, metadata: {}, transient: { display_id: "progress" } })`;
    cells.push(
      `// %%\nawait ${display("display_data", "state 0")};\nbusy(30);\n${
        display("update_display_data", "state 1")
      };\n` +
        `busy(40);\nfor (let k = 0; k < 100; k++) console.log(\`tail \${k}\`);\n${
          display("update_display_data", "final state")
        };`,
    );
    const path = await writeNotebook(dir, "late", cells.join("\n"));
    const result = await executeNotebook(path, { outDir: join(dir, "out") });
    expect(result.ok).toBe(true);
    const executed = await readCells(result.executed!);
    const misplaced = [];
    for (let i = 0; i < 30; i++) {
      const text = shownText(executed[i + 1]);
      const expected = Array.from({ length: 100 }, (_, k) => `row ${i}.${k}\n`).join("") + `line ${i}\n` +
        (i % 2 ? "" : String(i));
      if (text !== expected) misplaced.push(`cell ${i + 1}: ...${JSON.stringify(text.slice(-40))}`);
    }
    expect(misplaced).toEqual([]);
    const last = executed[31].outputs ?? [];
    expect(last.filter((o) => o.output_type === "display_data").map((o) => o.data?.["text/plain"])).toEqual([
      ["final state"],
    ]);
    expect(shownText(executed[31])).toContain("tail 99\n");
  });

  it("keeps the last good walkthrough when a later run fails, marks the failed copy, and a success clears it", async () => {
    await ensureNotebookEnvironment();
    const dir = await tempDir();
    const out = join(dir, "out");
    const good = "// %%\nconsole.log('fine');\n";
    const path = await writeNotebook(dir, "flaky", good);
    expect((await executeNotebook(path, { outDir: out })).ok).toBe(true);
    const goodCopy = await Deno.readTextFile(join(out, "flaky.ipynb"));
    await writeNotebook(dir, "flaky", "// %%\nconst MODE = 'heda';\n// %%\nthrow new Error(`now broken: ${MODE}`);\n");
    const failed = await executeNotebook(path, { outDir: out });
    expect(failed).toMatchObject({ ok: false, failedCell: "In[2]", executed: join(out, "failed", "flaky.ipynb") });
    // The good walkthrough is where it was, byte for byte; the failed copy says it failed, where, and why.
    expect(await Deno.readTextFile(join(out, "flaky.ipynb"))).toBe(goodCopy);
    expect(await exists(join(out, "flaky.html"))).toBe(true);
    const marked = await readAllCells(join(out, "failed", "flaky.ipynb"));
    expect(marked[0].cell_type).toBe("markdown");
    const banner = [marked[0].source].flat().join("");
    expect(banner).toContain("**This run of flaky failed at In[2]**");
    expect(banner).toContain("now broken: heda");
    expect(banner).toContain("`../flaky.ipynb`");
    const html = await Deno.readTextFile(join(out, "failed", "flaky.html"));
    expect(html).toMatch(/<div class="failed-run"[^>]*>This run of flaky failed at In\[2\]/);
    await writeNotebook(dir, "flaky", good);
    expect((await executeNotebook(path, { outDir: out })).ok).toBe(true);
    expect(await exists(join(out, "failed", "flaky.ipynb"))).toBe(false);
    expect(await exists(join(out, "failed", "flaky.html"))).toBe(false);
    expect([...Deno.readDirSync(out)].map((e) => e.name).sort()).toEqual(["flaky.html", "flaky.ipynb"]);
  });

  it("marks the run records a failing notebook started as failed at its cell", async () => {
    await ensureNotebookEnvironment();
    const dir = await tempDir();
    const data = join(dir, "data");
    // A notebook that records a run as lib/experiment/run_record.ts does (runner token from the environment), then fails.
    const path = await writeNotebook(
      dir,
      "records",
      [
        "// %%",
        "const dir = Deno.env.get('CLIP_SIAMESE_DATA') + '/runs/r1';",
        "Deno.mkdirSync(dir, { recursive: true });",
        "const token = Deno.env.get('CLIP_SIAMESE_RUNNER_TOKEN');",
        "Deno.writeTextFileSync(dir + '/run.json', JSON.stringify({ id: 'r1', status: 'running', runnerToken: token, started: new Date().toISOString() }));",
        "// %%",
        "throw new Error('stopped here');",
      ].join("\n"),
    );
    await Deno.mkdir(join(data, "runs", "other"), { recursive: true });
    const other = { id: "other", status: "running", runnerToken: "another-run", started: new Date().toISOString() };
    await Deno.writeTextFile(join(data, "runs", "other", "run.json"), JSON.stringify(other));
    const result = await executeNotebook(path, { outDir: join(dir, "out"), env: { CLIP_SIAMESE_DATA: data } });
    expect(result.ok).toBe(false);
    const record = JSON.parse(await Deno.readTextFile(join(data, "runs", "r1", "run.json")));
    expect(record).toMatchObject({ status: "failed", failedAt: "In[2]" });
    expect(record.error).toContain("stopped here");
    expect(JSON.parse(await Deno.readTextFile(join(data, "runs", "other", "run.json"))).status).toBe("running");
  });

  it("an interrupt (Ctrl-C) stops the running cell at its next step, runs no later cell, keeps the partial notebook", async () => {
    if (Deno.build.os !== "linux") return; // the notebook finds the driver process through /proc
    await ensureNotebookEnvironment();
    const dir = await tempDir();
    const data = join(dir, "data");
    const lib = (path: string) => new URL(`../lib/${path}`, import.meta.url).href;
    const path = await writeNotebook(
      dir,
      "stopped",
      [
        "// %%",
        `import { notebookParams } from "${lib("notebook/params.ts")}";`,
        "const P = await notebookParams({}, { show: false });",
        "const dir = Deno.env.get('CLIP_SIAMESE_DATA') + '/runs/r1';",
        "Deno.mkdirSync(dir, { recursive: true });",
        "const token = Deno.env.get('CLIP_SIAMESE_RUNNER_TOKEN');",
        "Deno.writeTextFileSync(dir + '/run.json', JSON.stringify({ id: 'r1', status: 'running', runnerToken: token, started: new Date().toISOString() }));",
        "// %%",
        `import { beginInterruptible, throwIfInterrupted } from "${lib("notebook/interrupt.ts")}";`,
        "beginInterruptible();",
        "// Ctrl-C reaches the driver (an ancestor of this kernel), which passes it on to the kernel.",
        "const parentOf = (pid: number) => Number(Deno.readTextFileSync(`/proc/${pid}/stat`).split(') ')[1].split(' ')[1]);",
        "let driver = Deno.ppid;",
        "while (driver > 1 && !Deno.readTextFileSync(`/proc/${driver}/cmdline`).includes('execute_notebook.py')) {",
        "  driver = parentOf(driver);",
        "}",
        "Deno.kill(driver, 'SIGINT');",
        "for (let i = 0; i < 600; i++) {",
        "  await new Promise((resolve) => setTimeout(resolve, 50));",
        "  throwIfInterrupted(() => `loop stopped at step ${i}`, 'the steps done.', 'run it again.');",
        "}",
        "// %%",
        "console.log('never');",
      ].join("\n"),
    );
    const result = await executeNotebook(path, { outDir: join(dir, "out"), env: { CLIP_SIAMESE_DATA: data } });
    expect(result).toMatchObject({ ok: false, kind: "interrupted", failedCell: "In[2]" });
    expect(result.error).toMatch(
      /^interrupted: Interrupted: loop stopped at step \d+ \(Stop\)\. Kept: the steps done\. Resume: run it again\.$/,
    );
    const all = await readAllCells(result.executed!);
    expect([all[0].source].flat().join("")).toMatch(/^\*\*This run of stopped was interrupted at In\[2\]\*\*/);
    const cells = await readCells(result.executed!);
    expect(cells[1].outputs).toEqual(expect.arrayContaining([expect.objectContaining({ ename: "Interrupted" })]));
    expect(cells[2].outputs).toEqual([]);
    const record = JSON.parse(await Deno.readTextFile(join(data, "runs", "r1", "run.json")));
    expect(record).toMatchObject({ status: "stopped", failedAt: "In[2]" });
  });
});
