/**
 * `deno task check` for notebooks: type-checks each notebook's code cells as one module (the
 * cells in order, as a kernel session runs them), written beside the notebook so that its
 * relative imports resolve. Exits 1 naming the notebook and the line of each error.
 */
import { basename, dirname, join } from "node:path";
import { loadSuite } from "../lib/notebook/runner.ts";
import { projectRoot } from "../lib/paths.ts";

interface Cell {
  cell_type: string;
  source: string | string[];
}

/** The code cells of a notebook as one TypeScript module. */
export function notebookModule(cells: readonly Cell[]): string {
  const code = cells.filter((c) => c.cell_type === "code").map((c) =>
    Array.isArray(c.source) ? c.source.join("") : c.source
  );
  return `${code.join("\n")}\nexport {};\n`;
}

async function checkNotebook(path: string): Promise<string | undefined> {
  const cells = (JSON.parse(await Deno.readTextFile(path)) as { cells: Cell[] }).cells;
  const module = join(dirname(path), `.check-${basename(path, ".ipynb")}-${crypto.randomUUID().slice(0, 8)}.ts`);
  await Deno.writeTextFile(module, notebookModule(cells));
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--quiet", module],
      cwd: projectRoot,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (out.success) return undefined;
    return new TextDecoder().decode(out.stderr).replaceAll(`file://${module}`, path).replaceAll(module, path);
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
  console.error(`${paths.length - failed}/${paths.length} notebooks type-check`);
  if (failed) Deno.exit(1);
}
