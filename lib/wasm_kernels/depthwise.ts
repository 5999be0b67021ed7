/**
 * Fast depthwise-convolution kernels for tfjs-backend-wasm (ConvNeXt's 7x7 depthwise conv).
 *
 * tfjs-backend-wasm 4.22 runs `DepthwiseConv2dNative` through its old XNNPACK, whose fast
 * micro-kernels stop at 25 taps: a 7x7 (49 taps) falls to a generic path at under 1 GFLOP/s, and
 * it has no backprop kernels at all (kernel_bridge.ts runs them on the cpu backend). This module
 * registers, for wasm, the depthwise kernels computed by depthwise.wasm (AssemblyScript, f32x4
 * along the channels; see depthwise.as and scripts/build_wasm_kernels.ts):
 *   - DepthwiseConv2dNative: the forward conv;
 *   - FusedDepthwiseConv2D (tf.fused.depthwiseConv2d): the same with a per-channel bias added in
 *     the same pass, linear activation only;
 *   - DepthwiseConv2dNativeBackpropInput: the same conv of dy with the filter rotated 180 degrees
 *     (the kernel reads the filter backwards: no flipped copy);
 *   - DepthwiseConv2dNativeBackpropFilter: dW[ky,kx,c] = sum over b,y,x of x[b,y+ky-p,x+kx-p,c] * dy[b,y,x,c].
 * Only for the configuration they implement: float32 NHWC, square odd k, stride 1, dilation 1,
 * 'same' padding (or the equal explicit pad k/2), channel multiplier 1. Anything else goes to the
 * kernel registered before (tfjs' own forward kernels; kernel_bridge's cpu backprops), or, for a
 * backprop with nothing registered before, to the cpu backend's kernel with a copy each way.
 *
 * Zero copy: the module imports tfjs-wasm's own `WebAssembly.Memory` and works on the tensors'
 * heap offsets (`dataIdMap.get(dataId).memoryOffset`); outputs come from `backend.makeOutput`.
 * A module that imports a memory must say whether it is shared, so there are two binaries:
 * depthwise.wasm for the plain (single-thread SIMD) heap and depthwise_shared.wasm for the
 * threaded build's SharedArrayBuffer heap; one instance is made per memory, lazily. Growth of
 * the heap needs nothing: the instance sees the same Memory and holds no views. Only if the
 * Emscripten module exposes no Memory object does it fall back to a private memory and copies.
 * The kernels are single-threaded (tfjs' pthread pool is not reachable from another module).
 */
import { tf } from "../tf.ts";
import { runOnCpuBackend } from "../kernel_bridge.ts";
import { HeapKernelModule, type HeapMemoryMode, type WasmBackendLike } from "./heap_module.ts";

/** The kernels `registerWasmDepthwiseKernels` registers for the wasm backend. */
export const WASM_DEPTHWISE_KERNELS: readonly string[] = [
  "DepthwiseConv2dNative",
  "FusedDepthwiseConv2D",
  "DepthwiseConv2dNativeBackpropInput",
  "DepthwiseConv2dNativeBackpropFilter",
];

/** The exports of depthwise.wasm; every pointer is a byte offset into the imported memory. */
export interface DepthwiseExports {
  /** out = conv(input, filter) (+ bias when bias != 0); flip != 0 reads the filter rotated by 180 degrees. */
  depthwiseForward(
    input: number,
    filter: number,
    bias: number,
    output: number,
    batch: number,
    height: number,
    width: number,
    channels: number,
    k: number,
    flip: number,
  ): void;
  /** dfilter[k,k,C] = the filter gradient of conv(input) given dy (overwrites dfilter). */
  depthwiseFilterGrad(
    input: number,
    dy: number,
    dfilter: number,
    batch: number,
    height: number,
    width: number,
    channels: number,
    k: number,
  ): void;
}

type TensorInfo = tf.TensorInfo;

const heapModule = new HeapKernelModule<DepthwiseExports>(new URL("./depthwise", import.meta.url));

/**
 * Instantiates depthwise.wasm on `memory` (depthwise_shared.wasm when it is shared). Exported for
 * tests and benchmarks that run the kernels on a memory of their own.
 */
export function instantiateDepthwise(memory: WebAssembly.Memory): DepthwiseExports {
  return heapModule.instantiate(memory);
}

/** How the kernels reach the tensors: `"zero-copy"` on tfjs' heap, or `"copy"` through a private memory. */
export type DepthwiseMemoryMode = HeapMemoryMode;

/** Which mode the kernels use with the active wasm backend (tfjs' wasm backend must be active). */
export function depthwiseMemoryMode(): DepthwiseMemoryMode {
  return heapModule.memoryMode(tf.backend() as unknown as WasmBackendLike);
}

