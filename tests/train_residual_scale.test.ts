import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { tf } from "../lib/tf.ts";
import { selectBackend } from "../lib/backend.ts";
import { createSiameseRuCLIP } from "../lib/model/siamese.ts";
import { tinyPreset } from "../lib/model/presets.ts";
import { loadCheckpoint, saveCheckpoint, updateCheckpointConfig } from "../lib/model/checkpoint.ts";
import { loadTokenizer } from "../lib/text/tokenizer.ts";
import { shippedDir } from "../lib/paths.ts";
import { averagePrecision } from "../lib/eval/pair_metrics.ts";
import { rankingMetrics } from "../lib/eval/ranking.ts";
import { ProductInputs, type ProductRecord } from "../lib/train/product_inputs.ts";
import { pairIndexSet } from "../lib/train/trainer.ts";
import { scorePairs } from "../lib/train/evaluate.ts";
import { parseResidualScales, RESIDUAL_SCALE_GRID, residualScalesParam } from "../lib/train/config.ts";
import {
  chooseCheckpointResidualScale,
  chooseResidualScale,
  queryCandidatePairs,
  residualScaleMessage,
} from "../lib/train/residual_scale.ts";
import { residualScaleFigure } from "../lib/train/plots.ts";
import { SeededRandom } from "../lib/data/random.ts";

await selectBackend("cpu", { quiet: true });
const tokenizer = await loadTokenizer(join(shippedDir, "tokenizer-demo"));
const dir = await Deno.makeTempDir({ prefix: "residual-scale-test-" });
const VOCAB = 96;

// Twelve products in four groups of three; no images (the head runs on the features below only).
const products: ProductRecord[] = Array.from({ length: 12 }, (_, i) => ({
  sku: `p${i}`,
  name: `товар ${i}`,
  description: "",
  imagePath: join(dir, "missing.png"),
}));
const inputs = await ProductInputs.build(products, { tokenizer, imageSize: 32, maxTokens: 8, progress: false });
const config = { ...tinyPreset(VOCAB), headResidual: 0.1 };
const featureDim = createSiameseRuCLIP(config, { init: "zeros" });
const dim = featureDim.featureDim;
featureDim.dispose();

/** Tower features where a product's group is in the raw distance: group centre plus noise. */
function groupedFeatures(seed: number, spread: number): Float32Array {
  const random = new SeededRandom(seed);
  const centres = Array.from({ length: 4 }, () => Array.from({ length: dim }, () => random.next() * 4 - 2));
  const out = new Float32Array(products.length * dim);
  for (let p = 0; p < products.length; p++) {
    for (let k = 0; k < dim; k++) out[p * dim + k] = centres[p % 4][k] + spread * (random.next() - 0.5);
  }
  return out;
}
const features = groupedFeatures(7, 9);
const group = (p: number) => p % 4;
const pairList: { skuLeft: string; skuRight: string; label: number; querySku: string }[] = [];
const candidates: { query_sku: string; candidate_sku: string; label: number }[] = [];
for (const q of [0, 1, 2, 3]) {
  for (let c = 0; c < products.length; c++) {
    if (c === q) continue;
    const label = group(c) === group(q) ? 1 : 0;
    candidates.push({ query_sku: `p${q}`, candidate_sku: `p${c}`, label });
    if (label || c % 3 === 0) pairList.push({ skuLeft: `p${q}`, skuRight: `p${c}`, label, querySku: `p${q}` });
  }
}
const validation = pairIndexSet(inputs, pairList);
const queryCandidates = queryCandidatePairs(inputs, candidates);

