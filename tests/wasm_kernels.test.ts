// lib/wasm_kernels/: the AssemblyScript depthwise kernels registered into tfjs-backend-wasm. Their forward,
// input and filter gradients against the cpu backend's (tfjs' own kernels), the configurations they leave to
// tfjs, tf.grads through tf.depthwiseConv2d, tensor leaks, both binaries (plain and shared memory) on a
// memory of their own, the copying fallback, and the other tfjs-wasm build (threaded vs single-thread).
import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { tf } from "../lib/tf.ts";
import { selectBackend } from "../lib/backend.ts";
import { projectRoot } from "../lib/paths.ts";
import {
  depthwiseMemoryMode,
  instantiateDepthwise,
  registerWasmDepthwiseKernels,
  WASM_DEPTHWISE_KERNELS,
  wasmDepthwiseCalls,
} from "../lib/wasm_kernels/depthwise.ts";

/** max |a - b| / max |b|: the relative error of `a` against the reference `b`. */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(scale, 1e-30);
}

/** Deterministic values in [-1, 1). */
function wave(size: number, seed: number): Float32Array {
  return Float32Array.from(
    { length: size },
    (_, i) => Math.sin(i * 0.7311 + seed * 1.913) * Math.cos(i * 0.0173 + seed),
  );
}

interface Case {
  n: number;
  h: number;
  w: number;
  c: number;
  k: number;
}

const CASES: Case[] = [];
for (const k of [3, 5, 7]) {
  for (const n of [1, 3]) for (const c of [5, 8, 96]) CASES.push({ n, h: 7, w: 9, c, k });
}
// Wide enough for the 7x7 kernels' four-pixel tiles (interior 15 - 6 = 9: two tiles and one more), with a
// channel count that is not a multiple of 4 (37 = 9 vectors + 1).
CASES.push({ n: 2, h: 11, w: 15, c: 37, k: 7 }, { n: 1, h: 13, w: 10, c: 8, k: 7 }, { n: 1, h: 3, w: 2, c: 3, k: 9 });
const label = ({ n, h, w, c, k }: Case) => `k=${k} [${n},${h},${w},${c}]`;

type Values = Record<string, Float32Array>;

/** Forward, input gradient and filter gradient as kernel calls, plus both gradients through tf.grads. */
function depthwiseOutputs({ n, h, w, c, k }: Case): Values {
  return tf.tidy(() => {
    const x = tf.tensor4d(wave(n * h * w * c, 1), [n, h, w, c]);
    const filter = tf.tensor4d(wave(k * k * c, 2), [k, k, c, 1]);
    const dy = tf.tensor4d(wave(n * h * w * c, 3), [n, h, w, c]);
    const conv = { strides: 1, pad: "same", dilations: 1 } as const;
    const forward = tf.depthwiseConv2d(x, filter, 1, "same");
    const inputGrad = tf.engine().runKernel("DepthwiseConv2dNativeBackpropInput", { dy, filter }, {
      ...conv,
      inputShape: x.shape,
    }) as tf.Tensor;
    const filterGrad = tf.engine().runKernel("DepthwiseConv2dNativeBackpropFilter", { x, dy }, {
      ...conv,
      filterShape: filter.shape,
    }) as tf.Tensor;
    const loss = (a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, "same"), dy));
    const [gx, gw] = tf.grads(loss)([x, filter]);
    const out: Values = {};
    for (const [name, t] of Object.entries({ forward, inputGrad, filterGrad, gx, gw })) {
      out[name] = t.dataSync() as Float32Array;
    }
    return out;
  });
}

