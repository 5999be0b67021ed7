/**
 * `deno task check` for notebooks: type-checks and lints each notebook's code cells as one module
 * (the cells in order, as a kernel session runs them), written beside the notebook so that its
 * relative imports resolve. Exits 1 naming the notebook and the line of each error.
 *
 * Formatting: `deno fmt` formats a notebook's code cells, but `deno fmt --check` on .ipynb reports
 * formatted notebooks as unformatted (Deno 2.9.6, with an empty diff; it only passes from its incremental
 * cache). So each notebook is formatted as a copy beside it and compared byte for byte.
 */
import { basename, dirname, join, relative } from "node:path";
import { loadSuite } from "../lib/notebook/runner.ts";
import { projectRoot } from "../lib/paths.ts";

interface Cell {
  cell_type: string;
  source: string | string[];
  metadata?: { tags?: string[] };
}

/** The most lines of logic a code cell may hold (the parameters cell, a list of declarations, excepted). */
export const MAX_CELL_LOGIC_LINES = 15;

/** Lines of logic in a cell: not imports, comments, blank lines or lines that only close brackets. */
export function logicLines(source: string): number {
  const code = source.replace(/^import\s[^;]*;\s*$/gms, "");
  return code.split("\n").filter((line) => {
    const trimmed = line.trim();
    return trimmed !== "" && !trimmed.startsWith("//") && !/^[)\]};,\s]*$/.test(trimmed);
  }).length;
}

/** One message per code cell over `MAX_CELL_LOGIC_LINES`, naming it. */
export function longCells(path: string, cells: readonly Cell[]): string[] {
  return cells.flatMap((cell, index) => {
    if (cell.cell_type !== "code" || cell.metadata?.tags?.includes("parameters")) return [];
    const lines = logicLines(Array.isArray(cell.source) ? cell.source.join("") : cell.source);
    return lines > MAX_CELL_LOGIC_LINES
      ? [
        `${path} (cell ${
          index + 1
        }): ${lines} lines of logic, more than ${MAX_CELL_LOGIC_LINES}; move the logic into lib/`,
      ]
      : [];
  });
}

/** The code cells of a notebook as one TypeScript module. */
export function notebookModule(cells: readonly Cell[]): string {
  const code = cells.filter((c) => c.cell_type === "code").map((c) =>
    Array.isArray(c.source) ? c.source.join("") : c.source
  );
  return `${code.join("\n")}\nexport {};\n`;
}

/** "cell 3, line 2" (1-based, code and markdown cells counted as Jupyter shows them) of a module line. */
export function cellPosition(cells: readonly Cell[], moduleLine: number): string {
  let line = 1;
  for (const [index, cell] of cells.entries()) {
    if (cell.cell_type !== "code") continue;
    const lines = (Array.isArray(cell.source) ? cell.source.join("") : cell.source).split("\n").length;
    if (moduleLine < line + lines) return `cell ${index + 1}, line ${moduleLine - line + 1}`;
    line += lines;
  }
  return `line ${moduleLine}`;
}

/** A problem line when `deno fmt` would change the notebook, else undefined. */
async function formatProblem(path: string): Promise<string | undefined> {
  const copy = join(dirname(path), `.check-fmt-${crypto.randomUUID().slice(0, 8)}-${basename(path)}`);
  const original = await Deno.readFile(path);
  await Deno.writeFile(copy, original);
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["fmt", "--quiet", copy],
      cwd: projectRoot,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) return `deno fmt:\n${new TextDecoder().decode(out.stderr).replaceAll(copy, path)}`;
    const formatted = await Deno.readFile(copy);
    const same = formatted.length === original.length && formatted.every((b, i) => b === original[i]);
    return same ? undefined : `${path}: not formatted; run deno fmt ${relative(projectRoot, path)}`;
  } finally {
    await Deno.remove(copy).catch(() => {});
  }
}

async function checkNotebook(path: string): Promise<string | undefined> {
  const cells = (JSON.parse(await Deno.readTextFile(path)) as { cells: Cell[] }).cells;
  const module = join(dirname(path), `.check-${basename(path, ".ipynb")}-${crypto.randomUUID().slice(0, 8)}.ts`);
  await Deno.writeTextFile(module, notebookModule(cells));
  try {
    const problems: string[] = longCells(path, cells);
    const unformatted = await formatProblem(path);
    if (unformatted) problems.push(unformatted);
    for (const args of [["check", "--quiet", module], ["lint", "--quiet", module]]) {
      const out = await new Deno.Command(Deno.execPath(), {
        args,
        cwd: projectRoot,
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (out.success) continue;
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      const located = text.replaceAll(`file://${module}`, module).replace(
        new RegExp(`${module.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:(\\d+):(\\d+)`, "g"),
        (_, line, column) => `${path} (${cellPosition(cells, Number(line))}, column ${column})`,
      );
      problems.push(`deno ${args[0]}:\n` + located.replaceAll(module, path));
    }
    return problems.length ? problems.join("\n") : undefined;
  } finally {
    await Deno.remove(module).catch(() => {});
  }
}

if (import.meta.main) {
  const paths = Deno.args.length ? Deno.args : (await loadSuite()).map((entry) => join(projectRoot, entry.path));
  let failed = 0;
  for (const path of paths) {
    const problem = await checkNotebook(path);
    if (problem) {
      failed++;
      console.error(`${path}:\n${problem.trim()}\n`);
    }
  }
  const passed = paths.length - failed;
  console.error(
    `${passed}/${paths.length} notebooks are formatted, type-check, lint and keep cells to ` +
      `${MAX_CELL_LOGIC_LINES} lines of logic`,
  );
  if (failed) Deno.exit(1);
}
