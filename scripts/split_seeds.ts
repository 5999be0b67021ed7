/**
 * `deno task seeds`: the demo's training across split seeds (lib/experiment/split_seeds.ts). For each split
 * seed the leak-free split by query is made in memory; each training variant trains the head on the
 * cached tower features and is scored on the test split next to the raw tower features, the
 * zero-shot encoders and the pair classifier (evidence only, and stacked over the first variant's model).
 *
 *   deno task seeds [--seeds 42,1,2] [--variants head,query-ranking,...] [--dataset demo_geo]
 *
 * Needs the demo's dataset (`deno task demo` makes it). Writes reports/split_seeds.json and
 * reports/split_seeds.md (or $CLIP_SIAMESE_REPORTS); checkpoints go under data/runs/split_seeds/.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { selectBackend } from "../lib/backend.ts";
import {
  renderSeedStudyMarkdown,
  runSeedStudy,
  SEED_STUDY_VARIANTS,
  writeSeedStudyReports,
} from "../lib/experiment/split_seeds.ts";
import { datasetLayout } from "../lib/data/layout.ts";
import { parseSplitRatios } from "../lib/data/split.ts";
import { PAIR_RENDERING_DEFAULTS } from "../lib/notebook/suite_params.ts";
import { exists } from "../lib/fs.ts";
import { dataDir, shippedDir, shownPath } from "../lib/paths.ts";
import { DEMO_SENTENCE_MODEL } from "../lib/text/sbert.ts";
import { SUITE_TRAINING_DEFAULTS } from "../lib/train/config.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    seeds: { type: "string", default: "42,1,2" },
    variants: { type: "string" },
    dataset: { type: "string", default: "demo_geo" },
  },
});

const seeds = values.seeds!.split(",").map((text) => {
  const n = Number(text.trim());
  if (!text.trim() || !Number.isInteger(n)) throw new Error(`--seeds ${values.seeds}: "${text}" is not an integer`);
  return n;
});
const variants = values.variants?.split(",").map((name) => {
  const variant = SEED_STUDY_VARIANTS.find((v) => v.name === name.trim());
  if (!variant) {
    throw new Error(
      `--variants: unknown variant "${name}"; known: ${SEED_STUDY_VARIANTS.map((v) => v.name).join(", ")}`,
    );
  }
  return variant;
}) ?? SEED_STUDY_VARIANTS;

const layout = datasetLayout(values.dataset!, dataDir());
if (!(await exists(layout.processedParquet)) || !(await exists(layout.pairwiseDir))) {
  throw new Error(`dataset "${values.dataset}" not found at ${shownPath(layout.tablesDir)}: run deno task demo first`);
}

const backend = await selectBackend();
const result = await runSeedStudy({
  dataset: values.dataset!,
  seeds,
  split: {
    ratios: parseSplitRatios(PAIR_RENDERING_DEFAULTS.splitRatios),
    posNegRatio: PAIR_RENDERING_DEFAULTS.posNegRatio,
    hardSoftRatio: PAIR_RENDERING_DEFAULTS.hardSoftRatio,
    maxPositivePairsPerQuery: PAIR_RENDERING_DEFAULTS.maxPositivePairsPerQuery,
  },
  preset: "demo",
  modelSeed: SUITE_TRAINING_DEFAULTS.seed,
  variants,
  zeroShot: [
    { name: "zero-shot sbert-tiny", model: DEMO_SENTENCE_MODEL },
    { name: "zero-shot pretrained text tower", model: join(shippedDir, "text-tower-demo") },
  ],
  rule: { kind: "fpr", target: 0.05 },
  runRoot: join(dataDir(), "runs", "split_seeds"),
  backend: { name: backend.backend, threads: Number(backend.detail?.match(/(\d+) thread/)?.[1]) || null },
  log: console.log,
});
console.log(renderSeedStudyMarkdown(result));
for (const path of await writeSeedStudyReports(result)) console.log(`wrote ${shownPath(path)}`);
