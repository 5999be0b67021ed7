/**
 * The tfjs part of `deno task bench` for ONE backend at ONE thread count: embedding, head-mode and
 * full-mode training (tiny and real presets), the ConvNeXt-on-onnxruntime embedding and the kernel
 * micro-benchmarks. tfjs-backend-wasm sets its thread pool once per process, so scripts/bench.ts runs
 * this in a child process per thread count (`TFJS_WASM_THREADS`) and merges the rows.
 */
import { type BackendName, selectBackend } from "../backend.ts";
import { presetByName, type SiameseRuCLIPConfig } from "../model/presets.ts";
import { createSiameseRuCLIP } from "../model/siamese.ts";
import { benchEmbedding, benchTrainingStep } from "./model_bench.ts";
import { benchKernels } from "./kernels.ts";
import { wasmFeatures } from "./machine.ts";
import type { BenchRow } from "./report.ts";
import type { TorchBenchResult } from "./torch_runner.ts";

/** What the child is asked to measure. */
export interface TfjsBenchOptions {
  backend: BackendName;
  quick: boolean;
  /** PyTorch's numbers of the same run (main preset, and the tiny preset for full mode), to fill torchValue. */
  torchMain?: TorchBenchResult;
  torchTiny?: TorchBenchResult;
  /** Sizes shared with the PyTorch side. */
  sizes: TfjsBenchSizes;
  log?: (message: string) => void;
}

/** Batch sizes and step counts of the bench (the PyTorch side gets the same). */
export interface TfjsBenchSizes {
  batch: number;
  headPairs: number;
  headSteps: number;
  /** Full-mode pairs per step on the real preset (over twice as many products). */
  realFullPairs: number;
  realFullSteps: number;
}

/** The rows and the raw numbers of one backend at one thread count. */
export interface TfjsBenchResult {
  backend: string;
  threads: number | undefined;
  rows: BenchRow[];
  record: Record<string, unknown>;
  /** Tensors leaked by any timed workload (the bench fails when this is not 0). */
  tensorGrowth: number;
}

const errorText = (error: unknown): string =>
  String(error instanceof Error ? error.message : error).split("\n")[0].slice(0, 160);

