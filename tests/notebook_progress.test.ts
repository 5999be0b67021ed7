/**
 * Progress bars: their text (running, done, stopped), and in a live Deno kernel (recorded by
 * tests/kernel_client.py) that a bar moves while a tfjs-like loop runs (synchronous work, only
 * microtask awaits) and ends showing its final state before the cell reports idle.
 */
import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { projectRoot } from "../lib/paths.ts";
import { Progress, stopReason } from "../lib/notebook/progress.ts";
import { notebookDocument, percentToCells } from "../scripts/notebook_from_percent.ts";
import { ensureNotebookEnvironment } from "../scripts/setup.ts";
import { type CellRecord, type KernelMessage, runCellsInKernel } from "./kernel_client.ts";

const STEPS = 20;
const STEP_MS = 100;

/**
 * Cells: a setup cell; a loop of STEPS steps of STEP_MS busy work and a microtask await (as tfjs
 * does), awaiting each tick; a loop that throws after 5 steps inside `bar.run`.
 */
function progressNotebook(): Record<string, unknown> {
  const progressUrl = new URL("../lib/notebook/progress.ts", import.meta.url).href;
  const source = `// %%
import { Progress } from "${progressUrl}";
function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // synchronous work, like a tfjs-wasm kernel
  }
}
async function step(): Promise<void> {
  busy(${STEP_MS});
  await Promise.resolve(); // like tensor.data(): a microtask, never the event loop
}
// %%
const bar = new Progress({ total: ${STEPS}, label: "busy loop", unit: "steps", intervalMs: 250 });
for (let i = 0; i < ${STEPS}; i++) {
  await step();
  await bar.tick();
}
await bar.done();
// %%
const failing = new Progress({ total: ${STEPS}, label: "failing loop", unit: "steps", intervalMs: 250 });
await failing.run(async () => {
  for (let i = 0; i < ${STEPS}; i++) {
    await step();
    if (i === 5) throw new Error("lost the data at step 5\\nsecond line of the error");
    await failing.tick();
  }
});
`;
  return notebookDocument(percentToCells(source));
}

/** The bar's display messages (display_data, update_display_data) of one execution. */
function barMessages(record: CellRecord): KernelMessage[] {
  return record.messages.filter((m) => m.display_id?.startsWith("progress-") && m.text !== undefined);
}

