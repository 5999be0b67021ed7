// lib/fast_gradients.ts and the wasm kernels of lib/kernel_bridge.ts: every new gradient against tfjs' own
// (its gradient functions run on the cpu backend), the configurations left to tfjs, BatchMatMul with every
// transpose and batch layout against the cpu backend, the copy-free Identity, and one training step of the
// tiny preset on wasm that must not run anything on the cpu backend. No timings here (see lib/bench/kernels.ts).
import { describe, it } from "node:test";
import { expect } from "expect";
import { tf } from "../lib/tf.ts";
import { selectBackend } from "../lib/backend.ts";
import {
  depthwiseFilterGradient,
  depthwiseInputGradient,
  patchConvFilterGradient,
  patchConvInputGradient,
  registerFastGradients,
  tfjsGradient,
} from "../lib/fast_gradients.ts";
import { createSiameseRuCLIP } from "../lib/model/siamese.ts";
import { tinyPreset } from "../lib/model/presets.ts";
import { benchTrainingStep } from "../lib/bench/model_bench.ts";
import { maxAbsDiff } from "./helpers.ts";

registerFastGradients();

const BACKENDS = ["cpu", "wasm", "webgpu-software"] as const;

/** max |a - b| / max |b|. */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  return maxAbsDiff(a, b) / Math.max(scale, 1e-30);
}

/** Seeded values in [-1, 1) that do not depend on the backend's random generator. */
function values(shape: number[], seed: number): Float32Array {
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < out.length; i++) out[i] = Math.sin(seed * 12.9898 + i * 78.233) * 0.999;
  return out;
}

async function read(tensors: tf.Tensor[]): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const t of tensors) out.push((await t.data()) as Float32Array); // dataSync is unavailable on webgpu
  tf.dispose(tensors);
  return out;
}

/** Counts calls to the cpu backend's data methods (a kernel bridged to cpu writes its inputs there). */
function spyOnCpuBackend(): { calls: () => number; restore: () => void } {
  const cpu = tf.findBackend("cpu") as unknown as Record<string, (...args: unknown[]) => unknown>;
  const names = ["write", "read", "readSync", "makeTensorInfo", "move"];
  const originals = names.map((name) => cpu[name]);
  let count = 0;
  names.forEach((name, i) => {
    cpu[name] = function (this: unknown, ...args: unknown[]) {
      count++;
      return originals[i].apply(this, args);
    };
  });
  return { calls: () => count, restore: () => names.forEach((name, i) => (cpu[name] = originals[i])) };
}

interface ConvCase {
  x: number[];
  filter: number[];
  strides: number | [number, number];
  pad: "same" | "valid";
}

/** The gradients of sum(conv(x, filter) * dy) by `op` through tf.grads, on the active backend. */
async function gradsThrough(
  op: "conv2d" | "depthwise",
  c: ConvCase,
): Promise<{ dx: Float32Array; dw: Float32Array; dy: Float32Array }> {
  const x = tf.tensor4d(values(c.x, 1), c.x as [number, number, number, number]);
  const filter = tf.tensor4d(values(c.filter, 2), c.filter as [number, number, number, number]);
  const conv = (a: tf.Tensor, b: tf.Tensor): tf.Tensor4D =>
    op === "conv2d"
      ? tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.strides, c.pad)
      : tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.strides, c.pad);
  const outShape = tf.tidy(() => conv(x, filter).shape);
  const dy = tf.tensor4d(values(outShape, 3), outShape);
  const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(conv(a, b), dy)))([x, filter]);
  const [dxv, dwv, dyv] = await read([dx, dw, dy]);
  tf.dispose([x, filter]);
  return { dx: dxv, dw: dwv, dy: dyv };
}

