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
  wasm: [
    "Conv2DBackpropFilter",
    "DepthwiseConv2dNativeBackpropFilter",
    "DepthwiseConv2dNativeBackpropInput",
    "UnsortedSegmentSum",
  ],
};

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
