/**
 * A sweep: one notebook run per point of a parameter grid (every combination, or N of them drawn with a
 * seed), each point a recorded run through the batch runner. The sweep's state (`<dir>/sweep.json`, written
 * atomically after every point) says which points finished, so a sweep that was interrupted resumes without
 * redoing them; a failing point is reported and the others go on; the summary is one row per point with the
 * metrics of the run record it left.
 *
 * @module
 */
import { join } from "node:path";
import { writeJsonAtomic } from "../fs.ts";
import { SeededRandom } from "../data/random.ts";
import type { RunRecord } from "./run_record.ts";

/** Parameter name -> the values to try (as the notebook reads them from the environment). */
export type SweepGrid = Record<string, string[]>;

/** One point: a value per parameter. */
export type SweepPoint = Record<string, string>;

/** `NAME=v1,v2` arguments as a grid; a malformed one is named. */
export function parseSweepGrid(args: readonly string[]): SweepGrid {
  const grid: SweepGrid = {};
  for (const arg of args) {
    const match = /^([A-Z][A-Z0-9_]*)=(.+)$/.exec(arg);
    if (!match) throw new Error(`"${arg}" is not PARAM=v1,v2,... (an upper-case parameter name, then its values)`);
    if (match[1] in grid) throw new Error(`${match[1]} is given twice`);
    const values = match[2].split(",").map((v) => v.trim());
    if (values.some((v) => v === "")) throw new Error(`${arg}: an empty value`);
    grid[match[1]] = [...new Set(values)];
  }
  if (Object.keys(grid).length === 0) throw new Error("no parameters to sweep: give PARAM=v1,v2 ...");
  return grid;
}

/** Every combination of the grid, in order (the last parameter fastest); or `random` of them, drawn with `seed`. */
export function sweepPoints(grid: SweepGrid, options: { random?: number; seed?: number } = {}): SweepPoint[] {
  let points: SweepPoint[] = [{}];
  for (const [name, values] of Object.entries(grid)) {
    points = points.flatMap((point) => values.map((value) => ({ ...point, [name]: value })));
  }
  if (options.random === undefined) return points;
  if (!Number.isInteger(options.random) || options.random < 1) {
    throw new Error(`--random ${options.random}: expected a whole number >= 1`);
  }
  const random = new SeededRandom(options.seed ?? 0);
  const shuffled = [...points];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(random.next() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
  }
  return shuffled.slice(0, Math.min(options.random, shuffled.length));
}

/** A point as text, `A=1 B=x` (its key in the state). */
export const pointKey = (point: SweepPoint) => Object.entries(point).map(([k, v]) => `${k}=${v}`).join(" ");

/** What happened at one point. */
export interface PointState {
  point: SweepPoint;
  status: "finished" | "failed" | "running";
  seconds?: number;
  error?: string;
  /** The run records the point's notebook run left (ids). */
  runs?: string[];
}

/** `sweep.json`. */
export interface SweepState {
  notebook: string;
  points: PointState[];
}

/** Options of `runSweep`. */
export interface SweepOptions {
  notebook: string;
  points: readonly SweepPoint[];
  /** Where `sweep.json` lives. */
  dir: string;
  /** Runs the notebook with the point's parameters; resolves whether it succeeded, and its log. */
  runPoint: (point: SweepPoint) => Promise<{ ok: boolean; log: string }>;
  /** The run records (to link each point to the records its run left). */
  listRuns: () => Promise<RunRecord[]>;
  log?: (line: string) => void;
}

async function readState(path: string, notebook: string): Promise<SweepState> {
  try {
    const state = JSON.parse(await Deno.readTextFile(path)) as SweepState;
    if (state.notebook !== notebook) {
      throw new Error(`${path} belongs to a sweep of ${state.notebook}, not ${notebook}; use another sweep name`);
    }
    return state;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { notebook, points: [] };
    throw error;
  }
}

/** Runs the points not finished before; returns the state (every point of this sweep, in order). */
export async function runSweep(options: SweepOptions): Promise<SweepState> {
  const log = options.log ?? console.log;
  const path = join(options.dir, "sweep.json");
  const state = await readState(path, options.notebook);
  const byKey = new Map(state.points.map((p) => [pointKey(p.point), p]));
  for (const [i, point] of options.points.entries()) {
    const key = pointKey(point);
    const header = `point ${i + 1}/${options.points.length} (${key})`;
    if (byKey.get(key)?.status === "finished") {
      log(`${header}: finished in an earlier run, skipped`);
      continue;
    }
    const entry: PointState = { point, status: "running" };
    byKey.set(key, entry);
    state.points = [...byKey.values()];
    await writeJsonAtomic(path, state);
    log(`${header}: running ${options.notebook}`);
    const started = new Date();
    const before = new Set((await options.listRuns()).map((r) => r.id));
    let outcome: { ok: boolean; log: string };
    try {
      outcome = await options.runPoint(point);
    } catch (error) {
      outcome = { ok: false, log: error instanceof Error ? error.message : String(error) };
    }
    entry.seconds = (Date.now() - started.getTime()) / 1000;
    entry.runs = (await options.listRuns()).filter((r) => !before.has(r.id) && r.notebook === options.notebook)
      .map((r) => r.id);
    entry.status = outcome.ok ? "finished" : "failed";
    if (!outcome.ok) {
      entry.error = outcome.log.trim().split("\n").slice(-3).join("\n");
      log(`${header}: FAILED (${entry.error.split("\n").at(-1)}); the other points go on`);
    } else {
      log(`${header}: finished in ${entry.seconds.toFixed(0)} s`);
    }
    await writeJsonAtomic(path, state);
  }
  const wanted = new Set(options.points.map(pointKey));
  return { notebook: options.notebook, points: state.points.filter((p) => wanted.has(pointKey(p.point))) };
}

/** One row per point: its parameters, status, seconds, and the metrics of the last run record it left. */
export function sweepSummary(state: SweepState, runs: readonly RunRecord[]): Record<string, string | number | null>[] {
  const byId = new Map(runs.map((r) => [r.id, r]));
  return state.points.map((p) => {
    const record = (p.runs ?? []).map((id) => byId.get(id)).filter((r) => r !== undefined).at(-1);
    return {
      ...p.point,
      status: p.status,
      seconds: p.seconds === undefined ? null : Math.round(p.seconds),
      run: record?.id ?? null,
      ...(record ? record.metrics : {}),
    };
  });
}
