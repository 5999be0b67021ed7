/**
 * Kernel micro-benchmarks on the active tfjs backend (the bench runs them on wasm), GFLOP/s rows that
 * justify the formulations the library picked:
 *   - the 7x7 depthwise conv (ConvNeXt's core) forward in three formulations;
 *   - its input and filter gradients: tfjs' gradient (on wasm: kernel_bridge's cpu bridge) against
 *     the formulations of lib/fast_gradients.ts and the alternatives measured before choosing;
 *   - the 2x2/2 downsampling conv (and the 4x4/4 stem's filter gradient): tfjs' gradient against
 *     space-to-depth + matMul, and conv2d + that gradient against the whole conv as s2d + matMul;
 *   - matMul at ConvNeXt's MLP shapes untransposed, with a transposed operand, and batched as in
 *     attention, through the BatchMatMul wrapper of kernel_bridge.ts and (on wasm) tfjs' own kernel.
 * The cpu-bridge rows use a smaller shape (named in the row): that path runs at about 0.01 GFLOP/s.
 * FLOPs of a gradient are counted as those of its forward conv.
 */
import { tf } from "../tf.ts";
import { isBridgedToCpu, registerFastMatMul, unregisterFastMatMul } from "../kernel_bridge.ts";
import {
  depthwiseFilterGradient,
  depthwiseInputGradient,
  patchConvFilterGradient,
  patchConvInputGradient,
  registerFastGradients,
  tfjsGradient,
} from "../fast_gradients.ts";

/** One kernel timing. */
export interface KernelTiming {
  name: string;
  milliseconds: number;
  gflops: number;
}

async function best(
  name: string,
  flops: number,
  run: () => tf.Tensor | tf.Tensor[],
  repeats = 3,
): Promise<KernelTiming> {
  let fastest = Infinity;
  for (let r = 0; r < repeats; r++) {
    const start = performance.now();
    const out = run();
    const outputs = Array.isArray(out) ? out : [out];
    for (const t of outputs) await t.data();
    tf.dispose(outputs);
    fastest = Math.min(fastest, performance.now() - start);
  }
  return { name, milliseconds: fastest, gflops: flops / fastest / 1e6 };
}

/** tfjs' own gradient function of `kernel` (before registerFastGradients), called on the active backend. */
function tfjsGrad(
  kernel: "Conv2D" | "DepthwiseConv2dNative",
  dy: tf.Tensor,
  x: tf.Tensor,
  filter: tf.Tensor,
  attrs: tf.NamedAttrMap,
  which: "x" | "filter",
): tf.Tensor {
  return tfjsGradient(kernel).gradFunc(dy, [x, filter], attrs)[which]();
}

/**
 * 7x7 depthwise conv and its gradients on `images` x H x H x C (ConvNeXt stage 1: 56, 96), the
 * 2x2/2 downsampling conv from there to 2C, the stem's 4x4/4 conv, and matmuls.
 */
