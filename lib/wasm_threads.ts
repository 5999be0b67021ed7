/**
 * Starts tfjs-backend-wasm with its threaded-SIMD build under Deno, with `TFJS_WASM_THREADS` threads.
 *
 * Left alone, tfjs runs one wasm thread under Deno: it sees `process.versions.node`, decides it is in
 * Node (where it never enables threads) and loads the plain SIMD build. Its threaded build can run,
 * but tfjs starts the pthread workers in a way Deno does not support. What this module does, once,
 * before the wasm backend initialises (see /work/shared/docs/gpu-and-threads.md):
 *   - sets `WASM_HAS_MULTITHREAD_SUPPORT` and calls `setThreadsCount(N)`;
 *   - replaces `node:worker_threads`' `Worker` (which the Emscripten glue reads) with a subclass that
 *     starts lib/wasm_thread_worker.js instead of tfjs' Blob URL, points the `load` message at the
 *     factory file on disk, and never holds the process open (pthreads idle forever in a futex wait,
 *     and `deno run` scripts must exit by themselves);
 *   - reports 2*N logical CPUs while the backend starts: it caps its pool at logical CPUs / 2.
 * Everything patched is restored once the backend has started. A threaded start that fails for an
 * environmental reason falls back to the single-thread build with the reason in the result, unless
 * the user asked for more than one thread explicitly, which makes it an error.
 *
 * Threads pay off on big XNNPACK ops (matMul, conv2d) when the cores are otherwise idle. When other
 * processes keep the cores busy (parallel test files, a second notebook), each op waits for a pthread
 * to be scheduled: small ops then run many times slower than on one thread (TFJS_WASM_THREADS=1).
 */
import { tf } from "./tf.ts";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { dirname } from "node:path";

/** How many wasm threads to use, and whether the user chose it (TFJS_WASM_THREADS set). */
export interface WasmThreadsRequest {
  threads: number;
  explicit: boolean;
}

/** What the wasm backend runs with, as tfjs reports it after starting. */
export interface WasmStart {
  build: "threaded SIMD" | "SIMD" | "plain";
  /** `getThreadsCount()` of tfjs-backend-wasm: the threads really in use. */
  threads: number;
  /** Why fewer threads run than were wanted: the fallback reason, or tfjs' own limit. */
  note?: string;
}

/** A bad TFJS_WASM_THREADS, or threads asked for explicitly that cannot run: never a silent fallback. */
export class WasmThreadsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WasmThreadsError";
  }
}

/**
 * Parses a TFJS_WASM_THREADS value. Unset or empty means `defaultThreads` (all cores); anything
 * else must be a whole number >= 1, and a bad value is an error naming the variable and the value.
 */
export function parseWasmThreads(value: string | undefined, defaultThreads: number): WasmThreadsRequest {
  const trimmed = value?.trim() ?? "";
  if (trimmed === "") return { threads: Math.max(1, Math.floor(defaultThreads)), explicit: false };
  const threads = /^\d+$/.test(trimmed) ? Number(trimmed) : NaN;
  if (!Number.isSafeInteger(threads) || threads < 1) {
    throw new WasmThreadsError(
      `TFJS_WASM_THREADS=${value} is not allowed: use a whole number of threads >= 1 (1 = single-threaded), ` +
        "or leave it unset for all cores",
    );
  }
  return { threads, explicit: true };
}

/** The threads wanted, from `$TFJS_WASM_THREADS`, by default `navigator.hardwareConcurrency`. */
export function wasmThreadsRequest(): WasmThreadsRequest {
  return parseWasmThreads(Deno.env.get("TFJS_WASM_THREADS"), navigator.hardwareConcurrency ?? 1);
}

interface WasmModule {
  setThreadsCount(threads: number): void;
  getThreadsCount(): number;
  setWasmPaths(prefix: string): void;
}

/** The part of `node:worker_threads`' Worker that this module uses. */
interface NodeWorker {
  postMessage(message: unknown, transfer?: unknown[]): void;
  unref(): void;
  once(event: string, listener: (value: unknown) => void): void;
  terminate(): Promise<number>;
}
type NodeWorkerClass = new (file: string, options: { workerData: unknown }) => NodeWorker;

const require = createRequire(import.meta.url);
const WORKER_SHIM = fileURLToPath(new URL("./wasm_thread_worker.js", import.meta.url));
/** How long the start-up check waits for its worker (a first start compiles the factory script). */
const CHECK_TIMEOUT_MS = 30_000;

