/**
 * ConvNeXt's convolution gradients written with fast forward kernels.
 *
 * tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter and no depthwise backprop kernels
 * (lib/kernel_bridge.ts runs the cpu backend's, at 0.003-0.01 GFLOP/s: one real-preset training
 * step of 2 products spent 220 of its 237 s there), and the cpu backend's own are as slow.
 * ConvNeXt needs only two configurations, and each has an exact formulation with kernels that
 * wasm runs on XNNPACK (numbers: wasm, one thread, lib/bench/kernels.ts at [4,56,56,96]):
 *
 * - Non-overlapping "patchify" convs (stem 4x4/4, downsampling 2x2/2; stride = kernel size,
 *   'valid', no dilation): a space-to-depth reshape/transpose turns the conv into one matMul
 *   P·W (P [n·ho·wo, kh·kw·cin], W [kh·kw·cin, cout]), so dW = Pᵀ·dy and dP = dy·Wᵀ, then
 *   depth-to-space. 2x2/2 96->192: filter gradient 14 GFLOP/s (cpu bridge 0.003), input gradient
 *   12 GFLOP/s (wasm's own Conv2DBackpropInput, a naive loop: 0.5). Expressing the whole PatchConv
 *   as s2d + matMul instead measured the same within noise (forward + backward 127 against 123 ms),
 *   so the model keeps tf.conv2d and its XNNPACK forward.
 * - The 7x7 depthwise conv (stride 1, 'same', odd kernel, channel multiplier 1):
 *   dx = depthwiseConv2d(dy, filter rotated 180°, 'same'), a forward conv (0.8 GFLOP/s, the speed
 *   of wasm's forward; cpu bridge 0.1);
 *   dW[i,j,c] = Σ_{n,h,w} xpad[n,h+i,w+j,c]·dy[n,h,w,c] is one depthwise conv of x (batch folded
 *   into the channels: [1, H, W, n·c]) with dy as the filter ([H, W, n·c, 1]), padded by k/2,
 *   giving [1, kh, kw, n·c], then a sum over n: 0.67 GFLOP/s, against 0.19 for 49 shifted
 *   multiply + sum passes, 0.18 for those stacked per row, 0.06 for 49 products reduced by a
 *   matMul, and 0.005 for the cpu bridge. (lib/wasm_kernels/'s SIMD backprop kernels, when
 *   registered, run 10-15x faster still; they are then used instead, see below.)
 *
 * `registerFastGradients` makes these the gradients of Conv2D and DepthwiseConv2dNative, for those
 * configurations only, and only where the backend's backprop kernel would be slow: the cpu
 * backend, or a backend whose backprop kernel is missing or still kernel_bridge's cpu bridge
 * (`isBridgedToCpu`: a backprop kernel registered later, such as lib/wasm_kernels/, is used as
 * is). Everything else (webgpu, which has native backprop kernels; other strides, paddings,
 * dilations, NCHW) keeps tfjs' own gradient.
 */
import { tf } from "./tf.ts";
import { isBridgedToCpu } from "./kernel_bridge.ts";
import { wasmDepthwiseRuns } from "./wasm_kernels/depthwise.ts";

type Pair = [number, number];

function pair(value: number | number[] | undefined, fallback: number): Pair {
  if (value === undefined || value === null) return [fallback, fallback];
  return typeof value === "number" ? [value, value] : [value[0], value[1] ?? value[0]];
}

/** Whether a Conv2D with these attributes and shapes is a non-overlapping patchify conv (see the module comment). */
export function isPatchConv(
  attrs: { strides?: number | number[]; pad?: unknown; dilations?: number | number[]; dataFormat?: string },
  filterShape: number[],
): boolean {
  const [sh, sw] = pair(attrs.strides, 1);
  const [dh, dw] = pair(attrs.dilations, 1);
  const format = attrs.dataFormat ?? "NHWC";
  return attrs.pad === "valid" && dh === 1 && dw === 1 && (format === "NHWC" || format === "channelsLast") &&
    sh === filterShape[0] && sw === filterShape[1];
}

/** Whether a DepthwiseConv2dNative is ConvNeXt's kind: stride 1, 'same', no dilation, odd kernel, multiplier 1, NHWC. */
export function isSameDepthwise(
  attrs: { strides?: number | number[]; pad?: unknown; dilations?: number | number[]; dataFormat?: string },
  filterShape: number[],
): boolean {
  const [sh, sw] = pair(attrs.strides, 1);
  const [dh, dw] = pair(attrs.dilations, 1);
  const format = attrs.dataFormat ?? "NHWC";
  return attrs.pad === "same" && sh === 1 && sw === 1 && dh === 1 && dw === 1 &&
    (format === "NHWC" || format === "channelsLast") && filterShape[0] % 2 === 1 && filterShape[1] % 2 === 1 &&
    filterShape[3] === 1;
}

/** x [n, ho·kh, wo·kw, c] -> patches [n·ho·wo, kh·kw·c] in the filter's (kh, kw, c) order. */
function spaceToDepth(x: tf.Tensor4D, kh: number, kw: number): tf.Tensor2D {
  const [n, h, w, c] = x.shape;
  const ho = h / kh;
  const wo = w / kw;
  // Rank 4 (not 6): tfjs-wasm's Transpose has fast code up to rank 4 only.
  const rows = tf.reshape(x, [n * ho, kh, wo, kw * c]);
  return tf.reshape(tf.transpose(rows, [0, 2, 1, 3]), [n * ho * wo, kh * kw * c]);
}

