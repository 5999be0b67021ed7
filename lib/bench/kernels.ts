/**
 * Kernel micro-benchmarks on the active tfjs backend: matmul GFLOP/s at ConvNeXt's MLP shapes and
 * the 7x7 depthwise convolution (ConvNeXt's core) in three formulations, to pick the fastest.
 */
import { tf } from "../tf.ts";

/** One kernel timing. */
export interface KernelTiming {
  name: string;
  milliseconds: number;
  gflops: number;
}

async function best(name: string, flops: number, run: () => tf.Tensor, repeats = 3): Promise<KernelTiming> {
  let fastest = Infinity;
  for (let r = 0; r < repeats; r++) {
    const start = performance.now();
    const out = run();
    await out.data();
    out.dispose();
    fastest = Math.min(fastest, performance.now() - start);
  }
  return { name, milliseconds: fastest, gflops: flops / fastest / 1e6 };
}

/** 7x7 depthwise conv on `images` x H x H x C (ConvNeXt stage 1: 56, 96), three ways; and matmuls. */
export async function benchKernels(
  options: { images?: number; size?: number; channels?: number } = {},
): Promise<KernelTiming[]> {
  const n = options.images ?? 4;
  const h = options.size ?? 56;
  const c = options.channels ?? 96;
  const x = tf.randomNormal([n, h, h, c], 0, 1, "float32", 1) as tf.Tensor4D;
  const w = tf.randomNormal([7, 7, c, 1], 0, 1, "float32", 2) as tf.Tensor4D;
  const taps = tf.tidy(() => tf.unstack(tf.reshape(w, [49, c])));
  const a = tf.randomNormal([n * h * h, c], 0, 1, "float32", 3) as tf.Tensor2D;
  const b = tf.randomNormal([c, 4 * c], 0, 1, "float32", 4) as tf.Tensor2D;
  const bT = tf.randomNormal([4 * c, c], 0, 1, "float32", 5) as tf.Tensor2D;
  const dwFlops = 2 * n * h * h * c * 49;
  const mmFlops = 2 * n * h * h * c * 4 * c;
  try {
    return [
      await best(
        `depthwiseConv2d 7x7 [${n},${h},${h},${c}] (tf.depthwiseConv2d)`,
        dwFlops,
        () => tf.depthwiseConv2d(x, w, 1, "same"),
      ),
      await best("depthwise 7x7 as 7 row convs (1x7 depthwise on shifted rows)", dwFlops, () =>
        tf.tidy(() => {
          const padded = tf.pad(x, [[0, 0], [3, 3], [0, 0], [0, 0]]);
          const rows: tf.Tensor[] = [];
          for (let dy = 0; dy < 7; dy++) {
            const wy = tf.slice(w, [dy, 0, 0, 0], [1, 7, c, 1]) as tf.Tensor4D;
            rows.push(tf.depthwiseConv2d(tf.slice(padded, [0, dy, 0, 0], [n, h, h, c]) as tf.Tensor4D, wy, 1, "same"));
          }
          return tf.addN(rows);
        })),
      await best("depthwise 7x7 as 49 shifted multiply-adds", dwFlops, () =>
        tf.tidy(() => {
          const padded = tf.pad(x, [[0, 0], [3, 3], [3, 3], [0, 0]]);
          let sum: tf.Tensor | null = null;
          for (let dy = 0; dy < 7; dy++) {
            for (let dx = 0; dx < 7; dx++) {
              const term = tf.mul(tf.slice(padded, [0, dy, dx, 0], [n, h, h, c]), taps[dy * 7 + dx]);
              sum = sum ? tf.add(sum, term) : term;
            }
          }
          return sum!;
        })),
      await best(
        `matMul [${n * h * h},${c}]x[${c},${4 * c}] (Linear, weight [in,out])`,
        mmFlops,
        () => tf.matMul(a, b),
      ),
      await best(
        `matMul [${n * h * h},${c}]x[${4 * c},${c}]^T (transposeB)`,
        mmFlops,
        () => tf.matMul(a, bT, false, true),
      ),
    ];
  } finally {
    tf.dispose([x, w, a, b, bT, ...taps]);
  }
}
