import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import sharp from "sharp";
import { tf } from "../lib/tf.ts";
import { selectBackend } from "../lib/backend.ts";
import { createSiameseRuCLIP, type SiameseRuCLIP } from "../lib/model/siamese.ts";
import { tinyPreset } from "../lib/model/presets.ts";
import { loadCheckpoint } from "../lib/model/checkpoint.ts";
import { loadTokenizer } from "../lib/text/tokenizer.ts";
import { shippedDir } from "../lib/paths.ts";
import { ProductInputs, type ProductRecord } from "../lib/train/product_inputs.ts";
import { cachedTowerFeatures } from "../lib/train/feature_cache.ts";
import {
  epochOrder,
  pairIndexSet,
  TrainingDivergedError,
  trainSiamese,
  validationMetrics,
} from "../lib/train/trainer.ts";
import { SeededRandom } from "../lib/data/random.ts";
import {
  DEFAULT_TRAINING_CONFIG,
  schedulerMetric,
  type TrainingConfig,
  trainingConfigFromParams,
  type TrainingParams,
} from "../lib/train/config.ts";
import { TRAINING_STRATEGIES, type TrainingMode, trainingStrategy } from "../lib/train/strategies.ts";
import { ReduceLROnPlateau } from "../lib/train/plateau.ts";
import { configureStopHandler, InterruptedError, lastInterruption, stopPressed } from "../lib/notebook/interrupt.ts";

await selectBackend("cpu", { quiet: true });
const tokenizer = await loadTokenizer(join(shippedDir, "tokenizer-demo"));
const dir = await Deno.makeTempDir({ prefix: "trainer-test-" });

/** Four products, each listed twice with a slightly different picture and name. */
async function makeProducts(): Promise<ProductRecord[]> {
  const colours = [[200, 30, 30], [30, 160, 40], [40, 60, 200], [220, 200, 40]];
  const names = ["карта мира политическая", "глобус физический", "атлас россии", "скретч карта мира"];
  const products: ProductRecord[] = [];
  for (const [i, [r, g, b]] of colours.entries()) {
    for (const listing of [0, 1]) {
      const path = join(dir, `p${i}-${listing}.png`);
      await sharp({
        create: { width: 40 + 8 * listing, height: 36, channels: 3, background: { r: r - 20 * listing, g, b } },
      }).png().toFile(path);
      products.push({
        sku: `${i}${listing}`,
        name: `${names[i]} ${listing ? "100x70 см" : "70 на 100"}`,
        description: names[i],
        imagePath: path,
      });
    }
  }
  products.push({ sku: "no-image", name: "глобус", description: "", imagePath: join(dir, "missing.png") });
  return products;
}

const products = await makeProducts();
const inputs = await ProductInputs.build(products, { tokenizer, imageSize: 32, maxTokens: 16, progress: false });
const pairs: { skuLeft: string; skuRight: string; label: number }[] = [];
for (let i = 0; i < 4; i++) {
  pairs.push({ skuLeft: `${i}0`, skuRight: `${i}1`, label: 1 });
  pairs.push({ skuLeft: `${i}0`, skuRight: `${(i + 1) % 4}1`, label: 0 });
  pairs.push({ skuLeft: `${i}1`, skuRight: `${(i + 2) % 4}0`, label: 0 });
}
const train = pairIndexSet(inputs, pairs);
const validation = pairIndexSet(inputs, pairs.slice(0, 6));
const config: TrainingConfig = { ...DEFAULT_TRAINING_CONFIG, epochs: 3, batchSize: 5, learningRate: 3e-3, margin: 1 };

/** Trains `m` on the pairs above with `config`, unless `options` says otherwise. */
const trainOn = (
  m: SiameseRuCLIP,
  options: Omit<Parameters<typeof trainSiamese>[0], "model" | "inputs" | "train" | "validation" | "config"> & {
    config?: TrainingConfig;
  },
) => trainSiamese({ model: m, inputs, train, validation, config, ...options });

