/**
 * A trial (lib/experiment/trial.ts) on a tiny head-mode model over grouped tower features written here:
 * its numbers are recomputed from the best checkpoint by the metric functions themselves (the threshold
 * chosen on validation and applied unchanged to test, the query-candidate ranking), the residual's scale
 * is chosen and written into the checkpoint, and no tensor is left behind.
 */
import { describe, it } from "node:test";
import { configureStopHandler, InterruptedError, stopPressed } from "../lib/notebook/interrupt.ts";
import { expect } from "expect";
import { join } from "node:path";
import { tf } from "../lib/tf.ts";
import { selectBackend } from "../lib/backend.ts";
import { createSiameseRuCLIP } from "../lib/model/siamese.ts";
import { tinyPreset } from "../lib/model/presets.ts";
import { loadCheckpoint } from "../lib/model/checkpoint.ts";
import { loadTokenizer } from "../lib/text/tokenizer.ts";
import { shippedDir } from "../lib/paths.ts";
import { applyThreshold, chooseThreshold } from "../lib/eval/pair_metrics.ts";
import { rankingMetrics } from "../lib/eval/ranking.ts";
import { ProductInputs, type ProductRecord } from "../lib/train/product_inputs.ts";
import { scorePairs } from "../lib/train/evaluate.ts";
import { DEFAULT_TRAINING_CONFIG, type TrainingConfig } from "../lib/train/config.ts";
import { pairIndexSet } from "../lib/train/trainer.ts";
import { SeededRandom } from "../lib/data/random.ts";
import {
  evaluationNumbers,
  runRecordedTrial,
  runTrial,
  type TrialOptions,
  trialSets,
  trialSplit,
} from "../lib/experiment/trial.ts";
import { LocalRunStore } from "../lib/experiment/run_record.ts";

await selectBackend("cpu", { quiet: true });
const tokenizer = await loadTokenizer(join(shippedDir, "tokenizer-demo"));
const dir = await Deno.makeTempDir({ prefix: "trial-test-" });
const VOCAB = 96;
const GROUPS = 4;

// Twenty-four products in four groups; no images (head mode runs on the features below only).
const products: ProductRecord[] = Array.from({ length: 24 }, (_, i) => ({
  sku: `p${i}`,
  name: `товар ${i}`,
  description: "",
  imagePath: join(dir, "missing.png"),
}));
const inputs = await ProductInputs.build(products, { tokenizer, imageSize: 32, maxTokens: 8, progress: false });
const modelConfig = { ...tinyPreset(VOCAB), headResidual: 0.1 };
const probe = createSiameseRuCLIP(modelConfig, { init: "zeros" });
const dim = probe.featureDim;
probe.dispose();

const random = new SeededRandom(11);
const centres = Array.from({ length: GROUPS }, () => Array.from({ length: dim }, () => random.next() * 4 - 2));
const features = new Float32Array(products.length * dim);
for (let p = 0; p < products.length; p++) {
  for (let k = 0; k < dim; k++) features[p * dim + k] = centres[p % GROUPS][k] + 6 * (random.next() - 0.5);
}

/** Products [from, to): each against the others of the range, query = the left one. */
function rangePairs(from: number, to: number) {
  const pairs: { skuLeft: string; skuRight: string; label: number; querySku: string }[] = [];
  const candidates: { query_sku: string; candidate_sku: string; label: number }[] = [];
  for (let q = from; q < to; q++) {
    for (let c = from; c < to; c++) {
      if (c === q) continue;
      const label = q % GROUPS === c % GROUPS ? 1 : 0;
      if (c > q) pairs.push({ skuLeft: `p${q}`, skuRight: `p${c}`, label, querySku: `p${q}` });
      candidates.push({ query_sku: `p${q}`, candidate_sku: `p${c}`, label });
    }
  }
  return { pairs, candidates };
}
const train = rangePairs(0, 12);
const val = rangePairs(12, 18);
const test = rangePairs(18, 24);
const config: TrainingConfig = { ...DEFAULT_TRAINING_CONFIG, mode: "head", epochs: 2, batchSize: 8, margin: 1 };

function trialOptions(model: ReturnType<typeof createSiameseRuCLIP>, name: string): TrialOptions {
  return {
    model,
    inputs,
    features,
    config,
    train: pairIndexSet(inputs, train.pairs),
    validation: trialSplit(inputs, "val", val.pairs, val.candidates),
    tests: [trialSplit(inputs, "test", test.pairs, test.candidates), trialSplit(inputs, "test_no_ranking", test.pairs)],
    rule: { kind: "fpr", target: 0.2 },
    runDir: join(dir, name),
    tmpDir: join(dir, "tmp", name),
    progress: false,
  };
}