/** Runs the workloads of one backend (see the module comment). Failures become rows with a note. */
export async function benchTfjsBackend(options: TfjsBenchOptions): Promise<TfjsBenchResult> {
  const { backend, quick, sizes, torchMain, torchTiny } = options;
  const log = options.log ?? (() => {});
  const preset: SiameseRuCLIPConfig = presetByName(quick ? "tiny" : "real");
  const tiny = presetByName("tiny");
  const rows: BenchRow[] = [];
  const record: Record<string, unknown> = {};
  let tensorGrowth = 0;
  let threads: number | undefined;
  try {
    await selectBackend(backend, { quiet: true });
  } catch (error) {
    log(`${backend}: unavailable (${errorText(error)})`);
    rows.push({
      section: "embedding",
      item: `${preset.name} preset`,
      backend,
      value: null,
      unit: "products/s",
      direction: "higher",
      note: `unavailable: ${errorText(error)}`,
    });
    return { backend, threads, rows, record, tensorGrowth };
  }
  if (backend === "wasm") {
    const features = await wasmFeatures();
    record.wasm = features;
    threads = features.threads ?? 1;
  }
  const label = threads === undefined ? backend : `${backend}, ${threads} thread${threads > 1 ? "s" : ""}`;
  const push = (row: Omit<BenchRow, "backend" | "threads">): void => {
    rows.push({ ...row, backend, ...(threads === undefined ? {} : { threads }) });
  };

  // The cpu backend (plain JS, ~1 GFLOP/s) needs minutes per real-preset product: bench it on the tiny preset only.
  const config = backend === "cpu" && !quick ? tiny : preset;
  const batch = backend === "cpu" && !quick ? 8 : sizes.batch;
  const torchForConfig = config.name === preset.name ? torchMain : torchTiny;
  const model = createSiameseRuCLIP(config, { seed: 0 });
  try {
    log(`${label}: embedding, ${config.name} preset, batch ${batch} ...`);
    const embed = await benchEmbedding(model, { batchSize: batch, batches: 1 });
    record.embed = embed;
    push({
      section: "embedding",
      item: `${config.name} preset, batch ${batch}`,
      value: embed.productsPerSecond,
      unit: "products/s",
      direction: "higher",
      torchValue: torchForConfig?.batchSize === batch ? torchForConfig.embed.productsPerSecond : null,
      note: `image tower ${(100 * embed.imageTowerSeconds / embed.secondsPerBatch).toFixed(0)}% of the time` +
        (config !== preset ? "; cpu backend too slow for the real preset" : ""),
    });
    log(`${label}: head-mode training ...`);
    const head = await benchTrainingStep(model, {
      mode: "head",
      pairs: sizes.headPairs,
      products: 2 * sizes.headPairs,
      steps: sizes.headSteps,
    });
    record.trainHead = head;
    tensorGrowth += head.tensorGrowth;
    push({
      section: "training",
      item: `head mode, ${config.name} preset, ${sizes.headPairs} pairs/step`,
      value: head.pairsPerSecond,
      unit: "pairs/s",
      direction: "higher",
      torchValue: torchForConfig?.trainHead.pairsPerSecond ?? null,
      note: `demo epoch of 2,000 pairs: ${(2000 / head.pairsPerSecond).toFixed(1)} s` + leakNote(head.tensorGrowth),
    });
  } catch (error) {
    log(`${label}: failed (${errorText(error)})`);
    record.error = errorText(error);
  } finally {
    model.dispose();
  }

  // Full-mode training: the tiny preset (both sides), and the real preset (a few steps) except on cpu.
  const fullConfigs = quick ? [preset] : backend === "cpu" ? [tiny] : [tiny, preset];
  for (const fullConfig of fullConfigs) {
    const real = fullConfig.name === "real";
    const pairs = real ? sizes.realFullPairs : 8;
    const fullModel = createSiameseRuCLIP(fullConfig, { seed: 0 });
    try {
      log(`${label}: full-mode training, ${fullConfig.name} preset, ${pairs} pairs/step ...`);
      const full = await benchTrainingStep(fullModel, {
        mode: "full",
        pairs,
        products: 2 * pairs,
        steps: real ? sizes.realFullSteps : 2,
      });
      record[`trainFull_${fullConfig.name}`] = full;
      tensorGrowth += full.tensorGrowth;
      const torchSide = real ? torchMain?.trainFull : (quick ? torchMain : torchTiny)?.trainFull;
      push({
        section: "training",
        item: `full mode, ${fullConfig.name} preset, ${pairs} pairs/step`,
        value: full.pairsPerSecond,
        unit: "pairs/s",
        direction: "higher",
        torchValue: torchSide && torchSide.pairsPerStep === pairs ? torchSide.pairsPerSecond : null,
        note: `${full.secondsPerStep.toFixed(2)} s per step, ${full.steps} timed after a warm-up` +
          leakNote(full.tensorGrowth),
      });
    } catch (error) {
      log(`${label}: full mode ${fullConfig.name} failed (${errorText(error)})`);
      push({
        section: "training",
        item: `full mode, ${fullConfig.name} preset, ${pairs} pairs/step`,
        value: null,
        unit: "pairs/s",
        direction: "higher",
        note: `failed: ${errorText(error)}`,
      });
    } finally {
      fullModel.dispose();
    }
  }

  if (backend === "wasm") {
    // ConvNeXt on onnxruntime (our weights), BERT towers and head on tfjs-wasm at this thread count.
    const mixedModel = createSiameseRuCLIP(preset, { seed: 0 });
    try {
      log(`${label}: onnxruntime image tower + tfjs text towers, embedding, batch ${sizes.batch} ...`);
      const { benchEmbeddingOnnxImage } = await import("./ort_bench.ts");
      const mixed = await benchEmbeddingOnnxImage(mixedModel, { batchSize: sizes.batch, threads: threads ?? 1 });
      record.embedOnnxImage = mixed;
      push({
        section: "embedding",
        item: `${preset.name} preset, batch ${mixed.batchSize}, ConvNeXt on onnxruntime + BERT towers on tfjs`,
        value: mixed.productsPerSecond,
        unit: "products/s",
        direction: "higher",
        torchValue: torchMain?.batchSize === mixed.batchSize ? torchMain.embed.productsPerSecond : null,
        note: `image tower ${(100 * mixed.imageTowerSeconds / mixed.secondsPerBatch).toFixed(0)}% of the time` +
          `, onnxruntime at ${mixed.threads} thread${mixed.threads > 1 ? "s" : ""}`,
      });
    } catch (error) {
      log(`${label}: onnxruntime image tower row failed (${errorText(error)})`);
      record.embedOnnxImageError = errorText(error);
    } finally {
      mixedModel.dispose();
    }
    // Every frozen tower on onnxruntime (TOWER_RUNTIME=auto on a CPU backend), the head on tfjs-wasm.
    const onnxModel = createSiameseRuCLIP(preset, { seed: 0 });
    try {
      log(`${label}: every tower on onnxruntime, embedding, batch ${sizes.batch} ...`);
      const { benchEmbeddingOnnxTowers } = await import("./ort_bench.ts");
      const towers = await benchEmbeddingOnnxTowers(onnxModel, { batchSize: sizes.batch, threads: threads ?? 1 });
      record.embedOnnxTowers = towers;
      push({
        section: "embedding",
        item: `${preset.name} preset, batch ${towers.batchSize}, every tower on onnxruntime (TOWER_RUNTIME=auto)`,
        value: towers.productsPerSecond,
        unit: "products/s",
        direction: "higher",
        torchValue: torchMain?.batchSize === towers.batchSize ? torchMain.embed.productsPerSecond : null,
        note: `towers ${(100 * towers.imageTowerSeconds / towers.secondsPerBatch).toFixed(0)}% of the time` +
          `, onnxruntime at ${towers.threads} thread${towers.threads > 1 ? "s" : ""}; sessions built in ` +
          `${towers.buildSeconds.toFixed(1)} s`,
      });
    } catch (error) {
      log(`${label}: onnxruntime towers row failed (${errorText(error)})`);
      record.embedOnnxTowersError = errorText(error);
    } finally {
      onnxModel.dispose();
    }
    log(`${label}: kernels ...`);
    const kernels = await benchKernels(quick ? { images: 1, size: 28 } : {});
    record.kernels = kernels;
    for (const k of kernels) {
      push({
        section: "kernels",
        item: k.name,
        value: k.gflops,
        unit: "GFLOP/s",
        direction: "higher",
        note: `${k.milliseconds.toFixed(1)} ms`,
      });
    }
  }
  return { backend, threads, rows, record, tensorGrowth };
}

function leakNote(growth: number): string {
  return growth === 0 ? "" : `; LEAK: ${growth} tensors left per run`;
}