/** The patchify conv's input and filter gradients as matMuls (valid padding: rows/columns past the last patch get 0). */
export function patchConvInputGradient(xShape: number[], dy: tf.Tensor4D, filter: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, c] = xShape;
    const [kh, kw, , cout] = filter.shape;
    const [, ho, wo] = dy.shape;
    const patches = tf.matMul(
      tf.reshape(dy, [n * ho * wo, cout]),
      tf.reshape(filter, [kh * kw * c, cout]),
      false,
      true,
    );
    const rows = tf.transpose(tf.reshape(patches, [n * ho, wo, kh, kw * c]), [0, 2, 1, 3]);
    const dx = tf.reshape(rows, [n, ho * kh, wo * kw, c]) as tf.Tensor4D;
    if (ho * kh === h && wo * kw === w) return dx;
    return tf.pad(dx, [[0, 0], [0, h - ho * kh], [0, w - wo * kw], [0, 0]]);
  });
}

/** dW [kh, kw, cin, cout] = patchesᵀ·dy of a patchify conv. */
export function patchConvFilterGradient(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: number[]): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, cin, cout] = filterShape;
    const [n, ho, wo] = dy.shape;
    const used = x.shape[1] === ho * kh && x.shape[2] === wo * kw
      ? x
      : tf.slice(x, [0, 0, 0, 0], [n, ho * kh, wo * kw, cin]) as tf.Tensor4D;
    const grad = tf.matMul(spaceToDepth(used, kh, kw), tf.reshape(dy, [n * ho * wo, cout]), true, false);
    return tf.reshape(grad, [kh, kw, cin, cout]);
  });
}

/** dx of a stride-1 'same' depthwise conv with an odd kernel: the forward conv of dy with the filter rotated 180°. */
export function depthwiseInputGradient(dy: tf.Tensor4D, filter: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.depthwiseConv2d(dy, tf.reverse(filter, [0, 1]) as tf.Tensor4D, 1, "same"));
}

/** dW [kh, kw, c, 1] of a stride-1 'same' depthwise conv: one depthwise conv with the batch folded into the channels. */
export function depthwiseFilterGradient(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: number[]): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    const [kh, kw] = filterShape;
    const ph = (kh - 1) / 2;
    const pw = (kw - 1) / 2;
    const folded = n === 1 ? x : tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [1, h, w, n * c]) as tf.Tensor4D;
    const kernel = tf.reshape(n === 1 ? dy : tf.transpose(dy, [1, 2, 0, 3]), [h, w, n * c, 1]) as tf.Tensor4D;
    const out = tf.depthwiseConv2d(folded, kernel, 1, [[0, 0], [ph, ph], [pw, pw], [0, 0]]); // [1, kh, kw, n·c]
    const summed = n === 1 ? out : tf.sum(tf.reshape(out, [kh, kw, n, c]), 2);
    return tf.reshape(summed, [kh, kw, c, 1]);
  });
}

/** Whether the active backend should use a formulation instead of the backprop kernel `kernelName`. */
function formulationWanted(kernelName: string): boolean {
  const backend = tf.getBackend();
  return backend === "cpu" || isBridgedToCpu(kernelName, backend);
}

const tfjsGradients = new Map<string, tf.GradConfig>();

/** tfjs' own gradient of `kernelName` as it was before `registerFastGradients` (for references and benches). */
export function tfjsGradient(kernelName: "Conv2D" | "DepthwiseConv2dNative"): tf.GradConfig {
  return tfjsGradients.get(kernelName) ?? tf.getGradient(kernelName);
}

/**
 * Registers the formulations above as the gradients of Conv2D and DepthwiseConv2dNative for the
 * configurations and backends the module comment names; tfjs' gradient otherwise. Idempotent.
 */
export function registerFastGradients(): void {
  if (tfjsGradients.size > 0) return;
  const conv = tf.getGradient("Conv2D");
  const depthwise = tf.getGradient("DepthwiseConv2dNative");
  tfjsGradients.set("Conv2D", conv);
  tfjsGradients.set("DepthwiseConv2dNative", depthwise);
  tf.registerGradient({
    kernelName: "Conv2D",
    inputsToSave: ["x", "filter"],
    gradFunc: (dy, saved, attrs) => {
      const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
      const a = attrs as Parameters<typeof isPatchConv>[0];
      if (!isPatchConv(a, filter.shape) || !formulationWanted("Conv2DBackpropFilter")) {
        return conv.gradFunc(dy, saved, attrs);
      }
      return {
        x: () => patchConvInputGradient(x.shape, dy as tf.Tensor4D, filter),
        filter: () => patchConvFilterGradient(x, dy as tf.Tensor4D, filter.shape),
      };
    },
  });
  tf.registerGradient({
    kernelName: "DepthwiseConv2dNative",
    inputsToSave: ["x", "filter"],
    gradFunc: (dy, saved, attrs) => {
      const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
      const a = attrs as Parameters<typeof isSameDepthwise>[0];
      if (!isSameDepthwise(a, filter.shape)) return depthwise.gradFunc(dy, saved, attrs);
      const fallback = depthwise.gradFunc(dy, saved, attrs);
      // lib/wasm_kernels/ runs the square odd kernels itself and hands the rest to the cpu bridge.
      const wanted = (kernelName: string): boolean =>
        formulationWanted(kernelName) ||
        (tf.getBackend() === "wasm" && !wasmDepthwiseRuns(kernelName, x.shape, filter.shape, a));
      return {
        x: wanted("DepthwiseConv2dNativeBackpropInput")
          ? () => depthwiseInputGradient(dy as tf.Tensor4D, filter)
          : fallback.x,
        filter: wanted("DepthwiseConv2dNativeBackpropFilter")
          ? () => depthwiseFilterGradient(x, dy as tf.Tensor4D, filter.shape)
          : fallback.filter,
      };
    },
  });
}
