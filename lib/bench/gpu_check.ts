/**
 * `deno task gpu-check`: is this machine's GPU usable for SiameseRuCLIP, and how fast is it?
 *
 * 1. the adapter, driver and Vulkan facts (gpu_info.ts);
 * 2. backend equality on the chosen backend against cpu (backend_equality.ts);
 * 3. timed full-mode and head-mode training steps and an embedding batch (model_bench.ts), on the
 *    chosen backend and on wasm in the same run, with the tensor count checked across steps.
 *
 * On a real GPU adapter it runs the real preset at GPU batch sizes; without one it runs on the
 * software adapter (`webgpu-software`) at small sizes on the tiny preset, and says so.
 */
import { tf } from "../tf.ts";
import { type BackendName, selectBackend } from "../backend.ts";
import { presetByName, type PresetName } from "../model/presets.ts";
import { createSiameseRuCLIP } from "../model/siamese.ts";
import { type BackendEquality, checkBackendEquality } from "./backend_equality.ts";
import { type GpuInfo, gpuInfo } from "./gpu_info.ts";
import { benchEmbedding, benchTrainingStep, type EmbeddingThroughput, type TrainingThroughput } from "./model_bench.ts";
import { formatValue } from "./report.ts";

/** Workload sizes of one gpu-check run. */
export interface GpuCheckSizes {
  preset: PresetName;
  embedBatch: number;
  headPairs: number;
  headSteps: number;
  fullPairs: number;
  fullProducts: number;
  fullSteps: number;
  /** Full-mode products per step on wasm (smaller: a real-preset step there takes seconds per product). */
  wasmFullProducts: number;
}

/** GPU batch sizes on the real preset. */
export const GPU_SIZES: GpuCheckSizes = {
  preset: "real",
  embedBatch: 64,
  headPairs: 2048,
  headSteps: 10,
  fullPairs: 16,
  fullProducts: 32,
  fullSteps: 3,
  wasmFullProducts: 8,
};

/** Small sizes on the tiny preset (software adapter, or `--quick`). */
export const SMALL_SIZES: GpuCheckSizes = {
  preset: "tiny",
  embedBatch: 8,
  headPairs: 60,
  headSteps: 3,
  fullPairs: 8,
  fullProducts: 16,
  fullSteps: 2,
  wasmFullProducts: 16,
};

/** One timed workload on one backend. */
export interface GpuCheckTiming {
  workload: "embedding" | "full-mode training" | "head-mode training";
  backend: string;
  value: number;
  unit: "products/s" | "pairs/s";
  secondsPerCall: number;
  size: string;
  /** Tensors alive after the timed calls minus before (0: memory is flat across steps). */
  tensorGrowth: number;
}

/** What gpu-check found. */
export interface GpuCheckResult {
  createdAt: string;
  /** The backend that was checked (`webgpu`, `webgpu-software`, or what `--backend` named). */
  target: BackendName;
  /** Why this backend and these sizes. */
  reason: string;
  /** True when no hardware GPU adapter was used. */
  softwareOnly: boolean;
  info: GpuInfo;
  sizes: GpuCheckSizes;
  equality: BackendEquality | { error: string };
  timings: GpuCheckTiming[];
  /** Per workload: target value / wasm value. */
  speedups: { workload: string; speedup: number | null }[];
  errors: string[];
  ok: boolean;
}

const errorText = (error: unknown): string =>
  String(error instanceof Error ? error.message : error).split("\n")[0].slice(0, 300);

