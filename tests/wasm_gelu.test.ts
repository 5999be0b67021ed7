// lib/wasm_kernels/gelu.ts: the fused exact-GELU kernels ("Gelu", "GeluGrad") registered into tfjs-backend-wasm.
// The erf and exp approximations against float64 over dense grids and special values, forward and backward
// against tfjs' composite on the cpu backend (0.5 * x * (1 + erf(x / sqrt 2)) and its tf.grad), a tf.customGrad
// built on them, tensor leaks, both binaries (plain and shared memory) on a memory of their own, the copying
// fallback, and both tfjs-wasm builds in child processes (TFJS_WASM_THREADS=1: plain heap, =2: shared heap).
import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { tf } from "../lib/tf.ts";
import { selectBackend } from "../lib/backend.ts";
import { projectRoot } from "../lib/paths.ts";
import {
  type GeluExports,
  geluMemoryMode,
  hasWasmGelu,
  instantiateGelu,
  registerWasmGeluKernels,
  WASM_GELU_KERNELS,
  wasmGeluCalls,
} from "../lib/wasm_kernels/gelu.ts";

/** erf in float64: 2/sqrt(pi) e^{-x^2} sum_n 2^n x^{2n+1} / (2n+1)!! (all terms positive: no cancellation). */
function erf64(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  if (a > 6) return Math.sign(x); // 1 - erf(6) < 3e-17
  const a2 = a * a;
  let term = a;
  let sum = a;
  for (let n = 1; n < 300 && term > sum * 1e-17; n++) {
    term *= (2 * a2) / (2 * n + 1);
    sum += term;
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * Math.exp(-a2) * sum;
}

/** ulp of a float32 of magnitude |v| (normal range). */
const ulp32 = (v: number): number => 2 ** (Math.floor(Math.log2(Math.abs(v))) - 23);

/** Runs one unary/binary export of gelu.wasm on a private memory: values in, values out. */
function runOn(
  kernels: GeluExports,
  memory: WebAssembly.Memory,
  fn: "erfForward" | "expForward" | "geluForward" | "geluBackward",
  x: Float32Array,
  dy?: Float32Array,
): Float32Array {
  const bytes = Math.ceil((x.length * 4) / 64) * 64 + 64;
  const needed = 3 * bytes + 64;
  if (memory.buffer.byteLength < needed) memory.grow(Math.ceil((needed - memory.buffer.byteLength) / 65536));
  // Offsets 64 + k * bytes, with 4 bytes of skew for the first: the kernels must not need alignment.
  const [xp, dp, op] = [68, 64 + bytes, 64 + 2 * bytes];
  new Float32Array(memory.buffer, xp, x.length).set(x);
  if (fn === "geluBackward") {
    new Float32Array(memory.buffer, dp, x.length).set(dy!);
    kernels.geluBackward(xp, dp, op, x.length);
  } else {
    kernels[fn](xp, op, x.length);
  }
  return new Float32Array(memory.buffer, op, x.length).slice();
}

let ownMemory: { memory: WebAssembly.Memory; kernels: GeluExports } | undefined;
function own(): { memory: WebAssembly.Memory; kernels: GeluExports } {
  ownMemory ??= (() => {
    const memory = new WebAssembly.Memory({ initial: 1 });
    return { memory, kernels: instantiateGelu(memory) };
  })();
  return ownMemory;
}
const wasmErf = (x: Float32Array) => runOn(own().kernels, own().memory, "erfForward", x);
const wasmExp = (x: Float32Array) => runOn(own().kernels, own().memory, "expForward", x);
const wasmGelu = (x: Float32Array) => runOn(own().kernels, own().memory, "geluForward", x);
const wasmGeluGrad = (x: Float32Array, dy: Float32Array) => runOn(own().kernels, own().memory, "geluBackward", x, dy);

/** Every `step`-th float32 bit pattern from `from` to `to` (patterns of non-negative floats), plus `to`. */
function floatGrid(from: number, to: number, step: number): Float32Array {
  const bits = new Uint32Array(Math.floor((to - from) / step) + 2);
  for (let i = 0; i < bits.length - 1; i++) bits[i] = from + i * step;
  bits[bits.length - 1] = to;
  return new Float32Array(bits.buffer);
}
const bitsOf = (v: number): number => new Uint32Array(Float32Array.of(v).buffer)[0];

/** Standard normal values from a seeded generator (Box-Muller on a 32-bit LCG), times `scale`. */
function normal(size: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  const uniform = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 2 ** 32;
  };
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    out[i] = scale * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  }
  return out;
}

