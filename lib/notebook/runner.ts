/**
 * Executes notebooks in batch with the Deno kernel through `execute_notebook.py` (nbclient, run by
 * the Python that runs `jupyter`): parameters passed as environment variables (read by each
 * notebook's parameters cell), the kernel started in the notebook's folder, the executed notebook
 * and an HTML rendering written to an output folder. On a failure it stops and reports the cell as
 * Jupyter labels it (`In[n]`), its first lines and the error, and keeps the partly executed
 * notebook under `<outDir>/failed/`, marked as failed; the last good walkthrough stays where it was.
 * The run records the notebook started (lib/experiment/run_record.ts) are marked failed at that cell.
 */
import { basename, dirname, isAbsolute, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { dataDir, projectRoot } from "../paths.ts";
import { LocalRunStore, markRunsFailed, RUNNER_TOKEN_VARIABLE, runsDir } from "../experiment/run_record.ts";
import { writeFileAtomic } from "../fs.ts";
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

/** How a notebook run failed. */
export type FailureKind = "cell-error" | "kernel-died" | "timeout" | "interrupted" | "runner-error";

/** What executing one notebook gave. */
export interface NotebookResult {
  /** The notebook's path, as given. */
  notebook: string;
  ok: boolean;
  seconds: number;
  /** The executed notebook: `<outDir>/<name>.ipynb`, or the partly executed `<outDir>/failed/<name>.ipynb`. */
  executed?: string;
  /** Its HTML rendering, beside it. */
  html?: string;
  /** What kind of failure, when not ok. */
  kind?: FailureKind;
  /** The failing cell as Jupyter labels it: `In[n]` (code cells only). */
  failedCell?: string;
  /** The failing cell's first source lines (at most 3), then `...` when it has more. */
  failedSource?: string[];
  /** The error: its name and message as the kernel reported them, or what happened to the kernel. */
  error?: string;
}

/** Options of `executeNotebook`. */
export interface ExecuteOptions {
  /** Folder for the executed notebook and its HTML (failures go to its `failed/` subfolder). */
  outDir: string;
  /** Added to this process's environment for the kernel (with NO_COLOR=1). */
  env?: Record<string, string>;
  /** Seconds one cell may run; 1800 by default. */
  timeoutSeconds?: number;
  /** Jupyter kernel name; `deno` by default. */
  kernel?: string;
}

/** The Python driver that executes one notebook with nbclient. */
export const driverPath: string = fileURLToPath(new URL("./execute_notebook.py", import.meta.url));

/** What the driver writes to its result file. */
interface DriverResult {
  ok: boolean;
  kind: FailureKind | null;
  error: string | null;
  cell: { label: string; index: number; first_lines: string[]; line_count: number } | null;
  html_error: string | null;
}

/** First full path of `name` on PATH, or undefined. */
async function findOnPath(name: string): Promise<string | undefined> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":").filter(Boolean)) {
    const candidate = join(dir, name);
    try {
      if ((await Deno.stat(candidate)).isFile) return candidate;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

/**
 * The interpreter a script's first lines start: `#!/usr/bin/python3`, `#!/usr/bin/env python3`, or
 * pip's `#!/bin/sh` + `'''exec' "/path/python"` form for long paths; undefined when none is a Python.
 */
export function interpreterFromScript(head: string): string | undefined {
  const lines = head.split("\n");
  const exec = lines.slice(1, 4).join("\n").match(/^'''exec' "?([^"\s]+)"?/m);
  if (exec) return exec[1];
  const shebang = lines[0].match(/^#!\s*(\S+)(?:\s+(\S+))?/);
  if (!shebang) return undefined;
  const interpreter = basename(shebang[1]) === "env" ? shebang[2] : shebang[1];
  return interpreter && /^python/.test(basename(interpreter)) ? interpreter : undefined;
}

/**
 * The Python that runs `jupyter` (read from its shebang), which has nbclient and nbconvert;
 * `/usr/bin/python3` when `jupyter` is not on PATH or does not name one.
 */
export async function jupyterPython(): Promise<string> {
  const jupyter = await findOnPath("jupyter");
  if (!jupyter) return "/usr/bin/python3";
  const file = await Deno.open(jupyter);
  try {
    const buffer = new Uint8Array(1024);
    const read = (await file.read(buffer)) ?? 0;
    return interpreterFromScript(new TextDecoder().decode(buffer.subarray(0, read))) ?? "/usr/bin/python3";
  } finally {
    file.close();
  }
}

function checkOptions(options: ExecuteOptions): void {
  const timeout = options.timeoutSeconds;
  if (timeout !== undefined && !(Number.isInteger(timeout) && timeout > 0)) {
    throw new Error(`timeoutSeconds must be a positive whole number of seconds, got ${timeout}`);
  }
  if (options.kernel !== undefined && !/^[\w.-]+$/.test(options.kernel)) {
    throw new Error(`kernel must be a Jupyter kernel name (letters, digits, "_", "." or "-"), got "${options.kernel}"`);
  }
}

function driverFailure(error: string): DriverResult {
  return { ok: false, kind: "runner-error", error, cell: null, html_error: null };
}

/** Runs the driver on `path`, writing into `staging`; its result, or a runner error when it gave none. */
async function runDriver(
  path: string,
  staging: string,
  options: ExecuteOptions,
  token: string,
): Promise<DriverResult> {
  const resultPath = join(staging, "result.json");
  const python = await jupyterPython();
  const args = [driverPath, "--result", resultPath, "--out-notebook", join(staging, "executed.ipynb")];
  args.push("--out-html", join(staging, "executed.html"), "--kernel", options.kernel ?? "deno");
  args.push("--timeout", String(options.timeoutSeconds ?? 1800), path);
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(python, {
      args,
      env: { ...(options.env ?? {}), NO_COLOR: "1", [RUNNER_TOKEN_VARIABLE]: token },
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    return driverFailure(`cannot start ${python} to execute notebooks: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(await Deno.readTextFile(resultPath)) as DriverResult;
  } catch {
    const lastLine = new TextDecoder().decode(output.stderr).split("\n").filter((l) => l.trim()).at(-1);
    return driverFailure(
      `the notebook driver (${python} ${relativeToRoot(driverPath)}) exited with code ${output.code} ` +
        `without a result${lastLine ? `: ${lastLine.trim()}` : ""}`,
    );
  }
}

/** Removes files that may not exist. */
async function removeIfThere(...paths: string[]): Promise<void> {
  for (const path of paths) {
    await Deno.remove(path).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
  }
}

/** Moves `from` to `to` (a rename: it arrives whole); false when `from` does not exist. */
async function moveIfThere(from: string, to: string): Promise<boolean> {
  try {
    await Deno.rename(from, to);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** A text file's content; undefined when it does not exist. */
async function readIfThere(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/**
 * Moves the driver's notebook and HTML (plotly.js added) from `staging` to `dir/<name>.*`, each
 * arriving whole. Returns the paths of those the driver wrote.
 */
async function placeOutputs(staging: string, dir: string, name: string): Promise<{ executed?: string; html?: string }> {
  await Deno.mkdir(dir, { recursive: true });
  const placed: { executed?: string; html?: string } = {};
  const executed = join(dir, `${name}.ipynb`);
  if (await moveIfThere(join(staging, "executed.ipynb"), executed)) placed.executed = executed;
  const html = await readIfThere(join(staging, "executed.html"));
  if (html !== undefined) {
    placed.html = join(dir, `${name}.html`);
    await writeFileAtomic(placed.html, withPlotlyJs(html));
  }
  return placed;
}

/** The cell's first lines, then "..." when it has more. */
function quotedSource(cell: NonNullable<DriverResult["cell"]>): string[] {
  return cell.line_count > cell.first_lines.length ? [...cell.first_lines, "..."] : cell.first_lines;
}

/** The result of a failed run, from the driver's report. */
function failedResult(path: string, seconds: number, driver: DriverResult, placed: Partial<NotebookResult>) {
  const result: NotebookResult = { notebook: path, ok: false, seconds, ...placed, kind: driver.kind ?? "runner-error" };
  if (driver.cell) {
    result.failedCell = driver.cell.label;
    result.failedSource = quotedSource(driver.cell);
  }
  result.error = driver.error ?? `HTML rendering failed: ${driver.html_error}`;
  return result;
}

/** What a failed copy says first: where it stopped, the error, and where the last good run is. */
export function failureBanner(
  name: string,
  driver: Pick<DriverResult, "cell" | "error"> & { kind?: DriverResult["kind"] },
  when: Date,
): string {
  const where = driver.cell ? ` at ${driver.cell.label}` : "";
  const what = driver.kind === "interrupted" ? "was interrupted" : "failed";
  return `**This run of ${name} ${what}${where}** (${when.toISOString()}): ${driver.error ?? "see the cells below"}. ` +
    `The last good run's walkthrough, if there is one, is \`../${name}.ipynb\` / \`../${name}.html\`, kept as it was.`;
}

/** Puts the banner first in the failed copy: a markdown cell in the notebook, a box atop the HTML body. */
async function markFailedCopy(placed: { executed?: string; html?: string }, banner: string): Promise<void> {
  if (placed.executed) {
    const notebook = JSON.parse(await Deno.readTextFile(placed.executed));
    notebook.cells = [
      { cell_type: "markdown", metadata: { tags: ["failed-run"] }, source: [banner] },
      ...notebook.cells,
    ];
    await writeFileAtomic(placed.executed, JSON.stringify(notebook, null, 1) + "\n");
  }
  if (placed.html) {
    const html = await Deno.readTextFile(placed.html);
    const text = banner.replace(/\*\*/g, "").replace(/`/g, "").replace(/&/g, "&amp;").replace(/</g, "&lt;");
    const box = `<div class="failed-run" style="border:2px solid #D55E00;padding:8px;margin:8px">${text}</div>`;
    await writeFileAtomic(placed.html, html.replace(/<body([^>]*)>/, (body) => `${body}${box}`));
  }
}

/**
 * Executes one notebook (the file itself is left as it is). On success writes `<outDir>/<name>.ipynb`
 * and `.html` and removes `<outDir>/failed/<name>.*` from an earlier failed run. On failure writes the
 * partly executed notebook and its HTML to `<outDir>/failed/<name>.*`, marked as failed at its cell,
 * leaves the last good `<outDir>/<name>.*` as they were, and marks the run records the notebook started
 * as failed there.
 */
export async function executeNotebook(path: string, options: ExecuteOptions): Promise<NotebookResult> {
  checkOptions(options);
  const started = performance.now();
  const name = basename(path, ".ipynb");
  await Deno.mkdir(options.outDir, { recursive: true });
  const staging = await Deno.makeTempDir({ dir: options.outDir, prefix: `.${name}.run-` });
  const token = crypto.randomUUID();
  try {
    const driver = await runDriver(path, staging, options, token);
    const seconds = (performance.now() - started) / 1000;
    const ok = driver.ok && !driver.html_error;
    const failedDir = join(options.outDir, "failed");
    const placed = await placeOutputs(staging, ok ? options.outDir : failedDir, name);
    if (!ok) {
      await markFailedCopy(placed, failureBanner(name, driver, new Date()));
      const data = options.env?.CLIP_SIAMESE_DATA ?? dataDir();
      await markRunsFailed(
        token,
        {
          failedAt: driver.cell?.label,
          error: driver.error ?? undefined,
          status: driver.kind === "interrupted" ? "stopped" : "failed",
        },
        new LocalRunStore(runsDir(data)),
      );
      return failedResult(path, seconds, driver, placed);
    }
    await removeIfThere(join(failedDir, `${name}.ipynb`), join(failedDir, `${name}.html`));
    await Deno.remove(failedDir).catch(() => {}); // only goes when empty
    return { notebook: path, ok, seconds, ...placed };
  } finally {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
  }
}

/** `path` relative to `root` when it lies inside it, else as it is. */
export function relativeToRoot(path: string, root = projectRoot): string {
  const rel = relative(root, path);
  return rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel : path;
}

/** What `runNotebooks` logs for a failed notebook: where, the cell's first lines, the error, the partial copy. */
export function failureReport(entryPath: string, result: NotebookResult, root = projectRoot): string {
  const where = result.failedCell ? ` at ${result.failedCell}` : "";
  const what = result.kind === "interrupted" ? "INTERRUPTED" : "FAILED";
  const lines = [`${what} ${entryPath}${where} (after ${result.seconds.toFixed(1)}s):`];
  lines.push(...(result.failedSource ?? []).map((line) => `    ${line}`));
  lines.push(result.error ?? "unknown error");
  if (result.executed) lines.push(`partial notebook: ${relativeToRoot(result.executed, root)}`);
  return lines.join("\n");
}

/** Executes notebooks in order, stopping at the first failure. */
export async function runNotebooks(
  entries: SuiteEntry[],
  options: {
    root?: string;
    outDir: string;
    env?: Record<string, string>;
    timeoutSeconds?: number;
    kernel?: string;
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
      kernel: options.kernel,
    });
    results.push(result);
    if (!result.ok) {
      log(failureReport(entry.path, result, root));
      break;
    }
    log(`  ok in ${result.seconds.toFixed(1)}s -> ${relativeToRoot(result.html ?? "", root)}`);
  }
  return results;
}
