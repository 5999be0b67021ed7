/**
 * Fused exact-GELU kernels for tfjs-backend-wasm.
 *
 * GELU as tfjs ops, 0.5 * x * (1 + erf(x / sqrt 2)), is four elementwise passes with three
 * temporaries, one of them tfjs-wasm's scalar, single-threaded Erf (793 ms of a 4252 ms
 * real-preset embedding on [8,56,56,384] tensors); its gradient is several more. This module
 * registers two new kernels for the wasm backend, computed in one pass each by gelu.wasm
 * (AssemblyScript, f32x4; see gelu.as for the erf and exp approximations and their errors):
 *   - "Gelu":     inputs { x }     -> gelu(x) = x * Phi(x)
 *   - "GeluGrad": inputs { x, dy } -> dx = dy * (Phi(x) + x * phi(x))
 * with Phi, phi the standard normal CDF and density. Callers use them through
 * `tf.engine().runKernel("Gelu", { x }, {})` inside a `tf.customGrad`, and only where
 * `hasWasmGelu()` is true: no other backend has them. Both take float32 tensors of any shape
 * (dy of x's shape) and return a float32 tensor of that shape.
 *
 * Memory: the same design as depthwise.ts. The module imports tfjs-wasm's own `WebAssembly.Memory`
 * and works on the tensors' heap offsets (`dataIdMap.get(dataId).memoryOffset`); outputs come from
 * `backend.makeOutput`. A module importing a memory must say whether it is shared, so there are
 * two binaries, gelu.wasm (plain heap: the single-thread SIMD build) and gelu_shared.wasm (the
 * threaded build's SharedArrayBuffer heap); one instance per Memory, made lazily, holding no views
 * (heap growth needs nothing). Only when the Emscripten module exposes no Memory does it copy
 * through a private memory. The kernels are single-threaded (tfjs' pthread pool is not reachable).
 */
import { tf } from "../tf.ts";
import { HeapKernelModule, type HeapMemoryMode, type WasmBackendLike } from "./heap_module.ts";

/** The kernels `registerWasmGeluKernels` registers for the wasm backend. */
export const WASM_GELU_KERNELS: readonly string[] = ["Gelu", "GeluGrad"];

/** The exports of gelu.wasm; every pointer is a byte offset into the imported memory, n an element count. */
export interface GeluExports {
  /** out[i] = gelu(x[i]) = x * Phi(x). */
  geluForward(x: number, out: number, n: number): void;
  /** dx[i] = dy[i] * (Phi(x[i]) + x[i] * phi(x[i])). */
  geluBackward(x: number, dy: number, dx: number, n: number): void;
  /** out[i] = erf(x[i]), the approximation the kernels use (exported for its accuracy tests). */
  erfForward(x: number, out: number, n: number): void;
  /** out[i] = exp(x[i]) for x <= 88, the approximation the backward uses (for tests). */
  expForward(x: number, out: number, n: number): void;
}

type TensorInfo = tf.TensorInfo;

const heapModule = new HeapKernelModule<GeluExports>(new URL("./gelu", import.meta.url));

/**
 * Instantiates gelu.wasm on `memory` (gelu_shared.wasm when it is shared). Exported for tests and
 * benchmarks that run the kernels on a memory of their own.
 */
export function instantiateGelu(memory: WebAssembly.Memory): GeluExports {
  return heapModule.instantiate(memory);
}

/** How the kernels reach the tensors: `"zero-copy"` on tfjs' heap, or `"copy"` through a private memory. */
export type GeluMemoryMode = HeapMemoryMode;

/** Which mode the kernels use with the active wasm backend (tfjs' wasm backend must be active). */
export function geluMemoryMode(): GeluMemoryMode {
  return heapModule.memoryMode(tf.backend() as unknown as WasmBackendLike);
}

/** Calls so far that ran on gelu.wasm (lets a benchmark or test confirm the fused path is taken). */
export const wasmGeluCalls: { forward: number; backward: number } = { forward: 0, backward: 0 };

