/**
 * `deno task bench`: speed of the tfjs SiameseRuCLIP against PyTorch on this machine.
 *
 *   deno task bench                      full bench (real preset, batch 32; about 5-8 minutes on 2 cores)
 *   deno task bench --quick              smoke test (tiny preset, small sizes; well under a minute)
 *   deno task bench --backends wasm,cpu,webgpu-software,webgpu
 *   deno task bench --full-real          also time a real-preset full-mode step on tfjs (very slow on wasm)
 *   deno task bench --no-torch           skip PyTorch
 *
 * Prints a table and writes reports/bench.json (every number, machine and versions) and reports/bench.md.
 */
import { join } from "node:path";
import { type BackendName, parseBackendName, selectBackend } from "../lib/backend.ts";
import { presetByName, type SiameseRuCLIPConfig } from "../lib/model/presets.ts";
import { createSiameseRuCLIP } from "../lib/model/siamese.ts";
import { benchEmbedding, benchEmbeddingOnnxImage, benchTrainingStep } from "../lib/bench/model_bench.ts";
import { benchEvaluation } from "../lib/bench/eval_bench.ts";
import { benchKernels } from "../lib/bench/kernels.ts";
import { machineInfo, wasmFeatures } from "../lib/bench/machine.ts";
import { type BenchRow, renderMarkdownTable, renderTextTable, speedRatio } from "../lib/bench/report.ts";
import { runTorchBench, type TorchBenchResult } from "../lib/bench/torch_runner.ts";
import { writeFileAtomic, writeJsonAtomic } from "../lib/fs.ts";
import { reportsDir } from "../lib/paths.ts";

const args = Deno.args;
const quick = args.includes("--quick");
const withTorch = !args.includes("--no-torch");
const fullReal = args.includes("--full-real");
const backendArg = args.find((a) => a.startsWith("--backends"));
const backendList = backendArg
  ? (backendArg.includes("=") ? backendArg.split("=")[1] : args[args.indexOf(backendArg) + 1])
  : "wasm";
const backends = backendList.split(",").map((b) => parseBackendName(b)).filter((b): b is BackendName => b !== "auto");
const cores = navigator.hardwareConcurrency;

const preset: SiameseRuCLIPConfig = presetByName(quick ? "tiny" : "real");
const tiny = presetByName("tiny");
const sizes = quick
  ? { batch: 8, headPairs: 60, headSteps: 5, evalPairs: 20_000, catalog: 1_000 }
  : { batch: 32, headPairs: 60, headSteps: 10, evalPairs: 110_780, catalog: 5_562 };
const rows: BenchRow[] = [];
const details: Record<string, unknown> = {};
const log = (message: string): void => console.log(`[bench] ${message}`);
const errorText = (error: unknown): string =>
  String(error instanceof Error ? error.message : error).split("\n")[0].slice(0, 160);

// ---------------------------------------------------------------- PyTorch (run first: it uses every core)
let torchMain: TorchBenchResult | undefined;
let torchTiny: TorchBenchResult | undefined;
let onnxPath: string | undefined;
if (withTorch) {
  const tmp = await Deno.makeTempDir({ prefix: "bench-onnx-" });
  log(`PyTorch: ${preset.name} preset, batch ${sizes.batch}, ${cores} threads ...`);
  const main = await runTorchBench({
    threads: cores,
    preset: quick ? "tiny" : "real",
    batchSize: sizes.batch,
    imageSize: preset.imageSize,
    tokens: preset.maxTokens,
    trainPairs: quick ? 8 : 1,
    headPairs: sizes.headPairs,
    headSteps: sizes.headSteps * 2,
    exportOnnx: join(tmp, "convnext.onnx"),
  });
  if ("error" in main) {
    log(`PyTorch skipped: ${main.error}`);
    details.torchError = main.error;
  } else {
    torchMain = main;
    if (main.onnx && "path" in main.onnx) onnxPath = main.onnx.path;
  }
  if (torchMain && !quick) {
    log("PyTorch: tiny preset (full-mode training comparison) ...");
    const small = await runTorchBench({
      threads: cores,
      preset: "tiny",
      batchSize: 8,
      imageSize: tiny.imageSize,
      tokens: tiny.maxTokens,
      trainPairs: 8,
      headPairs: sizes.headPairs,
      headSteps: 5,
    });
    if (!("error" in small)) torchTiny = small;
  }
}
details.torch = { main: torchMain, tiny: torchTiny };

