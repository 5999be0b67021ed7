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

/** The parts of tfjs-backend-wasm's BackendWasm used here (its types are not exported). */
interface WasmBackendLike {
  wasm: {
    HEAPU8: Uint8Array;
    /** The heap's Memory: set by the threaded build's glue. */
    wasmMemory?: WebAssembly.Memory;
    /** The instance's exports: the single-thread build exports its memory here. */
    asm?: { memory?: WebAssembly.Memory };
  };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
}

let modules: { plain: WebAssembly.Module; shared: WebAssembly.Module } | undefined;

/** Compiles the two binaries next to this module, once (sync: a kernel cannot await). */
function compiled(): { plain: WebAssembly.Module; shared: WebAssembly.Module } {
  modules ??= {
    plain: new WebAssembly.Module(Deno.readFileSync(new URL("./gelu.wasm", import.meta.url))),
    shared: new WebAssembly.Module(Deno.readFileSync(new URL("./gelu_shared.wasm", import.meta.url))),
  };
  return modules;
}

/**
 * Instantiates gelu.wasm on `memory` (gelu_shared.wasm when it is shared). Exported for tests and
 * benchmarks that run the kernels on a memory of their own.
 */
export function instantiateGelu(memory: WebAssembly.Memory): GeluExports {
  const shared = typeof SharedArrayBuffer !== "undefined" && memory.buffer instanceof SharedArrayBuffer;
  const module = shared ? compiled().shared : compiled().plain;
  return new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as GeluExports;
}

const instances = new WeakMap<WebAssembly.Memory, GeluExports>();

/** False forces the copying path (registerWasmGeluKernels' `zeroCopy` option). */
let zeroCopy = true;

/**
 * The kernels instantiated on tfjs' heap Memory, or undefined when the Emscripten module exposes
 * none (or zero copy is off). The Memory is checked against `HEAPU8` on first use only: later,
 * HEAPU8 may lag a growth made by a pthread, while the Memory itself stays right.
 */
function heapKernels(backend: WasmBackendLike): GeluExports | undefined {
  if (!zeroCopy) return undefined;
  const memory = backend.wasm.wasmMemory ?? backend.wasm.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) return undefined;
  let kernels = instances.get(memory);
  if (!kernels) {
    if (memory.buffer !== backend.wasm.HEAPU8.buffer) return undefined;
    kernels = instantiateGelu(memory);
    instances.set(memory, kernels);
  }
  return kernels;
}

/** A private memory for the copying fallback, grown on demand. */
let privateHeap: { memory: WebAssembly.Memory; kernels: GeluExports } | undefined;

/** How the kernels reach the tensors: `"zero-copy"` on tfjs' heap, or `"copy"` through a private memory. */
export type GeluMemoryMode = "zero-copy" | "copy";

/** Which mode the kernels use with the active wasm backend (tfjs' wasm backend must be active). */
export function geluMemoryMode(): GeluMemoryMode {
  return heapKernels(tf.backend() as unknown as WasmBackendLike) ? "zero-copy" : "copy";
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
  const out = backend.makeOutput([...shape], "float32");
  if (n === 0) return out;
  const outOffset = backend.dataIdMap.get(out.dataId)!.memoryOffset;
  const onHeap = heapKernels(backend);
  if (onHeap) {
    body(onHeap, inputs.map((info) => backend.dataIdMap.get(info.dataId)!.memoryOffset), outOffset, n);
    return out;
  }
  // Private layout: each input, then the output, at 64-byte aligned offsets.
  const bytes = Math.ceil((n * 4) / 64) * 64;
  const ptrs = inputs.map((_, i) => i * bytes);
  const at = inputs.length * bytes;
  const needed = at + n * 4;
  privateHeap ??= (() => {
    const memory = new WebAssembly.Memory({ initial: 1 });
    return { memory, kernels: instantiateGelu(memory) };
  })();
  const { memory: own, kernels } = privateHeap;
  if (own.buffer.byteLength < needed) own.grow(Math.ceil((needed - own.buffer.byteLength) / 65536));
  const heap = new Uint8Array(own.buffer);
  inputs.forEach((info, i) => {
    const offset = backend.dataIdMap.get(info.dataId)!.memoryOffset;
    heap.set(backend.wasm.HEAPU8.subarray(offset, offset + n * 4), ptrs[i]);
  });
  body(kernels, ptrs, at, n);
  // Read tfjs' HEAPU8 only now: makeOutput may have grown (and replaced) it.
  backend.wasm.HEAPU8.set(heap.subarray(at, at + n * 4), outOffset);
  return out;
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
  zeroCopy = options.zeroCopy ?? true;
  if (!tf.getKernel("Erf", "wasm")) {
    throw new Error("registerWasmGeluKernels: @tensorflow/tfjs-backend-wasm is not loaded (no wasm kernels)");
  }
  compiled();
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