export async function benchKernels(
  options: { images?: number; size?: number; channels?: number } = {},
): Promise<KernelTiming[]> {
  registerFastGradients();
  const n = options.images ?? 4;
  const h = options.size ?? 56;
  const c = options.channels ?? 96;
  const onWasm = tf.getBackend() === "wasm";
  const x = tf.randomNormal([n, h, h, c], 0, 1, "float32", 1) as tf.Tensor4D;
  const w = tf.randomNormal([7, 7, c, 1], 0, 1, "float32", 2) as tf.Tensor4D;
  const dy = tf.randomNormal([n, h, h, c], 0, 1, "float32", 6) as tf.Tensor4D;
  const taps = tf.tidy(() => tf.unstack(tf.reshape(w, [49, c])));
  // The cpu bridge's shapes: one image (depthwise), a quarter of the side (patch conv).
  const x1 = tf.slice(x, [0, 0, 0, 0], [1, h, h, c]) as tf.Tensor4D;
  const dy1 = tf.slice(dy, [0, 0, 0, 0], [1, h, h, c]) as tf.Tensor4D;
  const hq = Math.max(2, 2 * Math.floor(h / 8));
  const xq = tf.slice(x, [0, 0, 0, 0], [1, hq, hq, c]) as tf.Tensor4D;
  // Downsampling conv 2x2/2, c -> 2c; stem 4x4/4, 3 -> c on [n, 4h, 4h, 3].
  const wd = tf.randomNormal([2, 2, c, 2 * c], 0, 0.1, "float32", 7) as tf.Tensor4D;
  const dyd = tf.randomNormal([n, h / 2, h / 2, 2 * c], 0, 1, "float32", 8) as tf.Tensor4D;
  const dydq = tf.slice(dyd, [0, 0, 0, 0], [1, hq / 2, hq / 2, 2 * c]) as tf.Tensor4D;
  const image = tf.randomNormal([n, 4 * h, 4 * h, 3], 0, 1, "float32", 9) as tf.Tensor4D;
  const ws = tf.randomNormal([4, 4, 3, c], 0, 0.1, "float32", 10) as tf.Tensor4D;
  const dys = tf.randomNormal([n, h, h, c], 0, 1, "float32", 11) as tf.Tensor4D;
  // Matmuls: fc1 of stage 1 ([n·h·h, c] x [c, 4c]) and its transposed forms; attention of rubert-tiny.
  const a = tf.randomNormal([n * h * h, c], 0, 1, "float32", 3) as tf.Tensor2D;
  const aT = tf.randomNormal([c, n * h * h], 0, 1, "float32", 12) as tf.Tensor2D;
  const b = tf.randomNormal([c, 4 * c], 0, 1, "float32", 4) as tf.Tensor2D;
  const bT = tf.randomNormal([4 * c, c], 0, 1, "float32", 5) as tf.Tensor2D;
  const q = tf.randomNormal([2, 12, 77, 26], 0, 1, "float32", 13) as tf.Tensor4D;
  const k = tf.randomNormal([2, 12, 77, 26], 0, 1, "float32", 14) as tf.Tensor4D;
  const dwFlops = (images: number) => 2 * images * h * h * c * 49;
  const patchFlops = (images: number, side: number) => 2 * images * (side / 2) * (side / 2) * 4 * c * 2 * c;
  const stemFlops = 2 * n * h * h * 16 * 3 * c;
  const mmFlops = 2 * n * h * h * c * 4 * c;
  const attentionFlops = 2 * 24 * 77 * 77 * 26;
  const same: tf.NamedAttrMap = { strides: 1, pad: "same", dilations: 1 };
  const patch: tf.NamedAttrMap = { strides: 2, pad: "valid", dataFormat: "NHWC", dilations: 1 };
  const s2dConv = (input: tf.Tensor4D, filter: tf.Tensor4D): tf.Tensor4D => {
    const [bn, bh, bw, bc] = input.shape;
    const patches = tf.reshape(tf.transpose(tf.reshape(input, [bn * bh / 2, 2, bw / 2, 2 * bc]), [0, 2, 1, 3]), [
      -1,
      4 * bc,
    ]);
    return tf.reshape(tf.matMul(patches, tf.reshape(filter, [4 * bc, -1])), [bn, bh / 2, bw / 2, filter.shape[3]]);
  };
  const fwdBwd = (conv: (i: tf.Tensor4D, f: tf.Tensor4D) => tf.Tensor4D) => () =>
    tf.grads((i: tf.Tensor, f: tf.Tensor) => tf.sum(tf.mul(conv(i as tf.Tensor4D, f as tf.Tensor4D), dyd)))([x, wd]);
  /** Runs `run` with tfjs' own wasm BatchMatMul (no-op off wasm). */
  const withTfjsMatMul = (run: () => tf.Tensor) => () => {
    if (!onWasm) return run();
    unregisterFastMatMul();
    try {
      return run();
    } finally {
      registerFastMatMul("wasm");
    }
  };
  const bridged = onWasm ? " (cpu bridge)" : "";
  /** Where tfjs' gradient of the depthwise conv runs on this backend: the cpu bridge or lib/wasm_kernels/. */
  const depthwiseBackprop = (kernelName: string): string =>
    !onWasm ? "" : isBridgedToCpu(kernelName, "wasm") ? " (cpu bridge)" : " (lib/wasm_kernels/, used)";
  /** The formulations run where the backprop kernel is the cpu bridge (fast_gradients.ts). */
  const formulationUse = (kernelName: string): string =>
    !onWasm || isBridgedToCpu(kernelName, "wasm") ? " (used)" : " (used only where the backprop kernel is a bridge)";
  try {
    return [
      await best(
        `depthwiseConv2d 7x7 [${n},${h},${h},${c}] (tf.depthwiseConv2d)`,
        dwFlops(n),
        () => tf.depthwiseConv2d(x, w, 1, "same"),
      ),
      await best("depthwise 7x7 as 7 row convs (1x7 depthwise on shifted rows)", dwFlops(n), () =>
        tf.tidy(() => {
          const padded = tf.pad(x, [[0, 0], [3, 3], [0, 0], [0, 0]]);
          const rows: tf.Tensor[] = [];
          for (let r = 0; r < 7; r++) {
            const wy = tf.slice(w, [r, 0, 0, 0], [1, 7, c, 1]) as tf.Tensor4D;
            rows.push(tf.depthwiseConv2d(tf.slice(padded, [0, r, 0, 0], [n, h, h, c]) as tf.Tensor4D, wy, 1, "same"));
          }
          return tf.addN(rows);
        })),
      await best("depthwise 7x7 as 49 shifted multiply-adds", dwFlops(n), () =>
        tf.tidy(() => {
          const padded = tf.pad(x, [[0, 0], [3, 3], [3, 3], [0, 0]]);
          let sum: tf.Tensor | null = null;
          for (let i = 0; i < 7; i++) {
            for (let j = 0; j < 7; j++) {
              const term = tf.mul(tf.slice(padded, [0, i, j, 0], [n, h, h, c]), taps[i * 7 + j]);
              sum = sum ? tf.add(sum, term) : term;
            }
          }
          return sum!;
        })),
      // ---- depthwise gradients
      await best(
        `depthwise 7x7 input grad [1,${h},${h},${c}]: tfjs' gradient${
          depthwiseBackprop("DepthwiseConv2dNativeBackpropInput")
        }`,
        dwFlops(1),
        () => tfjsGrad("DepthwiseConv2dNative", dy1, x1, w, same, "x"),
        1,
      ),
      await best(
        `depthwise 7x7 input grad [${n},${h},${h},${c}]: depthwise conv of dy, filter rotated${
          formulationUse("DepthwiseConv2dNativeBackpropInput")
        }`,
        dwFlops(n),
        () => depthwiseInputGradient(dy, w),
      ),
      await best(
        `depthwise 7x7 filter grad [1,${h},${h},${c}]: tfjs' gradient${
          depthwiseBackprop("DepthwiseConv2dNativeBackpropFilter")
        }`,
        dwFlops(1),
        () => tfjsGrad("DepthwiseConv2dNative", dy1, x1, w, same, "filter"),
        1,
      ),
      await best(
        `depthwise 7x7 filter grad [${n},${h},${h},${c}]: 49 shifted multiply + sum`,
        dwFlops(n),
        () =>
          tf.tidy(() => {
            const padded = tf.pad(x, [[0, 0], [3, 3], [3, 3], [0, 0]]);
            const grads: tf.Tensor[] = [];
            for (let i = 0; i < 7; i++) {
              for (let j = 0; j < 7; j++) {
                grads.push(tf.sum(tf.mul(tf.slice(padded, [0, i, j, 0], [n, h, h, c]), dy), [0, 1, 2]));
              }
            }
            return tf.reshape(tf.stack(grads), [7, 7, c, 1]);
          }),
      ),
      await best(
        `depthwise 7x7 filter grad: per row, 7 shifts stacked, one multiply + sum`,
        dwFlops(n),
        () =>
          tf.tidy(() => {
            const padded = tf.pad(x, [[0, 0], [3, 3], [3, 3], [0, 0]]);
            const rows: tf.Tensor[] = [];
            for (let i = 0; i < 7; i++) {
              const shifts: tf.Tensor[] = [];
              for (let j = 0; j < 7; j++) shifts.push(tf.slice(padded, [0, i, j, 0], [n, h, h, c]));
              rows.push(tf.sum(tf.reshape(tf.mul(tf.stack(shifts), dy), [7, n * h * h, c]), 1));
            }
            return tf.reshape(tf.stack(rows), [7, 7, c, 1]);
          }),
      ),
      await best(
        `depthwise 7x7 filter grad: one depthwise conv, batch folded into channels, dy as filter${
          formulationUse("DepthwiseConv2dNativeBackpropFilter")
        }`,
        dwFlops(n),
        () => depthwiseFilterGradient(x, dy, w.shape),
      ),
      // ---- patchify convs
      await best(
        `patch conv 2x2/2 [${n},${h},${h},${c}]->${2 * c} forward (tf.conv2d)`,
        patchFlops(n, h),
        () => tf.conv2d(x, wd, 2, "valid"),
      ),
      await best(
        `patch conv 2x2/2 input grad: tfjs' gradient${onWasm ? " (wasm's Conv2DBackpropInput, a naive loop)" : ""}`,
        patchFlops(n, h),
        () => tfjsGrad("Conv2D", dyd, x, wd, patch, "x"),
        1,
      ),
      await best(
        `patch conv 2x2/2 input grad: dy·Wᵀ matMul + depth-to-space (used)`,
        patchFlops(n, h),
        () => patchConvInputGradient(x.shape, dyd, wd),
      ),
      await best(
        `patch conv 2x2/2 filter grad [1,${hq},${hq},${c}]: tfjs' gradient${bridged}`,
        patchFlops(1, hq),
        () => tfjsGrad("Conv2D", dydq, xq, wd, patch, "filter"),
        1,
      ),
      await best(
        `patch conv 2x2/2 filter grad: space-to-depth + Pᵀ·dy matMul (used)`,
        patchFlops(n, h),
        () => patchConvFilterGradient(x, dyd, wd.shape),
      ),
      await best(
        `patch conv 2x2/2 forward+backward: tf.conv2d + the gradients above (used)`,
        3 * patchFlops(n, h),
        fwdBwd((i, f) => tf.conv2d(i, f, 2, "valid")),
      ),
      await best(
        `patch conv 2x2/2 forward+backward: whole conv as space-to-depth + matMul (autograd)`,
        3 * patchFlops(n, h),
        fwdBwd(s2dConv),
      ),
      await best(
        `stem conv 4x4/4 [${n},${4 * h},${4 * h},3]->${c} filter grad: space-to-depth + matMul (used)`,
        stemFlops,
        () => patchConvFilterGradient(image, dys, ws.shape),
      ),
      // ---- matmuls
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
      await best(
        `matMul transposeB with tfjs' own wasm kernel`,
        mmFlops,
        withTfjsMatMul(() => tf.matMul(a, bT, false, true)),
        1,
      ),
      await best(
        `matMul [${c},${n * h * h}]^Tx[${c},${4 * c}] (transposeA, as a Linear's weight gradient)`,
        mmFlops,
        () => tf.matMul(aT, b, true, false),
      ),
      await best(
        `matMul transposeA with tfjs' own wasm kernel`,
        mmFlops,
        withTfjsMatMul(() => tf.matMul(aT, b, true, false)),
        1,
      ),
      await best(
        `matMul [2,12,77,26]x[2,12,77,26]^T (attention q·kᵀ, batched)`,
        attentionFlops,
        () => tf.matMul(q, k, false, true),
      ),
      await best(
        `attention q·kᵀ with tfjs' own wasm kernel`,
        attentionFlops,
        withTfjsMatMul(() => tf.matMul(q, k, false, true)),
      ),
    ];
  } finally {
    tf.dispose([x, w, dy, x1, dy1, xq, wd, dyd, dydq, image, ws, dys, a, aT, b, bT, q, k, ...taps]);
  }
}