function wasmOutFile(name: string): string {
  return require.resolve(`@tensorflow/tfjs-backend-wasm/wasm-out/${name}`);
}

function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split("\n")[0];
}

/**
 * Proves, in one throwaway worker, that this runtime can run the pthread shim: shared wasm memory,
 * a worker started from lib/wasm_thread_worker.js, tfjs' worker script and factory loading in it.
 * Without it a broken start would hang tfjs' start-up, which waits for every pthread worker.
 */
async function checkWorker(Worker: NodeWorkerClass, workerData: Record<string, unknown>): Promise<void> {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  const worker = new Worker(WORKER_SHIM, { workerData: { ...workerData, check: true } });
  worker.unref();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const reply = await new Promise<unknown>((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
      worker.once("exit", (code) => reject(new Error(`the worker exited (code ${code})`)));
      timer = setTimeout(() => reject(new Error(`no answer in ${CHECK_TIMEOUT_MS / 1000} s`)), CHECK_TIMEOUT_MS);
      worker.postMessage({ memory });
    });
    const { factory, error } = reply as { factory?: string; error?: string };
    if (error !== undefined) throw new Error(`the worker shim failed: ${error}`);
    if (factory !== "function") throw new Error("the factory script defined nothing");
    if (Atomics.load(new Int32Array(memory.buffer), 0) !== 42) throw new Error("shared memory is not shared");
  } finally {
    clearTimeout(timer);
    await worker.terminate();
  }
}

/** Why threads cannot run here, or undefined when they can (up to the worker check). */
function threadSupportProblem(): string | undefined {
  if (typeof SharedArrayBuffer === "undefined") return "SharedArrayBuffer is unavailable";
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  } catch (error) {
    return `shared WebAssembly memory is unavailable (${firstLine(error)})`;
  }
  return undefined;
}

/**
 * Initialises the threaded-SIMD build with `threads` threads (flags and patches in place only while
 * tfjs starts). Throws if it does not start; the caller decides whether to fall back.
 */
async function startThreaded(wasm: WasmModule, threads: number): Promise<void> {
  const workerThreads = require("node:worker_threads") as { Worker: NodeWorkerClass };
  const os = require("node:os") as { cpus(): unknown[] };
  const workerData = {
    workerScript: wasmOutFile("tfjs-backend-wasm-threaded-simd.worker.js"),
    factoryScript: wasmOutFile("tfjs-backend-wasm-threaded-simd.js"),
  };
  const OriginalWorker = workerThreads.Worker;
  await checkWorker(OriginalWorker, workerData);

  const started: PthreadWorker[] = [];
  /**
   * A pthread worker. It holds the process open while tfjs starts (the start-up waits for every worker's
   * `loaded` message, and `deno test` fails a test whose promise waits on nothing that is ref'd), and
   * never after: the glue refs a worker while a pthread runs on it, and XNNPACK's pthreads run until exit.
   */
  class PthreadWorker extends OriginalWorker {
    constructor(_blobUrl: string) {
      super(WORKER_SHIM, { workerData });
      started.push(this);
    }
    override postMessage(message: unknown, transfer?: unknown[]): void {
      const load = message as { cmd?: string; urlOrBlob?: unknown };
      if (load?.cmd === "load") message = { ...load, urlOrBlob: workerData.factoryScript };
      super.postMessage(message, transfer);
    }
    override unref(): void {}
    ref(): void {}
    release(): void {
      super.unref();
    }
  }

  const originalCpus = os.cpus;
  const globalWorker = Object.getOwnPropertyDescriptor(globalThis, "Worker");
  const logicalCpus = originalCpus.call(os);
  try {
    tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", true);
    wasm.setThreadsCount(threads);
    workerThreads.Worker = PthreadWorker as unknown as NodeWorkerClass;
    os.cpus = () => Array.from({ length: 2 * threads }, (_, i) => logicalCpus[i % logicalCpus.length]);
    if (!(await initializeWasm())) throw new Error("tfjs failed to start it (see its warning)");
    for (const worker of started) worker.release();
    // Stop the pthread workers before the runtime tears down: a process that exited with them still parked in
    // their futex wait once aborted in Deno's teardown ("corrupted size vs. prev_size", after every test passed).
    globalThis.addEventListener("unload", () => {
      for (const worker of started) void worker.terminate().catch(() => {});
    });
  } catch (error) {
    for (const worker of started) await worker.terminate();
    tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
    throw error;
  } finally {
    workerThreads.Worker = OriginalWorker;
    os.cpus = originalCpus;
    // The glue sets the global Worker to the node one; give the program back Deno's web Worker.
    if (globalWorker) Object.defineProperty(globalThis, "Worker", globalWorker);
  }
}