/** tfjs' own gradient of the kernel (Conv2D / DepthwiseConv2dNative), run on the cpu backend. */
async function tfjsReference(
  op: "conv2d" | "depthwise",
  c: ConvCase,
  dyValues: Float32Array,
): Promise<{ dx: Float32Array; dw: Float32Array }> {
  await selectBackend("cpu", { quiet: true });
  const x = tf.tensor4d(values(c.x, 1), c.x as [number, number, number, number]);
  const filter = tf.tensor4d(values(c.filter, 2), c.filter as [number, number, number, number]);
  const outShape = tf.tidy(() =>
    (op === "conv2d" ? tf.conv2d(x, filter, c.strides, c.pad) : tf.depthwiseConv2d(x, filter, c.strides, c.pad)).shape
  );
  const dy = tf.tensor4d(dyValues, outShape);
  const dilations = 1;
  const attrs: tf.NamedAttrMap = op === "conv2d"
    ? { strides: c.strides, pad: c.pad, dataFormat: "NHWC", dilations }
    : { strides: c.strides, pad: c.pad, dilations };
  const grads = tfjsGradient(op === "conv2d" ? "Conv2D" : "DepthwiseConv2dNative").gradFunc(dy, [x, filter], attrs);
  const [dx, dw] = await read([grads.x(), grads.filter()]);
  tf.dispose([x, filter, dy]);
  return { dx, dw };
}

const PATCH_CASES: ConvCase[] = [
  { x: [2, 8, 8, 3], filter: [4, 4, 3, 5], strides: 4, pad: "valid" }, // the stem's shape of conv
  { x: [3, 6, 10, 4], filter: [2, 2, 4, 7], strides: 2, pad: "valid" }, // a downsampling conv
  { x: [1, 9, 7, 2], filter: [2, 2, 2, 3], strides: 2, pad: "valid" }, // odd sizes: the last row/column is unused
  { x: [2, 9, 8, 3], filter: [3, 2, 3, 4], strides: [3, 2], pad: "valid" }, // rectangular patches
];

const DEPTHWISE_CASES: ConvCase[] = [
  { x: [1, 5, 5, 3], filter: [3, 3, 3, 1], strides: 1, pad: "same" },
  { x: [2, 7, 9, 4], filter: [7, 7, 4, 1], strides: 1, pad: "same" }, // ConvNeXt's 7x7, odd sizes
  { x: [3, 4, 6, 5], filter: [5, 5, 5, 1], strides: 1, pad: "same" }, // image smaller than the kernel
  { x: [2, 8, 6, 3], filter: [3, 5, 3, 1], strides: 1, pad: "same" }, // rectangular kernel
  { x: [2, 14, 14, 16], filter: [7, 7, 16, 1], strides: 1, pad: "same" },
];

/** Configurations the formulations do not cover: tfjs' gradient must run, with its numbers. */
const LEFT_TO_TFJS: { op: "conv2d" | "depthwise"; c: ConvCase }[] = [
  { op: "conv2d", c: { x: [2, 6, 6, 3], filter: [3, 3, 3, 4], strides: 1, pad: "same" } },
  { op: "conv2d", c: { x: [2, 6, 6, 3], filter: [2, 2, 3, 4], strides: 1, pad: "valid" } }, // overlapping patches
  { op: "depthwise", c: { x: [2, 6, 6, 3], filter: [3, 3, 3, 1], strides: 2, pad: "same" } },
  { op: "depthwise", c: { x: [2, 6, 6, 3], filter: [3, 3, 3, 1], strides: 1, pad: "valid" } },
  { op: "depthwise", c: { x: [2, 6, 6, 3], filter: [4, 4, 3, 1], strides: 1, pad: "same" } }, // even kernel
  { op: "depthwise", c: { x: [2, 6, 6, 3], filter: [3, 3, 3, 2], strides: 1, pad: "same" } }, // multiplier 2
  { op: "conv2d", c: { x: [2, 7, 7, 3], filter: [3, 3, 3, 2], strides: 2, pad: "valid" } }, // strided, overlapping
];

