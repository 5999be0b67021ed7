/**
 * Executes notebooks in batch the way nbconvert does: `jupyter nbconvert --to notebook --execute`
 * with the Deno kernel, parameters passed as environment variables (read by each notebook's
 * parameters cell), the executed notebook and an HTML rendering written to an output folder.
 * On a failing cell it stops and reports the notebook, the cell number and the error.
 */
import { basename, dirname, join, relative } from "node:path";
import { projectRoot } from "../paths.ts";
import { withPlotlyJs } from "./display.ts";

/** One notebook of the suite, in execution order. */
export interface SuiteEntry {
  /** File name without extension, the original's notebook name. */
  name: string;
  /** Path relative to the project root. */
  path: string;
  /** Presets this notebook runs under in the default suite run. */
  presets: string[];
}

/** Reads `notebooks/suite.json`, the ordered suite. */
export async function loadSuite(root = projectRoot): Promise<SuiteEntry[]> {
  const text = await Deno.readTextFile(join(root, "notebooks", "suite.json"));
  const suite = JSON.parse(text) as { notebooks: SuiteEntry[] };
  return suite.notebooks;
}

/** Picks notebooks by name (or path); an unknown name is an error listing the known ones. */
export function selectNotebooks(suite: SuiteEntry[], names: string[], preset: string): SuiteEntry[] {
  if (names.length === 0) return suite.filter((entry) => entry.presets.includes(preset));
  return names.map((name) => {
    const found = suite.find((entry) => entry.name === name || entry.path === name || entry.path.endsWith(`/${name}`));
    if (!found) {
      throw new Error(
        `no notebook named "${name}" in notebooks/suite.json; known: ${suite.map((e) => e.name).join(", ")}`,
      );
    }
    return found;
  });
}

export interface NotebookResult {
  notebook: string;
  ok: boolean;
  seconds: number;
  executed?: string;
  html?: string;
  /** 1-based index of the failing cell among all cells of the notebook. */
  failedCell?: number;
  error?: string;
}

/** Finds which cell failed from nbclient's CellExecutionError text (it quotes the cell's source). */
export function locateFailedCell(notebookJson: string, stderr: string): { cell?: number; error: string } {
  const match = stderr.match(/An error occurred while executing the following cell:\n-+\n([\s\S]*?)\n-+\n([\s\S]*)$/);
  const errorLines = (match ? match[2] : stderr).trim().split("\n").filter((l) => l.trim() !== "");
  const error = errorLines.filter((l) => !/^\s*at |^\[NbConvertApp\]|Warning.*unstable/.test(l)).slice(-6).join("\n") ||
    "unknown error";
  if (!match) return { error };
  const source = match[1].trim();
  const cells = (JSON.parse(notebookJson).cells ?? []) as { source: string | string[] }[];
  const index = cells.findIndex((c) => (Array.isArray(c.source) ? c.source.join("") : c.source).trim() === source);
  return { cell: index >= 0 ? index + 1 : undefined, error };
}

/** What the runner appends to a cell whose last statement prints (see `prepareForBatch`). */
export const DRAIN_LINE = "\nawait new Promise((resolve) => setTimeout(resolve, 50)); // added by the runner";

interface NotebookJson {
  cells: { cell_type: string; source: string | string[] }[];
}

/**
 * The Deno kernel queues stdout on a channel that another task drains, and can report a cell
 * "idle" before that queue is empty: nbclient then drops the cell's last printed lines. For batch
 * runs, a cell whose last statement is a console call gets a short pause appended; cells that end
 * in an expression are left alone (their value is what the cell shows). Returns the prepared
 * notebook and the original sources, to put back into the executed notebook.
 */
