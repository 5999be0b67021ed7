/**
 * What `deno task benchmark --dataset <name>` runs: a preset (WDC Products 80% corner cases, the demo), or
 * any dataset `import_pairwise_dataset` brought in, each resolved to a `BenchmarkPlan`. A WDC preset imports
 * the benchmark from its folder first (`WDC_PRODUCTS_DIR`, else ../shared/data/wdc-products) unless a
 * complete import is there.
 *
 * @module
 */
import { importPairs } from "../data/import_pairs.ts";
import { importedLayout, type ImportManifest, readImportManifest } from "../data/imported_dataset.ts";
import { datasetLayout, DEMO_DATASET } from "../data/layout.ts";
import { splitFiles } from "../data/pairs.ts";
import { WDC_PREFIX, WDC_TEST_SETS, wdcImportOptions, type WdcSize } from "../data/wdc_products.ts";
import { exists } from "../fs.ts";
import { join } from "node:path";
import { dataDir, shippedDir, shownPath } from "../paths.ts";
import { DEMO_SENTENCE_MODEL } from "../text/sbert.ts";
import {
  DEFAULT_TRAINING_CONFIG,
  SUITE_HEAD_RESIDUAL,
  SUITE_TRAINING_DEFAULTS,
  type TrainingConfig,
} from "../train/config.ts";
import type { TextPretrainingConfig } from "../train/text_pretraining.ts";
import type { BenchmarkPlan, BenchmarkTrial, PublishedAnchor } from "./benchmark.ts";

/** The presets by name. */
export const BENCHMARK_PRESETS = ["wdc-products-80cc-small", "wdc-products-80cc-medium", "demo"] as const;

/** Label-free text pretraining of towers that start from random weights (an imported dataset's). */
export const IMPORTED_TEXT_PRETRAINING: Omit<TextPretrainingConfig, "seed"> = {
  epochs: 10,
  batchSize: 128,
  learningRate: 1e-3,
  weightDecay: 0.01,
  temperature: 0.05,
};

/** Training defaults for towers from scratch (they want a larger step than fine-tuning). */
export const IMPORTED_TRAINING_DEFAULTS: TrainingConfig = {
  ...DEFAULT_TRAINING_CONFIG,
  mode: "text",
  epochs: 4,
  batchSize: 32,
  learningRate: 1e-3,
  margin: 1,
  loss: "contrastive",
  bestMetric: "f1",
  plateauPatience: 1,
};

/**
 * The trials on an imported dataset (about 15 minutes on 2 cores for WDC small), each from the label-free
 * pretrained towers: text mode (text towers and head train) with the raw tower distance kept as a residual at
 * two scales, and head mode (towers frozen). Measured before on WDC: text mode without a residual, or with
 * 0.1, online contrastive and weight decay 0.1 were behind on validation.
 */
export const IMPORTED_TRIALS: BenchmarkTrial[] = [
  { name: "text-residual1-e8", config: { epochs: 8 }, headResidual: 1 },
  { name: "text-residual0.3-e8", config: { epochs: 8 }, headResidual: 0.3 },
  { name: "head-residual0.1-e10", config: { mode: "head", epochs: 10 }, headResidual: 0.1 },
];

const QUICK_IMPORTED_TRIALS: BenchmarkTrial[] = [{
  name: "text-residual1-quick",
  config: { epochs: 1 },
  headResidual: 1,
}];

const WDC_PAPER = "WDC Products paper (Peeters, Der, Bizer, EDBT 2024), Table 3, as quoted in " +
  "../shared/data/wdc-products/README.md";
const TAILORMATCH = "TailorMatch (Steiner, Peeters, Bizer, arXiv 2409.08185), best of four prompts chosen on that " +
  "test set (optimistic), as quoted in ../shared/data/wdc-products/README.md";

