/**
 * `deno task check` for notebooks: type-checks and lints each notebook's code cells as one module
 * (the cells in order, as a kernel session runs them), written beside the notebook so that its
 * relative imports resolve. Exits 1 naming the notebook and the line of each error. (Formatting is
 * checked by `deno fmt --check notebooks/`, which formats .ipynb code cells itself.)
 */
import { basename, dirname, join } from "node:path";
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

async function checkNotebook(path: string): Promise<string | undefined> {
  const cells = (JSON.parse(await Deno.readTextFile(path)) as { cells: Cell[] }).cells;
  const module = join(dirname(path), `.check-${basename(path, ".ipynb")}-${crypto.randomUUID().slice(0, 8)}.ts`);
  await Deno.writeTextFile(module, notebookModule(cells));
  try {
    const problems: string[] = longCells(path, cells);
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
  console.error(
    `${
      paths.length - failed
    }/${paths.length} notebooks type-check, lint and keep cells to ${MAX_CELL_LOGIC_LINES} lines of logic`,
  );
  if (failed) Deno.exit(1);
}
