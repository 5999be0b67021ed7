/**
 * One pthread worker of tfjs-backend-wasm's threaded-SIMD build, as a Deno `node:worker_threads` worker.
 *
 * tfjs starts its pthreads from a Blob URL of Emscripten's worker script, which Deno cannot run
 * (its workers are modules loaded from files or data: URLs). lib/wasm_threads.ts starts this file
 * instead. It sets up what that worker script expects of a browser web worker, then runs it:
 *   - `self` is the global scope (in a worker_threads worker under Deno it is not);
 *   - `process` is hidden, so the worker script and the Emscripten factory take their web-worker
 *     paths rather than their Node paths (which `require` modules that a Deno module has no access to);
 *   - `importScripts` reads a file and evaluates it in the global scope;
 *   - messages from the parent go to the script's `onmessage`, its `postMessage` goes to the parent.
 * `workerData` holds the paths of the worker script (`...-threaded-simd.worker.js`, which is
 * `module.exports.wasmWorkerContents = \`...\``) and of the Emscripten factory; with `check` set the
 * worker only proves that all this works (see `checkWorker` in lib/wasm_threads.ts) and runs no pthread.
 */
import { parentPort, workerData } from "node:worker_threads";

const { workerScript, factoryScript, check } = workerData;
const globalEval = eval; // indirect eval: runs in the global scope, as importScripts does

function setUp() {
  Object.defineProperty(globalThis, "self", { value: globalThis, configurable: true, writable: true });
  Object.defineProperty(globalThis, "process", { value: undefined, configurable: true, writable: true });
  globalThis.importScripts = (path) => globalEval(`${Deno.readTextFileSync(path)}\n//# sourceURL=${path}`);
  globalThis.postMessage = (message, transfer) => parentPort.postMessage(message, transfer);
  // Evaluating the file gives the worker code as a string; its template literal has turned each
  // `\n` escape into a newline, so escape them again (tfjs does the same before making its Blob).
  const holder = { exports: {} };
  new Function("module", Deno.readTextFileSync(workerScript))(holder);
  globalEval(holder.exports.wasmWorkerContents.replace(/\n/g, "\\n"));
}

if (check) {
  // Start-up check: set up, load the factory as the `load` message would, write to the shared memory
  // the parent sent. Errors are sent back as a message: an uncaught one in a worker ends the Deno process.
  parentPort.once("message", ({ memory }) => {
    try {
      setUp();
      globalThis.importScripts(factoryScript);
      Atomics.store(new Int32Array(memory.buffer), 0, 42);
      parentPort.postMessage({ factory: typeof globalThis.WasmBackendModuleThreadedSimd });
    } catch (error) {
      parentPort.postMessage({ error: String(error?.message ?? error) });
    }
  });
} else {
  setUp();
  parentPort.on("message", (data) => globalThis.onmessage({ data }));
}
