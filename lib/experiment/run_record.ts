/**
 * Run records: every training run leaves one, never overwritten by the next, readable with no service
 * running. A record is `data/runs/<run-id>/run.json` (parameters with their origin, git commit and dirty
 * flag, backend and machine, status, wall time, final metrics, threshold rule, artifact paths) and
 * `curves.parquet` (one row per epoch), each written atomically. The batch runner marks a record whose
 * notebook failed ("failed at In[n]"). `RunSink` is the one interface a tracker (MLflow, W&B) would
 * implement to mirror records; the local store is the default sink. (Polars and the machine facts, which
 * load tfjs, are imported when a record is written, so the notebook runner can mark records cheaply.)
 *
 * @module
 */
import { join } from "node:path";
import { hostname } from "node:os";
import { writeFileAtomic, writeJsonAtomic } from "../fs.ts";
import { dataDir, projectRoot, shownPath } from "../paths.ts";
import type { MachineInfo } from "../bench/machine.ts";
import type { ParamOrigin, ParamValue } from "../notebook/params.ts";

/** Where a run stands. */
export type RunStatus = "running" | "finished" | "failed" | "stopped";

/** The environment variable the batch runner sets so the records a notebook writes can be marked failed. */
export const RUNNER_TOKEN_VARIABLE = "CLIP_SIAMESE_RUNNER_TOKEN";

/** One epoch's numbers (any named numbers; the training notebook writes its epoch records). */
export type CurveRow = Record<string, number>;

/** What `run.json` holds. */
export interface RunRecord {
  id: string;
  /** The notebook (or script) that ran. */
  notebook: string;
  dataset: string | null;
  /** The run name (`RUN`): its folder under data/train_results/. */
  run: string | null;
  status: RunStatus;
  /** For a failed run: the cell that stopped it (`In[n]`) and the error. */
  failedAt?: string;
  error?: string;
  params: { name: string; value: ParamValue; origin: ParamOrigin | "unknown" }[];
  git: { commit: string | null; dirty: boolean | null };
  environment: { backend: string | null; threads: number | null; host: string; machine: MachineInfo };
  started: string;
  finished: string | null;
  seconds: number | null;
  /** How the reported threshold was chosen (e.g. "F1-optimal on validation"). */
  thresholdRule: string | null;
  metrics: Record<string, number | null>;
  /** Artifact name -> path (shown relative to the project or data folder). */
  artifacts: Record<string, string>;
  /** Epochs recorded in curves.parquet. */
  epochs: number;
  runnerToken: string | null;
}

/** The numeric entries of a table row as metrics, each name prefixed ("test_" + "f1"); other values left out. */
export function numericMetrics(prefix: string, row: Readonly<Record<string, unknown>>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(row).filter(([, v]) => typeof v === "number").map(([k, v]) => [`${prefix}${k}`, v as number]),
  );
}

/** Where records go: the local store, or a tracker mirroring them. */
export interface RunSink {
  write(record: RunRecord, curves: readonly CurveRow[]): Promise<void>;
}

/** The runs folder: `<data>/runs/`. */
export function runsDir(root: string = dataDir()): string {
  return join(root, "runs");
}

/** The local store: `<root>/runs/<id>/run.json` and `curves.parquet`, atomic writes. */
export class LocalRunStore implements RunSink {
  constructor(readonly root: string = runsDir()) {}

  dir(id: string): string {
    return join(this.root, id);
  }

  async write(record: RunRecord, curves: readonly CurveRow[]): Promise<void> {
    const dir = this.dir(record.id);
    if (curves.length > 0) {
      const { default: pl } = await import("nodejs-polars");
      const columns = [...new Set(curves.flatMap((row) => Object.keys(row)))];
      const frame = pl.DataFrame(columns.map((c) => pl.Series(c, curves.map((row) => row[c] ?? null), pl.Float64)));
      await writeFileAtomic(join(dir, "curves.parquet"), new Uint8Array(frame.writeParquet()));
    }
    await writeJsonAtomic(join(dir, "run.json"), record);
  }

