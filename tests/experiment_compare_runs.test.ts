/**
 * Comparing recorded runs (lib/experiment/compare_runs.ts) on records written here: selection by notebook,
 * dataset, status, date and id; the differing parameters first; overlaid curves; a metric against a
 * parameter; the best run per metric.
 */
import { describe, it } from "node:test";
import { expect } from "expect";
import {
  bestRunPerMetric,
  comparisonRows,
  curvesFigure,
  metricByParamFigure,
  paramDifferences,
  selectRuns,
} from "../lib/experiment/compare_runs.ts";
import type { RunRecord } from "../lib/experiment/run_record.ts";

function record(id: string, started: string, params: Record<string, string | number>, metrics: Record<string, number>) {
  return {
    id,
    notebook: "train",
    dataset: "demo_geo",
    run: "demo",
    status: "finished",
    params: Object.entries(params).map(([name, value]) => ({ name, value, origin: "environment" })),
    git: { commit: "0123456789abcdef0123456789abcdef01234567", dirty: true },
    environment: { backend: "wasm", threads: 2, host: "h", machine: {} },
    started,
    finished: started,
    seconds: 61.4,
    thresholdRule: "F1-optimal",
    metrics,
    artifacts: {},
    epochs: 2,
    runnerToken: null,
  } as unknown as RunRecord;
}

const a = record("20261206T100000Z-a", "2026-12-06T10:00:00Z", { LR: 0.001, EPOCHS: 4, MODE: "head" }, {
  test_f1: 0.6,
  val_loss: 0.3,
});
const b = record("20261206T110000Z-b", "2026-12-06T11:00:00Z", { LR: 0.0001, EPOCHS: 4, MODE: "head" }, {
  test_f1: 0.7,
  val_loss: 0.4,
});
const failed = { ...record("20261205T090000Z-c", "2026-12-05T09:00:00Z", { LR: 0.01 }, {}), status: "failed" as const };
failed.failedAt = "In[7]";
const other = { ...record("20261206T120000Z-d", "2026-12-06T12:00:00Z", { LR: 0.001 }, {}), dataset: "wdc" };

describe("comparing recorded runs", () => {
  it("selects by notebook, dataset, status, date and id, oldest first; a bad date or id is named", () => {
    const all = [b, other, failed, a];
    expect(selectRuns(all, { dataset: "demo_geo", status: "finished" }).map((r) => r.id)).toEqual([a.id, b.id]);
    expect(selectRuns(all, { since: "2026-12-06T10:30" }).map((r) => r.id)).toEqual([b.id, other.id]);
    expect(selectRuns(all, { ids: ["20261205"] }).map((r) => r.id)).toEqual([failed.id]);
    const trial = { ...record("20261206T130000Z-e", "2026-12-06T13:00:00Z", {}, {}), run: "wdc/seed-42/t1" };
    expect(selectRuns([...all, trial], { tag: "wdc" }).map((r) => r.id)).toEqual([trial.id]);
    expect(selectRuns([...all, trial], { tag: "dem" })).toEqual([]);
    expect(selectRuns([...all, trial], { tag: "demo" })).toHaveLength(4);
    expect(() => selectRuns(all, { since: "yesterday" })).toThrow('since "yesterday" is not a date');
    expect(() => selectRuns(all, { ids: ["2026120"] })).toThrow(/matches 4 recorded runs .*give more of the id/);
    expect(() => selectRuns(all, { ids: ["zzz"] })).toThrow('run "zzz" matches 0 recorded runs');
  });

  it("puts the parameters that differ first, then every metric", () => {
    expect(paramDifferences([a, b])).toEqual({ differing: ["LR"], same: ["EPOCHS", "MODE"] });
    const rows = comparisonRows([a, b, failed]);
    expect(Object.keys(rows[0]).slice(0, 8)).toEqual([
      "run",
      "status",
      "started",
      "seconds",
      "commit",
      "LR",
      "EPOCHS",
      "MODE",
    ]);
    expect(rows[0]).toMatchObject({ LR: 0.001, test_f1: 0.6, commit: "01234567+", seconds: 61 });
    expect(rows[2]).toMatchObject({ status: "failed at In[7]", EPOCHS: null, test_f1: null });
  });

  it("finds the best run per metric, lower for losses", () => {
    expect(bestRunPerMetric([a, b, failed])).toEqual([
      { metric: "test_f1", best: b.id, value: 0.7, direction: "higher", runs: 2 },
      { metric: "val_loss", best: a.id, value: 0.3, direction: "lower", runs: 2 },
    ]);
  });

  it("overlays each run's curve, labelled by what differs, and plots a metric against a parameter", () => {
    const curves = new Map([
      [a.id, [{ epoch: 1, f1: 0.5 }, { epoch: 2, f1: 0.6 }]],
      [b.id, [{ epoch: 1, f1: 0.55 }, { epoch: 2, f1: 0.7 }]],
    ]);
    const figure = curvesFigure([a, b], curves, "f1");
    expect(figure.data.map((t) => (t as { name: string }).name)).toEqual(["LR=0.001", "LR=0.0001"]);
    expect(curvesFigure([a, b, failed], curves, "f1").data).toHaveLength(2); // a run without curves is left out
    expect((figure.data[1] as { y: number[] }).y).toEqual([0.55, 0.7]);
    const scatter = metricByParamFigure([a, b], "test_f1", "LR").data[0] as { x: number[]; y: number[] };
    expect(scatter).toMatchObject({ x: [0.001, 0.0001], y: [0.6, 0.7] });
  });
});