/** Times the three workloads on the active backend. */
async function timeWorkloads(backend: string, sizes: GpuCheckSizes, fullProducts: number): Promise<GpuCheckTiming[]> {
  const config = presetByName(sizes.preset);
  const model = createSiameseRuCLIP(config, { seed: 0 });
  const timings: GpuCheckTiming[] = [];
  try {
    const before = tf.memory().numTensors;
    const embed: EmbeddingThroughput = await benchEmbedding(model, { batchSize: sizes.embedBatch, batches: 2 });
    timings.push({
      workload: "embedding",
      backend,
      value: embed.productsPerSecond,
      unit: "products/s",
      secondsPerCall: embed.secondsPerBatch,
      size: `${config.name} preset, batch ${sizes.embedBatch}`,
      tensorGrowth: tf.memory().numTensors - before,
    });
    const fullPairs = Math.max(1, Math.round(sizes.fullPairs * fullProducts / sizes.fullProducts));
    const full: TrainingThroughput = await benchTrainingStep(model, {
      mode: "full",
      pairs: fullPairs,
      products: fullProducts,
      steps: sizes.fullSteps,
    });
    timings.push({
      workload: "full-mode training",
      backend,
      value: full.pairsPerSecond,
      unit: "pairs/s",
      secondsPerCall: full.secondsPerStep,
      size: `${config.name} preset, ${fullPairs} pairs over ${fullProducts} products per step`,
      tensorGrowth: full.tensorGrowth,
    });
    const head: TrainingThroughput = await benchTrainingStep(model, {
      mode: "head",
      pairs: sizes.headPairs,
      products: 2 * sizes.headPairs,
      steps: sizes.headSteps,
    });
    timings.push({
      workload: "head-mode training",
      backend,
      value: head.pairsPerSecond,
      unit: "pairs/s",
      secondsPerCall: head.secondsPerStep,
      size: `${config.name} preset, ${sizes.headPairs} pairs per step`,
      tensorGrowth: head.tensorGrowth,
    });
  } finally {
    model.dispose();
  }
  return timings;
}

/** Options of runGpuCheck. */
export interface GpuCheckOptions {
  /** Backend to check; default: `webgpu` on a hardware adapter, else `webgpu-software`. */
  backend?: BackendName;
  /** Small sizes even on a GPU. */
  quick?: boolean;
  /** Skip the wasm comparison. */
  noWasm?: boolean;
  log?: (message: string) => void;
}

/** Runs the check (see the module comment). Never throws for a failed step: it is recorded in `errors`. */
export async function runGpuCheck(options: GpuCheckOptions = {}): Promise<GpuCheckResult> {
  const log = options.log ?? (() => {});
  const info = await gpuInfo();
  const hardware = info.adapter !== null && !info.adapter.software;
  const target: BackendName = options.backend ?? (hardware ? "webgpu" : "webgpu-software");
  const onGpu = target === "webgpu" || target === "tensorflow";
  const sizes = onGpu && !options.quick ? GPU_SIZES : SMALL_SIZES;
  const adapterName = info.adapter
    ? `${info.adapter.description || info.adapter.device || info.adapter.vendor || "unnamed adapter"}`
    : "none";
  const reason = options.backend
    ? `requested --backend ${options.backend}; adapter: ${adapterName}`
    : hardware
    ? `hardware GPU adapter: ${adapterName}`
    : info.adapter
    ? `no GPU: only a software adapter (${adapterName}), so the check runs on it at small sizes`
    : `no GPU: ${info.adapterError ?? "no adapter"}; the check cannot run WebGPU`;
  log(reason);
  const errors: string[] = [];
  let equality: GpuCheckResult["equality"];
  try {
    log(`backend equality on ${target} against cpu ...`);
    equality = await checkBackendEquality(target, onGpu ? 1e-4 : 1e-5);
  } catch (error) {
    equality = { error: errorText(error) };
    errors.push(`backend equality: ${errorText(error)}`);
  }
  const timings: GpuCheckTiming[] = [];
  const targets: BackendName[] = options.noWasm || target === "wasm" ? [target] : [target, "wasm"];
  for (const backend of targets) {
    try {
      const choice = await selectBackend(backend, { quiet: true });
      const label = backend === "wasm" && choice.detail ? `wasm (${choice.detail})` : backend;
      log(`${label}: embedding, full-mode and head-mode steps, ${sizes.preset} preset ...`);
      timings.push(
        ...await timeWorkloads(label, sizes, backend === "wasm" ? sizes.wasmFullProducts : sizes.fullProducts),
      );
    } catch (error) {
      errors.push(`${backend}: ${errorText(error)}`);
    }
  }
  for (const t of timings) {
    if (t.tensorGrowth !== 0) errors.push(`${t.backend} ${t.workload}: ${t.tensorGrowth} tensors leaked`);
  }
  const workloads = [...new Set(timings.map((t) => t.workload))];
  const speedups = workloads.map((workload) => {
    const mine = timings.find((t) => t.workload === workload && !t.backend.startsWith("wasm"));
    const wasm = timings.find((t) => t.workload === workload && t.backend.startsWith("wasm"));
    return { workload, speedup: mine && wasm && target !== "wasm" ? mine.value / wasm.value : null };
  });
  const equalityOk = !("error" in equality) && equality.ok;
  return {
    createdAt: new Date().toISOString(),
    target,
    reason,
    softwareOnly: !onGpu,
    info,
    sizes,
    equality,
    timings,
    speedups,
    errors,
    ok: equalityOk && errors.length === 0,
  };
}

