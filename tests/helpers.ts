/** Small assertions shared by test files (not a test file itself). */
import { expect } from "expect";
import { join } from "node:path";
import { projectRoot } from "../lib/paths.ts";

/** Largest element-wise |a - b|; fails the test when the lengths differ. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/** Seeded uniform [0, 1) numbers. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The notebooks the end-to-end tests run on an imported dataset: import, training, embeddings, every test. */
export const IMPORTED_DATASET_NOTEBOOKS = [
  "import_pairwise_dataset",
  "contrastive_train_data-splitting-by-query",
  "compute_embeddings_contrastive-siamese",
  "compute_embeddings_sbert",
  "contrastive_test_embs_from-pairwise-rendered",
  "contrastive_test_embs_from-pairwise-queries",
  "clip_siamese_test",
  "contrastive_test_embs_from-source",
  "contrastive_test_embs_from-source_ruclip-only",
] as const;

/**
 * Runs `IMPORTED_DATASET_NOTEBOOKS` through the batch runner on one source (`SOURCE`, `PAIR_FILES`, ...):
 * text mode, one epoch, label-free pretraining for two, the tiny preset with the vocabulary learnt at import,
 * the raw features from the pretrained towers. Throws with the log's end when the run fails.
 */
export async function runImportedSuite(options: {
  data: string;
  reports: string;
  dataset: string;
  run: string;
  source: Record<string, string>;
}): Promise<void> {
  const { data, reports, dataset, run } = options;
  const output = await runScript("notebooks.ts", ["--preset", "test", ...IMPORTED_DATASET_NOTEBOOKS], {
    CLIP_SIAMESE_DATA: data,
    CLIP_SIAMESE_REPORTS: reports,
    TFJS_BACKEND: "wasm",
    DATASET: dataset,
    SOURCE: "pair-table",
    ...options.source,
    RUN: run,
    MODE: "text",
    EPOCHS: "1",
    PRETRAIN_EPOCHS: "2",
    START_TEXT_WEIGHTS: join(data, "train_results", run, "text_tower_pretrained"),
    PRESET: "tiny",
    TOKENIZER: join(data, `tables_${dataset}`, "tokenizer"),
  });
  if (!output.success) {
    throw new Error(`the suite on imported dataset ${dataset} failed:\n${output.log.slice(-4000)}`);
  }
}

/** Runs one of the project's scripts as a user would (from the project root, in `env`); its exit and output. */
export async function runScript(
  script: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ success: boolean; code: number; log: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(projectRoot, "scripts", script), ...args],
    cwd: projectRoot,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  return { success: out.success, code: out.code, log: new TextDecoder().decode(out.stdout) + stderr, stderr };
}
