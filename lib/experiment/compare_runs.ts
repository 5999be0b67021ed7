/**
 * Comparing recorded runs (run_record.ts): pick runs by notebook, dataset, status, tag (run name), date or id; one table of
 * parameters and metrics with the parameters that differ between the runs first; their validation curves
 * overlaid; a metric against a chosen parameter; the best run per metric. Plain functions over records, for
 * the `compare_runs` notebook and for scripts.
 *
 * @module
 */
import type { Figure } from "../notebook/display.ts";
import type { CurveRow, RunRecord, RunStatus } from "./run_record.ts";

/** Which runs to compare; unset fields select everything. */
export interface RunSelection {
  notebook?: string;
  dataset?: string;
  status?: RunStatus;
  /** The run's name, its tag (`RUN`; a benchmark trial's `<benchmark>/seed-<s>/<trial>`): equal, or a `tag/` prefix. */
  tag?: string;
  /** Runs started at or after this date (ISO date or date-time). */
  since?: string;
  /** Run ids (or unique id prefixes). */
  ids?: readonly string[];
}

/** The runs matching `selection`, oldest first; a bad date or an id that matches nothing is named. */
export function selectRuns(records: readonly RunRecord[], selection: RunSelection): RunRecord[] {
  let since: number | null = null;
  if (selection.since) {
    since = Date.parse(selection.since);
    if (!Number.isFinite(since)) {
      throw new Error(
        `since ${JSON.stringify(selection.since)} is not a date (use e.g. 2026-12-06 or 2026-12-06T10:00)`,
      );
    }
  }
  for (const id of selection.ids ?? []) {
    const matches = records.filter((r) => r.id.startsWith(id));
    if (matches.length !== 1) {
      throw new Error(
        `run ${JSON.stringify(id)} matches ${matches.length} recorded runs` +
          (matches.length ? ` (${matches.map((r) => r.id).join(", ")}); give more of the id` : ""),
      );
    }
  }
  return records.filter((r) =>
    (!selection.notebook || r.notebook === selection.notebook) &&
    (!selection.dataset || r.dataset === selection.dataset) &&
    (!selection.status || r.status === selection.status) &&
    (!selection.tag || r.run === selection.tag || !!r.run?.startsWith(`${selection.tag}/`)) &&
    (since === null || Date.parse(r.started) >= since) &&
    (!selection.ids?.length || selection.ids.some((id) => r.id.startsWith(id)))
  ).sort((a, b) => a.started.localeCompare(b.started) || a.id.localeCompare(b.id));
}

const paramValue = (run: RunRecord, name: string) => run.params.find((p) => p.name === name)?.value;

/** The parameter names whose values differ between the runs (in first-seen order), and those that agree. */
export function paramDifferences(runs: readonly RunRecord[]): { differing: string[]; same: string[] } {
  const names = [...new Set(runs.flatMap((r) => r.params.map((p) => p.name)))];
  const differing = names.filter((n) => new Set(runs.map((r) => JSON.stringify(paramValue(r, n) ?? null))).size > 1);
  return { differing, same: names.filter((n) => !differing.includes(n)) };
}

/** Metric names of the runs, in first-seen order. */
export function metricNames(runs: readonly RunRecord[]): string[] {
  return [...new Set(runs.flatMap((r) => Object.keys(r.metrics)))];
}

/** One row per run: its id, status, start and wall time, the differing parameters, then every metric. */
export function comparisonRows(runs: readonly RunRecord[]): Record<string, string | number | boolean | null>[] {
  const { differing } = paramDifferences(runs);
  const metrics = metricNames(runs);
  return runs.map((r) => ({
    run: r.id,
    status: r.failedAt ? `${r.status} at ${r.failedAt}` : r.status,
    started: r.started.slice(0, 16).replace("T", " "),
    seconds: r.seconds === null ? null : Math.round(r.seconds),
    commit: r.git.commit ? `${r.git.commit.slice(0, 8)}${r.git.dirty ? "+" : ""}` : null,
    ...Object.fromEntries(differing.map((n) => [n, paramValue(r, n) ?? null])),
    ...Object.fromEntries(metrics.map((m) => [m, r.metrics[m] ?? null])),
  }));
}

/** Metrics where lower is better; every other metric is better higher. */
const LOWER_IS_BETTER = /(loss|seconds|time|error)/i;

/** The best run of each metric (higher is better, lower for losses and times). */
export function bestRunPerMetric(
  runs: readonly RunRecord[],
): { metric: string; best: string; value: number; direction: "higher" | "lower"; runs: number }[] {
  return metricNames(runs).flatMap((metric) => {
    const scored = runs.filter((r) => typeof r.metrics[metric] === "number" && Number.isFinite(r.metrics[metric]));
    if (scored.length === 0) return [];
    const lower = LOWER_IS_BETTER.test(metric);
    const best = scored.reduce((a, b) => {
      const [x, y] = [a.metrics[metric]!, b.metrics[metric]!];
      return (lower ? y < x : y > x) ? b : a;
    });
    return [{
      metric,
      best: best.id,
      value: best.metrics[metric]!,
      direction: lower ? "lower" as const : "higher" as const,
      runs: scored.length,
    }];
  });
}

/** A short label for a run in figures: its differing parameters, else its id. */
export function runLabel(run: RunRecord, differing: readonly string[]): string {
  const parts = differing.slice(0, 3).map((n) => `${n}=${paramValue(run, n)}`);
  return parts.length ? parts.join(", ") : run.id;
}

/** Each run's curve of one epoch column, overlaid (runs without that column are left out). */
export function curvesFigure(
  runs: readonly RunRecord[],
  curves: ReadonlyMap<string, readonly CurveRow[]>,
  column: string,
): Figure {
  const { differing } = paramDifferences(runs);
  const traces = runs.flatMap((run) => {
    const rows = (curves.get(run.id) ?? []).filter((row) => typeof row[column] === "number");
    return rows.length
      ? [{
        type: "scatter",
        mode: "lines+markers",
        name: runLabel(run, differing),
        x: rows.map((row) => row.epoch),
        y: rows.map((row) => row[column]),
      }]
      : [];
  });
  return {
    data: traces,
    layout: {
      title: { text: `${column} per epoch, ${traces.length} run(s) overlaid` },
      xaxis: { title: { text: "epoch" }, dtick: 1 },
      yaxis: { title: { text: column } },
      height: 380,
    },
  };
}

/** A metric against one parameter, one point per run (labelled by the run's other differing parameters). */
export function metricByParamFigure(runs: readonly RunRecord[], metric: string, param: string): Figure {
  const scored = runs.filter((r) => typeof r.metrics[metric] === "number");
  const others = paramDifferences(runs).differing.filter((n) => n !== param);
  const values = scored.map((r) => paramValue(r, param) ?? null);
  const numeric = values.every((v) => v === null || (typeof v !== "boolean" && Number.isFinite(Number(v))));
  return {
    data: [{
      type: "scatter",
      mode: "markers+text",
      x: values.map((v) => (numeric && v !== null ? Number(v) : v)),
      y: scored.map((r) => r.metrics[metric]),
      text: scored.map((r) => runLabel(r, others)),
      textposition: "top center",
      marker: { size: 10 },
    }],
    layout: {
      title: { text: `${metric} against ${param}, ${scored.length} run(s)` },
      xaxis: { title: { text: param }, type: numeric ? "-" : "category" },
      yaxis: { title: { text: metric } },
      height: 380,
    },
  };
}
