// tfjs-backend-wasm with threads under Deno (lib/wasm_threads.ts): TFJS_WASM_THREADS parsing, the thread
// count in effect, threaded results against the cpu backend, and that a script using threads exits by itself.
import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { tf } from "../lib/tf.ts";
import { selectBackend } from "../lib/backend.ts";
import { projectRoot } from "../lib/paths.ts";
import { parseWasmThreads, WasmThreadsError, wasmThreadsRequest } from "../lib/wasm_threads.ts";
import { maxRelativeDifference } from "../lib/bench/backend_equality.ts";

/** tfjs-backend-wasm 4.22 starts at most 8 threads, whatever is asked. */
const MAX_TFJS_THREADS = 8;

/** Ops that XNNPACK runs on the thread pool, big enough to be split across threads. */
async function threadedOps(): Promise<Record<string, Float32Array>> {
  const tensors = tf.tidy(() => {
    const wave = (shape: number[], f: number) =>
      tf.tensor(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * f)), shape);
    const image = wave([2, 32, 32, 16], 0.37) as tf.Tensor4D;
    return {
      matMul: tf.matMul(wave([3, 96, 128], 0.11) as tf.Tensor3D, wave([3, 128, 80], 0.07) as tf.Tensor3D),
      conv2d: tf.conv2d(image, wave([3, 3, 16, 24], 0.05) as tf.Tensor4D, 1, "same"),
      patchify: tf.conv2d(image, wave([4, 4, 16, 32], 0.03) as tf.Tensor4D, 4, "valid"),
      depthwise: tf.depthwiseConv2d(image, wave([7, 7, 16, 1], 0.13) as tf.Tensor4D, 1, "same"),
    };
  });
  const values: Record<string, Float32Array> = {};
  for (const [name, tensor] of Object.entries(tensors)) {
    values[name] = (await tensor.data()) as Float32Array;
    tensor.dispose();
  }
  return values;
}

/** Runs a tiny `deno run` script with TFJS_WASM_THREADS=value; what it printed, and whether it exited in time. */
async function runScript(value: string): Promise<{ code: number; stdout: string; stderr: string; timedOut: boolean }> {
  const dir = await Deno.makeTempDir({ prefix: "wasm_threads_" });
  try {
    const script = join(dir, "threads.ts");
    const lib = (name: string) => pathToFileURL(join(projectRoot, "lib", name)).href;
    await Deno.writeTextFile(
      script,
      [
        `import { tf } from "${lib("tf.ts")}";`,
        `import { selectBackend } from "${lib("backend.ts")}";`,
        `const choice = await selectBackend("wasm", { quiet: true });`,
        `const wasm = await import("@tensorflow/tfjs-backend-wasm");`,
        `const product = tf.matMul(tf.ones([64, 64]), tf.ones([64, 64]));`,
        `console.log(JSON.stringify({ detail: choice.detail, threads: wasm.getThreadsCount(), value: (await product.data())[0] }));`,
        // no Deno.exit: the script must end by itself although pthread workers are running
      ].join("\n"),
    );
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, 60_000);
    const env = { TFJS_WASM_THREADS: value, NO_COLOR: "1" };
    const command = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", join(projectRoot, "deno.json"), script],
      cwd: projectRoot,
      env,
      signal: controller.signal,
      stdout: "piped",
      stderr: "piped",
    });
    const output = await command.output();
    clearTimeout(timer);
    const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr), timedOut };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

