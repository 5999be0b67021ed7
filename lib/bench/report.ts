/**
 * The bench's result rows and their rendering: a plain-text table for the terminal and a Markdown
 * table for reports/bench.md, with the ratio ours / PyTorch where both sides were measured.
 * Throughputs (products/s, pairs/s) are "higher is better", so a ratio above 1 means faster than
 * PyTorch; times (ms) are "lower is better", and their ratio is PyTorch's time over ours, so that
 * above 1 means faster for every row.
 */

/** Whether a larger value is better (throughput) or a smaller one (time). */
export type BenchDirection = "higher" | "lower";

/** One measured quantity. */
export interface BenchRow {
  /** Bench section: "embedding", "training", "evaluation", "kernels". */
  section: string;
  /** What was measured, e.g. "real preset, batch 32". */
  item: string;
  /** Where it ran: a tfjs backend name, "onnxruntime", "scalar JS". */
  backend: string;
  /** Our measured value; null when skipped (see `note`). */
  value: number | null;
  unit: string;
  direction: BenchDirection;
  /** PyTorch's value of the same quantity, when measured. */
  torchValue?: number | null;
  /** Why a value is missing, or how it was measured. */
  note?: string;
  /** Threads the CPU backend ran with (tfjs-wasm's pool, onnxruntime's intra-op threads); absent elsewhere. */
  threads?: number;
  /** The same row's value at 1 thread, for rows measured at more (see `attachThreadScaling`). */
  oneThreadValue?: number | null;
}

/**
 * Speed relative to PyTorch: ours / torch for throughputs, torch / ours for times (so above 1 means
 * we are faster). Null when either side is missing, zero or not finite.
 */
export function speedRatio(
  ours: number | null | undefined,
  torch: number | null | undefined,
  direction: BenchDirection,
): number | null {
  if (ours == null || torch == null || !Number.isFinite(ours) || !Number.isFinite(torch) || ours <= 0 || torch <= 0) {
    return null;
  }
  return direction === "higher" ? ours / torch : torch / ours;
}

/** A value with 3 significant digits (no exponent below 1e6); "-" for null. */
export function formatValue(value: number | null | undefined): string {
  if (value == null || !Number.isFinite(value)) return "-";
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  if (magnitude >= 1000) return Math.round(value).toLocaleString("en-US");
  const digits = Math.max(0, 2 - Math.floor(Math.log10(magnitude)));
  return value.toFixed(Math.min(digits, 4));
}

/** A ratio as "0.42x"; "-" for null. */
export function formatRatio(ratio: number | null): string {
  return ratio == null ? "-" : `${ratio >= 10 ? ratio.toFixed(0) : ratio.toFixed(2)}x`;
}

const HEADER = [
  "section",
  "item",
  "backend",
  "threads",
  "ours",
  "unit",
  "PyTorch",
  "ours vs PyTorch",
  "vs 1 thread",
  "note",
];

/** The key that tells rows of one measurement at different thread counts apart from other measurements. */
function measurementKey(row: BenchRow): string {
  return `${row.section}\u0000${row.item}\u0000${row.backend}\u0000${row.unit}`;
}

/**
 * Sets `oneThreadValue` on every row measured at more than one thread from its 1-thread twin (same
 * section, item, backend and unit), so the table shows how a CPU row scales with threads.
 */
export function attachThreadScaling(rows: readonly BenchRow[]): BenchRow[] {
  const single = new Map<string, number | null>();
  for (const row of rows) if (row.threads === 1) single.set(measurementKey(row), row.value);
  return rows.map((row) =>
    row.threads !== undefined && row.threads > 1 && single.has(measurementKey(row))
      ? { ...row, oneThreadValue: single.get(measurementKey(row)) }
      : row
  );
}

/** The cells of each row, in HEADER order. */
export function tableCells(rows: readonly BenchRow[]): string[][] {
  return rows.map((row) => [
    row.section,
    row.item,
    row.backend,
    row.threads === undefined ? "" : String(row.threads),
    formatValue(row.value),
    row.unit,
    formatValue(row.torchValue),
    formatRatio(speedRatio(row.value, row.torchValue, row.direction)),
    row.oneThreadValue === undefined ? "" : formatRatio(speedRatio(row.value, row.oneThreadValue, row.direction)),
    row.note ?? "",
  ]);
}

/** A plain-text table with aligned columns (for the terminal). */
export function renderTextTable(rows: readonly BenchRow[]): string {
  const cells = [HEADER, ...tableCells(rows)];
  const widths = HEADER.map((_, c) => Math.max(...cells.map((r) => r[c].length)));
  const line = (r: string[]): string => r.map((cell, c) => cell.padEnd(widths[c])).join("  ").trimEnd();
  return [line(cells[0]), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n");
}

/** A Markdown table (pipes in cells escaped). */
export function renderMarkdownTable(rows: readonly BenchRow[]): string {
  const escape = (cell: string): string => cell.replaceAll("|", "\\|");
  const line = (r: string[]): string => `| ${r.map(escape).join(" | ")} |`;
  return [line(HEADER), line(HEADER.map(() => "---")), ...tableCells(rows).map(line)].join("\n");
}
