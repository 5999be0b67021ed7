/**
 * `deno task wdc`: the WDC Products benchmark in one run (lib/bench/wdc_benchmark.ts): imports the
 * benchmark (or reuses a complete import), pretrains the text towers without labels on the training
 * products' titles and descriptions, trains SiameseRuCLIP on the training pairs (trials chosen by
 * validation F1), scores the three test sets at the validation-chosen threshold, next to the TF-IDF,
 * starting-tower and random-tower baselines and the published anchors.
 *
 *   deno task wdc [--size small|medium] [--epochs N] [--seed S] [--quick] [--dir FOLDER]
 *                 [--trials name,name] [--trial 'name:lr=3e-3,batch=64,...' ...] [--max-train-pairs N] [--fast-matmul]
 *                 [--name-pooling mean|cls] [--pretrain-epochs N]
 *
 * --pretrain-epochs 0 turns the label-free pretraining off (the trials start from random towers).
 *
 * --trials picks built-in trials by name; each --trial adds one (keys: see `parseWdcTrial`); with either,
 * only those run.
 *
 * Writes reports/wdc_benchmark.json and reports/wdc_benchmark.md (or $CLIP_SIAMESE_REPORTS); the dataset
 * and checkpoints go under data/ (git-ignored). The tfjs backend is $TFJS_BACKEND, else automatic (wasm
 * on a CPU machine; TFJS_WASM_THREADS sets its threads).
 *
 * On wasm the suite's per-slice XNNPACK BatchMatMul wrapper (kernel_bridge.ts `registerFastMatMul`) is
 * taken off for this run unless --fast-matmul: it pays an XNNPACK operator per batch entry, and the tiny
 * preset's attention products (128 slices of 32x16 per layer and batch) are so small that tfjs' own loop is
 * about 15x faster on them (a text-tower forward of 64 products: 1.3 s with the wrapper, 0.08 s without).
 */
import { parseArgs } from "node:util";
import { selectBackend } from "../lib/backend.ts";
import {
  parseWdcTrial,
  renderWdcMarkdown,
  runWdcBenchmark,
  WDC_DEFAULT_TRIALS,
  WDC_QUICK_TRIALS,
  writeWdcReports,
} from "../lib/bench/wdc_benchmark.ts";
import { WDC_SIZES, type WdcSize } from "../lib/data/wdc_products.ts";
import { unregisterFastMatMul } from "../lib/kernel_bridge.ts";
import { NAME_POOLINGS, type NamePooling } from "../lib/model/ruclip.ts";
import { shownPath } from "../lib/paths.ts";
import { tf } from "../lib/tf.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    size: { type: "string", default: "small" },
    epochs: { type: "string" },
    seed: { type: "string", default: "42" },
    quick: { type: "boolean", default: false },
    dir: { type: "string" },
    trials: { type: "string" },
    trial: { type: "string", multiple: true },
    "max-train-pairs": { type: "string" },
    "fast-matmul": { type: "boolean", default: false },
    "name-pooling": { type: "string", default: "mean" },
    "pretrain-epochs": { type: "string" },
  },
});

function integer(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n)) throw new Error(`--${name} ${JSON.stringify(text)}: expected an integer`);
  return n;
}

if (!(NAME_POOLINGS as readonly string[]).includes(values["name-pooling"]!)) {
  throw new Error(`--name-pooling ${values["name-pooling"]}: use one of ${NAME_POOLINGS.join(", ")}`);
}
if (!(WDC_SIZES as readonly string[]).includes(values.size!)) {
  throw new Error(`--size ${values.size}: use one of ${WDC_SIZES.join(", ")}`);
}
const known = [...WDC_DEFAULT_TRIALS, ...WDC_QUICK_TRIALS];
const picked = values.trials?.split(",").map((name) => {
  const trial = known.find((t) => t.name === name.trim());
  if (!trial) throw new Error(`--trials: unknown trial "${name}"; known: ${known.map((t) => t.name).join(", ")}`);
  return trial;
}) ?? [];
const custom = (values.trial ?? []).map(parseWdcTrial);
const trials = picked.length + custom.length > 0 ? [...picked, ...custom] : undefined;

const backend = await selectBackend();
const environment: Record<string, string> = {
  backend: `${backend.backend} (${backend.detail ?? backend.reason})`,
  TFJS_WASM_THREADS: Deno.env.get("TFJS_WASM_THREADS") ?? "(default)",
};
if (backend.backend === "wasm" && !values["fast-matmul"]) {
  unregisterFastMatMul();
  environment.batchMatMul = "tfjs-wasm's own kernel (the per-slice XNNPACK wrapper is slower on the tiny preset)";
}
const pretrainEpochs = integer("pretrain-epochs", values["pretrain-epochs"]);
if (pretrainEpochs !== undefined && pretrainEpochs < 0) {
  throw new Error(`--pretrain-epochs ${pretrainEpochs}: expected 0 (no pretraining) or more`);
}
const result = await runWdcBenchmark({
  size: values.size as WdcSize,
  dir: values.dir,
  epochs: integer("epochs", values.epochs),
  seed: integer("seed", values.seed),
  quick: values.quick,
  trials,
  maxTrainPairs: integer("max-train-pairs", values["max-train-pairs"]),
  namePooling: values["name-pooling"] as NamePooling,
  pretraining: pretrainEpochs === 0 ? null : pretrainEpochs === undefined ? {} : { epochs: pretrainEpochs },
  environment,
});
const written = await writeWdcReports(result);
console.log("\n" + renderWdcMarkdown(result));
console.log(`wrote ${shownPath(written.json)} and ${shownPath(written.markdown)}`);
const leaked = tf.memory().numTensors;
if (leaked > 0) console.warn(`${leaked} tensors still allocated at the end`);