/** Counts a call on the fast path and runs it (see HeapKernelModule.run). */
function withKernel(
  backend: WasmBackendLike,
  inputs: TensorInfo[],
  outShape: number[],
  body: (kernels: DepthwiseExports, inputPtrs: number[], outPtr: number) => void,
): TensorInfo {
  wasmDepthwiseCalls.wasm++;
  return heapModule.run(backend, inputs, outShape, body);
}

/** The kernel size k when the configuration is one the wasm kernels implement, else undefined. */
function supportedK(
  xShape: number[],
  filterShape: number[],
  attrs: { strides?: unknown; dilations?: unknown; pad?: unknown; dataFormat?: unknown },
): number | undefined {
  const ones = (v: unknown) => v == null || v === 1 || (Array.isArray(v) && v.every((e) => e === 1));
  if (xShape.length !== 4 || filterShape.length !== 4) return undefined;
  const [k, kw, c, multiplier] = filterShape;
  if (k !== kw || k % 2 !== 1 || c !== xShape[3] || multiplier !== 1) return undefined;
  if (!ones(attrs.strides) || !ones(attrs.dilations)) return undefined;
  if (attrs.dataFormat != null && attrs.dataFormat !== "NHWC") return undefined;
  if (attrs.pad !== "same" && attrs.pad !== (k - 1) / 2) return undefined;
  return k;
}

const allFloat = (...infos: TensorInfo[]): boolean => infos.every((info) => info.dtype === "float32");

/** Runs the cpu backend's `kernelName` on copies of the inputs and copies the outputs back. */
function runOnCpu(kernelName: string, args: Parameters<tf.KernelFunc>[0]): TensorInfo | TensorInfo[] {
  const cpuKernel = tf.getKernel(kernelName, "cpu");
  if (!cpuKernel || !tf.findBackend("cpu")) {
    throw new Error(
      `${kernelName}: this configuration is not one the wasm kernels implement, and no cpu backend runs it`,
    );
  }
  return runOnCpuBackend(cpuKernel, args);
}

/**
 * Calls so far: `wasm` ran on depthwise.wasm, `delegated` went to the previous (or cpu) kernel.
 * Lets a benchmark or test confirm that a model's convolutions take the fast path.
 */
export const wasmDepthwiseCalls: { wasm: number; delegated: number } = { wasm: 0, delegated: 0 };

/** What each kernel delegates to when the configuration is not supported. */
const previous = new Map<string, tf.KernelConfig | undefined>();

function delegate(kernelName: string, args: Parameters<tf.KernelFunc>[0]): TensorInfo | TensorInfo[] {
  wasmDepthwiseCalls.delegated++;
  const before = previous.get(kernelName);
  return before ? before.kernelFunc(args) : runOnCpu(kernelName, args);
}

type Args = Parameters<tf.KernelFunc>[0];

function forwardKernel(args: Args): TensorInfo | TensorInfo[] {
  const { x, filter } = args.inputs as { x: TensorInfo; filter: TensorInfo };
  const attrs = args.attrs as unknown as tf.DepthwiseConv2dNativeAttrs;
  const k = supportedK(x.shape, filter.shape, attrs);
  if (k === undefined || !allFloat(x, filter)) return delegate("DepthwiseConv2dNative", args);
  const [n, h, w, c] = x.shape;
  return withKernel(args.backend as unknown as WasmBackendLike, [x, filter], x.shape, (kernels, [xp, fp], out) => {
    kernels.depthwiseForward(xp, fp, 0, out, n, h, w, c, k, 0);
  });
}

/** tf.fused.depthwiseConv2d: the forward conv with the bias added in the same pass (linear activation only). */
function fusedForwardKernel(args: Args): TensorInfo | TensorInfo[] {
  const { x, filter, bias, preluActivationWeights } = args.inputs as {
    x: TensorInfo;
    filter: TensorInfo;
    bias?: TensorInfo;
    preluActivationWeights?: TensorInfo;
  };
  const attrs = args.attrs as unknown as tf.FusedDepthwiseConv2DAttrs;
  const k = supportedK(x.shape, filter.shape, attrs);
  const c = x.shape[3];
  // A per-channel bias: [C], or [1, ..., 1, C].
  const perChannel = bias != null && bias.shape.at(-1) === c &&
    bias.shape.every((d, i) => d === 1 || i === bias.shape.length - 1);
  const linear = attrs.activation == null || attrs.activation === "linear";
  if (k === undefined || !linear || preluActivationWeights != null || (bias != null && !perChannel)) {
    return delegate("FusedDepthwiseConv2D", args);
  }
  if (!allFloat(x, filter, ...(bias ? [bias] : []))) return delegate("FusedDepthwiseConv2D", args);
  const [n, h, w] = x.shape;
  const inputs = bias ? [x, filter, bias] : [x, filter];
  return withKernel(args.backend as unknown as WasmBackendLike, inputs, x.shape, (kernels, [xp, fp, bp], out) => {
    kernels.depthwiseForward(xp, fp, bp ?? 0, out, n, h, w, c, k, 0);
  });
}

