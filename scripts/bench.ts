/**
 * `deno task bench`: speed of the tfjs SiameseRuCLIP against PyTorch on this machine, in one run.
 *
 *   deno task bench                      full bench (real preset, batch 32, full-mode steps on both presets (real: 1 pair of 2 products per step: a bigger step needs more than the 4 GiB wasm32 heap);
 *                                        wasm at 1 and N threads; about 15-25 minutes on 2 cores)
 *   deno task bench --quick              smoke test (tiny preset, small sizes; about a minute)
 *   deno task bench --backends wasm,cpu,webgpu-software,webgpu   (default: wasm, and webgpu on a hardware GPU)
 *   deno task bench --threads 1,2        wasm thread counts (default: 1 and all cores)
 *   deno task bench --no-torch           skip PyTorch
 *   deno task bench --scale              ONLY the catalog-scale bench (lib/bench/scale_bench.ts): 1,000,000 x 462
 *                                        vectors, exact vs usearch vs LanceDB top-100 with and without a filter;
 *                                        writes reports/scale_bench.json and reports/scale_bench.md
 *     --scale-size 200000                catalog size (default 1,000,000)
 *     --scale-queries 50                 queries (default 50)
 *     --scale-methods exact,usearch,lancedb
 *     --lance-index ivf_pq|ivf_hnsw_sq|ivf_flat  --lance-partitions N  --lance-nprobes N  --lance-refine N
 *     --usearch-m N  --usearch-ef-add N  --usearch-ef N  --usearch-quantization f32|f16|i8
 *
 * tfjs-backend-wasm fixes its thread pool once per process, so each backend and thread count runs in a
 * child process (`--child`, TFJS_WASM_THREADS) whose rows are merged here. Prints a table and writes
 * reports/bench.json (every number, machine and versions) and reports/bench.md. Exits 1 when a timed
 * workload leaks tensors (tf memory must stay flat across steps).
 */
import { join } from "node:path";
import { type BackendName, parseBackendName } from "../lib/backend.ts";
import { presetByName, type SiameseRuCLIPConfig } from "../lib/model/presets.ts";
import { benchEvaluation } from "../lib/bench/eval_bench.ts";
import { describeAdapter } from "../lib/bench/gpu_info.ts";
import { machineInfo } from "../lib/bench/machine.ts";
import {
  attachThreadScaling,
  type BenchRow,
  renderMarkdownTable,
  renderTextTable,
  speedRatio,
} from "../lib/bench/report.ts";
import { benchTfjsBackend, type TfjsBenchResult, type TfjsBenchSizes } from "../lib/bench/tfjs_bench.ts";
import { runTorchBench, type TorchBenchResult } from "../lib/bench/torch_runner.ts";
import { writeFileAtomic, writeJsonAtomic } from "../lib/fs.ts";
import { reportsDir } from "../lib/paths.ts";

const args = Deno.args;
const option = (name: string): string | undefined => {
  const arg = args.find((a) => a === name || a.startsWith(`${name}=`));
  if (!arg) return undefined;
  return arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : args[args.indexOf(arg) + 1];
};

