/**
 * Kernel-level fixes for tfjs-backend-wasm 4.22 (and one for the cpu backend).
 *
 * - Bridges: wasm has no Conv2DBackpropFilter and no DepthwiseConv2dNativeBackpropFilter/Input.
 *   A bridged kernel copies its inputs to the cpu backend, runs the cpu kernel there and copies
 *   the outputs back: correct, at cpu speed (about 0.01 GFLOP/s for these). ConvNeXt's own
 *   configurations no longer reach them: lib/fast_gradients.ts computes those gradients with fast
 *   forward kernels while `isBridgedToCpu` says the backprop kernel is still this bridge. The
 *   bridge stays for every other configuration (e.g. a strided 3x3 conv's filter gradient).
 * - UnsortedSegmentSum (the gradient of tf.gather, i.e. of embedding lookups): one scatter-add pass.
 * - BatchMatMul: tfjs-wasm sends every product with a transposed operand, and every batched
 *   (rank > 2) product, to a naive blocked loop (about 1 GFLOP/s); only the untransposed,
 *   batch-1 product reaches XNNPACK (10-15 GFLOP/s). `registerFastMatMul` wraps the kernel so that
 *   every product gets there (see there).
 */
import { tf } from "./tf.ts";

type TensorInfo = { dataId: object; shape: number[]; dtype: tf.DataType };
interface BackendLike {
  readSync(dataId: object): tf.backend_util.BackendValues;
  write(values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType): object;
  disposeData(dataId: object, force?: boolean): boolean;
}
/** tfjs-backend-wasm's heap access (BackendWasm.makeOutput / typedArrayFromHeap). */
interface HeapBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): tf.backend_util.TypedArray;
  incRef(dataId: object): void;
}

/** Kernels bridged for each backend, the ones tfjs 4.22 lacks and training needs. */
export const BRIDGED_KERNELS: Record<string, string[]> = {
  wasm: ["Conv2DBackpropFilter", "DepthwiseConv2dNativeBackpropFilter", "DepthwiseConv2dNativeBackpropInput"],
};

/**
 * UnsortedSegmentSum as one scatter-add pass. tfjs-backend-cpu's version loops over the
 * segments with a mask per segment (O(segments x rows)): for the gradient of a 30k-row
 * embedding lookup that is most of a training step. Registered for wasm (which lacks the
 * kernel) and for cpu (replacing the slow one).
 */
function unsortedSegmentSumKernel(args: { inputs: unknown; backend: unknown; attrs?: unknown }): TensorInfo {
  const { x, segmentIds } = args.inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const { numSegments } = args.attrs as { numSegments: number };
  const shape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  const rows = segmentIds.shape.reduce((a, b) => a * b, 1);
  const heap = args.backend as Partial<HeapBackendLike>;
  if (typeof heap.makeOutput === "function" && typeof heap.typedArrayFromHeap === "function") {
    // wasm: read the inputs and write the (embedding-table sized) output in place on the heap, no copies.
    const out = heap.makeOutput(shape, x.dtype);
    const target = heap.typedArrayFromHeap(out) as Float32Array | Int32Array;
    target.fill(0);
    scatterAdd(
      heap.typedArrayFromHeap(x) as Float32Array,
      heap.typedArrayFromHeap(segmentIds) as Int32Array,
      rows,
      target,
    );
    return out;
  }
  const backend = args.backend as BackendLike;
  const values = backend.readSync(x.dataId) as Float32Array | Int32Array;
  const out = x.dtype === "int32"
    ? new Int32Array(tf.util.sizeFromShape(shape))
    : new Float32Array(tf.util.sizeFromShape(shape));
  scatterAdd(values, backend.readSync(segmentIds.dataId) as Int32Array | Float32Array, rows, out);
  return { dataId: backend.write(out, shape, x.dtype), shape, dtype: x.dtype };
}

/** out[ids[r]] += values[r] for each row r (`out` zeroed by the caller). */
function scatterAdd(
  values: Float32Array | Int32Array,
  ids: Int32Array | Float32Array,
  rows: number,
  out: Float32Array | Int32Array,
): void {
  const inner = rows === 0 ? 0 : values.length / rows;
  const numSegments = inner === 0 ? 0 : out.length / inner;
  for (let r = 0; r < rows; r++) {
    const segment = ids[r];
    if (segment < 0 || segment >= numSegments) continue; // as TensorFlow: out-of-range ids are dropped
    const from = r * inner;
    const to = segment * inner;
    for (let k = 0; k < inner; k++) out[to + k] += values[from + k];
  }
}

