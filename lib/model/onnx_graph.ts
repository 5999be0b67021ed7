/**
 * What the project's ONNX writers (the ConvNeXt image tower, the BERT text towers) share: a graph builder
 * that names each node's output, a reader of a tower's weights from a PyTorch-layout state dict that
 * collects every missing or mis-shaped weight, the transpose of a Linear weight for MatMul, and the
 * onnxruntime CPU session that runs a tower.
 *
 * @module
 */
import * as ort from "onnxruntime-node";
import type { OnnxAttribute, OnnxNode, OnnxTensor } from "./onnx_proto.ts";
import type { StateDict } from "./state_dict.ts";

/** Collects nodes and initializers with unique names. */
export class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private counter = 0;

  op(opType: string, inputs: string[], attributes: OnnxAttribute[] = []): string {
    const output = `${opType.toLowerCase()}_${this.counter++}`;
    this.nodes.push({ opType, inputs, outputs: [output], name: output, attributes });
    return output;
  }

  constant(name: string, dims: number[], data: Float32Array | BigInt64Array): string {
    this.initializers.push({ name, dims, data });
    return name;
  }

  /** An int64 constant (shapes, axes, slice bounds). */
  ints(name: string, values: readonly number[]): string {
    return this.constant(name, [values.length], BigInt64Array.from(values, (v) => BigInt(v)));
  }

  /** Names `value` as a graph output. */
  output(value: string, name: string): void {
    this.nodes.push({ opType: "Identity", inputs: [value], outputs: [name], name });
  }
}

/** Reads a tower's weights from a state dict, checking names and shapes; collects every problem. */
export class WeightReader {
  readonly problems: string[] = [];

  constructor(private readonly stateDict: StateDict, private readonly prefix: string) {}

  get(name: string, shape: number[]): Float32Array {
    const full = `${this.prefix}${name}`;
    const tensor = this.stateDict.get(full);
    if (!tensor) {
      this.problems.push(`missing ${full} [${shape}]`);
      return new Float32Array(shape.reduce((a, b) => a * b, 1));
    }
    if (tensor.dtype !== "float32" || tensor.shape.join(",") !== shape.join(",")) {
      this.problems.push(`${full}: expected float32 [${shape}], got ${tensor.dtype} [${tensor.shape}]`);
      return new Float32Array(shape.reduce((a, b) => a * b, 1));
    }
    return tensor.data as Float32Array;
  }

  /** Throws listing the problems (the first 8), after `what` and advice, when there are any. */
  check(what: string, advice: string): void {
    if (this.problems.length === 0) return;
    const shown = this.problems.slice(0, 8).join("; ");
    const more = this.problems.length > 8 ? ` (and ${this.problems.length - 8} more)` : "";
    throw new Error(`${what}: ${shown}${more}. ${advice}`);
  }
}

/** PyTorch Linear weight [out, in] -> MatMul right operand [in, out], each output column times `scale[o]`. */
export function transpose2d(weight: Float32Array, out: number, inFeatures: number, scale?: Float32Array): Float32Array {
  const t = new Float32Array(weight.length);
  for (let o = 0; o < out; o++) {
    const s = scale ? scale[o] : 1;
    for (let i = 0; i < inFeatures; i++) t[i * out + o] = weight[o * inFeatures + i] * s;
  }
  return t;
}

/** An onnxruntime CPU session of a written graph, at `threads` intra-op threads (default: every core). */
export function createCpuSession(bytes: Uint8Array, threads?: number): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, {
    intraOpNumThreads: threads ?? navigator.hardwareConcurrency ?? 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
    executionProviders: ["cpu"],
  });
}

/** Runs a tower's session and returns its "features" output as a Float32Array (the output's memory freed). */
export async function runFeatures(
  session: ort.InferenceSession,
  feeds: Record<string, ort.Tensor>,
): Promise<Float32Array> {
  const result = await session.run(feeds);
  const features = result.features;
  try {
    return new Float32Array(features.data as Float32Array);
  } finally {
    features.dispose();
  }
}
