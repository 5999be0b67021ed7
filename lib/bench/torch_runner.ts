/**
 * Runs the PyTorch side of the bench (scripts/bench/torch_bench.py) with Debian's python3 and
 * parses its JSON. When python3 or torch is missing, returns the reason instead of numbers.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../paths.ts";

/** What torch_bench.py prints. */
export interface TorchBenchResult {
  torch: string;
  python: string;
  threads: number;
  preset: string;
  batchSize: number;
  imageSize: number;
  tokens: number;
  parameters: number;
  embed: { productsPerSecond: number; secondsPerBatch: number; batches: number };
  embedSplit: { imageTowerSeconds: number; textTowersSeconds: number };
  trainFull?: { pairsPerSecond: number; secondsPerStep: number; pairsPerStep: number; productsPerStep: number };
  trainHead: { pairsPerSecond: number; secondsPerStep: number; pairsPerStep: number };
  onnx?: { path: string; exportSeconds: number } | { error: string };
}

/** Options passed on to torch_bench.py. */
export interface TorchBenchOptions {
  python?: string;
  threads: number;
  preset: "real" | "tiny";
  batchSize: number;
  imageSize: number;
  tokens: number;
  trainPairs: number;
  /** Timed full-mode steps after one warm-up step (default 1). */
  trainSteps?: number;
  headPairs: number;
  headSteps: number;
  skipFull?: boolean;
  /** Also export the image tower (ConvNeXt) to this ONNX file, for the onnxruntime comparison. */
  exportOnnx?: string;
}

/** The Python interpreter with Debian's python3-torch. */
export const DEBIAN_PYTHON = "/usr/bin/python3";

/** The script's command-line arguments for `options`. */
export function torchBenchArgs(options: TorchBenchOptions): string[] {
  const args = [
    join(projectRoot, "scripts", "bench", "torch_bench.py"),
    "--threads",
    String(options.threads),
    "--preset",
    options.preset,
    "--batch",
    String(options.batchSize),
    "--image-size",
    String(options.imageSize),
    "--tokens",
    String(options.tokens),
    "--train-pairs",
    String(options.trainPairs),
    "--train-steps",
    String(options.trainSteps ?? 1),
    "--head-pairs",
    String(options.headPairs),
    "--head-steps",
    String(options.headSteps),
  ];
  if (options.skipFull) args.push("--skip-full");
  if (options.exportOnnx) args.push("--export-onnx", options.exportOnnx);
  return args;
}

/** Runs the PyTorch bench; `{ error }` says why it could not (no python3, no torch, a crash). */
export async function runTorchBench(options: TorchBenchOptions): Promise<TorchBenchResult | { error: string }> {
  const python = options.python ?? DEBIAN_PYTHON;
  if (!existsSync(python)) {
    return { error: `${python} not found; install Debian's python3-torch to compare with PyTorch` };
  }
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(python, { args: torchBenchArgs(options), stdout: "piped", stderr: "piped" })
      .output();
  } catch (error) {
    return { error: `could not start ${python}: ${String(error)}` };
  }
  const stderr = new TextDecoder().decode(output.stderr).trim();
  if (!output.success) {
    const missingTorch = /No module named 'torch'/.test(stderr);
    return {
      error: missingTorch
        ? `${python} has no torch; install Debian's python3-torch to compare with PyTorch`
        : `torch_bench.py failed (exit ${output.code}): ${stderr.split("\n").slice(-3).join(" ")}`,
    };
  }
  const lines = new TextDecoder().decode(output.stdout).trim().split("\n");
  try {
    return JSON.parse(lines[lines.length - 1]) as TorchBenchResult;
  } catch {
    return {
      error: `torch_bench.py printed no JSON result on its last line: ${lines[lines.length - 1]?.slice(0, 200)}`,
    };
  }
}