/** Registers the scatter-add UnsortedSegmentSum for `backendName` (replacing an existing one). */
export function registerFastSegmentSum(backendName: "cpu" | "wasm"): void {
  if (tf.getKernel("UnsortedSegmentSum", backendName)) tf.unregisterKernel("UnsortedSegmentSum", backendName);
  tf.registerKernel({ kernelName: "UnsortedSegmentSum", backendName, kernelFunc: unsortedSegmentSumKernel as never });
}

/** The kernel functions `bridgeMissingKernels` registered, by `${backendName}/${kernelName}`. */
const bridgedFuncs = new Map<string, tf.KernelFunc>();

/**
 * Whether `kernelName` on `backendName` would run on the cpu backend: it is missing there, or it is
 * the bridge `bridgeMissingKernels` registered (not a kernel registered since, e.g. lib/wasm_kernels/).
 * Gradients that have a fast formulation use it only then (lib/fast_gradients.ts).
 */
export function isBridgedToCpu(kernelName: string, backendName: string): boolean {
  if (backendName === "cpu") return false;
  const kernel = tf.getKernel(kernelName, backendName);
  return !kernel || kernel.kernelFunc === bridgedFuncs.get(`${backendName}/${kernelName}`);
}

/**
 * Runs a cpu-backend kernel for another backend: the inputs are copied to the cpu backend, the kernel runs
 * there, and its outputs are copied back (correct, at cpu speed). Used by the bridges below and by the
 * fallbacks of lib/wasm_kernels/ for the configurations they do not implement.
 */
export function runOnCpuBackend(
  cpuKernel: tf.KernelConfig,
  args: Parameters<tf.KernelFunc>[0],
): TensorInfo | TensorInfo[] {
  const target = args.backend as unknown as BackendLike;
  const cpu = tf.findBackend("cpu") as unknown as BackendLike;
  const cpuInputs: Record<string, TensorInfo> = {};
  for (const [name, info] of Object.entries(args.inputs as Record<string, TensorInfo>)) {
    if (!info) continue;
    cpuInputs[name] = {
      dataId: cpu.write(target.readSync(info.dataId), info.shape, info.dtype),
      shape: info.shape,
      dtype: info.dtype,
    };
  }
  try {
    const result = cpuKernel.kernelFunc({ inputs: cpuInputs, backend: cpu as never, attrs: args.attrs }) as
      | TensorInfo
      | TensorInfo[];
    const copied = (Array.isArray(result) ? result : [result]).map((out) => {
      const values = cpu.readSync(out.dataId);
      cpu.disposeData(out.dataId, true);
      return { dataId: target.write(values, out.shape, out.dtype), shape: out.shape, dtype: out.dtype };
    });
    return Array.isArray(result) ? copied : copied[0];
  } finally {
    for (const info of Object.values(cpuInputs)) cpu.disposeData(info.dataId, true);
  }
}

/**
 * Registers the cpu implementation of each missing kernel in `BRIDGED_KERNELS[backendName]`.
 * Returns the kernel names it registered (those already present are left alone).
 */
export function bridgeMissingKernels(backendName: string): string[] {
  const registered: string[] = [];
  for (const kernelName of BRIDGED_KERNELS[backendName] ?? []) {
    if (tf.getKernel(kernelName, backendName)) continue;
    const cpuKernel = tf.getKernel(kernelName, "cpu");
    if (!cpuKernel) {
      throw new Error(`cannot bridge ${kernelName} to ${backendName}: the cpu backend has no such kernel`);
    }
    const kernelFunc: tf.KernelFunc = (args) => runOnCpuBackend(cpuKernel, args) as never;
    tf.registerKernel({ kernelName, backendName, kernelFunc });
    bridgedFuncs.set(`${backendName}/${kernelName}`, kernelFunc);
    registered.push(kernelName);
  }
  return registered;
}

// ---------------------------------------------------------------------------------------------- BatchMatMul on wasm

/** The parts of tfjs-backend-wasm's BackendWasm (4.22) the BatchMatMul wrapper uses; its types are not exported. */
interface WasmBackendLike {
  wasm: {
    cwrap(name: string, returnType: null, argTypes: string[]): (...args: unknown[]) => void;
    tfjs: { registerTensor(id: number, size: number, memoryOffset: number): void; disposeData(id: number): void };
  };
  dataIdMap: { get(dataId: object): { id: number; memoryOffset: number } | undefined };
  dataIdNextNumber: number;
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
}

