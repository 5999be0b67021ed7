/**
 * Stop in a live kernel. Jupyter's Stop button sends SIGINT to the kernel, and the Deno kernel dies of it
 * (denoland/deno#24491) with every variable, model and cached feature in it, unless the code listens for the
 * signal. Once `installStopHandler` ran (a notebook's parameters cell does it in a kernel), Stop no longer
 * kills the kernel: it leaves a request that the long loops read at their next step (`interruptRequested`,
 * `throwIfInterrupted`): they keep what is done, end their progress bar with `stopped: interrupted at ...`
 * and throw an `InterruptedError` whose message says what was kept and how to resume. A second Stop within
 * `DOUBLE_STOP_SECONDS` ends the kernel as before: the way out of code that never checks.
 *
 * A request left by a Stop pressed while nothing was listening (an idle kernel, a cell without such a loop)
 * must not end the next long job at its first step: each long job starts with `beginInterruptible`, which
 * forgets requests older than it.
 *
 * @module
 */

/** Seconds within which a second Stop ends the kernel. */
export const DOUBLE_STOP_SECONDS = 3;

/** Thrown by a long job that a Stop ended; `kept` says what survives, `resume` how to go on. */
export class InterruptedError extends Error {
  constructor(
    /** What stopped and where, e.g. "training stopped at epoch 3, step 40/120". */
    readonly where: string,
    readonly kept: string,
    readonly resume: string,
    /** The checkpoint (or other folder) to resume from, when there is one. */
    readonly resumeFrom?: string,
  ) {
    super(`${where} (Stop). Kept: ${kept} Resume: ${resume}`);
    this.name = "Interrupted";
    last = this;
    for (const listener of listeners) {
      try {
        listener(this);
      } catch {
        // A listener never hides the interruption itself.
      }
    }
  }
}

let last: InterruptedError | null = null;
const listeners = new Set<(interruption: InterruptedError) => void>();

/**
 * Calls `listener` with every job a Stop ends from now on in this process, as it ends (a notebook's run
 * record marks itself stopped). Returns the function that removes it.
 */
export function onInterruption(listener: (interruption: InterruptedError) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** The job a Stop ended last in this process (in a kernel: what the next cell can resume from). */
export function lastInterruption(): InterruptedError | null {
  return last;
}

interface StopState {
  /** performance.now() of the last Stop not yet handled; null: none. */
  requestedAt: number | null;
  /** performance.now() of the last Stop, handled or not (for the double Stop). */
  lastStopAt: number | null;
  installed: boolean;
}

const state: StopState = { requestedAt: null, lastStopAt: null, installed: false };

/** What a Stop does besides leaving the request; tests replace the exit. */
export interface StopHandlerOptions {
  /** Ends the process on a double Stop (default `Deno.exit(130)`, as SIGINT would). */
  exit?: (code: number) => void;
  /** Where the notice goes (default stderr, which a kernel shows under the running cell). */
  notify?: (message: string) => void;
  /** Clock in milliseconds (default performance.now). */
  now?: () => number;
}

let handlerOptions: Required<StopHandlerOptions> = {
  exit: (code) => Deno.exit(code),
  notify: (message) => console.error(message),
  now: () => performance.now(),
};

/**
 * What one Stop (SIGINT) does: leaves the request for the running job, or ends the process when the
 * previous Stop came less than `DOUBLE_STOP_SECONDS` ago.
 */
export function stopPressed(): void {
  const now = handlerOptions.now();
  const previous = state.lastStopAt;
  state.lastStopAt = now;
  if (previous !== null && now - previous < DOUBLE_STOP_SECONDS * 1000) {
    handlerOptions.notify("Stop pressed twice: ending the kernel (its variables are lost).");
    handlerOptions.exit(130);
    return;
  }
  state.requestedAt = now;
  handlerOptions.notify(
    `Stop: the running job ends at its next step and keeps what it finished. ` +
      `Press Stop again within ${DOUBLE_STOP_SECONDS} s to end the kernel instead.`,
  );
}

/** Replaces what a Stop does besides leaving the request (tests: an exit that does not end the process). */
export function configureStopHandler(options: StopHandlerOptions): void {
  handlerOptions = { ...handlerOptions, ...options };
}

/**
 * Listens for SIGINT so that Stop ends long jobs instead of the kernel (once per process; later calls only
 * replace the options). Returns whether a listener is installed (not on Windows, where Deno has no SIGINT
 * listener).
 */
export function installStopHandler(options: StopHandlerOptions = {}): boolean {
  configureStopHandler(options);
  if (state.installed) return true;
  if (Deno.build.os === "windows") return false;
  Deno.addSignalListener("SIGINT", stopPressed);
  state.installed = true;
  return true;
}

/** Stops listening: SIGINT ends the process again. */
export function uninstallStopHandler(): void {
  if (!state.installed) return;
  Deno.removeSignalListener("SIGINT", stopPressed);
  state.installed = false;
}

/** Whether SIGINT is handled here (Stop keeps the kernel). */
export function stopHandlerInstalled(): boolean {
  return state.installed;
}

/** A long job starts: Stops pressed before now are forgotten. Returns the job's start time. */
export function beginInterruptible(): number {
  state.requestedAt = null;
  return handlerOptions.now();
}

/** Whether Stop was pressed since the running job began (the request stays until `clearInterrupt`). */
export function interruptRequested(): boolean {
  return state.requestedAt !== null;
}

/** The job handled the Stop. */
export function clearInterrupt(): void {
  state.requestedAt = null;
}

/** At a step boundary: whether Stop was pressed, handling the request when it was (the job then stops). */
export function takeInterrupt(): boolean {
  if (!interruptRequested()) return false;
  clearInterrupt();
  return true;
}

/**
 * At a step boundary of a job with nothing more to keep than what is done: throws an `InterruptedError`
 * (and handles the request) when Stop was pressed.
 */
export function throwIfInterrupted(where: () => string, kept: string, resume: string): void {
  if (takeInterrupt()) throw new InterruptedError(where(), kept, resume);
}
