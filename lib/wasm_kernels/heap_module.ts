/**
 * How our AssemblyScript kernels reach tfjs-backend-wasm's tensors, shared by depthwise.ts and gelu.ts.
 *
 * Each kernel file comes as two binaries, `<name>.wasm` for the plain heap of the single-thread build and
 * `<name>_shared.wasm` for the threaded build's SharedArrayBuffer heap (a module that imports a memory must
 * say whether it is shared). Zero copy: an instance is made on tfjs' own `WebAssembly.Memory` (once per
 * Memory) and works on the tensors' heap offsets; outputs come from `backend.makeOutput`. Growth of the
 * heap needs nothing: the instance sees the same Memory and holds no views. Only if the Emscripten module
 * exposes no Memory object (or zero copy is turned off, to test the fallback) are the inputs copied into a
 * private memory and the result copied back.
 */
import { tf } from "../tf.ts";

type TensorInfo = tf.TensorInfo;

/** The parts of tfjs-backend-wasm's BackendWasm used here (its types are not exported). */
export interface WasmBackendLike {
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

/** How the kernels reach the tensors: `"zero-copy"` on tfjs' heap, or `"copy"` through a private memory. */
export type HeapMemoryMode = "zero-copy" | "copy";

/** One kernel file's two binaries, their instances per Memory, and the zero-copy or copying call. */
export class HeapKernelModule<Exports> {
  private modules: { plain: WebAssembly.Module; shared: WebAssembly.Module } | undefined;
  private readonly instances = new WeakMap<WebAssembly.Memory, Exports>();
  private privateHeap: { memory: WebAssembly.Memory; kernels: Exports } | undefined;
  /** False forces the copying path (the register functions' `zeroCopy` option). */
  zeroCopy = true;

  /** `base`: the binaries' URL without `.wasm`, e.g. `new URL("./gelu", import.meta.url)`. */
  constructor(private readonly base: URL) {}

  /** Compiles the two binaries, once (synchronously: a kernel cannot await). */
  compile(): { plain: WebAssembly.Module; shared: WebAssembly.Module } {
    this.modules ??= {
      plain: new WebAssembly.Module(Deno.readFileSync(new URL(`${this.base.href}.wasm`))),
      shared: new WebAssembly.Module(Deno.readFileSync(new URL(`${this.base.href}_shared.wasm`))),
    };
    return this.modules;
  }

  /** An instance on `memory` (the shared binary when the memory is shared). */
  instantiate(memory: WebAssembly.Memory): Exports {
    const shared = typeof SharedArrayBuffer !== "undefined" && memory.buffer instanceof SharedArrayBuffer;
    const module = shared ? this.compile().shared : this.compile().plain;
    return new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as Exports;
  }

  /**
   * The kernels on tfjs' heap Memory, or undefined when the Emscripten module exposes none (or zero copy is
   * off). The Memory is checked against `HEAPU8` on first use only: later, HEAPU8 may lag a growth made by a
   * pthread, while the Memory itself stays right.
   */
  heapKernels(backend: WasmBackendLike): Exports | undefined {
    if (!this.zeroCopy) return undefined;
    const memory = backend.wasm.wasmMemory ?? backend.wasm.asm?.memory;
    if (!(memory instanceof WebAssembly.Memory)) return undefined;
    let kernels = this.instances.get(memory);
    if (!kernels) {
      if (memory.buffer !== backend.wasm.HEAPU8.buffer) return undefined;
      kernels = this.instantiate(memory);
      this.instances.set(memory, kernels);
    }
    return kernels;
  }

  /** Which mode the kernels use with `backend`. */
  memoryMode(backend: WasmBackendLike): HeapMemoryMode {
    return this.heapKernels(backend) ? "zero-copy" : "copy";
  }

  /**
   * Makes a float32 output of `outShape` and runs `body` with the kernels and byte offsets for the inputs
   * and the output: the tensors' own heap offsets (zero copy), or a private memory's, with the inputs
   * copied in and the result copied into the output tensor.
   */
  run(
    backend: WasmBackendLike,
    inputs: TensorInfo[],
    outShape: number[],
    body: (kernels: Exports, inputPtrs: number[], outPtr: number) => void,
  ): TensorInfo {
    const out = backend.makeOutput(outShape, "float32");
    const outOffset = backend.dataIdMap.get(out.dataId)!.memoryOffset;
    const outSize = outShape.reduce((a, b) => a * b, 1);
    const onHeap = this.heapKernels(backend);
    if (onHeap) {
      body(onHeap, inputs.map((info) => backend.dataIdMap.get(info.dataId)!.memoryOffset), outOffset);
      return out;
    }
    // Private layout: each input, then the output, at 64-byte aligned offsets.
    const sizes = inputs.map((info) => info.shape.reduce((a, b) => a * b, 1));
    const ptrs: number[] = [];
    let at = 0;
    for (const size of sizes) {
      ptrs.push(at);
      at += Math.ceil((size * 4) / 64) * 64;
    }
    const needed = at + outSize * 4;
    this.privateHeap ??= (() => {
      const memory = new WebAssembly.Memory({ initial: 1 });
      return { memory, kernels: this.instantiate(memory) };
    })();
    const { memory: own, kernels } = this.privateHeap;
    if (own.buffer.byteLength < needed) own.grow(Math.ceil((needed - own.buffer.byteLength) / 65536));
    const heap = new Uint8Array(own.buffer);
    inputs.forEach((info, i) => {
      const offset = backend.dataIdMap.get(info.dataId)!.memoryOffset;
      heap.set(backend.wasm.HEAPU8.subarray(offset, offset + sizes[i] * 4), ptrs[i]);
    });
    body(kernels, ptrs, at);
    // Read tfjs' HEAPU8 only now: makeOutput may have grown (and replaced) it.
    backend.wasm.HEAPU8.set(heap.subarray(at, at + outSize * 4), outOffset);
    return out;
  }
}