async function expectGradientsMatch(op: "conv2d" | "depthwise", cases: ConvCase[], direct: boolean): Promise<void> {
  for (const c of cases) {
    // dy is made from the output shape alone, so every backend sees the same dy.
    await selectBackend("cpu", { quiet: true });
    const { dy } = await gradsThrough(op, c);
    const reference = await tfjsReference(op, c, dy);
    for (const name of BACKENDS) {
      await selectBackend(name, { quiet: true });
      const before = tf.memory().numTensors;
      const spy = name === "wasm" && direct ? spyOnCpuBackend() : undefined;
      let got: { dx: Float32Array; dw: Float32Array };
      try {
        got = await gradsThrough(op, c);
      } finally {
        spy?.restore();
      }
      const label = `${op} ${JSON.stringify(c)} on ${name}`;
      if (spy) expect({ label, cpuCalls: spy.calls() }).toEqual({ label, cpuCalls: 0 });
      expect(tf.memory().numTensors).toBe(before);
      const errors = { label, dx: relativeError(got.dx, reference.dx), dw: relativeError(got.dw, reference.dw) };
      if (errors.dx > 1e-5 || errors.dw > 1e-5) throw new Error(`gradients differ: ${JSON.stringify(errors)}`);
      if (!direct) continue;
      // The formulations called directly (on webgpu, tf.grads keeps tfjs' native backprop kernels).
      const x = tf.tensor4d(values(c.x, 1), c.x as [number, number, number, number]);
      const filter = tf.tensor4d(values(c.filter, 2), c.filter as [number, number, number, number]);
      const outShape = tf.tidy(() =>
        (op === "conv2d" ? tf.conv2d(x, filter, c.strides, c.pad) : tf.depthwiseConv2d(x, filter, 1, "same")).shape
      );
      const dyTensor = tf.tensor4d(dy, outShape);
      const [dx, dw] = await read(
        op === "conv2d"
          ? [patchConvInputGradient(x.shape, dyTensor, filter), patchConvFilterGradient(x, dyTensor, filter.shape)]
          : [depthwiseInputGradient(dyTensor, filter), depthwiseFilterGradient(x, dyTensor, filter.shape)],
      );
      tf.dispose([x, filter, dyTensor]);
      const directErrors = { label, dx: relativeError(dx, reference.dx), dw: relativeError(dw, reference.dw) };
      if (directErrors.dx > 1e-5 || directErrors.dw > 1e-5) {
        throw new Error(`formulation differs: ${JSON.stringify(directErrors)}`);
      }
      expect(tf.memory().numTensors).toBe(before);
    }
  }
  await selectBackend("cpu", { quiet: true });
}

describe("fast convolution gradients", () => {
  it("patchify conv (stride = kernel, valid): both gradients equal tfjs' on cpu, wasm and webgpu", async () => {
    await expectGradientsMatch("conv2d", PATCH_CASES, true);
  });

  it("depthwise conv (stride 1, same, odd kernel): both gradients equal tfjs' on cpu, wasm and webgpu", async () => {
    await expectGradientsMatch("depthwise", DEPTHWISE_CASES, true);
  });

  it("other configurations keep tfjs' gradient, with its numbers", async () => {
    for (const { op, c } of LEFT_TO_TFJS) await expectGradientsMatch(op, [c], false);
  });
});

