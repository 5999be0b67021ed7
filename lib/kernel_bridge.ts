/**
 * Fills the gaps in a tfjs backend's kernel set by running the cpu backend's kernel.
 *
 * tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter, DepthwiseConv2dNativeBackpropFilter/Input
 * or UnsortedSegmentSum (the gradient of tf.gather, i.e. of embedding lookups), so neither
 * ConvNeXt nor BERT could be trained on wasm. A bridged kernel copies its inputs to the cpu
 * backend, runs the cpu kernel there and copies the outputs back: correct, at cpu speed.
 */
import { tf } from "./tf.ts";

type TensorInfo = { dataId: object; shape: number[]; dtype: tf.DataType };
interface BackendLike {
  readSync(dataId: object): tf.backend_util.BackendValues;
  write(values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType): object;
  disposeData(dataId: object, force?: boolean): boolean;
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
  const backend = args.backend as BackendLike;
  const values = backend.readSync(x.dataId) as Float32Array | Int32Array;
  const ids = backend.readSync(segmentIds.dataId) as Int32Array | Float32Array;
  const rows = segmentIds.shape.reduce((a, b) => a * b, 1);
  const inner = rows === 0 ? 0 : values.length / rows;
  const out = x.dtype === "int32" ? new Int32Array(numSegments * inner) : new Float32Array(numSegments * inner);
  for (let r = 0; r < rows; r++) {
    const segment = ids[r];
    if (segment < 0 || segment >= numSegments) continue; // as TensorFlow: out-of-range ids are dropped
    const from = r * inner;
    const to = segment * inner;
    for (let k = 0; k < inner; k++) out[to + k] += values[from + k];
  }
  const shape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  return { dataId: backend.write(out, shape, x.dtype), shape, dtype: x.dtype };
}

/** Registers the scatter-add UnsortedSegmentSum for `backendName` (replacing an existing one). */
export function registerFastSegmentSum(backendName: "cpu" | "wasm"): void {
  if (tf.getKernel("UnsortedSegmentSum", backendName)) tf.unregisterKernel("UnsortedSegmentSum", backendName);
  tf.registerKernel({ kernelName: "UnsortedSegmentSum", backendName, kernelFunc: unsortedSegmentSumKernel as never });
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
    tf.registerKernel({
      kernelName,
      backendName,
      kernelFunc: ({ inputs, backend, attrs }) => {
        const target = backend as unknown as BackendLike;
        const cpu = tf.findBackend("cpu") as unknown as BackendLike;
        const cpuInputs: Record<string, TensorInfo> = {};
        for (const [name, info] of Object.entries(inputs as Record<string, TensorInfo>)) {
          if (!info) continue;
          cpuInputs[name] = {
            dataId: cpu.write(target.readSync(info.dataId), info.shape, info.dtype),
            shape: info.shape,
            dtype: info.dtype,
          };
        }
        try {
          const result = cpuKernel.kernelFunc({ inputs: cpuInputs, backend: cpu as never, attrs }) as
            | TensorInfo
            | TensorInfo[];
          const outputs = Array.isArray(result) ? result : [result];
          const copied = outputs.map((out) => {
            const values = cpu.readSync(out.dataId);
            cpu.disposeData(out.dataId, true);
            return { dataId: target.write(values, out.shape, out.dtype), shape: out.shape, dtype: out.dtype };
          });
          return (Array.isArray(result) ? copied : copied[0]) as never;
        } finally {
          for (const info of Object.values(cpuInputs)) cpu.disposeData(info.dataId, true);
        }
      },
    });
    registered.push(kernelName);
  }
  return registered;
}

/** Swaps the last two axes (a batched matrix transpose). */
function transposeLast(x: tf.Tensor): tf.Tensor {
  const perm = [...Array(x.rank).keys()];
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return tf.transpose(x, perm);
}

let matMulGradientRegistered = false;

/**
 * Overrides BatchMatMul's gradient so that, on wasm, the transposed products it needs are made
 * as an explicit transpose followed by a plain product: tfjs-backend-wasm runs matMul with a
 * transposed operand about 10x slower than transpose + matMul (measured by the bench), and
 * tfjs' own gradient uses exactly those forms. On other backends the gradient is tfjs' own.
 */
export function registerFastMatMulGradient(): void {
  if (matMulGradientRegistered) return;
  matMulGradientRegistered = true;
  const product = (x: tf.Tensor, y: tf.Tensor, transposeX: boolean, transposeY: boolean): tf.Tensor => {
    if (tf.getBackend() !== "wasm") return tf.matMul(x, y, transposeX, transposeY);
    return tf.matMul(transposeX ? transposeLast(x) : x, transposeY ? transposeLast(y) : y);
  };
  tf.registerGradient({
    kernelName: "BatchMatMul",
    inputsToSave: ["a", "b"],
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved;
      const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
      const g = dy as tf.Tensor;
      if (!transposeA && !transposeB) {
        return {
          a: () => product(g, b, false, true),
          b: () => product(a, g, true, false),
        };
      }
      if (!transposeA && transposeB) {
        return {
          a: () => product(g, b, false, false),
          b: () => product(g, a, true, false),
        };
      }
      if (transposeA && !transposeB) {
        return {
          a: () => product(b, g, false, true),
          b: () => product(a, g, false, false),
        };
      }
      return { a: () => product(b, g, true, true), b: () => product(g, a, true, true) };
    },
  });
}
