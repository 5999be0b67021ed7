/**
 * A progress bar for long work that updates in place: in Jupyter through an updatable
 * display (display_id), in a terminal by rewriting one line on stderr, and as occasional
 * plain lines when stderr is not a terminal (CI logs).
 *
 * In the Deno kernel an output only leaves when the cell's code yields to the event loop, and
 * tfjs work awaits only microtasks: a loop must `await bar.tick()` for the bar to move while it
 * runs (a tick that redraws waits until its output went out; the others cost nothing). A bar
 * ends with `await bar.done()` (the work is complete) or `await bar.stop(reason)` (it ended
 * early or failed: the bar then reads `train ███░░ 40/100 (40%) stopped: <reason>`), so that
 * the notebook keeps the final state. `bar.run(work)` and `bar.finish(error)` do one or the
 * other on every exit path:
 *
 *     const bar = new Progress({ total: 100, label: "train" });
 *     await bar.run(async () => {
 *       for (const batch of batches) await bar.tick(batch.length, { loss: await step(batch) });
 *     });
 */
import { displayBundle, escapeHtml, jupyter, type MimeBundle } from "./display.ts";

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

/** Longest stop reason shown; longer ones are cut with an ellipsis. */
const MAX_REASON_LENGTH = 200;

/** What a tick that does not redraw returns. */
const RESOLVED: Promise<void> = Promise.resolve();

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

/** One line saying why work stopped: a string as given, an error's message; first line only, at most 200 characters. */
export function stopReason(reason: unknown): string {
  const text = reason instanceof Error ? reason.message || reason.name : String(reason);
  const first = text.trim().split("\n")[0].trim() || "unknown reason";
  return first.length > MAX_REASON_LENGTH ? first.slice(0, MAX_REASON_LENGTH - 1) + "…" : first;
}

let counter = 0;