type KernelArgs = Parameters<tf.KernelFunc>[0];

/** Whether `backend` has the BackendWasm internals the per-slice path needs (checked on every call: cheap). */
function hasWasmInternals(backend: unknown): backend is WasmBackendLike {
  const b = backend as Partial<WasmBackendLike> | null;
  return typeof b?.wasm?.cwrap === "function" && typeof b.wasm.tfjs?.registerTensor === "function" &&
    typeof b.wasm.tfjs.disposeData === "function" && typeof b.dataIdMap?.get === "function" &&
    typeof b.dataIdNextNumber === "number" && typeof b.makeOutput === "function";
}

/** tfjs-wasm's exported C function `BatchMatMul`, wrapped once per module instance. */
const sliceProducts = new WeakMap<object, (...args: unknown[]) => void>();

function shapeBytes(shape: number[]): Uint8Array {
  return new Uint8Array(new Int32Array(shape).buffer);
}

let originalBatchMatMul: tf.KernelConfig | undefined;

/**
 * Registers, for wasm, a BatchMatMul that reaches XNNPACK for every product. Why: tfjs-wasm 4.22's
 * C++ kernel runs XNNPACK's fully-connected operator only when neither operand is transposed and
 * both batch sizes are 1; every other product (a transposed operand: the gradients of every
 * Linear, attention's q·kᵀ; any rank-3/4 product: attention) goes to a naive blocked triple loop,
 * single-threaded, about 1 GFLOP/s against 10-15. The wrapper
 *   - materialises a transposed operand with the wasm Transpose kernel, or, for a 2-D product where
 *     that moves less data, computes the transposed product (Bᵀ·Aᵀ) and transposes the result;
 *   - folds the batch into the rows when B is shared by all batch entries;
 *   - otherwise runs one XNNPACK product per batch entry on views of the operands: tensor ids
 *     registered with the wasm module at offsets inside the operands' and output's memory (no
 *     copies), released right after (which also frees the XNNPACK operator cached on them).
 * Anything it does not cover (non-float32; a batch broadcast other than "one side has batch 1";
 * a backend without the internals it relies on) goes to the original kernel unchanged.
 * Idempotent. Forward and gradients both benefit, since tfjs' BatchMatMul gradient is BatchMatMuls.
 */
export function registerFastMatMul(backendName: "wasm"): void {
  const current = tf.getKernel("BatchMatMul", backendName);
  if (!current) throw new Error(`registerFastMatMul: the ${backendName} backend has no BatchMatMul kernel`);
  if (originalBatchMatMul) return;
  const transposeKernel = tf.getKernel("Transpose", backendName);
  if (!transposeKernel) throw new Error(`registerFastMatMul: the ${backendName} backend has no Transpose kernel`);
  originalBatchMatMul = current;
  const original = current.kernelFunc;
  const transpose = transposeKernel.kernelFunc;
  tf.unregisterKernel("BatchMatMul", backendName);
  tf.registerKernel({
    ...current,
    kernelFunc: (args: KernelArgs) => fastBatchMatMul(args, original, transpose) as never,
  });
}

/** Puts tfjs' own wasm BatchMatMul back (for benchmarks and tests comparing the two). */
export function unregisterFastMatMul(): void {
  if (!originalBatchMatMul) return;
  tf.unregisterKernel("BatchMatMul", originalBatchMatMul.backendName);
  tf.registerKernel(originalBatchMatMul);
  originalBatchMatMul = undefined;
}