/** Asserts |got - want| <= abs + rel * |want| everywhere; returns the largest |got - want|. */
function expectNear(got: ArrayLike<number>, want: ArrayLike<number>, abs = 1e-6, rel = 1e-6): number {
  expect(got.length).toBe(want.length);
  let worst = 0;
  let bad = -1;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= abs + rel * Math.abs(want[i])) && bad < 0) bad = i;
    worst = Math.max(worst, d);
  }
  if (bad >= 0) throw new Error(`element ${bad}: got ${got[bad]}, want ${want[bad]} (max diff ${worst})`);
  return worst;
}

/** tfjs' composite GELU and its gradient (what layers.ts computes without these kernels). */
function compositeGelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
}

/** Forward and backward of the composite on the cpu backend, for the values given. */
async function cpuReference(x: Float32Array, dy: Float32Array): Promise<{ y: Float32Array; dx: Float32Array }> {
  await selectBackend("cpu", { quiet: true });
  return tf.tidy(() => {
    const xt = tf.tensor1d(x);
    const dyt = tf.tensor1d(dy);
    const y = compositeGelu(xt).dataSync() as Float32Array;
    const dx = tf.grad(compositeGelu)(xt, dyt).dataSync() as Float32Array;
    return { y, dx };
  });
}

/** GELU through the fused kernels with a tf.customGrad, as a model would use them. */
const fusedGelu = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const x = args[0] as tf.Tensor;
  (args[1] as tf.GradSaveFunc)([x]);
  return {
    value: tf.engine().runKernel("Gelu", { x }, {}) as tf.Tensor,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
      tf.engine().runKernel("GeluGrad", { x: saved[0], dy }, {}) as tf.Tensor,
  };
}) as (x: tf.Tensor) => tf.Tensor;

const SHAPES: number[][] = [[1], [3], [4], [7], [3, 5, 13], [2, 7, 7, 64], [1_000_003]];