const params: TrainingParams = {
  MODE: "text",
  EPOCHS: 2,
  BATCH_SIZE: 8,
  LR: 1e-3,
  WEIGHT_DECAY: 0.1,
  MARGIN: 2,
  LOSS: "online-contrastive",
  PLATEAU_FACTOR: 0.5,
  PLATEAU_PATIENCE: 0,
  GRAD_CLIP: 1,
  SEED: 7,
  BEST_METRIC: "auc",
};

function model() {
  return createSiameseRuCLIP(
    { ...tinyPreset(tokenizer.vocabSize), imageSize: 32, maxTokens: 16 } as ReturnType<typeof tinyPreset>,
    { seed: 3 },
  );
}

describe("product inputs", () => {
  it("reports a missing image and gives it a zero image tensor", async () => {
    expect(inputs.issues.map((i) => [i.sku, i.status])).toEqual([["no-image", "missing"]]);
    const batch = inputs.batch([inputs.indexOf("no-image"), 0]);
    const pixels = await batch.images.data();
    expect(pixels.slice(0, 32 * 32 * 3).every((v) => v === 0)).toBe(true);
    expect(pixels.slice(32 * 32 * 3).some((v) => v !== 0)).toBe(true);
    Object.values(batch).forEach((t) => t.dispose());
    expect(() => inputs.indexOf("nope")).toThrow(/product nope is not among the 9 prepared products/);
  });

  it("trims a batch's tokens to its longest text, and the text towers give what they give at full length", async () => {
    const m = model();
    const rows = [0, 3, inputs.indexOf("no-image")];
    const trimmed = inputs.textBatch(rows);
    const T = trimmed.nameIds.shape[1];
    expect(T).toBeLessThan(16);
    // The longest name of the batch fills the trimmed width; no row loses a token.
    const masks = (await trimmed.nameMask.array()) as number[][];
    expect(masks.some((row) => row[T - 1] === 1)).toBe(true);
    const pad = (t: tf.Tensor2D) => tf.pad(t, [[0, 0], [0, 16 - t.shape[1]]]) as tf.Tensor2D;
    const full = {
      nameIds: pad(trimmed.nameIds),
      nameMask: pad(trimmed.nameMask),
      descIds: pad(trimmed.descIds),
      descMask: pad(trimmed.descMask),
    };
    const a = m.textFeatures(trimmed, false);
    const b = m.textFeatures(full, false);
    const diff = tf.max(tf.abs(tf.sub(a, b)));
    expect((await diff.data())[0]).toBeLessThan(1e-5);
    [a, b, diff, ...Object.values(full), ...Object.values(trimmed)].forEach((t) => t.dispose());
    m.dispose();
  });
});