/** The `n` of `n/total` in a bar's text. */
function countOf(message: KernelMessage): number {
  return Number(message.text!.match(/ (\d+)\/\d+ \(/)![1]);
}

/** What a record shows, for failure messages. */
function timeline(record: CellRecord): string {
  return record.messages.map((m) => `${m.t.toFixed(2)} ${m.msg_type} ${m.execution_state ?? m.text ?? m.evalue ?? ""}`)
    .join("\n");
}

describe("progress bar text", () => {
  it("shows count, percentage, rate, eta and metrics while running", () => {
    const bar = new Progress({ total: 4, label: "train", unit: "pairs", silent: true });
    bar.tick(1, { loss: 0.5 });
    bar.tick(1, { loss: 0.25 });
    expect(bar.line()).toMatch(/^train █{12}░{12} 2\/4 \(50%\) [\d.]+ pairs\/s eta \S+ {2}loss=0\.25$/);
    expect(bar.value).toBe(2);
  });

  it("when done shows the count reached and the elapsed time, which no longer changes", async () => {
    const bar = new Progress({ total: 3, label: "embed", unit: "products", silent: true });
    await bar.tick(3);
    await bar.done({ loss: 0.125 });
    const line = bar.line();
    expect(line).toMatch(/^embed █{24} 3\/3 \(100%\) [\d.]+ products\/s in [\d.]+s {2}loss=0\.125$/);
    expect(bar.line(performance.now() + 60_000)).toBe(line);
    expect(bar.finished).toBe(true);
  });

  it("when stopped says where and why, and ignores later ticks and done()", async () => {
    const bar = new Progress({ total: 100, label: "train", unit: "pairs", silent: true });
    await bar.tick(40, { loss: 0.5 });
    await bar.stop("the user interrupted");
    const stopped = `train ${"█".repeat(10)}${"░".repeat(14)} 40/100 (40%) stopped: the user interrupted  loss=0.5`;
    expect(bar.line()).toBe(stopped);
    await bar.tick(10);
    await bar.done();
    expect(bar.line()).toBe(stopped);
  });

  it("states an error's first line as the reason, shortened when long", () => {
    expect(stopReason(new Error("disk full\n    at write (file.ts:1:1)"))).toBe("disk full");
    expect(stopReason("  interrupted \nmore")).toBe("interrupted");
    expect(stopReason(new RangeError(""))).toBe("RangeError");
    expect(stopReason(42)).toBe("42");
    const long = stopReason("x".repeat(500));
    expect(long.length).toBe(200);
    expect(long.endsWith("…")).toBe(true);
  });

  it("finish() is done() without an error and stop(error) with one", async () => {
    const ok = new Progress({ total: 2, label: "a", silent: true });
    await ok.tick(2);
    await ok.finish();
    expect(ok.line()).toMatch(/2\/2 \(100%\) .* in /);
    const failed = new Progress({ total: 2, label: "b", silent: true });
    await failed.tick(1);
    let error: unknown;
    try {
      throw new Error("boom");
    } catch (caught) {
      error = caught;
    } finally {
      await failed.finish(error);
    }
    expect(failed.line()).toMatch(/^b .* 1\/2 \(50%\) stopped: boom$/);
  });

  it("run() returns the work's value after done(), or stops with its error and rethrows it", async () => {
    const ok = new Progress({ total: 1, label: "ok", silent: true });
    const value = await ok.run(async (bar) => {
      await bar.tick();
      return "value";
    });
    expect(value).toBe("value");
    expect(ok.line()).toContain(" in ");
    const failing = new Progress({ total: 4, label: "failing", silent: true });
    await expect(failing.run(async (bar) => {
      await bar.tick(3);
      throw new Error("no more data");
    })).rejects.toThrow("no more data");
    expect(failing.line()).toMatch(/3\/4 \(75%\) stopped: no more data$/);
  });

  it("tick() resolves at once when it does not redraw, and after the draw when it does", async () => {
    const printed: string[] = [];
    const original = console.log;
    console.log = (text: string) => printed.push(text);
    try {
      // Outside the kernel a forced jupyter bar prints its first state (displayBundle's text fallback).
      const bar = new Progress({ total: 10, label: "draw", mode: "jupyter", intervalMs: 1e12 });
      let resolved = false;
      const first = bar.tick().then(() => (resolved = true)); // within the interval: no redraw
      await Promise.resolve();
      expect(resolved).toBe(true);
      await first;
      expect(printed).toEqual([]);
      await bar.tick(9); // reaching the total redraws
      expect(printed).toEqual([expect.stringContaining("draw ████████████████████████ 10/10 (100%)")]);
      await bar.done();
      expect(printed.length).toBe(1); // updates of an existing display print nothing outside Jupyter
    } finally {
      console.log = original;
    }
  });

  it("in log mode prints a stopped bar's final line", async () => {
    const lines: string[] = [];
    const original = console.error;
    console.error = (text: string) => lines.push(text);
    try {
      const bar = new Progress({ total: 10, label: "download", mode: "log", intervalMs: 60_000 });
      await bar.tick(4);
      await bar.stop(new Error("network unreachable"));
      expect(lines.at(-1)).toMatch(/^download .* 4\/10 \(40%\) stopped: network unreachable$/);
    } finally {
      console.error = original;
    }
  });
});

describe("progress bar in a live Deno kernel", () => {
  it("moves while a synchronous-heavy loop runs and shows its final state before the cell ends", async () => {
    await ensureNotebookEnvironment();
    const dir = await Deno.makeTempDir({ prefix: "progress-kernel-" });
    try {
      const path = join(dir, "progress.ipynb");
      await Deno.writeTextFile(path, JSON.stringify(progressNotebook()));
      const [setup, loop, failing] = await runCellsInKernel(path, { cwd: projectRoot, keepGoing: true });
      expect(setup.reply_status).toBe("ok");

      // The loop: updates arrive while it runs, in order, the last one before idle is the done state.
      expect(loop.reply_status).toBe("ok");
      const idle = loop.idle_at!;
      const shown = barMessages(loop);
      expect(shown[0]?.msg_type).toBe("display_data");
      const counts = shown.map(countOf);
      expect(counts).toEqual([...counts].sort((a, b) => a - b));
      // A count c is reached (STEPS - c) * STEP_MS before the loop ends: the updates up to 75% must
      // arrive well before idle, not in a burst when the cell ends.
      const early = shown.filter((m) => m.msg_type === "update_display_data" && countOf(m) <= 15 && m.t < idle - 0.4);
      if (early.length < 3) throw new Error(`the bar did not move while the loop ran:\n${timeline(loop)}`);
      const beforeIdle = shown.filter((m) => m.t <= idle && !m.late);
      expect(beforeIdle.at(-1)!.text).toMatch(/ 20\/20 \(100%\) .* in [\d.]+s$/);

      // The failing loop: its bar ends showing where and why it stopped, before the error and idle.
      expect(failing.reply_status).toBe("error");
      const error = failing.messages.find((m) => m.msg_type === "error");
      expect(error?.evalue).toContain("lost the data at step 5");
      const final = barMessages(failing).filter((m) => !m.late).at(-1)!;
      expect(final.text).toMatch(/ 5\/20 \(25%\) stopped: lost the data at step 5$/);
      expect(final.t).toBeLessThanOrEqual(error!.t);

      // Nothing arrives after a cell reported idle.
      for (const record of [setup, loop, failing]) {
        const late = record.messages.filter((m) => m.late);
        if (late.length) throw new Error(`cell ${record.cell}: messages after idle:\n${timeline(record)}`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
