/**
 * Where the frozen towers run: tfjs (the model itself, on the selected backend) or onnxruntime-node (ONNX
 * graphs written from the model's own weights: lib/model/onnx_convnext.ts, lib/model/onnx_bert.ts; equal
 * to tfjs within 1e-4). "auto" picks the fastest correct one: onnxruntime on a CPU backend (wasm, cpu)
 * where its addon loads, tfjs on a GPU backend or where onnxruntime does not load. The notebooks take it as
 * the parameter TOWER_RUNTIME; lib takes it as an option and never reads the environment for it.
 *
 * @module
 */
import { tf } from "../tf.ts";

/** The choices of the TOWER_RUNTIME parameter. */
export const TOWER_RUNTIMES = ["auto", "tfjs", "onnx"] as const;
export type TowerRuntimeChoice = typeof TOWER_RUNTIMES[number];
/** A runtime the towers actually run on. */
export type TowerRuntime = Exclude<TowerRuntimeChoice, "auto">;

/** tfjs backends on which the frozen towers run faster on tfjs than on onnxruntime's CPU kernels. */
const GPU_BACKENDS = new Set(["webgpu", "tensorflow", "webgl"]);

let probe: Promise<string | null> | undefined;

/** Null when onnxruntime-node loads and runs a graph here, else why not (checked once per process). */
export function onnxRuntimeProblem(): Promise<string | null> {
  probe ??= (async () => {
    try {
      const ort = await import("onnxruntime-node");
      const { encodeOnnxModel } = await import("../model/onnx_proto.ts");
      const bytes = encodeOnnxModel({
        name: "probe",
        nodes: [{ opType: "Identity", inputs: ["x"], outputs: ["y"] }],
        initializers: [],
        inputs: [{ name: "x", elemType: "float32", shape: [1] }],
        outputs: [{ name: "y", elemType: "float32", shape: [1] }],
      });
      const session = await ort.InferenceSession.create(bytes);
      await session.release();
      return null;
    } catch (error) {
      return (error instanceof Error ? error.message : String(error)).split("\n")[0];
    }
  })();
  return probe;
}

/** What a choice resolved to, and why (for the notebooks' backend line). */
export interface ResolvedTowerRuntime {
  runtime: TowerRuntime;
  choice: TowerRuntimeChoice;
  reason: string;
}

/** Checks a TOWER_RUNTIME value, naming where it came from and the choices. */
export function checkTowerRuntime(value: string, where = "towerRuntime"): TowerRuntimeChoice {
  if ((TOWER_RUNTIMES as readonly string[]).includes(value)) return value as TowerRuntimeChoice;
  throw new Error(`${where} = ${JSON.stringify(value)}; expected one of ${TOWER_RUNTIMES.join(", ")}`);
}

/**
 * The runtime a choice means here: "auto" is onnxruntime on a CPU tfjs backend where it loads, else tfjs;
 * "onnx" throws when onnxruntime does not load.
 */
export async function resolveTowerRuntime(
  choice: TowerRuntimeChoice = "auto",
  backend: string = tf.getBackend(),
): Promise<ResolvedTowerRuntime> {
  checkTowerRuntime(choice);
  if (choice === "tfjs") return { runtime: "tfjs", choice, reason: "asked for" };
  const problem = choice === "auto" && GPU_BACKENDS.has(backend) ? null : await onnxRuntimeProblem();
  if (choice === "onnx") {
    if (problem) throw new Error(`towerRuntime "onnx": onnxruntime-node does not load here (${problem})`);
    return { runtime: "onnx", choice, reason: "asked for" };
  }
  if (GPU_BACKENDS.has(backend)) {
    return { runtime: "tfjs", choice, reason: `tfjs backend ${backend} runs on the GPU` };
  }
  return problem
    ? { runtime: "tfjs", choice, reason: `onnxruntime-node does not load (${problem})` }
    : { runtime: "onnx", choice, reason: `onnxruntime-node's CPU kernels beat tfjs-${backend}` };
}

/** One line for the notebooks' backend line: `frozen towers: onnxruntime (auto: ...)`. */
export function describeTowerRuntime(resolved: ResolvedTowerRuntime): string {
  const name = resolved.runtime === "onnx" ? "onnxruntime-node" : `tfjs (${tf.getBackend()})`;
  return `frozen towers: ${name} (${resolved.choice}: ${resolved.reason})`;
}