/** Configurations the wasm kernels leave to tfjs: stride 2, 'valid', a multiplier of 2, dilation 2. */
function unsupportedOutputs(): Values {
  return tf.tidy(() => {
    const x = tf.tensor4d(wave(2 * 9 * 11 * 6, 4), [2, 9, 11, 6]);
    const f7 = tf.tensor4d(wave(7 * 7 * 6, 5), [7, 7, 6, 1]);
    const f3x2 = tf.tensor4d(wave(3 * 3 * 6 * 2, 6), [3, 3, 6, 2]);
    const outputs = {
      stride2: tf.depthwiseConv2d(x, f7, 2, "same"),
      valid: tf.depthwiseConv2d(x, f7, 1, "valid"),
      multiplier2: tf.depthwiseConv2d(x, f3x2, 1, "same"),
      dilation2: tf.depthwiseConv2d(x, tf.slice(f7, [0, 0, 0, 0], [3, 3, 6, 1]) as tf.Tensor4D, 1, "same", "NHWC", 2),
      stride2Grads: tf.concat(
        tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.square(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, "same")))
        )(
          [x, f7],
        ).map((g) => tf.reshape(g, [-1])),
      ),
      validGrads: tf.concat(
        tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.square(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, "valid")))
        )(
          [x, f7],
        ).map((g) => tf.reshape(g, [-1])),
      ),
    };
    const out: Values = {};
    for (const [name, t] of Object.entries(outputs)) out[name] = t.dataSync() as Float32Array;
    return out;
  });
}

/** tf.fused.depthwiseConv2d with a per-channel bias (the fused path) and with a relu (left to tfjs). */
function fusedOutputs(): Values {
  return tf.tidy(() => {
    const x = tf.tensor4d(wave(1 * 9 * 13 * 12, 7), [1, 9, 13, 12]);
    const filter = tf.tensor4d(wave(7 * 7 * 12, 8), [7, 7, 12, 1]);
    const bias = tf.tensor1d(wave(12, 9));
    const out: Values = {};
    out.bias = tf.fused.depthwiseConv2d({ x, filter, bias, pad: "same", strides: 1 }).dataSync() as Float32Array;
    out.relu = tf.fused.depthwiseConv2d({ x, filter, bias, pad: "same", strides: 1, activation: "relu" })
      .dataSync() as Float32Array;
    return out;
  });
}

async function onCpu<T>(f: () => T): Promise<T> {
  await selectBackend("cpu", { quiet: true });
  try {
    return f();
  } finally {
    await selectBackend("wasm", { quiet: true });
  }
}

function expectClose(got: Values, want: Values, tolerance = 1e-5): void {
  expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  for (const name of Object.keys(want)) {
    const error = relativeError(got[name], want[name]);
    if (!(error <= tolerance)) throw new Error(`${name}: relative error ${error} > ${tolerance}`);
  }
}