/** The published anchors of WDC Products 80% corner cases, small training set where training is used. */
export const WDC_PUBLISHED_ANCHORS: PublishedAnchor[] = [
  ...([
    ["word co-occurrence SVM", [0.437, 0.401, 0.275]],
    ["Magellan", [0.312, 0.338, 0.333]],
    ["RoBERTa (fine-tuned)", [0.655, 0.667, 0.645]],
    ["Ditto", [0.607, 0.569, 0.557]],
    ["HierGAT", [0.597, 0.615, 0.606]],
    ["R-SupCon", [0.775, 0.643, 0.519]],
  ] as const).flatMap(([method, f1s]) =>
    ["test", "test_half_unseen", "test_unseen"].map((split, i) => ({ method, split, f1: f1s[i], source: WDC_PAPER }))
  ),
  ...([
    ["GPT-4o-mini (zero-shot)", 0.816],
    ["GPT-4o-mini (fine-tuned on small)", 0.834],
    ["Llama-3.1-70B (zero-shot)", 0.752],
    ["Llama-3.1-8B (zero-shot)", 0.534],
  ] as const).map(([method, f1]) => ({ method, split: "test_half_unseen", f1, source: TAILORMATCH })),
];

/** The WDC test splits in report order, with what each holds. */
export const WDC_TEST_SPLITS: { split: string; description: string }[] = [
  { split: "test", description: `${WDC_PREFIX}${WDC_TEST_SETS.test}: entities seen in training` },
  {
    split: "test_half_unseen",
    description: `${WDC_PREFIX}${WDC_TEST_SETS.test_half_unseen}: half the entities unseen`,
  },
  { split: "test_unseen", description: `${WDC_PREFIX}${WDC_TEST_SETS.test_unseen}: all entities unseen` },
];

/** Options of `benchmarkPlan`. */
export interface PlanOptions {
  /** Data root (default `dataDir()`). */
  root?: string;
  /** The WDC Products folder (default `WDC_PRODUCTS_DIR`, else ../shared/data/wdc-products). */
  wdcDir?: string;
  log?: (line: string) => void;
}

/** Resolves a preset or an imported dataset's name to the plan `runBenchmark` runs. */
export async function benchmarkPlan(name: string, options: PlanOptions = {}): Promise<BenchmarkPlan> {
  const root = options.root ?? dataDir();
  const log = options.log ?? (() => {});
  const wdc = /^wdc-products-80cc-(small|medium)$/.exec(name);
  if (wdc) return await wdcPlan(name, wdc[1] as WdcSize, root, options.wdcDir, log);
  if (name === "demo") return await demoPlan(root);
  const manifest = await readImportManifest(name, root).catch(() => null);
  if (!manifest) {
    const layout = datasetLayout(name, root);
    throw new Error(
      `--dataset ${name}: not a preset (${BENCHMARK_PRESETS.join(", ")}) and no imported dataset at ` +
        `${shownPath(layout.tablesDir)}; import it first (DATASET=${name} SOURCE=pair-table PAIR_FILES=... ` +
        "deno task notebooks import_pairwise_dataset)",
    );
  }
  return importedPlan(name, name, `imported dataset ${name}`, manifest, root);
}

