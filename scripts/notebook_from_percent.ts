/**
 * Authoring helper: converts a percent-format TypeScript file into a Deno-kernel .ipynb.
 *
 *   // %% [markdown]
 *   // # Title
 *   // text...
 *   // %%
 *   const x = 1;
 *
 * Usage: deno run -A scripts/notebook_from_percent.ts <in.ts> <out.ipynb>
 * The .ipynb is what is committed; outputs are never stored (executed copies go to reports/).
 */
import { writeFileAtomic } from "../lib/fs.ts";

interface Cell {
  cell_type: "markdown" | "code";
  metadata: Record<string, unknown>;
  source: string[];
  execution_count?: null;
  outputs?: unknown[];
  id?: string;
}

/** Splits percent-format source into notebook cells. */
export function percentToCells(source: string): Cell[] {
  const cells: Cell[] = [];
  let current: { kind: "markdown" | "code"; tags: string[]; lines: string[] } | undefined;
  const flush = () => {
    if (!current) return;
    const lines = [...current.lines];
    while (lines.length && lines[0].trim() === "") lines.shift();
    while (lines.length && lines[lines.length - 1].trim() === "") lines.pop();
    if (lines.length === 0) return;
    const text = current.kind === "markdown" ? lines.map((l) => l.replace(/^\/\/ ?/, "")) : lines;
    const sourceLines = text.map((l, i) => (i < text.length - 1 ? l + "\n" : l));
    const metadata: Record<string, unknown> = current.tags.length ? { tags: current.tags } : {};
    cells.push(
      current.kind === "markdown"
        ? { cell_type: "markdown", metadata, source: sourceLines }
        : { cell_type: "code", metadata, source: sourceLines, execution_count: null, outputs: [] },
    );
  };
  for (const line of source.split("\n")) {
    const marker = line.match(/^\/\/ %%(.*)$/);
    if (marker) {
      flush();
      const rest = marker[1];
      const tags = [...rest.matchAll(/tags=\[([^\]]*)\]/g)].flatMap((m) =>
        m[1].split(",").map((t) => t.trim().replace(/["']/g, ""))
      );
      current = { kind: rest.includes("[markdown]") ? "markdown" : "code", tags, lines: [] };
    } else {
      current ??= { kind: "code", tags: [], lines: [] };
      current.lines.push(line);
    }
  }
  flush();
  return cells;
}

/** A Deno-kernel notebook document holding the given cells. */
export function notebookDocument(cells: Cell[]): Record<string, unknown> {
  return {
    cells,
    metadata: {
      kernelspec: { display_name: "Deno", language: "typescript", name: "deno" },
      language_info: {
        codemirror_mode: "typescript",
        file_extension: ".ts",
        mimetype: "text/x.typescript",
        name: "typescript",
        nbconvert_exporter: "script",
        pygments_lexer: "typescript",
        version: "5.x",
      },
    },
    nbformat: 4,
    nbformat_minor: 5,
  };
}

if (import.meta.main) {
  const [input, output] = Deno.args;
  if (!input || !output) {
    console.error("usage: deno run -A scripts/notebook_from_percent.ts <in.ts> <out.ipynb>");
    Deno.exit(2);
  }
  const cells = percentToCells(await Deno.readTextFile(input));
  cells.forEach((cell, i) => cell.id = `cell-${i}`);
  await writeFileAtomic(output, JSON.stringify(notebookDocument(cells), null, 1) + "\n");
  console.log(`${output}: ${cells.length} cells`);
}