/**
 * Makes a float32 output of the inputs' shape and runs `body` with the kernels, the inputs' byte
 * offsets, the output's and the element count. Zero copy: the tensors' own heap offsets. Copy:
 * the inputs copied into a private memory, the result copied into the output tensor.
 */
function withKernel(
  kernelName: string,
  backend: WasmBackendLike,
  inputs: TensorInfo[],
  body: (kernels: GeluExports, inputPtrs: number[], outPtr: number, n: number) => void,
): TensorInfo {
  const shape = inputs[0].shape;
  for (const info of inputs) {
    if (info.dtype !== "float32") throw new Error(`${kernelName}: float32 inputs only (got ${info.dtype})`);
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`${kernelName}: inputs of different shapes [${shape}] and [${info.shape}]`);
    }
  }
  const n = shape.reduce((a, b) => a * b, 1);
  if (n === 0) return backend.makeOutput([...shape], "float32");
  return heapModule.run(backend, inputs, [...shape], (kernels, ptrs, out) => body(kernels, ptrs, out, n));
}

type Args = Parameters<tf.KernelFunc>[0];

function geluKernel(args: Args): TensorInfo {
  const { x } = args.inputs as { x: TensorInfo };
  wasmGeluCalls.forward++;
  return withKernel("Gelu", args.backend as unknown as WasmBackendLike, [x], (kernels, [xp], out, n) => {
    kernels.geluForward(xp, out, n);
  });
}

function geluGradKernel(args: Args): TensorInfo {
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  wasmGeluCalls.backward++;
  return withKernel("GeluGrad", args.backend as unknown as WasmBackendLike, [x, dy], (kernels, [xp, dp], out, n) => {
    kernels.geluBackward(xp, dp, out, n);
  });
}

const KERNEL_FUNCS: Record<string, (args: Args) => TensorInfo> = { Gelu: geluKernel, GeluGrad: geluGradKernel };

/**
 * Registers "Gelu" and "GeluGrad" (`WASM_GELU_KERNELS`) for the wasm backend. Call it after
 * `@tensorflow/tfjs-backend-wasm` is imported, before or after the backend starts; calling it again
 * is harmless. Loads and compiles the two .wasm files now, so a missing file fails here rather than
 * inside a model. Returns the kernel names registered. `zeroCopy: false` makes the kernels copy
 * through a private memory instead of working on tfjs' heap (slower; it exists to test that fallback).
 */
export function registerWasmGeluKernels(options: { zeroCopy?: boolean } = {}): string[] {
  heapModule.zeroCopy = options.zeroCopy ?? true;
  if (!tf.getKernel("Erf", "wasm")) {
    throw new Error("registerWasmGeluKernels: @tensorflow/tfjs-backend-wasm is not loaded (no wasm kernels)");
  }
  heapModule.compile();
  for (const kernelName of WASM_GELU_KERNELS) {
    const kernelFunc = KERNEL_FUNCS[kernelName];
    const current = tf.getKernel(kernelName, "wasm");
    if (current?.kernelFunc === kernelFunc) continue;
    if (current) tf.unregisterKernel(kernelName, "wasm");
    tf.registerKernel({ kernelName, backendName: "wasm", kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  }
  return [...WASM_GELU_KERNELS];
}

/** True when "Gelu" and "GeluGrad" are registered for the wasm backend by this module. */
export function hasWasmGelu(): boolean {
  return WASM_GELU_KERNELS.every((name) => tf.getKernel(name, "wasm")?.kernelFunc === KERNEL_FUNCS[name]);
}

/** Removes "Gelu" and "GeluGrad" from the wasm backend (for benchmarks and tests of the composite path). */
export function unregisterWasmGeluKernels(): void {
  for (const kernelName of WASM_GELU_KERNELS) {
    if (tf.getKernel(kernelName, "wasm")) tf.unregisterKernel(kernelName, "wasm");
  }
}