describe("trainer, full mode", () => {
  it("trains, validates each epoch, keeps memory flat, and writes epoch, best and final checkpoints", async () => {
    const m = model();
    const counts: number[] = [];
    const runDir = join(dir, "results", "full");
    const result = await trainOn(m, {
      runDir,
      progress: false,
      onEpoch: () => void counts.push(tf.memory().numTensors),
    });
    expect(result.history.map((r) => r.epoch)).toEqual([1, 2, 3]);
    expect(counts[1]).toBe(counts[0]);
    expect(counts[2]).toBe(counts[0]);
    const [first, last] = [result.history[0], result.history[2]];
    expect(last.trainLoss).toBeLessThan(first.trainLoss);
    for (const r of result.history) {
      expect(r.auc).toBeGreaterThanOrEqual(0);
      expect(r.auc).toBeLessThanOrEqual(1);
      expect(r.meanAcc).toBeCloseTo((r.pAcc + r.nAcc) / 2, 12);
    }
    for (const sub of ["tmp/full/epoch-001", "tmp/full/epoch-003", "full/best", "full/final"]) {
      await Deno.stat(join(dir, "results", sub, "model.safetensors"));
    }
    const best = await loadCheckpoint(result.bestDir);
    expect(best.trainingState?.epoch).toBe(result.bestEpoch);
    m.dispose();
  });

  it("resumes from an epoch checkpoint and continues the same schedule", async () => {
    const m = model();
    const runDir = join(dir, "results", "resume");
    await trainOn(m, {
      config: { ...config, epochs: 1 },
      runDir,
      progress: false,
    });
    m.dispose();
    const resumed = model();
    const checkpoint = join(dir, "results", "tmp", "resume", "epoch-001");
    const saved = await loadCheckpoint(checkpoint);
    const result = await trainOn(resumed, {
      config: { ...config, epochs: 2 },
      runDir,
      resumeFrom: checkpoint,
      progress: false,
    });
    expect(result.startEpoch).toBe(1);
    expect(result.history.map((r) => r.epoch)).toEqual([1, 2]);
    expect(result.history[0]).toEqual((saved.trainingState!.history as unknown[])[0]);
    const after = await loadCheckpoint(join(dir, "results", "tmp", "resume", "epoch-002"));
    expect(after.trainingState!.step).toBe(2 * Math.ceil(pairs.length / config.batchSize));
    expect(after.trainingState!.optimizerStep).toBe(2 * Math.ceil(pairs.length / config.batchSize));
    resumed.dispose();
  });

  it("Stop mid-epoch keeps a resumable checkpoint; resumed, the run ends where an uninterrupted one ends", async () => {
    const steps = Math.ceil(pairs.length / config.batchSize); // 3 per epoch
    const whole = model();
    await trainOn(whole, { runDir: join(dir, "results", "whole") });
    const expected = await whole.stateDict();
    whole.dispose();

    configureStopHandler({ notify: () => {}, exit: () => {} });
    const stopped = model();
    const runDir = join(dir, "results", "stopped");
    const before = tf.memory().numTensors;
    const error = await trainOn(stopped, {
      runDir,
      progress: false,
      // Stop pressed during the first step of epoch 2 (global step 4).
      lossHook: (_epoch, step, loss) => {
        if (step === steps + 1) stopPressed();
        return loss;
      },
    }).catch((e) => e);
    expect(error).toBeInstanceOf(InterruptedError);
    const interrupted = join(dir, "results", "tmp", "stopped", "interrupted");
    expect(error.message).toBe(
      `training stopped at epoch 2/3, step 1/${steps} (Stop). Kept: the model and optimizer after that step and ` +
        `the resume state, in ${interrupted}; the last finished epoch in ${
          join(dir, "results", "tmp", "stopped", "epoch-001")
        }. Resume: set RESUME to ${interrupted} (in this kernel: P.RESUME = lastInterruption().resumeFrom, from ` +
        "lib/notebook/interrupt.ts) and run the training again; it goes on from there.",
    );
    expect(lastInterruption()).toBe(error);
    expect(error.resumeFrom).toBe(interrupted);
    expect(tf.memory().numTensors).toBe(before);
    stopped.dispose();
    const state = (await loadCheckpoint(interrupted)).trainingState!;
    expect(state.epoch).toBe(1);
    expect(state.step).toBe(steps + 1);
    expect(state.partial).toMatchObject({ epoch: 2, steps: 1 });

    // A run with fewer epochs than the stopped one cannot resume it.
    const early = model();
    await expect(
      trainOn(early, {
        config: { ...config, epochs: 1 },
        runDir,
        resumeFrom: interrupted,
      }),
    ).rejects.toThrow(/stopped during epoch 2, but the run has 1 epochs; set EPOCHS to at least 2/);
    early.dispose();

    const resumed = model();
    const result = await trainOn(resumed, {
      runDir,
      resumeFrom: interrupted,
      progress: false,
    });
    expect(result.startEpoch).toBe(1);
    expect(result.history.map((r) => r.epoch)).toEqual([1, 2, 3]);
    const after = await resumed.stateDict();
    for (const [name, tensor] of expected) expect(Array.from(after.get(name)!.data)).toEqual(Array.from(tensor.data));
    const final = await loadCheckpoint(join(dir, "results", "tmp", "stopped", "epoch-003"));
    expect(final.trainingState!.step).toBe(3 * steps);
    resumed.dispose();
  });

  it("stops on a NaN loss with a clear error and keeps the last good checkpoint", async () => {
    const m = model();
    const runDir = join(dir, "results", "nan");
    const before = tf.memory().numTensors;
    const error = await trainOn(m, {
      runDir,
      progress: false,
      lossHook: (epoch, _step, loss) => (epoch === 2 ? Number.NaN : loss),
    }).catch((e) => e);
    expect(error).toBeInstanceOf(TrainingDivergedError);
    expect(error.message).toMatch(/loss became NaN at epoch 2.*last good checkpoint is .*epoch-001/);
    await Deno.stat(join(dir, "results", "tmp", "nan", "epoch-001", "model.safetensors"));
    await expect(Deno.stat(join(dir, "results", "tmp", "nan", "epoch-002"))).rejects.toThrow();
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
  });
});