/**
 * Progress of `total` steps: `await tick()` as work completes, then `done()` at the end or
 * `stop(reason)` when it ends early; a finished bar ignores later ticks.
 */
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
  private drawnCount = -1;
  private finishedAt: number | undefined;
  private stoppedBecause: string | undefined;
  /** Jupyter: whether the display exists (later draws update it). */
  private shown = false;
  /** Jupyter: the newest state not sent yet (drawing faster than outputs leave keeps only the newest). */
  private queued: { bundle: MimeBundle; final: boolean } | undefined;
  /** Jupyter: the running send loop; resolves when the queue is empty. */
  private sending: Promise<void> | undefined;
  private warned = false;

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

  /** Whether `done` or `stop` was called. */
  get finished(): boolean {
    return this.finishedAt !== undefined;
  }

  /**
   * Adds `steps` completed steps and updates the shown metrics (loss, accuracy, ...); redraws when
   * `intervalMs` passed since the last draw or the total is reached. Await it in loops: after a
   * redraw in Jupyter it resolves once the output went out, otherwise at once. Never rejects.
   */
  tick(steps = 1, metrics?: Record<string, number | string>): Promise<void> {
    if (this.finished) return RESOLVED;
    this.count += steps;
    if (metrics) Object.assign(this.metrics, metrics);
    const now = performance.now();
    return now - this.lastDraw >= this.intervalMs || this.count >= this.total ? this.draw(now) : RESOLVED;
  }

  /** Sets the shown metrics without advancing. */
  setMetrics(metrics: Record<string, number | string>): void {
    Object.assign(this.metrics, metrics);
  }

  /**
   * The current line of text, e.g. `train ██████░░░ 40/100 (40%) 12.3 pairs/s eta 5s  loss=0.12`;
   * `... 100/100 (100%) 10 pairs/s in 10s` when done, `... 40/100 (40%) stopped: <reason>` when stopped.
   */
  line(now = performance.now()): string {
    const fraction = this.total > 0 ? Math.min(1, this.count / this.total) : 1;
    const width = 24;
    const filled = Math.round(fraction * width);
    const head = `${this.label} ${"█".repeat(filled)}${"░".repeat(width - filled)} ${this.count}/${this.total} ` +
      `(${Math.round(fraction * 100)}%)`;
    const metrics = Object.entries(this.metrics).map(([k, v]) => `${k}=${formatMetric(v)}`).join(" ");
    const tail = metrics ? "  " + metrics : "";
    if (this.stoppedBecause !== undefined) return `${head} stopped: ${this.stoppedBecause}${tail}`;
    const elapsed = ((this.finishedAt ?? now) - this.started) / 1000;
    const rate = this.count / Math.max(elapsed, 1e-9);
    const eta = this.finished || this.count >= this.total
      ? `in ${formatSeconds(elapsed)}`
      : `eta ${formatSeconds((this.total - this.count) / rate)}`;
    return `${head} ${formatMetric(rate)} ${this.unit}/s ${eta}${tail}`;
  }

  /**
   * Marks the work complete and draws the final state (the count reached, `in <elapsed>`); the
   * promise resolves once that state went out. Later calls (and `stop`) change nothing. Never rejects.
   */
  done(metrics?: Record<string, number | string>): Promise<void> {
    if (this.finished) return this.sending ?? RESOLVED;
    this.finishedAt = performance.now();
    if (metrics) Object.assign(this.metrics, metrics);
    // A log line is final once printed: print the last state again only if it changed since.
    const unchanged = this.mode === "log" && this.drawnCount === this.count && !metrics;
    return unchanged ? RESOLVED : this.drawFinal();
  }

  /**
   * Marks the work ended early (interrupted, failed) and draws where it stopped and why:
   * `label ███░░ 40/100 (40%) stopped: <reason>`, the reason being a string or an error (its
   * message's first line). Resolves once that state went out; no-op on a finished bar. Never rejects.
   */
  stop(reason: unknown, metrics?: Record<string, number | string>): Promise<void> {
    if (this.finished) return this.sending ?? RESOLVED;
    this.finishedAt = performance.now();
    this.stoppedBecause = stopReason(reason);
    if (metrics) Object.assign(this.metrics, metrics);
    return this.drawFinal();
  }

  /** `done()` without an error, `stop(error)` with one: for `finally` blocks that know how the work ended. */
  finish(error?: unknown): Promise<void> {
    return error === undefined ? this.done() : this.stop(error);
  }

  /** Runs `work`, then `done()`; if it throws, `stop(error)` and rethrows. The bar's final state is out when this settles. */
  async run<T>(work: (bar: this) => Promise<T> | T): Promise<T> {
    let result: T;
    try {
      result = await work(this);
    } catch (error) {
      await this.stop(error);
      throw error;
    }
    await this.done();
    return result;
  }

  private drawFinal(): Promise<void> {
    const drawn = this.draw(this.finishedAt!);
    if (this.mode === "tty") Deno.stderr.writeSync(new TextEncoder().encode("\n"));
    return drawn;
  }

  private draw(now: number): Promise<void> {
    this.lastDraw = now;
    this.drawnCount = this.count;
    const text = this.line(now);
    switch (this.mode) {
      case "jupyter":
        return this.send({ "text/plain": text, "text/html": this.html(text) }, this.finished);
      case "tty":
        Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[2K${text}`));
        return RESOLVED;
      case "log":
        console.error(text);
        return RESOLVED;
      default:
        return RESOLVED;
    }
  }

  private html(text: string): string {
    const fraction = this.total > 0 ? Math.min(1, this.count / this.total) : 1;
    return `<div style="font-family:monospace"><progress value="${fraction}" max="1" style="width:240px"></progress> ` +
      `${escapeHtml(text)}</div>`;
  }

  /** Queues `bundle` as the newest state; the promise resolves once the queue is sent. */
  private send(bundle: MimeBundle, final: boolean): Promise<void> {
    this.queued = { bundle, final };
    this.sending ??= this.sendQueued();
    return this.sending;
  }

  private async sendQueued(): Promise<void> {
    try {
      while (this.queued) {
        const { bundle, final } = this.queued;
        this.queued = undefined;
        const update = this.shown;
        this.shown = true;
        try {
          await this.sendOne(bundle, update, final);
        } catch (error) {
          this.warnOnce(error);
        }
      }
    } finally {
      this.sending = undefined;
    }
  }

  /**
   * Broadcasts one state and yields to the event loop, where the kernel sends it. The final state
   * goes through displayBundle, whose longer pause makes sure it leaves before the cell ends; the
   * others take one turn of the event loop (a redraw costs about a millisecond, not 30), and one
   * that has not left by then leaves with the next.
   */
  private async sendOne(bundle: MimeBundle, update: boolean, final: boolean): Promise<void> {
    const api = jupyter();
    if (final || !api) return await displayBundle(bundle, this.displayId, update);
    await api.broadcast(update ? "update_display_data" : "display_data", {
      data: bundle,
      metadata: {},
      transient: { display_id: this.displayId },
    });
    await new Promise((resolve) => setTimeout(resolve, 0));
  }

  private warnOnce(error: unknown): void {
    if (this.warned) return;
    this.warned = true;
    console.warn(`progress "${this.label}": could not draw the bar: ${stopReason(error)}`);
  }
}
