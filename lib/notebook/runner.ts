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
  const nbconvert = await new Deno.Command("jupyter", {
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
      path,
    ],
    cwd: dirname(path),
    env: { ...(options.env ?? {}), NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const seconds = (performance.now() - started) / 1000;
  if (!nbconvert.success) {
    const stderr = new TextDecoder().decode(nbconvert.stderr);
    const { cell, error } = locateFailedCell(await Deno.readTextFile(path), stderr);
    return { notebook: path, ok: false, seconds, failedCell: cell, error };
  }
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