describe("wasm GELU kernels", () => {
  it("erf: within 1e-7 of float64 on a dense float32 grid in [0, 10], odd, with +-0, +-Inf and NaN kept", () => {
    // Every 97th float32 from 0 to 10 (~11M values: every binade, subnormals included), and every
    // float32 in [0.8, 1] (the branch switch at 0.875 and the worst case measured, 0.88).
    const xs = [floatGrid(0, bitsOf(10), 97), floatGrid(bitsOf(0.8), bitsOf(1), 1)];
    let worst = 0;
    let at = 0;
    for (const x of xs) {
      const got = wasmErf(x);
      const neg = wasmErf(x.map((v) => -v));
      for (let i = 0; i < x.length; i++) {
        const e = Math.abs(got[i] - erf64(x[i]));
        if (e > worst) [worst, at] = [e, x[i]];
        if (!Object.is(neg[i], -got[i])) throw new Error(`erf(-${x[i]}) = ${neg[i]}, not -${got[i]}`);
      }
    }
    console.log(`erf: max abs error ${worst.toExponential(3)} at ${at}`);
    expect(worst).toBeLessThan(1e-7);
    // tiny values: erf(x) = 2x/sqrt(pi) to well within an ulp of the result
    const tiny = Float32Array.of(1e-45, 1e-40, 1.17549435e-38, 1e-30, 1e-20, 1e-10, 1e-5);
    const erfTiny = wasmErf(tiny);
    tiny.forEach((v, i) =>
      expect(Math.abs(erfTiny[i] - erf64(v))).toBeLessThanOrEqual(Math.max(ulp32(erf64(v)), 2e-45))
    );
    const special = wasmErf(Float32Array.of(0, -0, Infinity, -Infinity, NaN, 4, -4, 1e30, -1e30));
    expect(Object.is(special[0], 0)).toBe(true);
    expect(Object.is(special[1], -0)).toBe(true);
    expect([...special.slice(2)]).toEqual([1, -1, NaN, 1, -1, 1, -1]);
  });

  it("exp: within 1 ulp of float64 on a dense float32 grid in [-87, 0] (and to 88)", () => {
    const x = floatGrid(bitsOf(-0), bitsOf(-87), 101);
    const got = wasmExp(x);
    let worst = 0;
    for (let i = 0; i < x.length; i++) {
      worst = Math.max(worst, Math.abs(got[i] - Math.exp(x[i])) / ulp32(Math.exp(x[i])));
    }
    const up = Float32Array.from({ length: 8801 }, (_, i) => i / 100);
    const gotUp = wasmExp(up);
    for (let i = 0; i < up.length; i++) {
      worst = Math.max(worst, Math.abs(gotUp[i] - Math.exp(up[i])) / ulp32(Math.exp(up[i])));
    }
    console.log(`exp: max error ${worst.toFixed(3)} ulp`);
    expect(worst).toBeLessThanOrEqual(1);
  });

  it("gelu and gelu': close to float64 on [-10, 10], and the special values documented in gelu.as", () => {
    const x = Float32Array.from({ length: 200_001 }, (_, i) => -10 + i / 10_000);
    const dy = Float32Array.from(x, (_, i) => 1 + (i % 7) / 8);
    const y = wasmGelu(x);
    const dx = wasmGeluGrad(x, dy);
    let worstY = 0;
    let worstDx = 0;
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      const cdf = 0.5 * (1 + erf64(v * Math.SQRT1_2));
      const pdf = Math.exp(-0.5 * v * v) / Math.sqrt(2 * Math.PI);
      worstY = Math.max(worstY, Math.abs(y[i] - v * cdf));
      worstDx = Math.max(worstDx, Math.abs(dx[i] - dy[i] * (cdf + v * pdf)) / dy[i]);
    }
    console.log(`gelu: max abs error ${worstY.toExponential(3)}, gelu': ${worstDx.toExponential(3)} (per unit dy)`);
    expect(worstY).toBeLessThan(1e-6);
    expect(worstDx).toBeLessThan(5e-7);

    const special = Float32Array.of(Infinity, -Infinity, NaN, 0, -0, -30, 30, 1e-40, -1e-40);
    const ys = wasmGelu(special);
    expect(ys[0]).toBe(Infinity);
    expect(Object.is(ys[1], -0)).toBe(true);
    expect(ys[2]).toBeNaN();
    expect(Object.is(ys[3], 0)).toBe(true);
    expect(Object.is(ys[4], -0)).toBe(true);
    expect(Object.is(ys[5], -0)).toBe(true); // Phi(-30) rounds to 0
    expect(ys[6]).toBe(30);
    expect(ys[7]).toBeCloseTo(0.5e-40, 45);
    expect(ys[8]).toBeCloseTo(-0.5e-40, 45);
    const grads = wasmGeluGrad(special, new Float32Array(special.length).fill(2));
    expect([...grads.slice(0, 5)]).toEqual([2, 0, NaN, 1, 1]);
    expect([...grads.slice(5, 7)]).toEqual([0, 2]);
  });

  it("match tfjs' composite on the cpu backend (forward and tf.grad), many shapes and lengths", async () => {
    for (const [k, shape] of SHAPES.entries()) {
      const size = shape.reduce((a, b) => a * b, 1);
      const x = normal(size, 11 + k, k % 2 === 0 ? 1 : 3);
      const dy = normal(size, 101 + k);
      const want = await cpuReference(x, dy);
      await selectBackend("wasm", { quiet: true });
      expect(registerWasmGeluKernels()).toEqual([...WASM_GELU_KERNELS]);
      expect(hasWasmGelu()).toBe(true);
      expect(geluMemoryMode()).toBe("zero-copy");
      const before = { ...wasmGeluCalls };
      const tensors = tf.memory().numTensors;
      const got = tf.tidy(() => {
        const xt = tf.tensor(x, shape);
        const dyt = tf.tensor(dy, shape);
        const y = tf.engine().runKernel("Gelu", { x: xt }, {}) as tf.Tensor;
        const dx = tf.engine().runKernel("GeluGrad", { x: xt, dy: dyt }, {}) as tf.Tensor;
        expect(y.shape).toEqual(shape);
        expect(y.dtype).toBe("float32");
        // the same through a customGrad, as a model uses them
        const [y2, dx2] = [fusedGelu(xt), tf.grad(fusedGelu)(xt, dyt)];
        return [y, dx, y2, dx2].map((t) => t.dataSync() as Float32Array);
      });
      expect(tf.memory().numTensors).toBe(tensors);
      expect(wasmGeluCalls.forward - before.forward).toBe(3); // runKernel, customGrad, customGrad inside tf.grad
      expect(wasmGeluCalls.backward - before.backward).toBe(2);
      const errY = expectNear(got[0], want.y);
      const errDx = expectNear(got[1], want.dx);
      expectNear(got[2], got[0], 0, 0);
      expectNear(got[3], got[1], 0, 0);
      console.log(`[${shape}]: max |diff| forward ${errY.toExponential(2)}, backward ${errDx.toExponential(2)}`);
    }
  });

  it("leak nothing on the wasm heap, and handle empty tensors", async () => {
    await selectBackend("wasm", { quiet: true });
    registerWasmGeluKernels();
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const x = tf.tensor(normal(1001, 5), [7, 11, 13]);
    const dy = tf.tensor(normal(1001, 6), [7, 11, 13]);
    const ids = backend.numDataIds();
    const tensors = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      tf.dispose([tf.engine().runKernel("Gelu", { x }, {}) as tf.Tensor, tf.grad(fusedGelu)(x, dy)]);
    }
    expect(tf.memory().numTensors).toBe(tensors);
    expect(backend.numDataIds()).toBe(ids);
    tf.dispose([x, dy]);
    const empty = tf.zeros([0, 3]);
    const y = tf.engine().runKernel("Gelu", { x: empty }, {}) as tf.Tensor;
    expect(y.shape).toEqual([0, 3]);
    tf.dispose([empty, y]);
    expect(() => tf.tidy(() => tf.engine().runKernel("Gelu", { x: tf.tensor([1, 2], [2], "int32") }, {}))).toThrow(
      "float32 inputs only",
    );
  });

  it("copy through a private memory when asked (the fallback), with the same results", async () => {
    await selectBackend("wasm", { quiet: true });
    const x = normal(4099, 7, 2);
    const dy = normal(4099, 8);
    const run = () =>
      tf.tidy(() => {
        const xt = tf.tensor1d(x);
        const dyt = tf.tensor1d(dy);
        return [
          tf.engine().runKernel("Gelu", { x: xt }, {}) as tf.Tensor,
          tf.engine().runKernel("GeluGrad", { x: xt, dy: dyt }, {}) as tf.Tensor,
        ].map((t) => t.dataSync() as Float32Array);
      });
    registerWasmGeluKernels();
    const zeroCopy = run();
    try {
      registerWasmGeluKernels({ zeroCopy: false });
      expect(geluMemoryMode()).toBe("copy");
      const tensors = tf.memory().numTensors;
      const copied = run();
      expect(tf.memory().numTensors).toBe(tensors);
      expectNear(copied[0], zeroCopy[0], 0, 0);
      expectNear(copied[1], zeroCopy[1], 0, 0);
    } finally {
      registerWasmGeluKernels();
    }
  });

  it("run on a plain and on a shared memory of their own, also after the memory grows", () => {
    const x = normal(1027, 9, 2);
    const dy = normal(1027, 10);
    const results: Float32Array[][] = [];
    for (const shared of [false, true]) {
      const memory = new WebAssembly.Memory(shared ? { initial: 1, maximum: 64, shared: true } : { initial: 1 });
      const kernels = instantiateGelu(memory);
      memory.grow(2); // the kernels hold no views: growth after instantiation must not matter
      results.push([runOn(kernels, memory, "geluForward", x), runOn(kernels, memory, "geluBackward", x, dy)]);
      // nothing outside the buffers was written (the module keeps no data in the memory)
      expect(new Uint8Array(memory.buffer, 0, 64).every((v) => v === 0)).toBe(true);
    }
    expectNear(results[1][0], results[0][0], 0, 0);
    expectNear(results[1][1], results[0][1], 0, 0);
    expectNear(results[0][0], wasmGelu(x), 0, 0);
  });

  for (const threads of ["1", "2"]) {
    it(`match the cpu composite in a child on TFJS_WASM_THREADS=${threads} (${threads === "1" ? "plain" : "shared"} heap)`, async () => {
      const lib = (name: string) => pathToFileURL(join(projectRoot, "lib", name)).href;
      const script = await Deno.makeTempFile({ suffix: ".ts" });
      try {
        await Deno.writeTextFile(
          script,
          [
            `import { tf } from "${lib("tf.ts")}";`,
            `import { selectBackend } from "${lib("backend.ts")}";`,
            `import { geluMemoryMode, hasWasmGelu, registerWasmGeluKernels } from "${lib("wasm_kernels/gelu.ts")}";`,
            `try {`,
            `  await selectBackend("wasm", { quiet: true });`,
            `} catch (error) {`,
            `  console.log(JSON.stringify({ skipped: String(error).split("\\n")[0] }));`,
            `  Deno.exit(0);`,
            `}`,
            `registerWasmGeluKernels();`,
            `const n = 3 * 64 * 257 + 3;`,
            `const xs = Array.from({ length: n }, (_, i) => 4 * Math.sin(i * 0.37) * Math.cos(i * 0.011));`,
            `const dys = Array.from({ length: n }, (_, i) => Math.cos(i * 0.23));`,
            `const composite = (x) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));`,
            `const fused = () => { const x = tf.tensor1d(xs), dy = tf.tensor1d(dys); return [`,
            `  tf.engine().runKernel("Gelu", { x }, {}), tf.engine().runKernel("GeluGrad", { x, dy }, {})]; };`,
            `const reference = () => { const x = tf.tensor1d(xs), dy = tf.tensor1d(dys);`,
            `  return [composite(x), tf.grad(composite)(x, dy)]; };`,
            `const got = tf.tidy(() => fused().map((t) => Array.from(t.dataSync())));`,
            `const heap = tf.backend().wasm.HEAPU8.buffer instanceof SharedArrayBuffer ? "shared" : "plain";`,
            `const mode = geluMemoryMode();`,
            `const registered = hasWasmGelu();`,
            `await selectBackend("cpu", { quiet: true });`,
            `const want = tf.tidy(() => reference().map((t) => Array.from(t.dataSync())));`,
            `const err = got.map((g, j) => Math.max(...g.map((v, i) => Math.abs(v - want[j][i]) /`,
            `  (1e-6 + 1e-6 * Math.abs(want[j][i])))));`,
            `console.log(JSON.stringify({ heap, mode, registered, err }));`,
          ].join("\n"),
        );
        const env = { ...Deno.env.toObject(), TFJS_WASM_THREADS: threads };
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
          | { heap: string; mode: string; registered: boolean; err: number[] };
        if ("skipped" in result) {
          // Only the threaded build can be missing (no SharedArrayBuffer or workers): nothing to compare.
          expect(threads).toBe("2");
          console.log(`threaded build not available here: ${result.skipped}`);
          return;
        }
        expect(result.heap).toBe(threads === "1" ? "plain" : "shared");
        expect(result.mode).toBe("zero-copy");
        expect(result.registered).toBe(true);
        // err is |diff| / (1e-6 + 1e-6 |want|): at most 1 means within the tolerance
        expect(result.err.length).toBe(2);
        for (const e of result.err) expect(e).toBeLessThanOrEqual(1);
      } finally {
        await Deno.remove(script);
      }
    });
  }
});