export function prepareForBatch(notebook: NotebookJson): { prepared: NotebookJson; originals: (string | string[])[] } {
  const originals = notebook.cells.map((cell) => cell.source);
  const prepared = structuredClone(notebook);
  for (const cell of prepared.cells) {
    if (cell.cell_type !== "code") continue;
    const text = Array.isArray(cell.source) ? cell.source.join("") : cell.source;
    const lines = text.split("\n").map((line) => line.trim()).filter((line) => line && !line.startsWith("//"));
    if (/^console\.\w+\(/.test(lines.at(-1) ?? "")) cell.source = text + DRAIN_LINE;
  }
  return { prepared, originals };
}

/**
 * Executes one notebook; writes `<outDir>/<name>.ipynb` and `<outDir>/<name>.html` on success.
 * `env` is added to this process's environment for the kernel.
 */
export async function executeNotebook(
  path: string,
  options: { outDir: string; env?: Record<string, string>; timeoutSeconds?: number; kernel?: string },
): Promise<NotebookResult> {
  const started = performance.now();
  const name = basename(path, ".ipynb");
  await Deno.mkdir(options.outDir, { recursive: true });
  const executed = join(options.outDir, `${name}.ipynb`);
  // The prepared copy sits beside the original so that its relative imports resolve the same way.
  const original = JSON.parse(await Deno.readTextFile(path)) as NotebookJson;
  const { prepared, originals } = prepareForBatch(original);
  const runCopy = join(dirname(path), `.${name}.run-${crypto.randomUUID().slice(0, 8)}.ipynb`);
  await Deno.writeTextFile(runCopy, JSON.stringify(prepared));
  let nbconvert: Deno.CommandOutput;
  try {
    nbconvert = await new Deno.Command("jupyter", {
      args: [
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        `--ExecutePreprocessor.kernel_name=${options.kernel ?? "deno"}`,
        `--ExecutePreprocessor.timeout=${options.timeoutSeconds ?? 1800}`,
        "--output-dir",
        options.outDir,
        "--output",
        `${name}.ipynb`,
        runCopy,
      ],
      cwd: dirname(path),
      env: { ...(options.env ?? {}), NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
  } finally {
    await Deno.remove(runCopy).catch(() => {});
  }
  const seconds = (performance.now() - started) / 1000;
  if (!nbconvert.success) {
    const stderr = new TextDecoder().decode(nbconvert.stderr);
    const { cell, error } = locateFailedCell(JSON.stringify(prepared), stderr);
    return { notebook: path, ok: false, seconds, failedCell: cell, error };
  }
  const executedJson = JSON.parse(await Deno.readTextFile(executed)) as NotebookJson;
  executedJson.cells.forEach((cell, i) => cell.source = originals[i]);
  await Deno.writeTextFile(executed, JSON.stringify(executedJson, null, 1));
  const html = await new Deno.Command("jupyter", {
    args: ["nbconvert", "--to", "html", "--output-dir", options.outDir, executed],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!html.success) {
    const stderr = new TextDecoder().decode(html.stderr).trim().split("\n").slice(-3).join("\n");
    return { notebook: path, ok: false, seconds, executed, error: `HTML rendering failed: ${stderr}` };
  }
  const htmlPath = join(options.outDir, `${name}.html`);
  await Deno.writeTextFile(htmlPath, withPlotlyJs(await Deno.readTextFile(htmlPath)));
  return { notebook: path, ok: true, seconds, executed, html: htmlPath };
}

/** Executes notebooks in order, stopping at the first failure. */
export async function runNotebooks(
  entries: SuiteEntry[],
  options: {
    root?: string;
    outDir: string;
    env?: Record<string, string>;
    timeoutSeconds?: number;
    log?: (line: string) => void;
  },
): Promise<NotebookResult[]> {
  const root = options.root ?? projectRoot;
  const log = options.log ?? ((line: string) => console.log(line));
  const results: NotebookResult[] = [];
  for (const [i, entry] of entries.entries()) {
    log(`[${i + 1}/${entries.length}] ${entry.path} ...`);
    const result = await executeNotebook(join(root, entry.path), {
      outDir: join(options.outDir, dirname(entry.path).replace(/^notebooks\/?/, "")),
      env: options.env,
      timeoutSeconds: options.timeoutSeconds,
    });
    results.push(result);
    if (!result.ok) {
      const where = result.failedCell ? `cell ${result.failedCell}` : "an unknown cell";
      log(`FAILED ${entry.path}, ${where} (after ${result.seconds.toFixed(1)}s):\n${result.error}`);
      break;
    }
    log(`  ok in ${result.seconds.toFixed(1)}s -> ${relative(root, result.html ?? "")}`);
  }
  return results;
}