function fastBatchMatMul(args: KernelArgs, original: tf.KernelFunc, transposeKernel: tf.KernelFunc): TensorInfo {
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
  const backend = args.backend;
  const passThrough = (): TensorInfo => original(args) as TensorInfo;
  if (a.dtype !== "float32" || b.dtype !== "float32" || !hasWasmInternals(backend)) return passThrough();
  const aRank = a.shape.length;
  const bRank = b.shape.length;
  const m = transposeA ? a.shape[aRank - 1] : a.shape[aRank - 2];
  const k = transposeA ? a.shape[aRank - 2] : a.shape[aRank - 1];
  const kB = transposeB ? b.shape[bRank - 1] : b.shape[bRank - 2];
  const n = transposeB ? b.shape[bRank - 2] : b.shape[bRank - 1];
  const batchA = tf.util.sizeFromShape(a.shape.slice(0, -2));
  const batchB = tf.util.sizeFromShape(b.shape.slice(0, -2));
  if (k !== kB || m * n * k === 0) return passThrough(); // the original reports the mismatch / handles empties
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const batch = tf.util.sizeFromShape(outer);
  if ((batchA !== batch && batchA !== 1) || (batchB !== batch && batchB !== 1)) return passThrough();
  if (batch === 1 && !transposeA && !transposeB) return passThrough(); // already XNNPACK
  // A side of 1 makes a transpose move no data: tfjs-wasm's Transpose then returns the operand's own dataId,
  // and XNNPACK caches a product's packed right operand by that id. A weight [h, 1] used forward and then,
  // "transposed", in its gradient (dh = dz·wᵀ) was read with the forward's packing: a wrong gradient, found
  // through a one-output head (lib/match/bce_head.ts). Such products are small; the original kernel runs them.
  if (m === 1 || n === 1 || k === 1) return passThrough();

  const owned: TensorInfo[] = [];
  const as3 = (info: TensorInfo, shape: number[]): TensorInfo => ({ dataId: info.dataId, shape, dtype: info.dtype });
  const swapLast = (info: TensorInfo): TensorInfo => {
    const out = transposeKernel({ inputs: { x: info as never }, backend, attrs: { perm: [0, 2, 1] } }) as TensorInfo;
    owned.push(out);
    return out;
  };
  try {
    // Stored layouts, rank 3: a is [batchA, m, k] (or [batchA, k, m] when transposed), b likewise.
    const a3 = as3(a, transposeA ? [batchA, k, m] : [batchA, m, k]);
    const b3 = as3(b, transposeB ? [batchB, n, k] : [batchB, k, n]);
    let out: TensorInfo;
    // Elements moved besides the product: XNNPACK packs its right operand on every new tensor.
    const direct = (transposeA ? m * k : 0) + (transposeB ? k * n : 0) + k * n;
    const swapped = (transposeA ? 0 : m * k) + (transposeB ? 0 : k * n) + m * k + m * n;
    if (batch === 1 && swapped < direct) {
      // C = (op(B)ᵀ · op(A)ᵀ)ᵀ: op(B)ᵀ is b itself when transposeB, op(A)ᵀ is a itself when transposeA.
      const left = transposeB ? b3 : swapLast(b3); // [1, n, k]
      const right = transposeA ? a3 : swapLast(a3); // [1, k, m]
      const product = untransposed(backend, original, left, right, 1, 1);
      owned.push(product);
      out = swapLast(product);
      owned.pop(); // the result is returned, not disposed
    } else {
      const left = transposeA ? swapLast(a3) : a3; // [batchA, m, k]
      const right = transposeB ? swapLast(b3) : b3; // [batchB, k, n]
      out = untransposed(backend, original, left, right, batchA, batchB);
    }
    return { dataId: out.dataId, shape: [...outer, m, n], dtype: "float32" };
  } finally {
    for (const info of owned) backend.disposeData(info.dataId);
  }
}