/** The report as Markdown (reports/gpu-check.md). */
export function renderGpuCheckMarkdown(result: GpuCheckResult): string {
  const { info } = result;
  const a = info.adapter;
  const lines = [
    `# gpu-check: ${result.ok ? "passed" : "FAILED"}`,
    "",
    `${result.createdAt}. Checked backend: \`${result.target}\`. ${result.reason}.`,
    "",
  ];
  if (result.softwareOnly) {
    lines.push(
      "**No GPU was used**: these numbers come from a software adapter or the CPU, at small sizes on the tiny preset. " +
        "They prove the code path, not GPU speed.",
      "",
    );
  }
  lines.push("## Adapter and driver", "");
  lines.push(
    `- adapter: ${
      a
        ? `${a.vendor || "?"} / ${a.architecture || "?"} / ${a.device || "?"} / ${a.description || "?"}`
        : `none (${info.adapterError})`
    }`,
  );
  if (a) {
    lines.push(
      `- software adapter: ${a.software ? "yes" : "no"} (runtime's isFallbackAdapter: ${a.isFallbackAdapter})`,
      `- features: ${a.features.join(", ") || "none"}`,
      `- limits: ${Object.entries(a.limits).map(([k, v]) => `${k} ${v.toLocaleString("en-US")}`).join(", ")}`,
    );
  }
  lines.push(
    `- nvidia-smi: ${info.nvidiaSmi ? info.nvidiaSmi.map((g) => Object.values(g).join(", ")).join("; ") : "not found"}`,
    `- NVIDIA kernel driver: ${info.nvidiaKernelDriver ?? "not found"}`,
    `- Vulkan loader: ${info.vulkanLoader ?? "libvulkan.so.1 not found"}`,
    `- Vulkan ICD files: ${info.vulkanIcdFiles.join(", ") || "none found"}`,
    `- environment: ${
      Object.entries(info.environment).filter(([, v]) => v !== null).map(([k, v]) => `${k}=${v}`).join(", ") ||
      "none of the GPU variables set"
    }`,
    "",
    "## Backend equality against cpu",
    "",
  );
  if ("error" in result.equality) {
    lines.push(`Could not run: ${result.equality.error}`, "");
  } else {
    const eq = result.equality;
    const worst = eq.checks.reduce((w, c) => (c.maxRelativeDifference > w.maxRelativeDifference ? c : w));
    lines.push(
      `${eq.ok ? "Equal" : "NOT equal"} on \`${eq.backend}\`: ${
        eq.checks.filter((c) => c.ok).length
      }/${eq.checks.length} ` +
        `outputs within ${eq.tolerance} relative (largest difference ${
          worst.maxRelativeDifference.toExponential(2)
        }, ` +
        `${worst.name}); tensors left behind: ${eq.tensorGrowth}.`,
      "",
    );
  }
  lines.push(
    "## Throughput",
    "",
    "| workload | backend | value | unit | s per call | size | tensors leaked |",
    "|---|---|---|---|---|---|---|",
  );
  for (const t of result.timings) {
    lines.push(
      `| ${t.workload} | ${t.backend} | ${formatValue(t.value)} | ${t.unit} | ${
        formatValue(t.secondsPerCall)
      } | ${t.size} | ${t.tensorGrowth} |`,
    );
  }
  lines.push("");
  const known = result.speedups.filter((s) => s.speedup !== null);
  if (known.length) {
    lines.push(
      `Speed of \`${result.target}\` over wasm in this run: ` +
        known.map((s) => `${s.workload} ${s.speedup!.toFixed(2)}x`).join(", ") + ".",
      "",
    );
  }
  if (result.errors.length) lines.push("## Errors", "", ...result.errors.map((e) => `- ${e}`), "");
  return lines.join("\n");
}
