/**
 * Runs a notebook's code cells in a live Jupyter kernel through `kernel_client.py` and returns,
 * per execution, every iopub message with the time it arrived: what a user of JupyterLab sees
 * while the cell runs, which nbclient's executed notebook does not show (not a test file itself).
 */
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { jupyterPython } from "../lib/notebook/runner.ts";

/** One iopub message of a cell, as the client recorded it. */
export interface KernelMessage {
  /** Seconds from sending the cell to receiving this message. */
  t: number;
  msg_type: string;
  /** Received after the cell's `status: idle` (nbclient would drop such an output). */
  late: boolean;
  /** The display id of display_data / update_display_data (transient). */
  display_id?: string;
  /** text/plain of display data and execute results, or the text of a stream message. */
  text?: string;
  /** stdout or stderr, for stream messages. */
  name?: string;
  ename?: string;
  evalue?: string;
  /** busy / idle, for status messages. */
  execution_state?: string;
}

/** One execution of one cell. */
export interface CellRecord {
  /** 0-based position of the cell in the notebook's `cells` list; null for a step's own code. */
  cell: number | null;
  /** Seconds from sending the cell to the interrupt (a step with `interruptWhen`). */
  interrupted_at?: number;
  /** 1 for the run over all code cells, 2 for the second pass. */
  pass: number;
  /** The cell's first source line. */
  source: string;
  /** Seconds from sending the cell to its `status: idle`; null when it never came (timeout). */
  idle_at: number | null;
  /** The execute_reply's status: "ok", "error", ..., "timeout", or null when none came. */
  reply_status: string | null;
  messages: KernelMessage[];
}

/** Options of `runCellsInKernel`. */
export interface KernelRunOptions {
  /** Added to this process's environment for the kernel (with NO_COLOR=1). */
  env?: Record<string, string>;
  /** The kernel's working folder; the notebook's folder by default. */
  cwd?: string;
  /** Positions in the notebook's `cells` list to run again, in this order, after all code cells. */
  secondPass?: number[];
  /** Positions the first pass leaves out (e.g. a cleanup cell that the second pass runs last). */
  skip?: number[];
  /** Seconds to keep listening after each cell's idle (late messages); 1 by default. */
  graceSeconds?: number;
  /** Seconds one cell may run; 600 by default. */
  timeoutSeconds?: number;
  /** Run the remaining cells after a failing one (default: stop there, like nbclient). */
  keepGoing?: boolean;
  /** Jupyter kernel name; `deno` by default. */
  kernel?: string;
  /**
   * Instead of the passes: what to run, in order: a cell of the notebook or code of its own; with
   * `interruptWhen`, the kernel is interrupted (Jupyter's Stop) once a text of that execution matches.
   */
  steps?: KernelStep[];
}

/** One execution of `KernelRunOptions.steps`. */
export type KernelStep = ({ cell: number } | { code: string }) & { pass?: number; interruptWhen?: string };

/** The client reported an error (timeout, the kernel died); `records` holds the executions up to it. */
export class KernelRunError extends Error {
  constructor(message: string, readonly records: CellRecord[]) {
    super(message);
    this.name = "KernelRunError";
  }
}

/** The recording script. */
export const kernelClientScript: string = fileURLToPath(new URL("./kernel_client.py", import.meta.url));

/** The script's command line for `notebookPath` and `options`. */
function clientArgs(notebookPath: string, options: KernelRunOptions): string[] {
  const args = [kernelClientScript, notebookPath, "--cwd", options.cwd ?? dirname(notebookPath)];
  if (options.kernel) args.push("--kernel", options.kernel);
  if (options.secondPass?.length) args.push("--second-pass", options.secondPass.join(","));
  if (options.skip?.length) args.push("--skip", options.skip.join(","));
  if (options.graceSeconds !== undefined) args.push("--grace", String(options.graceSeconds));
  if (options.timeoutSeconds !== undefined) args.push("--timeout", String(options.timeoutSeconds));
  if (options.keepGoing) args.push("--keep-going");
  if (options.steps) {
    const steps = options.steps.map(({ interruptWhen, ...step }) =>
      interruptWhen === undefined ? step : { ...step, interrupt_when: interruptWhen }
    );
    args.push("--steps", JSON.stringify(steps));
  }
  return args;
}

/**
 * Starts the kernel, runs every code cell of `notebookPath` in order (stopping at a failing one
 * unless `keepGoing`), then the `secondPass` cells, and returns one record per execution; a
 * failing cell is a record with `reply_status: "error"` and an `error` message. Throws a
 * `KernelRunError` when the kernel does not start, dies or a cell runs past the timeout, and an
 * Error when the client itself fails.
 */
export async function runCellsInKernel(notebookPath: string, options: KernelRunOptions = {}): Promise<CellRecord[]> {
  const output = await new Deno.Command(await jupyterPython(), {
    args: clientArgs(notebookPath, options),
    env: { ...options.env, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  const stderr = new TextDecoder().decode(output.stderr);
  if (!output.success) throw new Error(`kernel_client.py failed (exit ${output.code}):\n${stderr.slice(-3000)}`);
  const result = JSON.parse(stdout) as { cells: CellRecord[]; error: string | null };
  if (result.error) throw new KernelRunError(`kernel_client.py: ${result.error}\n${stderr.slice(-2000)}`, result.cells);
  return result.cells;
}