/** tfjs' engine, with the two members (private in its types) used to start a backend without activating it. */
interface EngineInternals {
  registry: Record<string, unknown>;
  initializeBackend(name: string): { success: boolean | Promise<boolean> };
}

function wasmStarted(): boolean {
  return Boolean((tf.engine() as unknown as EngineInternals).registry.wasm);
}

/** Starts the wasm backend without making it the active one (tf.setBackend does that afterwards). */
async function initializeWasm(): Promise<boolean> {
  return await (tf.engine() as unknown as EngineInternals).initializeBackend("wasm").success;
}

let starting: Promise<WasmStart> | undefined;

/**
 * Starts tfjs' wasm backend (once per process: tfjs cannot restart it) with the threads of
 * `TFJS_WASM_THREADS`, and returns what it runs with. With 1 thread it uses the single-thread SIMD
 * build: measured no slower than the threaded build on one thread, and it starts no workers (the
 * threaded build always starts 8, about 100 MB, and takes about 0.8 s longer to start).
 * The backend is started, not made active: `tf.setBackend("wasm")` does that.
 */
export function startWasmBackend(): Promise<WasmStart> {
  starting ??= start().catch((error) => {
    starting = undefined;
    throw error;
  });
  return starting;
}

async function start(): Promise<WasmStart> {
  const request = wasmThreadsRequest();
  const wasm = await import("@tensorflow/tfjs-backend-wasm") as unknown as WasmModule;
  const simd = Boolean(await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT"));
  if (wasmStarted()) {
    // Started elsewhere (a plain tf.setBackend("wasm") came first): report what it runs with.
    const threads = wasm.getThreadsCount();
    const note = threads < request.threads ? "started before lib/wasm_threads.ts could set its threads" : undefined;
    return { build: threads > 1 ? "threaded SIMD" : simd ? "SIMD" : "plain", threads, note };
  }
  // Where the .wasm builds are, said explicitly: tfjs looks next to its own script (`__dirname`), which a
  // bundle (scripts/pack_gpu_check.ts) moves. Resolved from this module, as the pthread factory is.
  wasm.setWasmPaths(dirname(require.resolve("@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm")) + "/");
  let note: string | undefined;
  if (request.threads > 1) {
    const problem = simd
      ? threadSupportProblem()
      : "this runtime has no WebAssembly SIMD, which the threaded build needs";
    if (problem === undefined) {
      try {
        await startThreaded(wasm, request.threads);
        const threads = wasm.getThreadsCount();
        if (request.explicit && threads < 2) {
          throw new WasmThreadsError(`TFJS_WASM_THREADS=${request.threads} but tfjs-backend-wasm started 1 thread`);
        }
        // tfjs-backend-wasm 4.22 runs at most 8 threads (observed; its pthread pool holds 8 workers).
        const capped = threads < request.threads
          ? `${request.threads} asked for, tfjs-backend-wasm started ${threads}`
          : undefined;
        return { build: "threaded SIMD", threads, note: capped };
      } catch (error) {
        if (error instanceof WasmThreadsError) throw error;
        note = `threaded build failed to start: ${firstLine(error)}`;
      }
    } else {
      note = problem;
    }
    if (request.explicit) {
      throw new WasmThreadsError(`TFJS_WASM_THREADS=${request.threads} but wasm threads cannot run: ${note}`);
    }
  }
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
  if (!(await initializeWasm())) throw new Error("tfjs failed to start the wasm backend (see its warning)");
  return { build: simd ? "SIMD" : "plain", threads: wasm.getThreadsCount(), note };
}

/** One line for the backend reason, e.g. `threaded SIMD, 2 threads`. */
export function describeWasmStart(info: WasmStart): string {
  const threads = `${info.threads} thread${info.threads === 1 ? "" : "s"}`;
  return `${info.build}, ${threads}${info.note ? ` (${info.note})` : ""}`;
}