describe("trainer, head mode", () => {
  it("computes tower features once, reuses the cache on a second run, and trains only the head", async () => {
    const m = model();
    const cacheDir = join(dir, "cache");
    const first = await cachedTowerFeatures(m, inputs, { cacheDir, progress: false });
    const second = await cachedTowerFeatures(m, inputs, { cacheDir, progress: false });
    expect(first.reused).toBe(false);
    expect(second.reused).toBe(true);
    expect(second.features).toEqual(first.features);
    const towersBefore = (await m.stateDict()).get("ruclip.final_ln.weight")!.data.slice();
    const headBefore = (await m.stateDict()).get("head.0.weight")!.data.slice();
    const result = await trainOn(m, {
      config: { ...config, mode: "head", epochs: 2 },
      runDir: join(dir, "results", "head"),
      features: second.features,
      progress: false,
    });
    expect(result.history).toHaveLength(2);
    expect((await m.stateDict()).get("ruclip.final_ln.weight")!.data).toEqual(towersBefore);
    expect((await m.stateDict()).get("head.0.weight")!.data).not.toEqual(headBefore);
    // Changing the towers changes the cache key.
    const other = createSiameseRuCLIP(
      { ...tinyPreset(tokenizer.vocabSize), imageSize: 32, maxTokens: 16 } as ReturnType<typeof tinyPreset>,
      { seed: 4 },
    );
    expect((await cachedTowerFeatures(other, inputs, { cacheDir, progress: false })).reused).toBe(false);
    other.dispose();
    m.dispose();
  });
});

describe("trainer, a loss over query groups", () => {
  const grouped = pairs.map((pair, i) => ({ ...pair, querySku: `q${i % 3}` }));
  it("numbers each pair's query group, and batches a group's pairs together", () => {
    const set = pairIndexSet(inputs, grouped);
    expect(Array.from(set.groups!)).toEqual(grouped.map((_, i) => i % 3));
    expect(pairIndexSet(inputs, pairs).groups).toBeUndefined();
    const order = epochOrder(set, true, new SeededRandom(5));
    expect([...order].sort((a, b) => a - b)).toEqual([...set.labels.keys()]);
    const runs = order.map((p) => set.groups![p]).filter((g, i, all) => i === 0 || g !== all[i - 1]);
    expect(runs).toHaveLength(3);
    expect(() => epochOrder(pairIndexSet(inputs, pairs), true, new SeededRandom(5))).toThrow(/PairIndexSet.groups/);
  });

  it("trains the head with in-batch negatives per query, and refuses pairs without their query", async () => {
    const m = model();
    const { features } = await cachedTowerFeatures(m, inputs, { cacheDir: join(dir, "cache"), progress: false });
    const set = pairIndexSet(inputs, grouped);
    const options = {
      model: m,
      inputs,
      validation: set,
      config: { ...config, mode: "head" as const, epochs: 2, loss: "query-ranking" as const, batchSize: 4 },
      runDir: join(dir, "results", "ranking"),
      features,
      progress: false,
    };
    await expect(trainSiamese({ ...options, train: pairIndexSet(inputs, pairs) })).rejects.toThrow(
      /"query-ranking" ranks pairs within their query, but the training pairs name no query/,
    );
    const before = tf.memory().numTensors;
    const result = await trainSiamese({ ...options, train: set });
    expect(tf.memory().numTensors).toBe(before);
    expect(result.history).toHaveLength(2);
    expect(result.history.every((r) => Number.isFinite(r.trainLoss) && Number.isFinite(r.valLoss))).toBe(true);
    expect(result.history[0].loss).toBe("query-ranking");
    m.dispose();
  });
});