/** left [batchA, m, k] · right [batchB, k, n] -> a new [max batch, m, n], every product on XNNPACK. */
function untransposed(
  backend: WasmBackendLike,
  original: tf.KernelFunc,
  left: TensorInfo,
  right: TensorInfo,
  batchA: number,
  batchB: number,
): TensorInfo {
  const [, m, k] = left.shape;
  const n = right.shape[2];
  const attrs = { transposeA: false, transposeB: false };
  if (batchB === 1) {
    // One B for every batch entry: stack the batch into the rows, one product.
    const a = { dataId: left.dataId, shape: [1, batchA * m, k], dtype: left.dtype };
    const out = original({ inputs: { a, b: right } as never, backend: backend as never, attrs }) as TensorInfo;
    return { dataId: out.dataId, shape: [batchA, m, n], dtype: out.dtype };
  }
  const batch = Math.max(batchA, batchB);
  let product = sliceProducts.get(backend.wasm);
  if (!product) {
    product = backend.wasm.cwrap("BatchMatMul", null, [
      "number",
      "array",
      "number",
      "number",
      "array",
      "number",
      "number",
      "number",
      "number",
    ]);
    sliceProducts.set(backend.wasm, product);
  }
  const out = backend.makeOutput([batch, m, n], "float32");
  const offsetOf = (info: TensorInfo): number => backend.dataIdMap.get(info.dataId)!.memoryOffset;
  const [leftAt, rightAt, outAt] = [offsetOf(left), offsetOf(right), offsetOf(out)];
  const leftShape = shapeBytes([1, m, k]);
  const rightShape = shapeBytes([1, k, n]);
  const view = (offset: number, size: number): number => {
    const id = backend.dataIdNextNumber++;
    backend.wasm.tfjs.registerTensor(id, size, offset);
    return id;
  };
  for (let i = 0; i < batch; i++) {
    const ids = [
      view(leftAt + (batchA === 1 ? 0 : 4 * i * m * k), m * k),
      view(rightAt + 4 * i * k * n, k * n),
      view(outAt + 4 * i * m * n, m * n),
    ];
    try {
      product(ids[0], leftShape, 3, ids[1], rightShape, 3, 0, 0, ids[2]);
    } finally {
      for (const id of ids) backend.wasm.tfjs.disposeData(id);
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------ copies that need not be

let originalIdentity: tf.KernelConfig | undefined;
let originalTranspose: tf.KernelConfig | undefined;

/** Whether `perm` moves only size-1 axes of `shape` (the data order is unchanged). */
function isNoOpPermutation(shape: number[], perm: number[]): boolean {
  let last = -1;
  for (const axis of perm) {
    if (shape[axis] === 1) continue;
    if (axis < last) return false;
    last = axis;
  }
  return true;
}

/**
 * Makes wasm's Identity, and a Transpose that does not reorder the data, share the input's buffer
 * (reference counted, as the cpu backend's Identity and every backend's Reshape do) instead of
 * copying it. Why: tfjs clones every tensor it saves for backprop (Identity), and the gradient of
 * tf.gather transposes the embedding table's gradient with the identity permutation; tfjs-wasm
 * copies both: about 1,800 copies (1.1 s) and two 37 MB copies (0.2 s) per real-preset training step.
 * Tensors are immutable and no wasm kernel writes into its inputs, so sharing is safe. Idempotent.
 */
export function registerZeroCopyIdentity(backendName: "wasm"): void {
  if (originalIdentity) return;
  const identity = tf.getKernel("Identity", backendName);
  const transpose = tf.getKernel("Transpose", backendName);
  if (!identity || !transpose) throw new Error(`registerZeroCopyIdentity: the ${backendName} backend is not loaded`);
  originalIdentity = identity;
  originalTranspose = transpose;
  const share = (x: TensorInfo, shape: number[], backend: unknown): TensorInfo => {
    (backend as HeapBackendLike).incRef(x.dataId);
    return { dataId: x.dataId, shape, dtype: x.dtype };
  };
  tf.unregisterKernel("Identity", backendName);
  tf.registerKernel({
    ...identity,
    kernelFunc: (args: KernelArgs) => {
      const { x } = args.inputs as { x: TensorInfo };
      if (x.dtype === "string") return identity.kernelFunc(args);
      return share(x, x.shape, args.backend) as never;
    },
  });
  tf.unregisterKernel("Transpose", backendName);
  tf.registerKernel({
    ...transpose,
    kernelFunc: (args: KernelArgs) => {
      const { x } = args.inputs as { x: TensorInfo };
      const { perm } = args.attrs as { perm: number[] };
      if (x.dtype === "string" || !isNoOpPermutation(x.shape, perm)) return transpose.kernelFunc(args);
      return share(x, perm.map((axis) => x.shape[axis]), args.backend) as never;
    },
  });
}

/** Puts tfjs' own wasm Identity and Transpose back (for benchmarks and tests comparing the two). */
export function unregisterZeroCopyIdentity(): void {
  for (const config of [originalIdentity, originalTranspose]) {
    if (!config) continue;
    tf.unregisterKernel(config.kernelName, config.backendName);
    tf.registerKernel(config);
  }
  originalIdentity = undefined;
  originalTranspose = undefined;
}

/**
 * Everything this module speeds up on wasm (call before the backend starts, or after):
 * `registerFastMatMul` and `registerZeroCopyIdentity`. The bridges and UnsortedSegmentSum are
 * registered separately (`bridgeMissingKernels`, `registerFastSegmentSum`).
 */
export function registerFastWasmKernels(): void {
  registerZeroCopyIdentity("wasm");
  registerFastMatMul("wasm");
}