// ---------------------------------------------------------------- --scale: only the catalog-scale bench
if (args.includes("--scale")) {
  const { renderScaleMarkdown, runScaleBench } = await import("../lib/bench/scale_bench.ts");
  const int = (name: string): number | undefined => {
    const text = option(name);
    if (text === undefined) return undefined;
    const value = Number(text.replaceAll("_", "").replaceAll(",", ""));
    if (!Number.isInteger(value) || value < 1) throw new Error(`${name} ${text}: expected an integer >= 1`);
    return value;
  };
  const methods = (option("--scale-methods") ?? "exact,usearch,lancedb").split(",").map((m) => {
    if (m !== "exact" && m !== "usearch" && m !== "lancedb") {
      throw new Error(`--scale-methods ${m}: use exact, usearch and/or lancedb`);
    }
    return m;
  });
  const kind = option("--lance-index");
  if (kind !== undefined && !["ivf_pq", "ivf_hnsw_sq", "ivf_flat"].includes(kind)) {
    throw new Error(`--lance-index ${kind}: use ivf_pq, ivf_hnsw_sq or ivf_flat`);
  }
  const quantization = option("--usearch-quantization");
  if (quantization !== undefined && !["f32", "f16", "i8"].includes(quantization)) {
    throw new Error(`--usearch-quantization ${quantization}: use f32, f16 or i8`);
  }
  const workDir = await Deno.makeTempDir({ prefix: "scale-bench-", dir: Deno.env.get("SCALE_BENCH_DIR") });
  const scale = await runScaleBench({
    size: int("--scale-size") ?? 1_000_000,
    queries: int("--scale-queries"),
    workDir,
    methods,
    lance: {
      ...(kind ? { kind: kind as "ivf_pq" } : {}),
      partitions: int("--lance-partitions"),
      nprobes: int("--lance-nprobes"),
      refineFactor: int("--lance-refine"),
      ef: int("--lance-ef"),
    },
    usearch: {
      connectivity: int("--usearch-m"),
      expansionAdd: int("--usearch-ef-add"),
      expansionSearch: int("--usearch-ef"),
      ...(quantization ? { quantization: quantization as "f32" } : {}),
    },
    log: (message) => console.log(`[scale] ${message}`),
  });
  await Deno.remove(workDir, { recursive: true }).catch(() => {});
  const dir = reportsDir();
  const markdown = renderScaleMarkdown(scale);
  await writeJsonAtomic(join(dir, "scale_bench.json"), {
    createdAt: new Date().toISOString(),
    machine: machineInfo(),
    ...scale,
  });
  await writeFileAtomic(join(dir, "scale_bench.md"), markdown);
  console.log(markdown);
  console.log(`[scale] wrote ${join(dir, "scale_bench.json")} and ${join(dir, "scale_bench.md")}`);
  Deno.exit(0);
}

const quick = args.includes("--quick");
const withTorch = !args.includes("--no-torch");
const cores = navigator.hardwareConcurrency;
const preset: SiameseRuCLIPConfig = presetByName(quick ? "tiny" : "real");
const tiny = presetByName("tiny");
const sizes: TfjsBenchSizes & { evalPairs: number; catalog: number } = quick
  ? { batch: 8, headPairs: 60, headSteps: 5, realFullPairs: 4, realFullSteps: 1, evalPairs: 20_000, catalog: 1_000 }
  : { batch: 32, headPairs: 60, headSteps: 10, realFullPairs: 1, realFullSteps: 2, evalPairs: 110_780, catalog: 5_562 };
const log = (message: string): void => console.log(`[bench] ${message}`);
const errorText = (error: unknown): string =>
  String(error instanceof Error ? error.message : error).split("\n")[0].slice(0, 160);

// ---------------------------------------------------------------- child: one backend at one thread count
if (args.includes("--child")) {
  const backend = parseBackendName(option("--backend") ?? "wasm");
  const torchFile = option("--torch");
  const torch = torchFile ? JSON.parse(await Deno.readTextFile(torchFile)) : {};
  const result = await benchTfjsBackend({
    backend: backend === "auto" ? "wasm" : backend,
    quick,
    sizes,
    torchMain: torch.main,
    torchTiny: torch.tiny,
    log,
  });
  await writeJsonAtomic(option("--result")!, result);
  Deno.exit(0); // wasm's pthread workers must not keep the child alive
}

const backendList = option("--backends");
const backends: BackendName[] = backendList
  ? backendList.split(",").map((b) => parseBackendName(b)).filter((b): b is BackendName => b !== "auto")
  : ["wasm"];
if (!backendList) {
  const { adapter } = await describeAdapter();
  if (adapter && !adapter.software) backends.push("webgpu");
}
const threadCounts = [
  ...new Set(
    (option("--threads") ?? `1,${cores}`).split(",").map((t) => {
      const n = Number(t);
      if (!Number.isInteger(n) || n < 1) throw new Error(`--threads ${t}: thread counts are integers >= 1`);
      return n;
    }),
  ),
];
const rows: BenchRow[] = [];
const details: Record<string, unknown> = {};

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
    trainPairs: quick ? 8 : sizes.realFullPairs,
    trainSteps: quick ? 2 : sizes.realFullSteps,
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
      trainSteps: 2,
      headPairs: sizes.headPairs,
      headSteps: 5,
    });
    if (!("error" in small)) torchTiny = small;
  }
}
details.torch = { main: torchMain, tiny: torchTiny };