describe("trainer, text mode", () => {
  it("trains the text towers and the head on cached image features, as running the frozen image tower would", async () => {
    const runs = [];
    for (const cached of [false, true]) {
      const m = model();
      const features = cached
        ? (await cachedTowerFeatures(m, inputs, { cacheDir: join(dir, "cache-text"), progress: false })).features
        : undefined;
      const imageBefore = (await m.stateDict()).get("ruclip.visual.stem.0.weight")!.data.slice();
      const nameBefore = (await m.stateDict()).get("ruclip.final_ln.weight")!.data.slice();
      const tensorsBefore = tf.memory().numTensors;
      const result = await trainOn(m, {
        config: { ...config, mode: "text", epochs: 2 },
        runDir: join(dir, "results", `text-${cached}`),
        features,
        progress: false,
      });
      expect(tf.memory().numTensors).toBe(tensorsBefore);
      expect((await m.stateDict()).get("ruclip.visual.stem.0.weight")!.data).toEqual(imageBefore);
      expect((await m.stateDict()).get("ruclip.final_ln.weight")!.data).not.toEqual(nameBefore);
      runs.push(result.history);
      m.dispose();
    }
    // Same seed, same pairs: the cached image features change nothing but the speed.
    for (const [i, record] of runs[0].entries()) {
      expect(runs[1][i].trainLoss).toBeCloseTo(record.trainLoss, 4);
      expect(runs[1][i].auc).toBeCloseTo(record.auc, 4);
    }
  });
});

