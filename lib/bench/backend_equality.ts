/**
 * Backend equality: a small graph that touches every kernel family the model trains with (matmul in
 * every transpose combination, conv2d, the 7x7 depthwise conv, and the gradients of conv, depthwise
 * conv, gather and matmul), run on the active backend and compared with the plain-JS cpu backend.
 * Used by the backend tests and by `deno task gpu-check` on the backend it is about to time.
 */
import { tf } from "../tf.ts";
import { selectBackend } from "../backend.ts";

/** The graph's outputs by name, read back with `await data()` (synchronous reads fail on webgpu). */
export async function smallGraph(): Promise<Record<string, Float32Array>> {
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
    values[name] = (await tensor.data()) as Float32Array;
    tensor.dispose();
  }
  return values;
}

/** max |a - b| / max |a| (0 when both are all zeros); lengths must agree. */
export function maxRelativeDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`cannot compare ${a.length} values with ${b.length}`);
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(a[i]));
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
  }
  return diff / Math.max(scale, 1e-12);
}

/** One output of the graph compared with cpu. */
export interface EqualityCheck {
  name: string;
  maxRelativeDifference: number;
  ok: boolean;
}

/** The graph on `backend` against cpu, with the tolerance used; `tensorGrowth` is the leak check. */
export interface BackendEquality {
  backend: string;
  tolerance: number;
  checks: EqualityCheck[];
  ok: boolean;
  tensorGrowth: number;
}

/**
 * Runs `smallGraph` on cpu, then on `backend`, and compares each output (relative to its largest
 * magnitude). Leaves `backend` active. A tensor left behind by the graph counts as a failure.
 */
export async function checkBackendEquality(
  backend: Parameters<typeof selectBackend>[0],
  tolerance = 1e-5,
): Promise<BackendEquality> {
  await selectBackend("cpu", { quiet: true });
  const reference = await smallGraph();
  const choice = await selectBackend(backend, { quiet: true });
  const before = tf.memory().numTensors;
  const result = await smallGraph();
  const tensorGrowth = tf.memory().numTensors - before;
  const checks = Object.keys(reference).map((name) => {
    const difference = maxRelativeDifference(reference[name], result[name]);
    return { name, maxRelativeDifference: difference, ok: difference <= tolerance };
  });
  return {
    backend: choice.backend,
    tolerance,
    checks,
    ok: tensorGrowth === 0 && checks.every((c) => c.ok),
    tensorGrowth,
  };
}