// ---------------------------------------------------------------- tfjs: a child process per backend and thread count
const tmp = await Deno.makeTempDir({ prefix: "bench-" });
const torchFile = join(tmp, "torch.json");
await writeJsonAtomic(torchFile, { main: torchMain, tiny: torchTiny });
const perBackend: Record<string, unknown> = {};
let leaked = 0;
for (const backend of backends) {
  for (const threads of backend === "wasm" ? threadCounts : [undefined]) {
    const key = threads === undefined ? backend : `${backend}@${threads}`;
    const resultFile = join(tmp, `${key}.json`);
    const childArgs = ["run", "-A", join(import.meta.dirname!, "bench.ts"), "--child", "--backend", backend];
    childArgs.push("--torch", torchFile, "--result", resultFile, ...(quick ? ["--quick"] : []));
    const env: Record<string, string> = threads === undefined ? {} : { TFJS_WASM_THREADS: String(threads) };
    const status = await new Deno.Command(Deno.execPath(), {
      args: childArgs,
      env,
      stdout: "inherit",
      stderr: "inherit",
    })
      .spawn().status;
    try {
      const result = JSON.parse(await Deno.readTextFile(resultFile)) as TfjsBenchResult;
      perBackend[key] = result.record;
      rows.push(...result.rows);
      leaked += result.tensorGrowth;
    } catch (error) {
      log(`${key}: the child process failed (exit ${status.code}): ${errorText(error)}`);
      rows.push({
        section: "embedding",
        item: `${preset.name} preset`,
        backend,
        ...(threads === undefined ? {} : { threads }),
        value: null,
        unit: "products/s",
        direction: "higher",
        note: `bench process failed (exit ${status.code})`,
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
    log("onnxruntime: image tower (torch-exported graph) ...");
    const ort = await benchOrtImageTower(onnxPath, {
      batchSize: quick ? 4 : 8,
      imageSize: preset.imageSize,
      threads: [...new Set([1, cores])],
    });
    details.onnxruntime = ort;
    for (const r of ort) {
      rows.push({
        section: "image tower",
        item: `ConvNeXt ${preset.imageSize}px, batch ${r.batchSize}, torch-exported ONNX`,
        backend: "onnxruntime",
        threads: r.threads,
        value: r.imagesPerSecond,
        unit: "images/s",
        direction: "higher",
        torchValue: torchMain ? torchMain.batchSize / torchMain.embedSplit.imageTowerSeconds : null,
      });
    }
  } catch (error) {
    log(`onnxruntime skipped (${errorText(error)})`);
    details.onnxruntimeError = errorText(error);
  }
}
for (const [key, record] of Object.entries(perBackend)) {
  const embed = (record as { embed?: { batchSize: number; imageTowerSeconds: number } }).embed;
  const threads = key.includes("@") ? Number(key.split("@")[1]) : undefined;
  if (!embed || !key.startsWith("wasm")) continue;
  rows.push({
    section: "image tower",
    item: `ConvNeXt ${preset.imageSize}px, batch ${embed.batchSize}`,
    backend: "wasm",
    ...(threads === undefined ? {} : { threads }),
    value: embed.batchSize / embed.imageTowerSeconds,
    unit: "images/s",
    direction: "higher",
    torchValue: torchMain ? torchMain.batchSize / torchMain.embedSplit.imageTowerSeconds : null,
  });
}
await Deno.remove(tmp, { recursive: true }).catch(() => {});
if (onnxPath) await Deno.remove(join(onnxPath, ".."), { recursive: true }).catch(() => {});

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
const scaledRows = attachThreadScaling(rows);
const table = renderTextTable(scaledRows);
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
  threadCounts,
  rows: scaledRows.map((r) => ({ ...r, ratio: speedRatio(r.value, r.torchValue, r.direction) })),
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
  "\"vs 1 thread\": the same row at N threads over its 1-thread value (tfjs-wasm's pool, onnxruntime's threads).",
  "",
  renderMarkdownTable(scaledRows),
  "",
].join("\n");
await writeFileAtomic(join(dir, "bench.md"), markdown);
log(`wrote ${join(dir, "bench.json")} and ${join(dir, "bench.md")}`);
if (leaked !== 0) {
  console.error(`[bench] FAILED: timed workloads left ${leaked} tensors behind (tf memory must stay flat)`);
  Deno.exit(1);
}