describe("wasm threads", () => {
  it("parses TFJS_WASM_THREADS: unset means all cores, else a whole number >= 1", () => {
    expect(parseWasmThreads(undefined, 6)).toEqual({ threads: 6, explicit: false });
    expect(parseWasmThreads("", 6)).toEqual({ threads: 6, explicit: false });
    expect(parseWasmThreads(" 3 ", 6)).toEqual({ threads: 3, explicit: true });
    expect(parseWasmThreads("1", 6)).toEqual({ threads: 1, explicit: true });
    expect(parseWasmThreads("16", 2)).toEqual({ threads: 16, explicit: true });
    for (const bad of ["0", "-2", "1.5", "two", "2x", "1e3", "auto", "99999999999999999999"]) {
      expect(() => parseWasmThreads(bad, 6)).toThrow(WasmThreadsError);
      expect(() => parseWasmThreads(bad, 6)).toThrow(`TFJS_WASM_THREADS=${bad} is not allowed`);
    }
    expect(() => parseWasmThreads("0", 6)).toThrow(/whole number of threads >= 1/);
  });

  it("the wasm backend runs the threads asked for (by default all cores) and says so", async () => {
    const choice = await selectBackend("wasm", { quiet: true });
    const wasm = await import("@tensorflow/tfjs-backend-wasm");
    const threads = wasm.getThreadsCount();
    const request = wasmThreadsRequest();
    expect(threads).toBe(Math.min(request.threads, MAX_TFJS_THREADS));
    if (!request.explicit && navigator.hardwareConcurrency > 1) expect(threads).toBeGreaterThanOrEqual(2);
    expect(choice.detail).toBe(threads > 1 ? `threaded SIMD, ${threads} threads` : "SIMD, 1 thread");
    expect(choice.reason).toContain(`WebAssembly backend, ${choice.detail}`);
    await selectBackend("cpu", { quiet: true });
  });

  it("threaded matMul and convolutions equal the cpu backend's, and leak no tensors", async () => {
    await selectBackend("cpu", { quiet: true });
    const reference = await threadedOps();
    await selectBackend("wasm", { quiet: true });
    const before = tf.memory();
    for (let round = 0; round < 3; round++) {
      const result = await threadedOps();
      for (const key of Object.keys(reference)) {
        const difference = maxRelativeDifference(reference[key], result[key]);
        if (difference > 1e-5) throw new Error(`wasm: ${key} differs from cpu by ${difference}`);
      }
      expect(tf.memory().numTensors).toBe(before.numTensors);
      expect(tf.memory().numBytes).toBe(before.numBytes);
    }
    await selectBackend("cpu", { quiet: true });
  });

  it("a deno run script follows TFJS_WASM_THREADS and exits by itself", async () => {
    for (
      const [value, threads, detail] of [["1", 1, "SIMD, 1 thread"], ["2", 2, "threaded SIMD, 2 threads"]] as const
    ) {
      const run = await runScript(value);
      expect({ value, timedOut: run.timedOut, code: run.code, stderr: run.stderr }).toEqual({
        value,
        timedOut: false,
        code: 0,
        stderr: expect.any(String),
      });
      expect(JSON.parse(run.stdout.trim().split("\n").at(-1)!)).toEqual({ detail, threads, value: 64 });
    }
  });

  it("with 2 threads the PyTorch parity and fast-gradient tests pass too (the suite itself runs at 1 thread)", async () => {
    // `deno task test` sets TFJS_WASM_THREADS=1 (threads slow small ops badly when test files share the cores);
    // this runs the tests that check numbers on wasm once more on the threaded build.
    const files = ["model_parity", "fast_gradients", "wasm_kernels", "wasm_gelu"].map((f) =>
      join("tests", `${f}.test.ts`)
    );
    const runThreaded = async (): Promise<{ success: boolean; log: string }> => {
      const output = await new Deno.Command(Deno.execPath(), {
        args: ["test", "-A", "--config", join(projectRoot, "deno.json"), ...files],
        cwd: projectRoot,
        env: { TFJS_WASM_THREADS: "2", NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(300_000),
      }).output();
      return {
        success: output.success,
        log: new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr),
      };
    };
    let { success, log } = await runThreaded();
    // Once seen under load: every test passed, then glibc aborted the process in Deno's teardown. That is the
    // runtime's exit, not our numbers: run once more, and fail on any second failure.
    const passedThenAborted = /ok \| \d+ passed .*\| 0 failed/.test(log) && /corrupted|double free|free\(\)/.test(log);
    if (!success && passedThenAborted) {
      console.warn("the threaded test run passed, then crashed on exit; running it once more");
      ({ success, log } = await runThreaded());
    }
    if (!success) throw new Error(`the threaded run failed:\n${log.slice(-3000)}`);
    expect(log).toMatch(/ok \| \d+ passed .*\| 0 failed/);
  });
});