describe("training contracts", () => {
  it("checks the configuration at the library's entry, naming the field, the value and the choices", async () => {
    const m = model();
    const run = (patch: Partial<TrainingConfig>) =>
      trainOn(m, {
        config: { ...config, ...patch } as TrainingConfig,
        runDir: join(dir, "results", "bad"),
        progress: false,
      });
    await expect(run({ mode: "hed" as never })).rejects.toThrow(
      'TrainingConfig.mode = "hed"; expected one of head, text, full',
    );
    await expect(run({ loss: "triplet" as never })).rejects.toThrow(/TrainingConfig.loss = "triplet".*contrastive/);
    await expect(run({ bestMetric: "map" as never })).rejects.toThrow(/bestMetric = "map".*f1, auc, loss/);
    await expect(run({ epochs: 0 })).rejects.toThrow("TrainingConfig.epochs = 0; expected an integer >= 1");
    await expect(run({ mode: "head" })).rejects.toThrow(/head mode needs the products' tower features/);
    expect(() => trainingConfigFromParams({ ...params, LR: -1 })).toThrow("LR = -1; expected a number > 0");
    expect(() => trainingStrategy("Full", "MODE")).toThrow('MODE = "Full"; expected one of head, text, full');
    m.dispose();
  });

  it("builds the config from notebook parameters", () => {
    const built = trainingConfigFromParams(params);
    expect(built).toEqual({
      mode: "text",
      epochs: 2,
      batchSize: 8,
      learningRate: 1e-3,
      weightDecay: 0.1,
      margin: 2,
      loss: "online-contrastive",
      plateauFactor: 0.5,
      plateauPatience: 0,
      gradientClip: 1,
      seed: 7,
      bestMetric: "auc",
    });
    expect(schedulerMetric(built)).toBe("auc");
    expect(schedulerMetric({ ...built, plateauMetric: "loss" })).toBe("loss");
  });

  it("freezes towers through the model's lock API, as each mode's strategy asks", () => {
    const m = model();
    const names = (mode: TrainingMode) => TRAINING_STRATEGIES[mode].prepare(m).names;
    const prefixes = (list: string[]) => [...new Set(list.map((n) => n.split(".")[0] + "." + n.split(".")[1]))];
    expect(prefixes(names("head"))).toEqual(["head.0", "head.3"]);
    expect(m.lockedTowers()).toEqual(["image", "text"]);
    expect(names("text").some((n) => n.startsWith("ruclip.visual."))).toBe(false);
    expect(names("text").some((n) => n.startsWith("ruclip.transformer."))).toBe(true);
    expect(m.lockedTowers()).toEqual(["image"]);
    expect(names("full")).toEqual(m.trainableNames());
    expect(m.lockedTowers()).toEqual([]);
    m.lockImageTower();
    expect(m.trainableVariables().length).toBe(TRAINING_STRATEGIES.text.prepare(m).variables.length);
    m.dispose();
  });

  it("scores validation with the training loss's own formula, batch by batch", async () => {
    const distances = Float64Array.from([0.2, 1.5, 0.4, 0.9, 2.5, 0.1, 1.2]);
    const labels = Float32Array.from([1, 0, 1, 0, 0, 1, 0]);
    const online = await validationMetrics(distances, labels, { loss: "online-contrastive", margin: 2, batchSize: 4 });
    expect(online.loss).toBe("online-contrastive");
    // Batch 1 [0.2 1.5 0.4 0.9 | 1 0 1 0]: hard negatives d < max positive 0.4 (none), hard positives
    // d > min negative 0.9 (none): 0. Batch 2 [2.5 0.1 1.2 | 0 1 0]: one positive, so negatives are hard
    // below the mean negative 1.85: 1.2 gives (2 - 1.2)^2 = 0.64; positives hard above 1.2: none.
    // Weighted by pairs as the training loss: 0.64 * 3 / 7 (the whole set at once would give another value).
    expect(online.valLoss).toBeCloseTo(0.64 * 3 / 7, 6);
    const plain = await validationMetrics(distances, labels, { loss: "contrastive", margin: 2, batchSize: 3 });
    let expected = 0;
    distances.forEach((d, i) => expected += labels[i] ? d * d : Math.max(0, 2 - d) ** 2);
    expect(plain.valLoss).toBeCloseTo(expected / distances.length, 6);
    expect(plain.threshold.rule).toEqual({ kind: "f1" });
    expect(plain.threshold.distance).toBeCloseTo(0.4, 6);
  });

  it("steps the learning-rate scheduler on the metric that picks the best epoch", async () => {
    const m = model();
    const features = (await cachedTowerFeatures(m, inputs, { cacheDir: join(dir, "cache-plateau"), progress: false }))
      .features;
    const result = await trainOn(m, {
      config: { ...config, mode: "head", epochs: 4, bestMetric: "loss", plateauPatience: 0, learningRate: 0.05 },
      runDir: join(dir, "results", "plateau"),
      features,
      progress: false,
    });
    const replay = new ReduceLROnPlateau({ mode: "min", factor: config.plateauFactor, patience: 0 });
    let lr = 0.05;
    for (const [i, record] of result.history.entries()) {
      expect(record.learningRate).toBeCloseTo(lr, 12);
      expect(record.loss).toBe(config.loss);
      lr = replay.step(record.valLoss, lr);
      if (i === result.history.length - 1) break;
    }
    const best = result.history.reduce((a, b) => (b.valLoss < a.valLoss ? b : a));
    expect(result.bestEpoch).toBe(best.epoch);
    m.dispose();
  });
});
