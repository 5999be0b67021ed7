/**
 * A progress bar for long work that updates in place: in Jupyter through an updatable
 * display (display_id), in a terminal by rewriting one line on stderr, and as occasional
 * plain lines when stderr is not a terminal (CI logs).
 */
import { displayBundle, jupyter } from "./display.ts";

export interface ProgressOptions {
  total: number;
  label: string;
  /** Unit shown in the rate, e.g. "pairs", "images". */
  unit?: string;
  /** Minimum milliseconds between redraws. */
  intervalMs?: number;
  /** Print nothing (tests). */
  silent?: boolean;
  /** Where to draw; default: Jupyter display in the kernel, else one rewritten line on a terminal, else log lines. */
  mode?: "jupyter" | "tty" | "log";
}

function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  const minutes = Math.floor(seconds / 60);
  return minutes < 60
    ? `${minutes}m${String(Math.round(seconds % 60)).padStart(2, "0")}s`
    : `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}

function formatMetric(value: number | string): string {
  if (typeof value === "string") return value;
  return Math.abs(value) >= 100 || Number.isInteger(value)
    ? String(Math.round(value * 100) / 100)
    : String(Number(value.toPrecision(4)));
}

let counter = 0;

/** Progress of `total` steps; call `tick` as work completes and `done` at the end. */
export class Progress {
  readonly total: number;
  readonly label: string;
  readonly unit: string;
  private count = 0;
  private metrics: Record<string, number | string> = {};
  private readonly started = performance.now();
  private lastDraw = 0;
  private readonly intervalMs: number;
  private readonly displayId = `progress-${Date.now().toString(36)}-${counter++}`;
  private readonly mode: "jupyter" | "tty" | "log" | "silent";
  private shown = false;
  private drawnCount = -1;
  private finished = false;
  private pending: Promise<void> = Promise.resolve();

  constructor(options: ProgressOptions) {
    if (!(options.total >= 0)) throw new Error(`Progress "${options.label}": total must be >= 0, got ${options.total}`);
    this.total = options.total;
    this.label = options.label;
    this.unit = options.unit ?? "it";
    this.mode = options.silent
      ? "silent"
      : options.mode ?? (jupyter() ? "jupyter" : Deno.stderr.isTerminal() ? "tty" : "log");
    this.intervalMs = options.intervalMs ?? (this.mode === "log" ? 10_000 : this.mode === "jupyter" ? 500 : 100);
  }

  /** Steps completed so far. */
  get value(): number {
    return this.count;
  }

  /** Adds `steps` completed steps and updates the shown metrics (loss, accuracy, ...). */
  tick(steps = 1, metrics?: Record<string, number | string>): void {
    this.count += steps;
    if (metrics) Object.assign(this.metrics, metrics);
    const now = performance.now();
    if (now - this.lastDraw >= this.intervalMs || this.count >= this.total) this.draw(now);
  }

  /** Sets the shown metrics without advancing. */
  setMetrics(metrics: Record<string, number | string>): void {
    Object.assign(this.metrics, metrics);
  }

  /** The current line of text, e.g. `train 40/100 [40%] 12.3 pairs/s eta 5s loss=0.12`. */
  line(now = performance.now()): string {
    const elapsed = (now - this.started) / 1000;
    const rate = this.count / Math.max(elapsed, 1e-9);
    const fraction = this.total > 0 ? Math.min(1, this.count / this.total) : 1;
    const width = 24;
    const filled = Math.round(fraction * width);
    const bar = "█".repeat(filled) + "░".repeat(width - filled);
    const eta = this.count >= this.total
      ? `in ${formatSeconds(elapsed)}`
      : `eta ${formatSeconds((this.total - this.count) / rate)}`;
    const metrics = Object.entries(this.metrics).map(([k, v]) => `${k}=${formatMetric(v)}`).join(" ");
    return `${this.label} ${bar} ${this.count}/${this.total} (${Math.round(fraction * 100)}%) ` +
      `${formatMetric(rate)} ${this.unit}/s ${eta}${metrics ? "  " + metrics : ""}`;
  }

  private draw(now: number): void {
    this.lastDraw = now;
    this.drawnCount = this.count;
    const text = this.line(now);
    switch (this.mode) {
      case "jupyter": {
        const fraction = this.total > 0 ? Math.min(1, this.count / this.total) : 1;
        const html =
          `<div style="font-family:monospace"><progress value="${fraction}" max="1" style="width:240px"></progress> ` +
          `${text.replace(/&/g, "&amp;").replace(/</g, "&lt;")}</div>`;
        const shown = this.shown;
        this.pending = this.pending.then(() =>
          displayBundle({ "text/plain": text, "text/html": html }, this.displayId, shown)
        );
        this.shown = true;
        break;
      }
      case "tty":
        Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[2K${text}`));
        break;
      case "log":
        console.error(text);
        break;
    }
  }

  /** Marks the work finished and draws the final state; await it to be sure the notebook shows that state. */
  done(metrics?: Record<string, number | string>): Promise<void> {
    if (this.finished) return this.pending;
    this.finished = true;
    if (metrics) Object.assign(this.metrics, metrics);
    // A log line is final once printed: print the last state again only if it changed since.
    if (this.mode !== "log" || this.drawnCount !== this.count || metrics) this.draw(performance.now());
    if (this.mode === "tty") Deno.stderr.writeSync(new TextEncoder().encode("\n"));
    return this.pending;
  }
}