describe("wasm depthwise kernels", () => {
  it("register for wasm in place of tfjs' kernels and work on tfjs' own heap", async () => {
    await selectBackend("wasm", { quiet: true });
    expect(registerWasmDepthwiseKernels()).toEqual([...WASM_DEPTHWISE_KERNELS]);
    expect(registerWasmDepthwiseKernels()).toEqual([...WASM_DEPTHWISE_KERNELS]); // idempotent
    expect(depthwiseMemoryMode()).toBe("zero-copy");
  });

  it("forward, input and filter gradients and tf.grads equal the cpu backend's (k = 3, 5, 7, 9)", async () => {
    await selectBackend("wasm", { quiet: true });
    registerWasmDepthwiseKernels();
    for (const c of CASES) {
      const before = { ...wasmDepthwiseCalls };
      const tensors = tf.memory().numTensors;
      const got = depthwiseOutputs(c);
      expect(tf.memory().numTensors).toBe(tensors);
      // forward x2 (one inside tf.grads), input gradient x2, filter gradient x2: all on depthwise.wasm
      expect(wasmDepthwiseCalls.wasm - before.wasm).toBe(6);
      expect(wasmDepthwiseCalls.delegated).toBe(before.delegated);
      const want = await onCpu(() => depthwiseOutputs(c));
      try {
        expectClose(got, want);
      } catch (error) {
        throw new Error(`${label(c)}: ${(error as Error).message}`);
      }
    }
  });

  it("leave stride 2, 'valid', multiplier 2 and dilation 2 to tfjs, with tfjs' results", async () => {
    await selectBackend("wasm", { quiet: true });
    registerWasmDepthwiseKernels();
    const before = { ...wasmDepthwiseCalls };
    const tensors = tf.memory().numTensors;
    const got = unsupportedOutputs();
    expect(tf.memory().numTensors).toBe(tensors);
    expect(wasmDepthwiseCalls.wasm).toBe(before.wasm);
    expect(wasmDepthwiseCalls.delegated).toBeGreaterThan(before.delegated);
    expectClose(got, await onCpu(unsupportedOutputs));
  });

  it("fuse a per-channel bias into tf.fused.depthwiseConv2d, and leave activations to tfjs", async () => {
    await selectBackend("wasm", { quiet: true });
    registerWasmDepthwiseKernels();
    const before = { ...wasmDepthwiseCalls };
    const got = fusedOutputs();
    expect(wasmDepthwiseCalls.wasm - before.wasm).toBe(1);
    expect(wasmDepthwiseCalls.delegated - before.delegated).toBe(1);
    expectClose(got, await onCpu(fusedOutputs));
  });

  it("copy through a private memory when asked (the fallback), with the same results", async () => {
    await selectBackend("wasm", { quiet: true });
    const c: Case = { n: 2, h: 9, w: 14, c: 13, k: 7 };
    registerWasmDepthwiseKernels();
    const zeroCopy = depthwiseOutputs(c);
    try {
      registerWasmDepthwiseKernels({ zeroCopy: false });
      expect(depthwiseMemoryMode()).toBe("copy");
      const tensors = tf.memory().numTensors;
      const copied = depthwiseOutputs(c);
      expect(tf.memory().numTensors).toBe(tensors);
      expectClose(copied, zeroCopy, 0);
    } finally {
      registerWasmDepthwiseKernels();
    }
  });

  it("run on a plain and on a shared memory of their own, also after the memory grows", () => {
    const c: Case = { n: 2, h: 9, w: 14, c: 37, k: 7 };
    const size = c.n * c.h * c.w * c.c;
    const reference: Record<string, Float32Array> = {};
    for (const shared of [false, true]) {
      const memory = new WebAssembly.Memory(shared ? { initial: 1, maximum: 64, shared: true } : { initial: 1 });
      const kernels = instantiateDepthwise(memory);
      memory.grow(3); // the kernels hold no views: growth after instantiation must not matter
      const heap = new Float32Array(memory.buffer);
      const [x, f, b, out, dx, dw] = [0, 1, 2, 3, 4, 5].map((i) => 64 + i * (size * 4 + 256));
      heap.set(wave(size, 1), x / 4);
      heap.set(wave(c.k * c.k * c.c, 2), f / 4);
      heap.set(wave(c.c, 3), b / 4);
      kernels.depthwiseForward(x, f, b, out, c.n, c.h, c.w, c.c, c.k, 0);
      kernels.depthwiseForward(out, f, 0, dx, c.n, c.h, c.w, c.c, c.k, 1);
      kernels.depthwiseFilterGrad(x, out, dw, c.n, c.h, c.w, c.c, c.k);
      const results = {
        forward: heap.slice(out / 4, out / 4 + size),
        flipped: heap.slice(dx / 4, dx / 4 + size),
        filterGrad: heap.slice(dw / 4, dw / 4 + c.k * c.k * c.c),
      };
      if (!shared) Object.assign(reference, results);
      else expectClose(results, reference, 0);
      // nothing outside the outputs was written (the module keeps no data in the memory)
      expect(heap.slice(0, 16).every((v) => v === 0)).toBe(true);
    }
    // and the plain results are right: the bias-added forward against a direct sum
    const x = wave(size, 1);
    const f = wave(c.k * c.k * c.c, 2);
    const bias = wave(c.c, 3);
    const p = c.k >> 1;
    const want = new Float32Array(size);
    for (let n = 0; n < c.n; n++) {
      for (let y = 0; y < c.h; y++) {
        for (let xx = 0; xx < c.w; xx++) {
          for (let ch = 0; ch < c.c; ch++) {
            let s = bias[ch];
            for (let ky = 0; ky < c.k; ky++) {
              for (let kx = 0; kx < c.k; kx++) {
                const iy = y + ky - p;
                const ix = xx + kx - p;
                if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.w) continue;
                s += x[((n * c.h + iy) * c.w + ix) * c.c + ch] * f[(ky * c.k + kx) * c.c + ch];
              }
            }
            want[((n * c.h + y) * c.w + xx) * c.c + ch] = s;
          }
        }
      }
    }
    expect(relativeError(reference.forward, want)).toBeLessThan(1e-5);
  });

  it("match the cpu backend on the other tfjs-wasm build too (threaded vs single-thread heap)", async () => {
    await selectBackend("wasm", { quiet: true });
    const shared = (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.buffer instanceof
      SharedArrayBuffer;
    // This process runs one build; a child runs the other (tfjs cannot restart its wasm backend).
    const lib = (name: string) => pathToFileURL(join(projectRoot, "lib", name)).href;
    const script = await Deno.makeTempFile({ suffix: ".ts" });
    try {
      await Deno.writeTextFile(
        script,
        [
          `import { tf } from "${lib("tf.ts")}";`,
          `import { selectBackend } from "${lib("backend.ts")}";`,
          `import { depthwiseMemoryMode, registerWasmDepthwiseKernels } from "${lib("wasm_kernels/depthwise.ts")}";`,
          `try {`,
          `  await selectBackend("wasm", { quiet: true });`,
          `} catch (error) {`,
          `  console.log(JSON.stringify({ skipped: String(error).split("\\n")[0] }));`,
          `  Deno.exit(0);`,
          `}`,
          `registerWasmDepthwiseKernels();`,
          `const x = tf.tensor4d(Array.from({ length: 2 * 9 * 14 * 13 }, (_, i) => Math.sin(i * 0.37)), [2, 9, 14, 13]);`,
          `const w = tf.tensor4d(Array.from({ length: 7 * 7 * 13 }, (_, i) => Math.cos(i * 0.11)), [7, 7, 13, 1]);`,
          `const f = (a, b) => tf.sum(tf.square(tf.depthwiseConv2d(a, b, 1, "same")));`,
          `const run = () => [tf.depthwiseConv2d(x, w, 1, "same"), ...tf.grads(f)([x, w])].map((t) => Array.from(t.dataSync()));`,
          `const got = run();`,
          `const heap = tf.backend().wasm.HEAPU8.buffer instanceof SharedArrayBuffer ? "shared" : "plain";`,
          `const mode = depthwiseMemoryMode();`,
          `await selectBackend("cpu", { quiet: true });`,
          `const want = run();`,
          `const scale = (a) => Math.max(...a.map(Math.abs));`,
          `const err = got.map((g, j) => Math.max(...g.map((v, i) => Math.abs(v - want[j][i]))) / scale(want[j]));`,
          `console.log(JSON.stringify({ heap, mode, err }));`,
        ].join("\n"),
      );
      const env = { ...Deno.env.toObject(), TFJS_WASM_THREADS: shared ? "1" : "2" };
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--config", join(projectRoot, "deno.json"), script],
        cwd: projectRoot,
        env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(out.stdout);
      if (!out.success) throw new Error(`child failed: ${new TextDecoder().decode(out.stderr)}`);
      const result = JSON.parse(stdout.trim().split("\n").at(-1)!) as
        | { skipped: string }
        | { heap: string; mode: string; err: number[] };
      if ("skipped" in result) {
        // Only the threaded build can be missing (no SharedArrayBuffer or workers): nothing to compare.
        console.log(`other build not available here: ${result.skipped}`);
        return;
      }
      expect(result.heap).toBe(shared ? "plain" : "shared");
      expect(result.mode).toBe("zero-copy");
      expect(result.err.length).toBe(3);
      for (const e of result.err) expect(e).toBeLessThan(1e-5);
    } finally {
      await Deno.remove(script);
    }
  });
});