function importedPlan(
  name: string,
  dataset: string,
  title: string,
  manifest: ImportManifest,
  root: string,
  testSplits?: { split: string; description: string }[],
): BenchmarkPlan {
  const splits = manifest.splits.map((s) => s.split);
  for (const needed of ["train", "val"]) {
    if (!splits.includes(needed)) {
      throw new Error(`dataset ${dataset} has no "${needed}" split (splits: ${splits.join(", ")}); re-import it`);
    }
  }
  const tests = testSplits ??
    splits.filter((s) => s !== "train" && s !== "val").map((split) => ({ split, description: "as imported" }));
  if (tests.length === 0) throw new Error(`dataset ${dataset} has no test split (splits: ${splits.join(", ")})`);
  return {
    name,
    title,
    dataset,
    root,
    testSplits: tests,
    model: {
      preset: "tiny",
      ...(manifest.tokenizer ? { tokenizer: importedLayout(dataset, root).tokenizerDir } : {}),
      namePooling: "mean",
      pretraining: IMPORTED_TEXT_PRETRAINING,
    },
    trainingDefaults: IMPORTED_TRAINING_DEFAULTS,
    trials: IMPORTED_TRIALS,
    quickTrials: QUICK_IMPORTED_TRIALS,
    rule: { kind: "f1" },
    anchors: [],
    notes: [
      `Model: the tiny preset from random weights (${
        manifest.tokenizer ? "the WordPiece tokenizer the import learnt from the training split" : "its tokenizer"
      }), mean-pooled name tower; its text towers pretrained without labels on the training products' texts ` +
      "before any trial. Products without an image get the placeholder image.",
      "Starting tower features: the towers every trial starts from, before any labelled training; random towers: " +
      "the initialisation the pretraining started from.",
    ],
  };
}

async function wdcPlan(
  name: string,
  size: WdcSize,
  root: string,
  dir: string | undefined,
  log: (line: string) => void,
): Promise<BenchmarkPlan> {
  const dataset = `wdc_products_${size}`;
  let manifest = await readImportManifest(dataset, root).catch(() => null);
  const complete = manifest?.tokenizer && (await exists(importedLayout(dataset, root).tokenizerDir)) &&
    ["train", "val", ...WDC_TEST_SPLITS.map((t) => t.split)].every((s) => manifest!.splits.some((m) => m.split === s));
  if (manifest && complete) {
    log(`reusing the import of ${dataset} (${shownPath(importedLayout(dataset, root).manifest)})`);
  } else {
    log(`importing WDC Products (${size}) as ${dataset}`);
    manifest = (await importPairs(await wdcImportOptions({ dataset, dir, size, root, tokenizer: {} }))).manifest;
  }
  const plan = importedPlan(
    name,
    dataset,
    `WDC Products, 80% corner cases, ${size} training set`,
    manifest!,
    root,
    WDC_TEST_SPLITS,
  );
  return {
    ...plan,
    anchors: WDC_PUBLISHED_ANCHORS,
    notes: [
      ...plan.notes,
      "No images: every product gets the placeholder image and the image tower is frozen.",
      "No zero-shot text encoder baseline: the only pretrained text encoders here (the demo's towers and sentence " +
      "model) are Russian marketplace models with their own vocabularies, and nothing can be downloaded.",
    ],
  };
}

async function demoPlan(root: string): Promise<BenchmarkPlan> {
  const layout = datasetLayout(DEMO_DATASET, root);
  for (const path of [layout.processedParquet, splitFiles(layout.splitsDir, "test").pairs]) {
    if (!(await exists(path))) {
      throw new Error(`--dataset demo: ${shownPath(path)} is missing; run deno task demo first (it makes the dataset)`);
    }
  }
  return {
    name: "demo",
    title: "the demo marketplace (leak-free split by query)",
    dataset: DEMO_DATASET,
    root,
    testSplits: [{ split: "test", description: "the test split's queries and their candidates" }],
    model: { preset: "demo", pretraining: null },
    trainingDefaults: SUITE_TRAINING_DEFAULTS,
    trials: [
      { name: "head+residual", config: {}, headResidual: SUITE_HEAD_RESIDUAL },
      { name: "head", config: {} },
    ],
    quickTrials: [{ name: "head+residual-quick", config: { epochs: 1 }, headResidual: SUITE_HEAD_RESIDUAL }],
    rule: { kind: "fpr", target: 0.05 },
    zeroShot: [
      { name: "sbert-tiny", model: DEMO_SENTENCE_MODEL },
      { name: "pretrained text tower", model: join(shippedDir, "text-tower-demo") },
    ],
    anchors: [],
    notes: [
      "Model: the demo preset (towers pretrained on another marketplace, head random), the training notebook's " +
      "defaults; threshold by the testing notebooks' default rule.",
    ],
  };
}
