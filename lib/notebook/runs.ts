/**
 * The notebooks' side of run records (lib/experiment/run_record.ts): a run started from a notebook's
 * resolved parameters (with their origin), its backend, and the batch runner's token read from the
 * environment here, at the edge.
 *
 * @module
 */
import type { BackendChoice } from "../backend.ts";
import { type RunHandle, RUNNER_TOKEN_VARIABLE, type RunSink, startRun } from "../experiment/run_record.ts";
import { type ParamValue, resolvedParamsOf } from "./params.ts";
import { onInterruption } from "./interrupt.ts";

/** The notebook run this kernel started last, which a Stop marks stopped (outside batch runs). */
let current: RunHandle | null = null;
let listening = false;

/**
 * In a live kernel a Stop marks the notebook's run record `stopped` as the job ends (where, and what was
 * kept, in its error); going on (the next epoch recorded, or `finish`) makes it running, then finished. A
 * batch run's records carry the runner's token and are the runner's to mark (at the cell, `failedAt`).
 */
function stopsMarkTheRun(handle: RunHandle): void {
  if (handle.record.runnerToken) return;
  current = handle;
  if (listening) return;
  listening = true;
  onInterruption((interruption) => {
    if (current?.record.status === "running") void current.stop(interruption.message);
  });
}

/** Starts the run record of a notebook run: `params` is what its parameters cell returned. */
export async function startNotebookRun(options: {
  notebook: string;
  params: Readonly<Record<string, ParamValue>>;
  backend?: BackendChoice;
  dataset?: string;
  run?: string;
  sinks?: RunSink[];
}): Promise<RunHandle> {
  const resolved = resolvedParamsOf(options.params);
  const threads = options.backend?.backend === "wasm"
    ? Number(options.backend.detail?.match(/(\d+) thread/)?.[1])
    : NaN;
  const handle = await startRun({
    notebook: options.notebook,
    dataset: options.dataset ?? null,
    run: options.run ?? null,
    params: resolved
      ? resolved.map((p) => ({ name: p.name, value: p.shown, origin: p.origin }))
      : Object.entries(options.params).map(([name, value]) => ({ name, value })),
    backend: options.backend
      ? { name: options.backend.backend, threads: Number.isFinite(threads) ? threads : null }
      : null,
    sinks: options.sinks,
    runnerToken: Deno.env.get(RUNNER_TOKEN_VARIABLE) ?? null,
  });
  stopsMarkTheRun(handle);
  return handle;
}

/**
 * Finishes a testing notebook's run record from the results it saved (eval/report.ts' `saveNotebookResult`):
 * every headline number as `<model>/<metric>`, and the results file as an artifact.
 */
export async function finishNotebookRun(run: RunHandle, resultsPath: string): Promise<void> {
  const saved = JSON.parse(await Deno.readTextFile(resultsPath)) as {
    headline?: Record<string, Record<string, number | null>>;
  };
  const metrics: Record<string, number | null> = {};
  for (const [model, numbers] of Object.entries(saved.headline ?? {})) {
    for (const [metric, value] of Object.entries(numbers)) metrics[`${model}/${metric}`] = value;
  }
  await run.finish({ metrics, artifacts: { results: resultsPath } });
}