function backpropInputKernel(args: Args): TensorInfo | TensorInfo[] {
  const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
  const attrs = args.attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
  const k = supportedK(dy.shape, filter.shape, attrs);
  const sameShape = attrs.inputShape?.every((d, i) => d === dy.shape[i]) ?? false;
  if (k === undefined || !sameShape || !allFloat(dy, filter)) {
    return delegate("DepthwiseConv2dNativeBackpropInput", args);
  }
  const [n, h, w, c] = dy.shape;
  return withKernel(args.backend as unknown as WasmBackendLike, [dy, filter], dy.shape, (kernels, [dp, fp], out) => {
    kernels.depthwiseForward(dp, fp, 0, out, n, h, w, c, k, 1);
  });
}

function backpropFilterKernel(args: Args): TensorInfo | TensorInfo[] {
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const attrs = args.attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
  const filterShape = [...attrs.filterShape];
  const k = supportedK(x.shape, filterShape, attrs);
  const sameShape = dy.shape.length === 4 && dy.shape.every((d, i) => d === x.shape[i]);
  if (k === undefined || !sameShape || !allFloat(x, dy)) return delegate("DepthwiseConv2dNativeBackpropFilter", args);
  const [n, h, w, c] = x.shape;
  return withKernel(args.backend as unknown as WasmBackendLike, [x, dy], filterShape, (kernels, [xp, dp], out) => {
    kernels.depthwiseFilterGrad(xp, dp, out, n, h, w, c, k);
  });
}

const KERNEL_FUNCS: Record<string, (args: Args) => TensorInfo | TensorInfo[]> = {
  DepthwiseConv2dNative: forwardKernel,
  FusedDepthwiseConv2D: fusedForwardKernel,
  DepthwiseConv2dNativeBackpropInput: backpropInputKernel,
  DepthwiseConv2dNativeBackpropFilter: backpropFilterKernel,
};

/**
 * Registers the wasm depthwise kernels (`WASM_DEPTHWISE_KERNELS`) for the wasm backend, in place
 * of whatever is registered (kept, to run the configurations these kernels do not implement).
 * Call it after `@tensorflow/tfjs-backend-wasm` is imported, before or after the backend starts;
 * calling it again is harmless. Loads and compiles the two .wasm files (7 KB each) now, so
 * a missing file fails here rather than inside a model. Returns the kernel names registered.
 * `zeroCopy: false` makes the kernels copy through a private memory instead of working on tfjs'
 * heap (slower; it exists to test that fallback).
 */
export function registerWasmDepthwiseKernels(options: { zeroCopy?: boolean } = {}): string[] {
  heapModule.zeroCopy = options.zeroCopy ?? true;
  if (!tf.getKernel("DepthwiseConv2dNative", "wasm")) {
    throw new Error("registerWasmDepthwiseKernels: @tensorflow/tfjs-backend-wasm is not loaded (no wasm kernels)");
  }
  heapModule.compile();
  for (const kernelName of WASM_DEPTHWISE_KERNELS) {
    const kernelFunc = KERNEL_FUNCS[kernelName];
    const current = tf.getKernel(kernelName, "wasm");
    if (current?.kernelFunc === kernelFunc) continue;
    previous.set(kernelName, current);
    if (current) tf.unregisterKernel(kernelName, "wasm");
    tf.registerKernel({
      kernelName,
      backendName: "wasm",
      kernelFunc: kernelFunc as unknown as tf.KernelFunc,
      // tfjs' own forward kernel binds its wasm function in setupFunc when the backend starts: keep
      // it, so that delegating to it works even when this runs before the backend has started.
      setupFunc: current?.setupFunc,
      disposeFunc: current?.disposeFunc,
    });
  }
  return [...WASM_DEPTHWISE_KERNELS];
}

/**
 * Whether wasm's registered `kernelName` is this module's and implements this configuration (so a
 * gradient that calls it runs here, not on the kernel it hands other configurations to).
 */
export function wasmDepthwiseRuns(
  kernelName: string,
  xShape: number[],
  filterShape: number[],
  attrs: { strides?: unknown; dilations?: unknown; pad?: unknown; dataFormat?: unknown },
): boolean {
  const ours = KERNEL_FUNCS[kernelName];
  return ours !== undefined && tf.getKernel(kernelName, "wasm")?.kernelFunc === ours &&
    supportedK(xShape, filterShape, attrs) !== undefined;
}

/** Puts back the kernels registered before `registerWasmDepthwiseKernels` (for benchmarks and tests). */
export function unregisterWasmDepthwiseKernels(): void {
  for (const kernelName of WASM_DEPTHWISE_KERNELS) {
    if (!previous.has(kernelName)) continue;
    if (tf.getKernel(kernelName, "wasm")) tf.unregisterKernel(kernelName, "wasm");
    const before = previous.get(kernelName);
    if (before) tf.registerKernel(before);
    previous.delete(kernelName);
  }
}
