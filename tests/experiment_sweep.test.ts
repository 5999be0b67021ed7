/**
 * Sweeps (lib/experiment/sweep.ts, scripts/sweep.ts): the grid and its points; a 2x2 sweep interrupted
 * mid-point resumes without redoing the finished points; a failing point is reported while the others go on;
 * the summary carries each point's run-record metrics; and `deno task sweep` through the real batch runner,
 * run twice, skips what finished the first time.
 */
import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import type { RunRecord } from "../lib/experiment/run_record.ts";
import {
  parseSweepGrid,
  pointKey,
  runSweep,
  type SweepPoint,
  sweepPoints,
  sweepSummary,
} from "../lib/experiment/sweep.ts";
import { runScript } from "./helpers.ts";

const GRID = parseSweepGrid(["LR=1e-4,3e-4", "MARGIN=1,2"]);

function fakeRecord(id: string, point: SweepPoint): RunRecord {
  return {
    id,
    notebook: "train",
    started: new Date().toISOString(),
    metrics: { test_f1: Number(point.LR) * 1000 + Number(point.MARGIN) },
  } as unknown as RunRecord;
}

describe("sweeps", () => {
  it("reads PARAM=v1,v2 arguments and makes every combination, or a seeded draw of them", () => {
    expect(GRID).toEqual({ LR: ["1e-4", "3e-4"], MARGIN: ["1", "2"] });
    expect(sweepPoints(GRID).map(pointKey)).toEqual([
      "LR=1e-4 MARGIN=1",
      "LR=1e-4 MARGIN=2",
      "LR=3e-4 MARGIN=1",
      "LR=3e-4 MARGIN=2",
    ]);
    const drawn = sweepPoints(GRID, { random: 2, seed: 7 });
    expect(drawn).toHaveLength(2);
    expect(sweepPoints(GRID, { random: 2, seed: 7 })).toEqual(drawn);
    expect(() => parseSweepGrid(["lr=1"])).toThrow('"lr=1" is not PARAM=v1,v2');
    expect(() => parseSweepGrid(["LR=1,"])).toThrow("LR=1,: an empty value");
    expect(() => parseSweepGrid(["LR=1", "LR=2"])).toThrow("LR is given twice");
    expect(() => sweepPoints(GRID, { random: 0 })).toThrow("--random 0");
  });

  it("an interrupted 2x2 sweep resumes without redoing finished points; a failing point does not stop it", async () => {
    const dir = await Deno.makeTempDir({ prefix: "sweep-" });
    const records: RunRecord[] = [];
    const listRuns = () => Promise.resolve([...records]);
    const points = sweepPoints(GRID);
    const ran: string[] = [];
    // First run: two points finish, the third never returns (the process is killed while it runs).
    let reachedThird: () => void = () => {};
    const third = new Promise<void>((resolve) => (reachedThird = resolve));
    void runSweep({
      notebook: "train",
      points,
      dir,
      listRuns,
      log: () => {},
      runPoint: (point) => {
        ran.push(pointKey(point));
        if (ran.length === 3) {
          reachedThird();
          return new Promise(() => {});
        }
        records.push(fakeRecord(`run-${ran.length}`, point));
        return Promise.resolve({ ok: true, log: "" });
      },
    });
    await third;
    const interrupted = JSON.parse(await Deno.readTextFile(join(dir, "sweep.json")));
    expect(interrupted.points.map((p: { status: string }) => p.status)).toEqual(["finished", "finished", "running"]);

    // Resumed: only the third (interrupted) and fourth points run; the fourth fails and is reported.
    const lines: string[] = [];
    const resumed: string[] = [];
    const state = await runSweep({
      notebook: "train",
      points,
      dir,
      listRuns,
      log: (line) => lines.push(line),
      runPoint: (point) => {
        resumed.push(pointKey(point));
        if (resumed.length === 2) return Promise.resolve({ ok: false, log: "Error: boom at In[3]" });
        records.push(fakeRecord(`run-resumed-${resumed.length}`, point));
        return Promise.resolve({ ok: true, log: "" });
      },
    });
    expect(resumed).toEqual(["LR=3e-4 MARGIN=1", "LR=3e-4 MARGIN=2"]);
    expect(lines.filter((l) => /skipped/.test(l))).toHaveLength(2);
    expect(lines.some((l) => /point 4\/4 .*FAILED \(Error: boom at In\[3\]\); the other points go on/.test(l))).toBe(
      true,
    );
    expect(state.points.map((p) => p.status)).toEqual(["finished", "finished", "finished", "failed"]);

    const summary = sweepSummary(state, records);
    expect(summary[0]).toMatchObject({ LR: "1e-4", MARGIN: "1", status: "finished", run: "run-1", test_f1: 1.1 });
    expect(summary[2]).toMatchObject({ run: "run-resumed-1", test_f1: 1.3 });
    expect(summary[3]).toMatchObject({ status: "failed", run: null });
    await Deno.remove(dir, { recursive: true });
  });

  it("deno task sweep runs each point through the batch runner, and a second run skips them", async () => {
    const data = await Deno.makeTempDir({ prefix: "sweep-data-" });
    const reports = await Deno.makeTempDir({ prefix: "sweep-reports-" });
    const sweep = () =>
      runScript("sweep.ts", ["compare_runs", "CURVE=f1,auc", "--preset", "real", "--name", "s"], {
        CLIP_SIAMESE_DATA: data,
        CLIP_SIAMESE_REPORTS: reports,
        NOTEBOOK: "",
      });
    try {
      const first = await sweep();
      if (first.code !== 0) throw new Error(first.log);
      expect(first.log).toMatch(/point 2\/2 \(CURVE=auc\): finished/);
      const state = JSON.parse(await Deno.readTextFile(join(data, "sweeps", "s", "sweep.json")));
      expect(state.points.map((p: { status: string }) => p.status)).toEqual(["finished", "finished"]);
      const again = await sweep();
      expect(again.code).toBe(0);
      expect(again.log.match(/finished in an earlier run, skipped/g)).toHaveLength(2);
      expect(again.log).toContain("| CURVE | status |");
    } finally {
      await Deno.remove(data, { recursive: true });
      await Deno.remove(reports, { recursive: true });
    }
  });
});