  /** Every record in the store, oldest first; unreadable folders are skipped. */
  async list(): Promise<RunRecord[]> {
    const records: RunRecord[] = [];
    try {
      for await (const entry of Deno.readDir(this.root)) {
        if (!entry.isDirectory) continue;
        try {
          records.push(JSON.parse(await Deno.readTextFile(join(this.root, entry.name, "run.json"))));
        } catch { /* a folder being written, or not a run */ }
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    return records.sort((a, b) => a.started.localeCompare(b.started) || a.id.localeCompare(b.id));
  }

  /** One record's curves (epoch rows), or [] when it has none. */
  async curves(id: string): Promise<CurveRow[]> {
    const { default: pl } = await import("nodejs-polars");
    try {
      return pl.readParquet(join(this.dir(id), "curves.parquet")).toRecords() as CurveRow[];
    } catch {
      return [];
    }
  }
}

/** The commit checked out and whether the working tree differs from it (nulls outside a git checkout). */
export async function gitState(root: string = projectRoot): Promise<RunRecord["git"]> {
  const git = async (...args: string[]) => {
    try {
      const out = await new Deno.Command("git", { args, cwd: root, stdout: "piped", stderr: "null" }).output();
      return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
    } catch {
      return null;
    }
  };
  const commit = await git("rev-parse", "HEAD");
  const status = commit === null ? null : await git("status", "--porcelain", "--untracked-files=no");
  return { commit, dirty: status === null ? null : status.length > 0 };
}

/** A run id: UTC time, the run name and 4 random hex digits (sorts by time; never reused). */
export function newRunId(name: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  const safe = name.replace(/[^\w.-]+/g, "_").slice(0, 40);
  return `${stamp}-${safe}-${crypto.randomUUID().slice(0, 4)}`;
}

/** Options of `startRun`. */
export interface StartRunOptions {
  notebook: string;
  dataset?: string | null;
  run?: string | null;
  /** The resolved parameters (notebook/params.ts' `resolvedParamsOf`), else plain values with origin unknown. */
  params: readonly { name: string; value: ParamValue; origin?: ParamOrigin }[];
  backend?: { name: string; threads?: number | null } | null;
  sinks?: RunSink[];
  /** Default: `$CLIP_SIAMESE_RUNNER_TOKEN` is read by the caller and passed here. */
  runnerToken?: string | null;
  now?: () => Date;
}

/** A run being recorded: add epochs, then finish (or the runner marks it failed). */
export class RunHandle {
  readonly curves: CurveRow[] = [];
  #pending: Promise<void> = Promise.resolve();

  constructor(readonly record: RunRecord, private readonly sinks: RunSink[], private readonly now: () => Date) {}

  get id(): string {
    return this.record.id;
  }

  /** Writes the record and curves to every sink (one write at a time, in order). */
  flush(): Promise<void> {
    const snapshot = structuredClone(this.record);
    const curves = [...this.curves];
    this.#pending = this.#pending.then(() => Promise.all(this.sinks.map((s) => s.write(snapshot, curves)))).then(
      () => {},
    );
    return this.#pending;
  }

  /** Records one epoch's numbers (written at once); a stopped run that records an epoch is running again. */
  epoch(row: CurveRow): Promise<void> {
    if (this.record.status === "stopped") this.resume();
    this.curves.push(row);
    this.record.epochs = this.curves.length;
    return this.flush();
  }

  /** Marks the run finished with its final metrics, threshold rule and artifacts. */
  finish(
    result: { metrics?: Record<string, number | null>; artifacts?: Record<string, string>; thresholdRule?: string },
  ) {
    const finished = this.now();
    Object.assign(this.record.metrics, result.metrics ?? {});
    for (const [name, path] of Object.entries(result.artifacts ?? {})) this.record.artifacts[name] = shownPath(path);
    if (result.thresholdRule) this.record.thresholdRule = result.thresholdRule;
    if (this.record.status === "stopped") delete this.record.error;
    this.record.status = "finished";
    this.record.finished = finished.toISOString();
    this.record.seconds = (finished.getTime() - Date.parse(this.record.started)) / 1000;
    return this.flush();
  }

  /** A stopped run going on (resumed from where Stop left it): running again, its stop forgotten. */
  resume(): Promise<void> {
    this.record.status = "running";
    delete this.record.error;
    this.record.finished = null;
    this.record.seconds = null;
    return this.flush();
  }

  /** Marks the run stopped by the user (Stop): what it wrote so far stays; `reason` says where it stopped. */
  stop(reason: string) {
    const finished = this.now();
    this.record.status = "stopped";
    this.record.error = reason;
    this.record.finished = finished.toISOString();
    this.record.seconds = (finished.getTime() - Date.parse(this.record.started)) / 1000;
    return this.flush();
  }

  /** Marks the run failed with its error (a script's run; the notebook runner marks notebook runs itself). */
  fail(error: string, failedAt?: string) {
    const finished = this.now();
    this.record.status = "failed";
    this.record.error = error;
    if (failedAt) this.record.failedAt = failedAt;
    this.record.finished = finished.toISOString();
    this.record.seconds = (finished.getTime() - Date.parse(this.record.started)) / 1000;
    return this.flush();
  }
}

/** Starts a run record (status "running") and writes it at once. */
export async function startRun(options: StartRunOptions): Promise<RunHandle> {
  const now = options.now ?? (() => new Date());
  const started = now();
  const { machineInfo } = await import("../bench/machine.ts");
  const record: RunRecord = {
    id: newRunId(options.run ?? options.notebook, started),
    notebook: options.notebook,
    dataset: options.dataset ?? null,
    run: options.run ?? null,
    status: "running",
    params: options.params.map((p) => ({ name: p.name, value: p.value, origin: p.origin ?? "unknown" })),
    git: await gitState(),
    environment: {
      backend: options.backend?.name ?? null,
      threads: options.backend?.threads ?? null,
      host: hostname(),
      machine: machineInfo(),
    },
    started: started.toISOString(),
    finished: null,
    seconds: null,
    thresholdRule: null,
    metrics: {},
    artifacts: {},
    epochs: 0,
    runnerToken: options.runnerToken ?? null,
  };
  const handle = new RunHandle(record, options.sinks ?? [new LocalRunStore()], now);
  await handle.flush();
  return handle;
}

/**
 * Marks the records a failed batch execution left "running" (those carrying its runner token) as failed
 * at the given cell (or "stopped", for an interrupted one); returns their ids. Used by the notebook runner.
 */
export async function markRunsFailed(
  token: string,
  failure: { failedAt?: string; error?: string; status?: "failed" | "stopped" },
  store: LocalRunStore = new LocalRunStore(),
): Promise<string[]> {
  const marked: string[] = [];
  for (const record of await store.list()) {
    if (record.runnerToken !== token || record.status !== "running") continue;
    const updated: RunRecord = {
      ...record,
      status: failure.status ?? "failed",
      ...(failure.failedAt ? { failedAt: failure.failedAt } : {}),
      ...(failure.error ? { error: failure.error } : {}),
      finished: new Date().toISOString(),
      seconds: (Date.now() - Date.parse(record.started)) / 1000,
    };
    await writeJsonAtomic(join(store.dir(record.id), "run.json"), updated);
    marked.push(record.id);
  }
  return marked;
}
