import { describe, it } from "node:test";
import { expect } from "expect";
import { tf } from "../lib/tf.ts";
import { BackendUnavailableError, parseBackendName, selectBackend } from "../lib/backend.ts";

/** A small graph: matmul, conv2d, depthwise conv, and gradients through conv, depthwise conv and gather. */
async function smallGraph(): Promise<Record<string, Float32Array>> {
  const tensors = tf.tidy(() => {
    const a = tf.tensor2d(Array.from({ length: 12 }, (_, i) => Math.sin(i + 1)), [3, 4]);
    const b = tf.tensor2d(Array.from({ length: 20 }, (_, i) => Math.cos(i * 0.7)), [4, 5]);
    const image = tf.tensor4d(Array.from({ length: 2 * 6 * 6 * 3 }, (_, i) => Math.sin(i * 0.37)), [2, 6, 6, 3]);
    const filter = tf.tensor4d(Array.from({ length: 3 * 3 * 3 * 4 }, (_, i) => Math.cos(i * 0.11)), [3, 3, 3, 4]);
    const dwFilter = tf.tensor4d(Array.from({ length: 7 * 7 * 3 }, (_, i) => Math.sin(i * 0.05)), [7, 7, 3, 1]);
    const f = (w: tf.Tensor) => tf.mean(tf.square(tf.conv2d(image, w as tf.Tensor4D, 1, "same")));
    const fDepthwise = (x: tf.Tensor, w: tf.Tensor) =>
      tf.mean(tf.square(tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, "same")));
    const embedding = tf.tensor2d(Array.from({ length: 10 * 3 }, (_, i) => Math.sin(i)), [10, 3]);
    const fGather = (table: tf.Tensor) => tf.sum(tf.square(tf.gather(table, tf.tensor1d([1, 4, 4, 9], "int32"))));
    const [dwInputGrad, dwFilterGrad] = tf.grads(fDepthwise)([image, dwFilter]);
    // matMul gradients for every transpose combination, batched (rank 3) as attention uses them.
    const p = tf.tensor3d(Array.from({ length: 2 * 3 * 4 }, (_, i) => Math.sin(i * 0.3)), [2, 3, 4]);
    const q = tf.tensor3d(Array.from({ length: 2 * 4 * 3 }, (_, i) => Math.cos(i * 0.2)), [2, 4, 3]);
    const matMulGrads: Record<string, tf.Tensor> = {};
    for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]]) {
      const x = ta ? tf.transpose(p, [0, 2, 1]) : p;
      const y = tb ? tf.transpose(q, [0, 2, 1]) : q;
      const [gx, gy] = tf.grads((u: tf.Tensor, v: tf.Tensor) => tf.sum(tf.square(tf.matMul(u, v, ta, tb))))([x, y]);
      matMulGrads[`matMulGrad_${ta}_${tb}_a`] = gx;
      matMulGrads[`matMulGrad_${ta}_${tb}_b`] = gy;
    }
    return {
      matmul: tf.matMul(a, b),
      conv: tf.conv2d(image, filter, [2, 2], "same"),
      depthwise: tf.depthwiseConv2d(image, dwFilter, 1, "same"),
      grad: tf.grad(f)(filter),
      depthwiseInputGrad: dwInputGrad,
      depthwiseFilterGrad: dwFilterGrad,
      gatherGrad: tf.grad(fGather)(embedding),
      ...matMulGrads,
    };
  });
  const values: Record<string, Float32Array> = {};
  for (const [name, tensor] of Object.entries(tensors)) {
    values[name] = (await tensor.data()) as Float32Array; // dataSync is unavailable on webgpu in Deno
    tensor.dispose();
  }
  return values;
}

function maxRelativeDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(a[i]));
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
  }
  return diff / Math.max(scale, 1e-12);
}

describe("backend selection", () => {
  it("parses TFJS_BACKEND values and rejects unknown ones", () => {
    expect(parseBackendName("")).toBe("auto");
    expect(parseBackendName("WASM")).toBe("wasm");
    expect(() => parseBackendName("cuda")).toThrow(/not a known backend/);
  });

  it("an explicitly requested backend that is missing is an error, not a fallback", async () => {
    await expect(selectBackend("tensorflow", { quiet: true })).rejects.toThrow(BackendUnavailableError);
  });

  it("automatic selection picks an available backend and says why", async () => {
    const choice = await selectBackend("auto", { quiet: true });
    expect(["tensorflow", "webgpu", "wasm", "cpu"]).toContain(choice.backend);
    expect(choice.reason.length).toBeGreaterThan(0);
    expect(tf.getBackend()).toBe(choice.backend);
  });

  it("the same small graph gives the same numbers on cpu, wasm and webgpu (software adapter)", async () => {
    await selectBackend("cpu", { quiet: true });
    const reference = await smallGraph();
    const backends: ("wasm" | "webgpu-software")[] = ["wasm", "webgpu-software"];
    for (const name of backends) {
      const choice = await selectBackend(name, { quiet: true });
      const before = tf.memory().numTensors;
      const result = await smallGraph();
      expect(tf.memory().numTensors).toBe(before);
      for (const key of Object.keys(reference) as (keyof typeof reference)[]) {
        const difference = maxRelativeDifference(reference[key], result[key]);
        if (difference > 1e-5) throw new Error(`${choice.backend}: ${key} differs from cpu by ${difference}`);
      }
    }
    await selectBackend("cpu", { quiet: true });
  });

  it("the gather gradient (UnsortedSegmentSum) equals its closed form on cpu and wasm", async () => {
    // d/dT sum(gather(T, ids)^2) = 2 * T[r] * (times r occurs in ids); rows never gathered get 0.
    const table = Array.from({ length: 6 * 2 }, (_, i) => (i % 5) - 2.5);
    const ids = [4, 1, 4, 4, 0];
    const expected = table.map((v, i) => 2 * v * ids.filter((id) => id === Math.floor(i / 2)).length + 0); // +0 turns -0 into 0
    for (const name of ["cpu", "wasm"] as const) {
      await selectBackend(name, { quiet: true });
      const grad = tf.tidy(() =>
        tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.gather(t, tf.tensor1d(ids, "int32")))))(
          tf.tensor2d(table, [6, 2]),
        )
      );
      expect(Array.from(await grad.data())).toEqual(expected);
      grad.dispose();
    }
    await selectBackend("cpu", { quiet: true });
  });
});