describe("wasm BatchMatMul on XNNPACK", () => {
  // `broadcast`: one side's batch is shared; tfjs' BatchMatMul gradient does not reduce over it, so forward only.
  const cases: { a: number[]; b: number[]; transposeA: boolean; transposeB: boolean; broadcast?: boolean }[] = [];
  for (const [transposeA, transposeB] of [[false, false], [false, true], [true, false], [true, true]]) {
    // [m, k] x [k, n] stored as the flags say; 2-D, batched (rank 3 and 4, as attention), and broadcast batches.
    const A = (m: number, k: number, batch: number[] = []) => [...batch, ...(transposeA ? [k, m] : [m, k])];
    const B = (k: number, n: number, batch: number[] = []) => [...batch, ...(transposeB ? [n, k] : [k, n])];
    cases.push(
      { a: A(7, 5), b: B(5, 3), transposeA, transposeB },
      { a: A(3, 40), b: B(40, 50), transposeA, transposeB }, // few rows: the transposed product is cheaper
      { a: A(33, 17, [3]), b: B(17, 9, [3]), transposeA, transposeB },
      { a: A(11, 6, [2, 3]), b: B(6, 11, [2, 3]), transposeA, transposeB },
      { a: A(5, 4, [4]), b: B(4, 6), transposeA, transposeB, broadcast: true }, // B shared by the batch
      { a: A(5, 4), b: B(4, 6, [3]), transposeA, transposeB, broadcast: true }, // A shared by the batch
      { a: A(5, 4, [1]), b: B(4, 6, [3]), transposeA, transposeB, broadcast: true },
      { a: A(1, 8, [2]), b: B(8, 1, [2]), transposeA, transposeB }, // vectors
    );
  }

  it("forward and gradients equal the cpu backend's for every transpose and batch layout", async () => {
    const labels: string[] = [];
    const run = async (): Promise<Float32Array[]> => {
      const out: tf.Tensor[] = [];
      labels.length = 0;
      for (const c of cases) {
        const a = tf.tensor(values(c.a, 4), c.a);
        const b = tf.tensor(values(c.b, 5), c.b);
        const product = tf.matMul(a, b, c.transposeA, c.transposeB);
        out.push(product);
        labels.push(`product of ${JSON.stringify(c)}`);
        if (!c.broadcast) {
          const weights = tf.tensor(values(product.shape, 6), product.shape);
          const loss = (x: tf.Tensor, y: tf.Tensor) =>
            tf.sum(tf.mul(tf.matMul(x, y, c.transposeA, c.transposeB), weights));
          out.push(...tf.grads(loss)([a, b]));
          labels.push(`da of ${JSON.stringify(c)}`, `db of ${JSON.stringify(c)}`);
          weights.dispose();
        }
        tf.dispose([a, b]);
      }
      return await read(out);
    };
    await selectBackend("cpu", { quiet: true });
    const reference = await run();
    await selectBackend("wasm", { quiet: true });
    const before = tf.memory().numTensors;
    const got = await run();
    expect(tf.memory().numTensors).toBe(before);
    expect(got.length).toBe(reference.length);
    got.forEach((values, i) => {
      const error = relativeError(values, reference[i]);
      if (error > 1e-5) throw new Error(`${labels[i]} differs from cpu by ${error}`);
    });
    await selectBackend("cpu", { quiet: true });
  });

  it("a one-output weight used forward, then transposed in its gradient, gives the cpu backend's gradient", async () => {
    // The transpose of a [h, 1] weight moves no data and keeps its id, which XNNPACK had cached the forward's
    // packing under: the gradient through it came out wrong before products with a side of 1 went to tfjs.
    const run = async () => {
      const x = tf.tensor(values([64, 32], 7), [64, 32]);
      const w1 = tf.tensor(values([32, 16], 8), [32, 16]);
      const w2 = tf.tensor(values([16, 1], 9), [16, 1]);
      const head = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        tf.sum(tf.mul(tf.matMul(tf.relu(tf.matMul(a, b)), c), tf.tensor(values([64, 1], 3), [64, 1])));
      const out = [tf.matMul(tf.relu(tf.matMul(x, w1)), w2), ...tf.grads(head)([x, w1, w2])];
      tf.dispose([x, w1, w2]);
      return await read(out);
    };
    await selectBackend("cpu", { quiet: true });
    const reference = await run();
    await selectBackend("wasm", { quiet: true });
    const got = await run();
    got.forEach((v, i) => expect(relativeError(v, reference[i])).toBeLessThan(1e-5));
    await selectBackend("cpu", { quiet: true });
  });

  it("Identity and a data-order-preserving Transpose share the input's buffer, and it outlives the input", async () => {
    await selectBackend("wasm", { quiet: true });
    const a = tf.tensor2d([1, 2, 3, 4, 5, 6], [1, 6]);
    const clone = tf.clone(a);
    const turned = tf.transpose(a); // [6, 1]: same data order
    const real = tf.transpose(tf.reshape(a, [2, 3])); // a real transpose still moves data
    a.dispose();
    expect(Array.from(await clone.data())).toEqual([1, 2, 3, 4, 5, 6]);
    expect(turned.shape).toEqual([6, 1]);
    expect(Array.from(await turned.data())).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Array.from(await real.data())).toEqual([1, 4, 2, 5, 3, 6]);
    tf.dispose([clone, turned, real]);
    await selectBackend("cpu", { quiet: true });
  });
});

describe("a full-mode training step on wasm", () => {
  it("runs nothing on the cpu backend and leaks no tensor (tiny preset)", async () => {
    await selectBackend("wasm", { quiet: true });
    const model = createSiameseRuCLIP(tinyPreset(), { seed: 1 });
    const spy = spyOnCpuBackend();
    try {
      // A warm-up step (creates AdamW's moments), then the measured one.
      const result = await benchTrainingStep(model, { mode: "full", pairs: 4, products: 3, steps: 1 });
      expect(result.tensorGrowth).toBe(0);
    } finally {
      spy.restore();
      model.dispose();
    }
    expect(spy.calls()).toBe(0);
    await selectBackend("cpu", { quiet: true });
  });
});
