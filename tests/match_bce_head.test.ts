/**
 * The tfjs BCE head (lib/match/bce_head.ts): fitted on pairs where two columns and one column's absence
 * carry the label, it separates new pairs, keeps its best epoch, saves and loads to the same probabilities,
 * explains each row by contributions that add up to its log-odds, and leaks no tensor.
 */
import { describe, it } from "node:test";
import { expect } from "expect";
import { tf } from "../lib/tf.ts";
import { fitBceHead, IG_STEPS } from "../lib/match/bce_head.ts";
import { loadPairClassifier } from "../lib/match/stacked_classifier.ts";
import type { LabelledMatrix } from "../lib/match/classifier.ts";
import { rocAuc } from "../lib/eval/pair_metrics.ts";
import { mulberry32 } from "./helpers.ts";

const NAMES = ["signal", "signal_squared", "absent_when_same", "noise"];

/** Pairs whose label is in `signal` (linear and squared) and in whether `absent_when_same` is missing. */
function pairs(rows: number, seed: number): LabelledMatrix {
  const random = mulberry32(seed);
  const values = new Float32Array(rows * NAMES.length);
  const labels = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    const label = random() < 0.3 ? 1 : 0;
    labels[r] = label;
    const signal = (label ? 1 : -0.5) + random() * 1.2 - 0.6;
    values.set([signal, signal * signal, label && random() < 0.7 ? NaN : random() * 5, random() * 100], r * 4);
  }
  return { names: [...NAMES], values, rows, labels };
}

const train = pairs(1200, 1), validation = pairs(400, 2), test = pairs(400, 3);
/** Small batches: 1,200 pairs give 19 steps an epoch. */
const FIT = { epochs: 30, batchSize: 64 };

describe("the BCE head", () => {
  it("separates new pairs, keeps its best epoch, saves and loads to the same probabilities, leaks nothing", async () => {
    const before = tf.memory().numTensors;
    const head = await fitBceHead(train, validation, { ...FIT, earlyStopping: 5 });
    const p = await head.predictProbabilities(test);
    expect(rocAuc(Array.from(test.labels), Array.from(p))).toBeGreaterThan(0.97);
    const losses = head.report.history.map((h) => h.validation!);
    expect(head.report.bestRound).toBe(losses.indexOf(Math.min(...losses)) + 1);
    const dir = await Deno.makeTempDir();
    await head.save(dir);
    const loaded = await loadPairClassifier(dir);
    expect(loaded.kind).toBe("bce-head");
    expect(Array.from(await loaded.predictProbabilities(test))).toEqual(Array.from(p));
    // Seeded: the same fit again gives the same probabilities.
    const again = await fitBceHead(train, validation, { ...FIT, earlyStopping: 5 });
    expect(Array.from(await again.predictProbabilities(test))).toEqual(Array.from(p));
    for (const c of [head, loaded, again]) c.dispose();
    expect(tf.memory().numTensors).toBe(before);
    await expect(head.predictProbabilities(test)).rejects.toThrow(/used after dispose/);
  });

  it("explains each row: contributions and bias add up to its log-odds; the label's columns matter most", async () => {
    const head = await fitBceHead(train, validation, FIT);
    const before = tf.memory().numTensors;
    const c = await head.contributions(test);
    expect(tf.memory().numTensors).toBe(before);
    const p = await head.predictProbabilities(test);
    let worst = 0;
    for (let r = 0; r < test.rows; r++) {
      const sum = c.values.subarray(r * 4, r * 4 + 4).reduce((a, b) => a + b, c.bias[r]);
      worst = Math.max(worst, Math.abs(sum - Math.log(p[r] / (1 - p[r]))));
    }
    // The integral is approximated by IG_STEPS midpoints.
    expect(IG_STEPS).toBe(64);
    expect(worst).toBeLessThan(0.05);
    const mean = (j: number) => Array.from({ length: test.rows }, (_, r) => Math.abs(c.values[r * 4 + j]));
    const importance = [0, 1, 2, 3].map((j) => mean(j).reduce((a, b) => a + b, 0));
    expect(importance[3]).toBeLessThan(Math.min(importance[0], importance[2]));
    head.dispose();
  });

  it("refuses bad labels, other columns and bad options, naming them", async () => {
    await expect(fitBceHead({ ...train, labels: Array.from(train.labels, (l, i) => (i === 5 ? 2 : l)) }, null)).rejects
      .toThrow(/training pairs: label 2 at row 5/);
    await expect(fitBceHead(train, { ...validation, names: ["a", "b", "c", "d"] })).rejects.toThrow(
      /validation pairs: the matrix has 4 columns \("a" at 0\)/,
    );
    await expect(fitBceHead(train, null, { hidden: 0 })).rejects.toThrow(/hidden = 0; expected an integer >= 1/);
    await expect(fitBceHead(train, null, { learningRate: -1 })).rejects.toThrow(/learningRate = -1; expected a number/);
  });
});
