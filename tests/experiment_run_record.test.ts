/**
 * Run records (lib/experiment/run_record.ts, lib/notebook/runs.ts): written at the start, curves per epoch,
 * finished with metrics and artifacts, never overwritten by the next run, parameters with their origin.
 */
import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import {
  gitState,
  LocalRunStore,
  markRunsFailed,
  newRunId,
  numericMetrics,
  RUNNER_TOKEN_VARIABLE,
  type RunRecord,
  type RunSink,
  startRun,
} from "../lib/experiment/run_record.ts";
import { InterruptedError } from "../lib/notebook/interrupt.ts";
import { notebookParams, number, text } from "../lib/notebook/params.ts";
import { startNotebookRun } from "../lib/notebook/runs.ts";
import { projectRoot } from "../lib/paths.ts";

describe("run records", () => {
  it("records a run from start to finish, curves per epoch, and never overwrites an earlier run", async () => {
    const store = new LocalRunStore(await Deno.makeTempDir({ prefix: "runs-" }));
    let clock = Date.parse("2026-12-06T10:00:00Z");
    const now = () => new Date(clock);
    const params = [{ name: "LR", value: 0.001, origin: "environment" as const }, { name: "MODE", value: "head" }];
    const first = await startRun({ notebook: "train", run: "demo", params, sinks: [store], now });
    const atStart: RunRecord = JSON.parse(await Deno.readTextFile(join(store.dir(first.id), "run.json")));
    expect(atStart).toMatchObject({ status: "running", run: "demo", notebook: "train", epochs: 0, finished: null });
    expect(atStart.params).toEqual([
      { name: "LR", value: 0.001, origin: "environment" },
      { name: "MODE", value: "head", origin: "unknown" },
    ]);
    expect(atStart.environment.machine.cores).toBeGreaterThan(0);
    await first.epoch({ epoch: 1, trainLoss: 0.9, f1: 0.5 });
    await first.epoch({ epoch: 2, trainLoss: 0.7, f1: 0.6 });
    clock += 90_000;
    await first.finish({
      metrics: { test_f1: 0.61 },
      artifacts: { best_checkpoint: join(projectRoot, "data", "train_results", "demo", "best") },
      thresholdRule: "F1-optimal on validation",
    });
    const second = await startRun({ notebook: "train", run: "demo", params, sinks: [store], now });
    expect(second.id).not.toBe(first.id);
    const records = await store.list();
    expect(records.map((r) => r.id)).toEqual([first.id, second.id]);
    expect(records[0]).toMatchObject({
      status: "finished",
      seconds: 90,
      epochs: 2,
      metrics: { test_f1: 0.61 },
      artifacts: { best_checkpoint: "data/train_results/demo/best" },
      thresholdRule: "F1-optimal on validation",
    });
    expect(await store.curves(first.id)).toEqual([{ epoch: 1, trainLoss: 0.9, f1: 0.5 }, {
      epoch: 2,
      trainLoss: 0.7,
      f1: 0.6,
    }]);
    expect(records[1].status).toBe("running");
  });

  it("mirrors every write to each sink (the tracker interface), in order", async () => {
    const seen: string[] = [];
    const sink: RunSink = {
      write: (record, curves) => Promise.resolve(void seen.push(`${record.status}:${curves.length}`)),
    };
    const run = await startRun({ notebook: "n", params: [], sinks: [sink] });
    await run.epoch({ epoch: 1 });
    await run.finish({});
    expect(seen).toEqual(["running:0", "running:1", "finished:1"]);
  });

  it("marks only the records of a failed execution, by its token", async () => {
    const store = new LocalRunStore(await Deno.makeTempDir({ prefix: "runs-" }));
    const mine = await startRun({ notebook: "n", params: [], sinks: [store], runnerToken: "t1" });
    const theirs = await startRun({ notebook: "n", params: [], sinks: [store], runnerToken: "t2" });
    expect(await markRunsFailed("t1", { failedAt: "In[7]", error: "Error: boom" }, store)).toEqual([mine.id]);
    const [a, b] = [mine.id, theirs.id].map((id) => JSON.parse(Deno.readTextFileSync(join(store.dir(id), "run.json"))));
    expect(a).toMatchObject({ status: "failed", failedAt: "In[7]", error: "Error: boom" });
    expect(b.status).toBe("running");
  });

  it("a script's run that fails says so itself, with the error and its wall time", async () => {
    const store = new LocalRunStore(await Deno.makeTempDir({ prefix: "runs-" }));
    let clock = Date.parse("2026-12-06T10:00:00Z");
    const run = await startRun({ notebook: "benchmark", params: [], sinks: [store], now: () => new Date(clock) });
    clock += 5_000;
    await run.fail("the learning rate must be > 0");
    expect(JSON.parse(Deno.readTextFileSync(join(store.dir(run.id), "run.json")))).toMatchObject({
      status: "failed",
      error: "the learning rate must be > 0",
      seconds: 5,
    });
  });

  it("a Stop marks the kernel's notebook run stopped; going on makes it running, then finished", async () => {
    const store = new LocalRunStore(await Deno.makeTempDir({ prefix: "runs-" }));
    const earlier = await startNotebookRun({ notebook: "nb", params: {}, sinks: [store] });
    const run = await startNotebookRun({ notebook: "nb", params: {}, sinks: [store] });
    new InterruptedError("training stopped at epoch 1/3, step 2/5", "the model.", "run the cell again.");
    await run.flush();
    const stopped = (await store.list()).find((r) => r.id === run.id)!;
    expect(stopped).toMatchObject({ status: "stopped" });
    expect(stopped.error).toMatch(/^training stopped at epoch 1\/3, step 2\/5 \(Stop\)\. Kept: the model\./);
    expect(stopped.finished).not.toBeNull();
    // Only the kernel's latest notebook run is its to mark.
    expect(earlier.record.status).toBe("running");
    await run.epoch({ epoch: 2, train_loss: 0.5 });
    expect(run.record).toMatchObject({ status: "running", finished: null, seconds: null });
    expect(run.record.error).toBeUndefined();
    await run.stop("stopped again");
    await run.finish({ metrics: { f1: 0.5 } });
    expect(run.record.status).toBe("finished");
    expect(run.record.error).toBeUndefined();
    // A batch run's record carries the runner's token: the runner marks it, at the cell.
    Deno.env.set(RUNNER_TOKEN_VARIABLE, "batch-token");
    try {
      const batch = await startNotebookRun({ notebook: "nb", params: {}, sinks: [store] });
      new InterruptedError("loop stopped", "nothing.", "again.");
      expect(batch.record.status).toBe("running");
    } finally {
      Deno.env.delete(RUNNER_TOKEN_VARIABLE);
    }
  });

  it("takes a notebook's parameters with their origin, and the commit it ran at", async () => {
    const P = await notebookParams({ LR: number(0.1, { min: 0 }), NAME: text("x") }, {
      env: { LR: "0.5" },
      show: false,
    });
    const store = new LocalRunStore(await Deno.makeTempDir({ prefix: "runs-" }));
    const run = await startNotebookRun({ notebook: "nb", params: P, sinks: [store] });
    expect(run.record.params).toEqual([
      { name: "LR", value: "0.5", origin: "environment" },
      { name: "NAME", value: "x", origin: "default" },
    ]);
    const git = await gitState();
    expect(git.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(typeof git.dirty).toBe("boolean");
    expect(numericMetrics("test_", { f1: 0.5, model: "x", auc: 0.9 })).toEqual({ test_f1: 0.5, test_auc: 0.9 });
    expect(newRunId("my run/1", new Date("2026-12-06T10:00:00.123Z"))).toMatch(
      /^20261206T100000Z-my_run_1-[0-9a-f]{4}$/,
    );
  });
});