describe("runTrial", () => {
  it("trains, chooses scale and threshold on validation only, and its test numbers are the metric functions'", async () => {
    const before = tf.memory().numTensors;
    const model = createSiameseRuCLIP(modelConfig, { seed: 3 });
    try {
      const trial = await runTrial(trialOptions(model, "residual"));
      expect(trial.training.history.map((r) => r.epoch)).toEqual([1, 2]);
      expect(trial.residual?.trainedScale).toBe(0.1);
      expect(model.headResidual).toBe(trial.residual!.scale);
      const saved = await loadCheckpoint(trial.training.bestDir);
      expect((saved.config as { headResidual: number }).headResidual).toBe(trial.residual!.scale);

      // Recomputed here from the model the trial left (the best epoch at the chosen scale).
      const scoring = { features };
      const valScores = await scorePairs(model, inputs, pairIndexSet(inputs, val.pairs), scoring);
      const chosen = chooseThreshold(valScores.labels, valScores.scores, { kind: "fpr", target: 0.2 });
      expect(trial.chosen.threshold).toEqual(chosen.threshold);
      expect(trial.validation.report).toEqual(chosen.validation);
      const testScores = await scorePairs(model, inputs, pairIndexSet(inputs, test.pairs), scoring);
      expect(trial.tests[0].report).toEqual(applyThreshold(chosen, testScores.labels, testScores.scores));
      expect(trial.tests[1].report).toEqual(trial.tests[0].report);

      const candidates = pairIndexSet(
        inputs,
        test.candidates.map((c) => ({ skuLeft: c.query_sku, skuRight: c.candidate_sku, label: c.label })),
      );
      const candidateScores = await scorePairs(model, inputs, candidates, scoring);
      const expected = rankingMetrics(test.candidates.map((c, i) => ({
        query: c.query_sku,
        candidate: c.candidate_sku,
        score: candidateScores.scores[i],
        label: c.label,
      }))).summary;
      expect(trial.tests[0].ranking!.mrr).toBeCloseTo(expected.mrr, 12);
      expect(trial.tests[0].ranking!.map).toBeCloseTo(expected.map, 12);
      expect(trial.tests[1].ranking).toBeNull();
      expect(Object.keys(evaluationNumbers(trial.tests[0]))).toEqual(
        ["precision", "recall", "f1", "roc_auc", "average_precision", "mrr", "map"],
      );
    } finally {
      model.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it("keeps the trained scale when no scales are given to try", async () => {
    const model = createSiameseRuCLIP(modelConfig, { seed: 3 });
    try {
      const trial = await runTrial({ ...trialOptions(model, "kept"), residualScales: [] });
      expect(trial.residual).toBeNull();
      expect(model.headResidual).toBe(0.1);
    } finally {
      model.dispose();
    }
  });

  it("refuses a split given twice or one without pairs, before training", async () => {
    const model = createSiameseRuCLIP(modelConfig, { seed: 3 });
    try {
      const options = trialOptions(model, "refused");
      await expect(runTrial({ ...options, tests: [options.validation] })).rejects.toThrow(
        'runTrial: split "val" is given twice (splits: val, val)',
      );
      const empty = { split: "test", pairs: pairIndexSet(inputs, []) };
      await expect(runTrial({ ...options, tests: [empty] })).rejects.toThrow('split "test" has no pairs');
    } finally {
      model.dispose();
    }
  });

  it("a dataset's splits become train, val and every other split a test, with their query candidates", () => {
    const sets = trialSets(inputs, { train: train.pairs, val: val.pairs, test: test.pairs, extra: val.pairs }, [
      { split: "val", queryCandidates: val.candidates },
      { split: "test", queryCandidates: [] },
    ]);
    expect(sets.train.labels.length).toBe(train.pairs.length);
    expect(sets.validation.queryCandidates!.labels.length).toBe(val.candidates.length);
    expect(sets.tests.map((t) => [t.split, t.queryCandidates === undefined])).toEqual([["test", true], [
      "extra",
      true,
    ]]);
    expect(() => trialSets(inputs, { train: train.pairs, test: test.pairs })).toThrow(
      'trialSets: no "val" split (splits: train, test)',
    );
  });

  it("a recorded trial leaves its run record: curves, every split's numbers, or the error when it fails", async () => {
    const store = new LocalRunStore(join(dir, "runs"));
    const recording = { notebook: "seeds", dataset: "toy", run: "r", params: [{ name: "LR", value: 1e-3 }] };
    const model = createSiameseRuCLIP(modelConfig, { seed: 3 });
    try {
      const trial = await runRecordedTrial(trialOptions(model, "recorded"), { ...recording, sinks: [store] });
      const [record] = await store.list();
      expect(record).toMatchObject({ status: "finished", epochs: 2, notebook: "seeds", run: "r" });
      expect(record.metrics["test/f1"]).toBe(trial.tests[0].report.f1);
      expect(record.metrics["test/mrr"]).toBe(trial.tests[0].ranking!.mrr);
      expect(record.metrics.best_epoch).toBe(trial.training.bestEpoch);
      expect((await store.curves(record.id)).map((row) => row.epoch)).toEqual([1, 2]);
      const broken = { ...trialOptions(model, "broken"), config: { ...config, learningRate: -1 } };
      await expect(runRecordedTrial(broken, { ...recording, run: "b", sinks: [store] })).rejects.toThrow();
      const failed = (await store.list()).find((r) => r.run === "b")!;
      expect(failed.status).toBe("failed");
      expect(failed.error).toMatch(/learning/i);
      // Stop after the first epoch: the record says stopped, where, and keeps that epoch's curve row.
      configureStopHandler({ notify: () => {}, exit: () => {} });
      const stopping = { ...trialOptions(model, "stopped"), onEpoch: () => stopPressed() };
      await expect(runRecordedTrial(stopping, { ...recording, run: "s", sinks: [store] })).rejects.toThrow(
        InterruptedError,
      );
      const stopped = (await store.list()).find((r) => r.run === "s")!;
      expect(stopped).toMatchObject({ status: "stopped", error: "training stopped after epoch 1/2", epochs: 1 });
    } finally {
      model.dispose();
    }
  });

  it("cleans up", async () => {
    await Deno.remove(dir, { recursive: true });
  });
});
