/**
 * The split-seed study's verdicts, means and report (lib/experiment/split_seeds.ts) on a result written here,
 * and `deno task seeds` refusing to run without the demo's dataset. The study's training itself runs the
 * trainer and the evaluation flows, tested where they live.
 */
import { describe, it } from "node:test";
import { expect } from "expect";
import {
  classifierVerdicts,
  renderSeedStudyMarkdown,
  SEED_STUDY_CLASSIFIERS,
  SEED_STUDY_VARIANTS,
  seedStudyMeans,
  type SeedStudyResult,
  type SeedStudyRow,
  seedStudyVerdicts,
  type SplitMetrics,
  writeSeedStudyReports,
} from "../lib/experiment/split_seeds.ts";
import { validateTrainingConfig } from "../lib/train/config.ts";
import { runScript } from "./helpers.ts";

const metrics = (auc: number, ap: number, f1: number, mrr: number, map: number): SplitMetrics => ({
  auc,
  ap,
  f1,
  mrr,
  map,
});

function row(seed: number, model: string, kind: SeedStudyRow["kind"], test: SplitMetrics): SeedStudyRow {
  return { seed, model, kind, validation: metrics(0.5, 0.5, 0.5, 0.5, 0.5), test };
}

const result: SeedStudyResult = {
  dataset: "demo_geo",
  seeds: [1, 2],
  rule: "largest TPR at FPR <= 0.05",
  variants: [{ name: "v", description: "a variant", headResidual: null, config: SEED_STUDY_VARIANTS[0].config }],
  baselines: ["raw"],
  rows: [
    row(1, "raw", "baseline", metrics(0.9, 0.7, 0.5, 0.8, 0.6)),
    row(1, "v", "trained", metrics(0.8, 0.8, 0.6, 0.9, 0.7)),
    row(2, "raw", "baseline", metrics(0.9, 0.7, 0.5, 0.8, 0.6)),
    { ...row(2, "v", "trained", metrics(0.95, 0.8, 0.5, 0.7, 0.7)), validation: metrics(0.7, 0.7, 0.7, 0.7, 0.7) },
  ],
};

describe("split-seed study", () => {
  it("the registry's variants are valid training configurations with distinct names", () => {
    for (const variant of SEED_STUDY_VARIANTS) validateTrainingConfig(variant.config);
    expect(new Set(SEED_STUDY_VARIANTS.map((v) => v.name)).size).toBe(SEED_STUDY_VARIANTS.length);
  });

  it("a variant beats the baselines only when it is ahead on AP, F1, MRR and mAP (ROC AUC aside)", () => {
    const verdicts = seedStudyVerdicts(result);
    expect(verdicts.map((v) => [v.seed, v.beatsAll])).toEqual([[1, true], [2, false]]);
    // A tie is not a lead; each miss names the metric and the baseline.
    expect(verdicts[1].behind).toEqual(["f1 0.500 <= raw 0.500", "mrr 0.700 <= raw 0.800"]);
  });

  it("means are per model over the seeds, validation and test apart", () => {
    const means = seedStudyMeans(result);
    const v = means.find((m) => m.model === "v")!;
    expect(v.test.auc).toBeCloseTo(0.875, 12);
    expect(v.test.mrr).toBeCloseTo(0.8, 12);
    expect(v.validation.f1).toBeCloseTo(0.6, 12);
    expect(means.map((m) => m.model)).toEqual(["raw", "v"]);
  });

  it("the report has a table per seed, the means and the verdicts; the files are written together", async () => {
    const markdown = renderSeedStudyMarkdown(result);
    expect(markdown).toContain("## Split seed 1");
    expect(markdown).toContain("| v | 0.800 | 0.800 | 0.600 | 0.900 | 0.700 |");
    expect(markdown).toContain("- seed 2, v: no (f1 0.500 <= raw 0.500; mrr 0.700 <= raw 0.800)");
    const dir = await Deno.makeTempDir();
    try {
      const [json, md] = await writeSeedStudyReports(result, dir);
      expect(JSON.parse(await Deno.readTextFile(json))).toEqual(result);
      expect(await Deno.readTextFile(md)).toBe(markdown);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  it("says per seed whether the classifier with the Siamese features is ahead on F1 and AP, and of what", () => {
    const classifier = (seed: number, model: string, test: SplitMetrics): SeedStudyRow => ({
      ...row(seed, model, "classifier", test),
      validation: metrics(0.9, 0.8, 0.7, NaN, NaN),
    });
    const withClassifiers: SeedStudyResult = {
      ...result,
      rows: [
        ...result.rows,
        classifier(1, SEED_STUDY_CLASSIFIERS.evidence, metrics(0.9, 0.85, 0.62, 0.9, 0.8)),
        classifier(1, SEED_STUDY_CLASSIFIERS.full, metrics(0.9, 0.9, 0.65, 0.9, 0.8)),
        classifier(2, SEED_STUDY_CLASSIFIERS.evidence, metrics(0.9, 0.85, 0.62, 0.9, 0.8)),
        classifier(2, SEED_STUDY_CLASSIFIERS.full, metrics(0.9, 0.84, 0.65, 0.9, 0.8)),
      ],
    };
    expect(classifierVerdicts(withClassifiers).map((v) => [v.seed, v.against, v.ahead])).toEqual([
      [1, "v", true],
      [1, SEED_STUDY_CLASSIFIERS.evidence, true],
      [2, "v", true],
      [2, SEED_STUDY_CLASSIFIERS.evidence, false],
    ]);
    const markdown = renderSeedStudyMarkdown(withClassifiers);
    expect(markdown).toContain(
      `- seed 2, against ${SEED_STUDY_CLASSIFIERS.evidence}: no (F1 0.650 vs 0.620, AP 0.840 vs 0.850)`,
    );
    // Its validation ranking is not measured: shown as a dash, not NaN.
    expect(markdown).toContain(`| ${SEED_STUDY_CLASSIFIERS.full} | 0.900 | 0.800 | 0.700 | – | – |`);
    expect(seedStudyVerdicts(withClassifiers).map((v) => v.model)).toEqual(["v", "v"]);
    expect(classifierVerdicts(result)).toEqual([]);
  });

  it("a residual variant's row says which scale was chosen on validation", () => {
    const chosen = { ...row(1, "r", "trained", metrics(0.8, 0.8, 0.6, 0.9, 0.7)), residualScale: 0.3 };
    const markdown = renderSeedStudyMarkdown({ ...result, rows: [...result.rows, chosen] });
    expect(markdown).toContain("| r (scale 0.3) | 0.800 |");
    expect(markdown).toContain("a residual variant's row names the scale chosen");
  });

  it("deno task seeds names a missing dataset and what makes it", async () => {
    const data = await Deno.makeTempDir();
    const seeds = (...args: string[]) => runScript("split_seeds.ts", args, { CLIP_SIAMESE_DATA: data });
    try {
      const missing = await seeds("--seeds", "1");
      expect(missing.code).not.toBe(0);
      expect(missing.stderr).toMatch(/dataset "demo_geo" not found at .*: run deno task demo first/);
      const typo = await seeds("--variants", "heda");
      expect(typo.code).not.toBe(0);
      expect(typo.stderr).toMatch(/unknown variant "heda"; known: head\+residual, head, /);
    } finally {
      await Deno.remove(data, { recursive: true });
    }
  });
});
