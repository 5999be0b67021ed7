/**
 * Rich output for notebooks that degrades to text: tables, plotly figures, markdown.
 * Inside the Deno Jupyter kernel these go out as MIME bundles; under `deno run`/`deno test`
 * they print as text.
 */
import type pl from "nodejs-polars";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

export type MimeBundle = Record<string, unknown>;

interface JupyterApi {
  display(obj: unknown, options?: { raw?: boolean; update?: boolean; display_id?: string }): Promise<void>;
  broadcast(msgType: string, content: Record<string, unknown>, extra?: Record<string, unknown>): Promise<void>;
}

/** The Jupyter API when running inside the Deno kernel, else undefined. */
export function jupyter(): JupyterApi | undefined {
  // The kernel evaluates cells as the module `$deno$jupyter_repl.mts`. Outside the kernel,
  // `deno run` throws on the mere read of `Deno.jupyter`, so the module is checked first.
  if (!Deno.mainModule.includes("$deno$jupyter")) return undefined;
  try {
    // deno-lint-ignore no-explicit-any
    return (Deno as any).jupyter as JupyterApi | undefined;
  } catch {
    return undefined;
  }
}

/** Milliseconds to wait after sending an output (see displayBundle). */
const OUTPUT_DRAIN_MS = 30;

/** Sends a MIME bundle to the notebook (or prints its text/plain outside Jupyter). */
export async function displayBundle(bundle: MimeBundle, displayId?: string, update = false): Promise<void> {
  const api = jupyter();
  if (api) {
    if (displayId) {
      await api.broadcast(update ? "update_display_data" : "display_data", {
        data: bundle,
        metadata: {},
        transient: { display_id: displayId },
      });
    } else {
      await api.display(bundle, { raw: true });
    }
    // Deno's kernel queues iopub messages on a channel that another task drains, so a cell can
    // report "idle" before its last output went out, and nbclient then drops that output. A short
    // pause lets the queue drain before the cell ends (measured: no lost outputs in 600 cells).
    await new Promise((resolve) => setTimeout(resolve, OUTPUT_DRAIN_MS));
    return;
  }
  if (!update) console.log(String(bundle["text/plain"] ?? ""));
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function formatCell(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") {
    if (Number.isInteger(value)) return String(value);
    return Math.abs(value) >= 1e4 || (Math.abs(value) < 1e-3 && value !== 0)
      ? value.toExponential(3)
      : value.toFixed(4);
  }
  if (Array.isArray(value)) return `[${value.length} items]`;
  return String(value);
}

/** Rows as plain objects: from a polars DataFrame or an array of records. */
function toRows(
  table: pl.DataFrame | Record<string, unknown>[],
): { columns: string[]; rows: Record<string, unknown>[] } {
  if (Array.isArray(table)) {
    const columns = [...new Set(table.flatMap((row) => Object.keys(row)))];
    return { columns, rows: table };
  }
  return { columns: table.columns, rows: table.toRecords() as Record<string, unknown>[] };
}

/** HTML and text renderings of a table, at most `maxRows` rows (head and tail). */
export function tableBundle(
  table: pl.DataFrame | Record<string, unknown>[],
  options: { title?: string; maxRows?: number } = {},
): MimeBundle {
  const { columns, rows } = toRows(table);
  const maxRows = options.maxRows ?? 20;
  const shown = rows.length > maxRows
    ? [...rows.slice(0, Math.ceil(maxRows / 2)), null, ...rows.slice(rows.length - Math.floor(maxRows / 2))]
    : rows;
  const cells = shown.map((row) => row === null ? columns.map(() => "…") : columns.map((c) => formatCell(row[c])));
  const widths = columns.map((c, i) => Math.min(40, Math.max(c.length, ...cells.map((r) => r[i].length))));
  const line = (values: string[]) => values.map((v, i) => v.slice(0, 40).padEnd(widths[i])).join("  ");
  const text = [
    options.title ? `${options.title} (${rows.length} rows)` : `(${rows.length} rows)`,
    line(columns),
    line(widths.map((w) => "-".repeat(w))),
    ...cells.map(line),
  ].join("\n");
  const html =
    `<div>${
      options.title ? `<b>${escapeHtml(options.title)}</b> ` : ""
    }<small>${rows.length} rows × ${columns.length} columns</small>` +
    `<table class="dataframe"><thead><tr>${
      columns.map((c) => `<th>${escapeHtml(c)}</th>`).join("")
    }</tr></thead><tbody>` +
    cells.map((r) => `<tr>${r.map((v) => `<td>${escapeHtml(v)}</td>`).join("")}</tr>`).join("") +
    `</tbody></table></div>`;
  return { "text/html": html, "text/plain": text };
}

