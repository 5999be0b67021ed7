/**
 * XGBoost through Deno FFI (lib/match/xgboost.ts) against XGBoost's own Python package on the same
 * library (tests/fixtures/match/xgboost_reference.json, written by scripts/fixtures/make_xgboost_fixtures.py),
 * and the boosted pair classifier (lib/match/boosted_classifier.ts) behind the classifier interface.
 */
import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { Booster, DMatrix, loadXGBoost } from "../lib/match/xgboost.ts";
import { fitBoostedClassifier, loadBoostedClassifier } from "../lib/match/boosted_classifier.ts";
import { chooseClassifierThreshold, type LabelledMatrix, meanAbsoluteContributions } from "../lib/match/classifier.ts";

interface Split {
  x: (string | null)[][];
  y: number[];
}
const reference: {
  params: Record<string, string | number>;
  rounds: number;
  train: Split;
  val: Split;
  val_logloss: string[];
  val_probability: string[];
  val_contributions: string[][];
  model_json: string;
} = JSON.parse(
  await Deno.readTextFile(join(import.meta.dirname!, "fixtures", "match", "xgboost_reference.json")),
);

const NAMES = ["x0", "x1", "x2", "x3", "x4", "x5"];
function matrix(split: Split): LabelledMatrix {
  const values = Float32Array.from(split.x.flat(), (v) => (v === null ? NaN : Number(v)));
  return { names: NAMES, values, rows: split.x.length, labels: split.y };
}
const train = matrix(reference.train), val = matrix(reference.val);

describe("XGBoost through Deno FFI, against XGBoost's Python package", () => {
  it("loads Debian's libxgboost and says how to install it when a library is missing", () => {
    expect(loadXGBoost().version).toMatch(/^1\.\d+\.\d+$/);
    expect(() => loadXGBoost("/nowhere/libxgboost.so")).toThrow(/sudo apt-get install libxgboost0/);
    loadXGBoost(); // back to the default library
  });

  it("trains the same trees: each round's validation log loss, the probabilities and SHAP contributions", () => {
    const dtrain = new DMatrix(train.values, train.rows, 6, train.labels);
    const dval = new DMatrix(val.values, val.rows, 6, val.labels);
    const booster = new Booster([dtrain, dval]);
    booster.setParams(reference.params);
    const losses: number[] = [];
    for (let i = 0; i < reference.rounds; i++) {
      booster.updateOneIter(i, dtrain);
      losses.push(booster.evalOneIter(i, [{ name: "val", matrix: dval }])["val-logloss"]);
    }
    reference.val_logloss.forEach((v, i) => expect(Math.abs(losses[i] - Number(v))).toBeLessThan(1e-6));
    const p = booster.predict(dval);
    expect(p.shape).toEqual([val.rows]);
    reference.val_probability.forEach((v, i) => expect(Math.abs(p.values[i] - Number(v))).toBeLessThan(1e-6));
    const c = booster.predict(dval, { type: "contributions" });
    expect(c.shape).toEqual([val.rows, 7]);
    reference.val_contributions.flat().forEach((v, i) => expect(Math.abs(c.values[i] - Number(v))).toBeLessThan(1e-5));
    // The model Python saved predicts the same through this binding.
    const loaded = Booster.fromJson(reference.model_json);
    const q = loaded.predict(dval);
    reference.val_probability.forEach((v, i) => expect(Math.abs(q.values[i] - Number(v))).toBeLessThan(1e-6));
    expect(loaded.boostedRounds()).toBe(reference.rounds);
    for (const handle of [loaded, booster, dtrain, dval]) handle.dispose();
    expect(() => booster.predict(dval)).toThrow(/used after dispose/);
  });

  it("names the call and XGBoost's message on bad input", () => {
    expect(() => new DMatrix(new Float32Array(5), 2, 3)).toThrow("DMatrix: 5 values are not 2 rows x 3 columns");
    expect(() => new DMatrix(new Float32Array(6), 2, 3, [1])).toThrow("DMatrix: 1 labels for 2 rows");
    expect(() => Booster.fromJson("{not json")).toThrow(/XGBoost XGBoosterLoadModelFromBuffer failed: /);
  });
});

describe("the boosted pair classifier", () => {
  it("stops early on validation, keeps the best round, and saves a model that loads and predicts the same", async () => {
    const rounds: number[] = [];
    const classifier = await fitBoostedClassifier(train, val, {
      rounds: 300,
      earlyStopping: 20,
      params: { eta: 0.3, nthread: 1 },
      onRound: (r) => rounds.push(r.round),
    });
    const { history, bestRound } = classifier.report;
    expect(history.length).toBeLessThan(300); // stopped early
    expect(history.length - bestRound).toBe(20);
    const bestLoss = Math.min(...history.map((h) => h.validation!));
    expect(history[bestRound - 1].validation).toBe(bestLoss);
    expect(rounds).toEqual(history.map((h) => h.round));
    const p = await classifier.predictProbabilities(val);
    // Better than chance by far on this separable-with-noise problem.
    const accuracy = val.labels.length &&
      [...p].filter((v, i) => (v > 0.5 ? 1 : 0) === val.labels[i]).length / val.rows;
    expect(accuracy).toBeGreaterThan(0.8);
    // Contributions add up to the log-odds, and the two signal columns lead.
    const c = await classifier.contributions(val);
    for (let r = 0; r < 5; r++) {
      let sum = c.bias[r];
      for (let j = 0; j < 6; j++) sum += c.values[r * 6 + j];
      expect(1 / (1 + Math.exp(-sum))).toBeCloseTo(p[r], 5);
    }
    expect(meanAbsoluteContributions(c).slice(0, 3).map((f) => f.feature).sort()).toEqual(["x0", "x1", "x2"]);
    const chosen = await chooseClassifierThreshold(classifier, val, { kind: "f1" });
    expect(chosen.validation.f1).toBeGreaterThan(0.8);

    const dir = await Deno.makeTempDir({ prefix: "boosted-" });
    const files = await classifier.save(dir);
    expect(files.map((f) => f.split("/").pop())).toEqual(["xgboost.json", "classifier.json"]);
    expect(JSON.parse(await Deno.readTextFile(join(dir, "xgboost.json"))).learner).toBeDefined();
    const loaded = await loadBoostedClassifier(dir);
    expect(Array.from(await loaded.predictProbabilities(val))).toEqual(Array.from(p));
    expect(loaded.report.bestRound).toBe(bestRound);
    await expect(loaded.predictProbabilities({ ...val, names: ["a", ...NAMES.slice(1)] })).rejects.toThrow(
      /predictProbabilities: the matrix has 6 columns \("a" at 0\), the classifier reads 6 \("x0" at 0\)/,
    );
    classifier.dispose();
    loaded.dispose();
  });

  it("refuses labels other than 0/1 and unknown folders, naming them", async () => {
    await expect(fitBoostedClassifier({ ...train, labels: [...reference.train.y.slice(1), 2] }, null)).rejects.toThrow(
      `training pairs: label 2 at row ${train.rows - 1}; expected 1 (same product) or 0`,
    );
    await expect(loadBoostedClassifier("/nowhere")).rejects.toThrow(
      /\/nowhere\/classifier.json: not a saved pair classifier/,
    );
  });
});
