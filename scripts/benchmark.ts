/**
 * `deno task benchmark`: every trial and baseline on one dataset in one pass (lib/experiment/benchmark.ts),
 * the reports under reports/benchmarks/ (or $CLIP_SIAMESE_REPORTS/benchmarks/).
 *
 *   deno task benchmark --dataset <imported dataset | wdc-products-80cc-small | wdc-products-80cc-medium | demo>
 *                       [--seeds N] [--seed S] [--quick] [--epochs N] [--trials name,name]
 *                       [--trial 'name:mode=text,lr=1e-3,epochs=8,residual=1' ...] [--no-classifier]
 *                       [--max-train-pairs N] [--wdc-dir FOLDER] [--fast-matmul]
 *
 * --seeds N runs N seeds (S, S+1, ...; S default 42) and reports the mean and spread. --trials picks the
 * plan's trials by name; each --trial adds one (keys: see `parseTrial`); with either, only those run. A WDC
 * preset imports the benchmark from --wdc-dir, else $WDC_PRODUCTS_DIR, else ../shared/data/wdc-products,
 * unless a complete import exists. A restarted run reads finished trials back instead of training them again.
 *
 * On wasm, the suite's per-slice XNNPACK BatchMatMul wrapper (kernel_bridge.ts `registerFastMatMul`) is taken
 * off for the tiny preset unless --fast-matmul: its attention products are so small that tfjs' own loop is
 * about 15x faster on them.
 */
import { parseArgs } from "node:util";
import { selectBackend } from "../lib/backend.ts";
import { type BenchmarkTrial, parseTrial, runBenchmark } from "../lib/experiment/benchmark.ts";
import { benchmarkPlan } from "../lib/experiment/benchmark_presets.ts";
import { f1Table, writeBenchmarkReports } from "../lib/experiment/benchmark_report.ts";
import { unregisterFastMatMul } from "../lib/kernel_bridge.ts";
import { shownPath } from "../lib/paths.ts";
import { tf } from "../lib/tf.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    dataset: { type: "string" },
    seeds: { type: "string", default: "1" },
    seed: { type: "string", default: "42" },
    quick: { type: "boolean", default: false },
    epochs: { type: "string" },
    trials: { type: "string" },
    trial: { type: "string", multiple: true },
    "no-classifier": { type: "boolean", default: false },
    "max-train-pairs": { type: "string" },
    "wdc-dir": { type: "string" },
    "fast-matmul": { type: "boolean", default: false },
  },
});

function integer(name: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) {
    throw new Error(`--${name} ${JSON.stringify(text)}: expected an integer >= ${min}`);
  }
  return n;
}

if (!values.dataset) {
  throw new Error(
    "--dataset is required: an imported dataset's name, or a preset (wdc-products-80cc-small, " +
      "wdc-products-80cc-medium, demo)",
  );
}
const count = integer("seeds", values.seeds, 1)!;
const base = integer("seed", values.seed, 0)!;
const plan = await benchmarkPlan(values.dataset, { wdcDir: values["wdc-dir"], log: console.log });
const known = [...plan.trials, ...plan.quickTrials];
const picked: BenchmarkTrial[] = values.trials?.split(",").map((name) => {
  const trial = known.find((t) => t.name === name.trim());
  if (!trial) throw new Error(`--trials: unknown trial "${name}"; known: ${known.map((t) => t.name).join(", ")}`);
  return trial;
}) ?? [];
const custom = (values.trial ?? []).map(parseTrial);
const trials = picked.length + custom.length > 0 ? [...picked, ...custom] : undefined;

const backend = await selectBackend();
const environment: Record<string, string> = {
  backend: `${backend.backend} (${backend.detail ?? backend.reason})`,
  TFJS_WASM_THREADS: Deno.env.get("TFJS_WASM_THREADS") ?? "(default)",
};
if (backend.backend === "wasm" && plan.model.preset === "tiny" && !values["fast-matmul"]) {
  unregisterFastMatMul();
  environment.batchMatMul = "tfjs-wasm's own kernel (the per-slice XNNPACK wrapper is slower on the tiny preset)";
}
const result = await runBenchmark(plan, {
  seeds: Array.from({ length: count }, (_, i) => base + i),
  trials,
  quick: values.quick,
  epochs: integer("epochs", values.epochs, 1),
  classifier: !values["no-classifier"],
  maxTrainPairs: integer("max-train-pairs", values["max-train-pairs"], 1),
  environment,
  backend: {
    name: backend.backend,
    threads: Number(backend.detail?.match(/(\d+) thread/)?.[1]) || null,
  },
});
const written = await writeBenchmarkReports(result);
console.log(["", ...f1Table(result), ""].join("\n"));
console.log(`wrote ${[written.json, written.markdown, written.html].map(shownPath).join(", ")}`);
const leaked = tf.memory().numTensors;
if (leaked > 0) console.warn(`${leaked} tensors still allocated at the end`);