/** Shows a table (polars DataFrame or records). */
export function showTable(
  table: pl.DataFrame | Record<string, unknown>[],
  options: { title?: string; maxRows?: number } = {},
): Promise<void> {
  return displayBundle(tableBundle(table, options));
}

/** Shows markdown text. */
export function showMarkdown(markdown: string): Promise<void> {
  return displayBundle({ "text/markdown": markdown, "text/plain": markdown });
}

/** A plotly figure: traces and layout, as plotly.js takes them. */
export interface Figure {
  data: Record<string, unknown>[];
  layout?: Record<string, unknown>;
}

let plotlySource: string | undefined;
/** The plotly.js-dist-min bundle, for self-contained HTML. */
export function plotlyJs(): string {
  if (plotlySource === undefined) {
    const require = createRequire(import.meta.url);
    plotlySource = readFileSync(require.resolve("plotly.js-dist-min"), "utf8");
  }
  return plotlySource;
}

let figureCounter = 0;

/**
 * An HTML fragment that draws the figure with plotly.js. plotly.js itself (4.8 MB) is included only
 * when asked (self-contained reports); notebook outputs never carry it, because a message that
 * large makes Jupyter drop the outputs that follow it. The notebook runner adds plotly.js once to
 * each exported HTML page instead, and JupyterLab draws the plotly MIME type itself.
 */
export function figureHtml(figure: Figure, options: { includePlotly?: boolean; height?: number } = {}): string {
  const id = `plot-${Date.now().toString(36)}-${figureCounter++}`;
  const height = options.height ?? Number((figure.layout?.height as number | undefined) ?? 420);
  const json = JSON.stringify(figure).replace(/</g, "\\u003c");
  return (options.includePlotly ? `<script type="text/javascript">${plotlyJs()}</script>` : "") +
    `<div id="${id}" class="plotly-figure" style="height:${height}px;"></div>` +
    `<script type="text/javascript">(function(){var f=${json};var n=0;` +
    `function draw(){if(window.Plotly){Plotly.newPlot("${id}",f.data,f.layout||{},{responsive:true});return;}` +
    `if(++n<50){setTimeout(draw,100);}else{document.getElementById("${id}").textContent=` +
    `"(plotly.js is not loaded here: see the HTML rendering under reports/walkthrough/)";}}draw();})();</script>`;
}

/** Inserts plotly.js once into an HTML page that draws plotly figures (exported notebooks). */
export function withPlotlyJs(html: string): string {
  if (!html.includes("Plotly.newPlot") || html.includes("/*plotly.js bundled*/")) return html;
  const script = `<script type="text/javascript">/*plotly.js bundled*/${plotlyJs()}</script>`;
  const at = html.indexOf("</head>");
  return at >= 0 ? html.slice(0, at) + script + html.slice(at) : script + html;
}

/** Text summary of a figure, for terminals and as the text/plain fallback. */
export function figureText(figure: Figure): string {
  const title = figure.layout?.title as { text?: string } | string | undefined;
  const titleText = typeof title === "string" ? title : title?.text ?? "figure";
  const traces = figure.data.map((t) => `${t.type ?? "scatter"}${t.name ? ` "${t.name}"` : ""}`).join(", ");
  return `[plot] ${titleText}: ${traces}`;
}

function figureBundle(figure: Figure): MimeBundle {
  return {
    "application/vnd.plotly.v1+json": { data: figure.data, layout: figure.layout ?? {} },
    "text/html": figureHtml(figure),
    "text/plain": figureText(figure),
  };
}

/** Shows a plotly figure: the plotly MIME type for Jupyter, HTML that renders in exported pages. */
export async function showPlot(figure: Figure): Promise<void> {
  await displayBundle(figureBundle(figure));
}

/**
 * A figure that redraws in place (a training curve): in Jupyter one output updated through its
 * display id, so the executed notebook keeps the final state; in a terminal a line per update.
 */
export class LivePlot {
  private readonly displayId = `live-${Date.now().toString(36)}-${figureCounter++}`;
  private shown = false;

  /** Shows (first call) or redraws the figure. */
  async update(figure: Figure): Promise<void> {
    await displayBundle(figureBundle(figure), this.displayId, this.shown);
    if (!jupyter()) console.log(figureText(figure));
    this.shown = true;
  }
}