// ---------------------------------------------------------------- tfjs, per backend
const perBackend: Record<string, unknown> = {};
for (const backend of backends) {
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
    continue;
  }
  const record: Record<string, unknown> = {};
  perBackend[backend] = record;
  if (backend === "wasm") record.wasm = await wasmFeatures();
  // The cpu backend (plain JS, ~1 GFLOP/s) needs minutes per real-preset product: bench it on the tiny preset only.
  const config = backend === "cpu" && !quick ? tiny : preset;
  const batch = backend === "cpu" && !quick ? 8 : sizes.batch;
  const torchForConfig = config.name === preset.name ? torchMain : torchTiny;
  const model = createSiameseRuCLIP(config, { seed: 0 });
  try {
    log(`${backend}: embedding, ${config.name} preset, batch ${batch} ...`);
    const embed = await benchEmbedding(model, { batchSize: batch, batches: 1 });
    record.embed = embed;
    rows.push({
      section: "embedding",
      item: `${config.name} preset, batch ${batch}`,
      backend,
      value: embed.productsPerSecond,
      unit: "products/s",
      direction: "higher",
      torchValue: torchForConfig?.batchSize === batch ? torchForConfig.embed.productsPerSecond : null,
      note: `image tower ${(100 * embed.imageTowerSeconds / embed.secondsPerBatch).toFixed(0)}% of the time` +
        (config !== preset ? "; cpu backend too slow for the real preset" : ""),
    });
    log(`${backend}: head-mode training ...`);
    const head = await benchTrainingStep(model, {
      mode: "head",
      pairs: sizes.headPairs,
      products: 2 * sizes.headPairs,
      steps: sizes.headSteps,
    });
    record.trainHead = head;
    rows.push({
      section: "training",
      item: `head mode, ${config.name} preset, ${sizes.headPairs} pairs/step`,
      backend,
      value: head.pairsPerSecond,
      unit: "pairs/s",
      direction: "higher",
      torchValue: torchForConfig?.trainHead.pairsPerSecond ?? null,
      note: `demo epoch of 2,000 pairs: ${(2000 / head.pairsPerSecond).toFixed(1)} s`,
    });
  } catch (error) {
    log(`${backend}: failed (${errorText(error)})`);
    record.error = errorText(error);
  } finally {
    model.dispose();
  }
  // Full-mode training: the real preset on wasm needs the cpu-bridged depthwise/gather gradients and takes minutes
  // per product, so by default it is timed on the tiny preset (both sides); --full-real also tries the real one.
  const fullConfigs = quick ? [preset] : fullReal ? [tiny, preset] : [tiny];
  for (const fullConfig of fullConfigs) {
    const fullModel = createSiameseRuCLIP(fullConfig, { seed: 0 });
    const pairs = fullConfig.name === "real" ? 1 : 8;
    try {
      log(`${backend}: full-mode training, ${fullConfig.name} preset, ${pairs} pairs/step ...`);
      const full = await benchTrainingStep(fullModel, {
        mode: "full",
        pairs,
        products: 2 * pairs,
        steps: 1,
        warmup: fullConfig.name !== "real",
      });
      record[`trainFull_${fullConfig.name}`] = full;
      const torchSide = fullConfig.name === "real" ? torchMain?.trainFull : (quick ? torchMain : torchTiny)?.trainFull;
      rows.push({
        section: "training",
        item: `full mode, ${fullConfig.name} preset, ${pairs} pairs/step`,
        backend,
        value: full.pairsPerSecond,
        unit: "pairs/s",
        direction: "higher",
        torchValue: torchSide && torchSide.pairsPerStep === pairs ? torchSide.pairsPerSecond : null,
        note: fullConfig.name === "real" ? "one step, no warm-up" : "",
      });
    } catch (error) {
      log(`${backend}: full mode ${fullConfig.name} failed (${errorText(error)})`);
      rows.push({
        section: "training",
        item: `full mode, ${fullConfig.name} preset`,
        backend,
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
    log("wasm: kernels ...");
    const kernels = await benchKernels(quick ? { images: 1, size: 28 } : {});
    record.kernels = kernels;
    for (const k of kernels) {
      rows.push({
        section: "kernels",
        item: k.name,
        backend,
        value: k.gflops,
        unit: "GFLOP/s",
        direction: "higher",
        note: `${k.milliseconds.toFixed(1)} ms`,
      });
    }
  }
}
details.backends = perBackend;

// ---------------------------------------------------------------- PyTorch-only rows, onnxruntime
if (torchMain && !backends.length) {
  rows.push({
    section: "embedding",
    item: `${preset.name} preset, batch ${sizes.batch}`,
    backend: "-",
    value: null,
    unit: "products/s",
    direction: "higher",
    torchValue: torchMain.embed.productsPerSecond,
  });
}
if (onnxPath) {
  try {
    const { benchOrtImageTower } = await import("../lib/bench/ort_bench.ts");
    log("onnxruntime: image tower ...");
    const ort = await benchOrtImageTower(onnxPath, {
      batchSize: quick ? 4 : 8,
      imageSize: preset.imageSize,
      threads: [1, cores],
    });
    details.onnxruntime = ort;
    const wasmEmbed = (perBackend.wasm as { embed?: { batchSize: number; imageTowerSeconds: number } } | undefined)
      ?.embed;
    if (wasmEmbed) {
      rows.push({
        section: "image tower",
        item: `ConvNeXt ${preset.imageSize}px, batch ${wasmEmbed.batchSize}`,
        backend: "wasm",
        value: wasmEmbed.batchSize / wasmEmbed.imageTowerSeconds,
        unit: "images/s",
        direction: "higher",
        torchValue: torchMain ? torchMain.batchSize / torchMain.embedSplit.imageTowerSeconds : null,
      });
    }
    for (const r of ort) {
      rows.push({
        section: "image tower",
        item: `ConvNeXt ${preset.imageSize}px, batch ${r.batchSize}, torch-exported ONNX`,
        backend: `onnxruntime ${r.threads} thread${r.threads > 1 ? "s" : ""}`,
        value: r.imagesPerSecond,
        unit: "images/s",
        direction: "higher",
        torchValue: torchMain ? torchMain.batchSize / torchMain.embedSplit.imageTowerSeconds : null,
      });
    }
  } catch (error) {
    log(`onnxruntime skipped (${errorText(error)})`);
    details.onnxruntimeError = errorText(error);
  } finally {
    await Deno.remove(join(onnxPath, ".."), { recursive: true }).catch(() => {});
  }
}

// ---------------------------------------------------------------- embedding: ConvNeXt on onnxruntime (our weights), BERTs on tfjs
if (backends.includes("wasm")) {
  const model = createSiameseRuCLIP(preset, { seed: 0 });
  try {
    await selectBackend("wasm", { quiet: true });
    log(`onnxruntime image tower (our weights) + tfjs wasm text towers: embedding, batch ${sizes.batch} ...`);
    const mixed = await benchEmbeddingOnnxImage(model, { batchSize: sizes.batch, threads: cores });
    details.embedOnnxImage = mixed;
    const torchImagesPerSecond = torchMain ? torchMain.batchSize / torchMain.embedSplit.imageTowerSeconds : null;
    rows.push(
      {
        section: "image tower",
        item: `ConvNeXt ${preset.imageSize}px, batch ${mixed.batchSize}, our weights as ONNX`,
        backend: `onnxruntime ${mixed.threads} thread${mixed.threads > 1 ? "s" : ""}`,
        value: mixed.batchSize / mixed.imageTowerSeconds,
        unit: "images/s",
        direction: "higher",
        torchValue: torchMain?.batchSize === mixed.batchSize ? torchImagesPerSecond : null,
        note: `graph + session built in ${mixed.buildSeconds.toFixed(1)} s`,
      },
      {
        section: "embedding",
        item: `${preset.name} preset, batch ${mixed.batchSize}, ConvNeXt on onnxruntime + BERT towers on tfjs`,
        backend: `onnxruntime + wasm`,
        value: mixed.productsPerSecond,
        unit: "products/s",
        direction: "higher",
        torchValue: torchMain?.batchSize === mixed.batchSize ? torchMain.embed.productsPerSecond : null,
        note: `image tower ${(100 * mixed.imageTowerSeconds / mixed.secondsPerBatch).toFixed(0)}% of the time`,
      },
    );
  } catch (error) {
    log(`onnxruntime image tower row failed (${errorText(error)})`);
    details.embedOnnxImageError = errorText(error);
  } finally {
    model.dispose();
  }
}

// ---------------------------------------------------------------- evaluation (scalar JS, backend-independent)
log(`evaluation: ${sizes.evalPairs} pairs, top-k over ${sizes.catalog} products ...`);
const evaluation = await benchEvaluation({ pairs: sizes.evalPairs, catalog: sizes.catalog });
details.evaluation = evaluation;
rows.push(
  {
    section: "evaluation",
    item: `all ${evaluation.pairs.toLocaleString("en-US")} query-candidate pairs (distances + ROC/AUC/AP/thresholds)`,
    backend: "JS",
    value: evaluation.allPairsMs,
    unit: "ms",
    direction: "lower",
    note: `distances ${evaluation.pairDistancesMs.toFixed(1)} ms`,
  },
  {
    section: "evaluation",
    item: `exact top-${evaluation.k}, ${evaluation.queries} queries x ${
      evaluation.catalog.toLocaleString("en-US")
    } catalog`,
    backend: "JS",
    value: evaluation.exactTopKMs,
    unit: "ms",
    direction: "lower",
  },
  {
    section: "evaluation",
    item: `usearch top-${evaluation.k}: build + search`,
    backend: evaluation.indexKind,
    value: evaluation.indexBuildMs == null ? null : evaluation.indexBuildMs + (evaluation.indexSearchMs ?? 0),
    unit: "ms",
    direction: "lower",
    note: evaluation.indexSearchMs == null ? "usearch unavailable" : `search ${evaluation.indexSearchMs.toFixed(1)} ms`,
  },
);

// ---------------------------------------------------------------- report
const machine = machineInfo();
const table = renderTextTable(rows);
console.log(`\nSiameseRuCLIP bench (${quick ? "quick" : "full"}) on ${machine.cores} cores, ${machine.cpuModel}`);
console.log(
  `Deno ${machine.deno}, tfjs ${machine.tfjs}` +
    (torchMain ? `, PyTorch ${torchMain.torch} (${torchMain.threads} threads)` : ", PyTorch not run"),
);
console.log(table);
const result = {
  createdAt: new Date().toISOString(),
  mode: quick ? "quick" : "full",
  machine,
  preset: preset.name,
  sizes,
  rows: rows.map((r) => ({ ...r, ratio: speedRatio(r.value, r.torchValue, r.direction) })),
  details,
};
const dir = reportsDir();
await Deno.mkdir(dir, { recursive: true });
await writeJsonAtomic(join(dir, "bench.json"), result);
const markdown = [
  `# SiameseRuCLIP speed bench (${quick ? "quick" : "full"})`,
  "",
  `${result.createdAt}; ${machine.cores} cores (${machine.cpuModel}), ${machine.memoryGiB} GiB; Deno ${machine.deno}, tfjs ${machine.tfjs}` +
  (torchMain ? `; PyTorch ${torchMain.torch} with ${torchMain.threads} threads` : "; PyTorch not run") + ".",
  "",
  "Ratios: above 1 means ours is faster than PyTorch (throughput ours/PyTorch; time PyTorch/ours).",
  "",
  renderMarkdownTable(rows),
  "",
].join("\n");
await writeFileAtomic(join(dir, "bench.md"), markdown);
log(`wrote ${join(dir, "bench.json")} and ${join(dir, "bench.md")}`);