describe("the head residual's scale, chosen on validation", () => {
  it("scores each scale exactly as the model embeds at it, keeps the best and leaks no tensor", async () => {
    const model = createSiameseRuCLIP(config, { seed: 5 });
    const before = tf.memory().numTensors;
    const choice = await chooseResidualScale({ model, inputs, validation, queryCandidates, scoring: { features } });
    expect(tf.memory().numTensors).toBe(before);
    expect(choice.trainedScale).toBe(0.1);
    expect(choice.rows.map((r) => r.scale)).toEqual([...RESIDUAL_SCALE_GRID]);
    expect(model.headResidual).toBe(choice.scale);
    // Each row against the model re-embedding at that scale: pair AP over the validation pairs,
    // MRR / mAP over the query-candidate pairs.
    for (const row of choice.rows) {
      model.setHeadResidual(row.scale);
      const pairs = await scorePairs(model, inputs, validation, { features });
      expect(row.ap).toBeCloseTo(averagePrecision(pairs.labels, pairs.scores), 6);
      const ranked = await scorePairs(model, inputs, queryCandidates, { features });
      const { summary } = rankingMetrics(
        candidates.map((c, i) => ({
          query: c.query_sku,
          candidate: c.candidate_sku,
          score: ranked.scores[i],
          label: c.label,
        })),
      );
      expect(row.mrr).toBeCloseTo(summary.mrr, 6);
      expect(row.map).toBeCloseTo(summary.map, 6);
      expect(row.score).toBeCloseTo((row.ap + summary.mrr + summary.map) / 3, 9);
    }
    const best = Math.max(...choice.rows.map((r) => r.score));
    const chosen = choice.rows.find((r) => r.scale === choice.scale)!;
    expect(chosen.score).toBe(best);
    // The groups are in the raw features, the head is untrained: more of the raw distance ranks better.
    expect(choice.scale).toBe(0.5);
    expect(choice.rows[0].score).toBeLessThan(choice.rows[choice.rows.length - 1].score);
    expect(choice.scoredBy).toContain("MRR");
    const figure = residualScaleFigure(choice);
    expect(figure.data.map((t) => t.name)).toEqual([
      "pair AP",
      "MRR",
      "mAP",
      "score (mean)",
      `chosen (${choice.scale})`,
    ]);
    model.dispose();
  });

  it("without query-candidate pairs scores by AP alone; a tie keeps the trained scale", async () => {
    const model = createSiameseRuCLIP(config, { seed: 5 });
    // All-zero features: every scale gives the same distances.
    const zeros = new Float32Array(products.length * dim);
    const choice = await chooseResidualScale({ model, inputs, validation, scoring: { features: zeros } });
    expect(choice.rows.every((r) => r.mrr === null && r.map === null && r.score === r.ap)).toBe(true);
    expect(choice.scale).toBe(0.1);
    expect(choice.scoredBy).toContain("AP");
    model.dispose();
  });

  it("tries the trained scale even when the grid lacks it", async () => {
    const model = createSiameseRuCLIP({ ...config, headResidual: 0.07 }, { seed: 5 });
    const choice = await chooseResidualScale({ model, inputs, validation, scoring: { features }, scales: [0.5, 0.2] });
    expect(choice.rows.map((r) => r.scale)).toEqual([0.07, 0.2, 0.5]);
    model.dispose();
  });

  it("refuses a model without a residual and a bad scale, naming it", async () => {
    const plain = createSiameseRuCLIP(tinyPreset(VOCAB), { seed: 5 });
    await expect(chooseResidualScale({ model: plain, inputs, validation, scoring: { features } })).rejects.toThrow(
      /no head residual/,
    );
    expect(() => plain.setHeadResidual(0.2)).toThrow(/no head residual/);
    expect(
      await chooseCheckpointResidualScale({
        model: plain,
        inputs,
        validation,
        scoring: { features },
        checkpointDir: join(dir, "nowhere"),
      }),
    ).toBe(null);
    expect(residualScaleMessage(null, plain, dir)).toMatch(/HEAD_RESIDUAL/);
    plain.dispose();
    const model = createSiameseRuCLIP(config, { seed: 5 });
    await expect(chooseResidualScale({ model, inputs, validation, scoring: { features }, scales: [0.1, -1] }))
      .rejects.toThrow(/-1 is not a number > 0/);
    expect(() => model.setHeadResidual(0)).toThrow(/setHeadResidual\(0\)/);
    model.dispose();
  });

  it("setHeadResidual replaces the config, never the preset object it was built from", () => {
    const shared = { ...config };
    const model = createSiameseRuCLIP(shared, { init: "zeros" });
    model.setHeadResidual(0.3);
    expect(model.config.headResidual).toBe(0.3);
    expect(shared.headResidual).toBe(0.1);
    model.dispose();
  });

  it("writes the chosen scale into the checkpoint's config.json, which a later load follows", async () => {
    const model = createSiameseRuCLIP(config, { seed: 5 });
    const checkpointDir = join(dir, "best");
    await saveCheckpoint(checkpointDir, { model, config: model.config });
    const choice = await chooseCheckpointResidualScale({
      model,
      inputs,
      validation,
      queryCandidates,
      scoring: { features },
      checkpointDir,
    });
    expect(choice).not.toBe(null);
    const saved = (await loadCheckpoint(checkpointDir)).config as { headResidual: number };
    expect(saved.headResidual).toBe(choice!.scale);
    expect(residualScaleMessage(choice, model, checkpointDir)).toContain(`Scale **${choice!.scale}**`);
    // An empty grid changes nothing.
    model.setHeadResidual(0.1);
    expect(
      await chooseCheckpointResidualScale({
        model,
        inputs,
        validation,
        scoring: { features },
        scales: [],
        checkpointDir,
      }),
    ).toBe(null);
    expect(((await loadCheckpoint(checkpointDir)).config as { headResidual: number }).headResidual).toBe(choice!.scale);
    await expect(updateCheckpointConfig(join(dir, "nowhere"), model.config)).rejects.toThrow(/not a checkpoint folder/);
    model.dispose();
  });

  it("RESIDUAL_SCALES: parsed, with the bad entry named", () => {
    expect(parseResidualScales("0.05, 0.1,0.2")).toEqual([0.05, 0.1, 0.2]);
    expect(parseResidualScales("")).toEqual([]);
    expect(() => parseResidualScales("0.1,abc")).toThrow(/RESIDUAL_SCALES = "0.1,abc": "abc" is not a number > 0/);
    expect(() => parseResidualScales("0.1,,0.2")).toThrow(/"" is not a number > 0/);
    const spec = residualScalesParam();
    expect(spec.default).toBe(RESIDUAL_SCALE_GRID.join(","));
    expect(spec.check!("0.1,0")).toBe(`"0" is not a number > 0`);
    expect(spec.check!("0.1,0.2")).toBe(undefined);
  });
});
