/**
 * Throughput of the tfjs SiameseRuCLIP on synthetic inputs (random weights, random images and
 * tokens, full-length masks): embedding (products/s, inference) and one training step
 * (pairs/s) in full mode (every weight, each distinct product of the step encoded once) and head
 * mode (the head on precomputed tower features). The step is the trainer's: contrastive loss,
 * gradient clipping by global norm, AdamW (lib/train/trainer.ts).
 */
import { TRAINING_STRATEGIES } from "../train/strategies.ts";
import { tf } from "../tf.ts";
import type { ProductBatch, SiameseRuCLIP } from "../model/siamese.ts";
import type { SiameseRuCLIPConfig } from "../model/presets.ts";
import { contrastiveLoss, pairwiseDistance } from "../model/losses.ts";
import { AdamW, clipGradientsByGlobalNorm } from "../train/adamw.ts";

/** Seconds per timed call and the calls' count. */
export interface Timing {
  seconds: number;
  repeats: number;
}

/** A synthetic product batch of `n` products for `config` (seeded). Dispose with `disposeBatch`. */
export function syntheticBatch(config: SiameseRuCLIPConfig, n: number, seed = 1): ProductBatch {
  const t = config.maxTokens;
  return tf.tidy(() => ({
    images: tf.randomNormal([n, config.imageSize, config.imageSize, 3], 0, 1, "float32", seed) as tf.Tensor4D,
    nameIds: tf.randomUniform([n, t], 1, config.nameBert.vocabSize, "int32", seed + 1) as tf.Tensor2D,
    nameMask: tf.ones([n, t], "int32") as tf.Tensor2D,
    descIds: tf.randomUniform([n, t], 1, config.descriptionBert.vocabSize, "int32", seed + 2) as tf.Tensor2D,
    descMask: tf.ones([n, t], "int32") as tf.Tensor2D,
  }));
}

/** Frees a batch made by `syntheticBatch`. */
export function disposeBatch(batch: ProductBatch): void {
  tf.dispose([batch.images, batch.nameIds, batch.nameMask, batch.descIds, batch.descMask]);
}

/** Pair sides over `products` rows: left i, right a different row; labels alternate 1, 0. */
export function syntheticPairs(pairs: number, products: number): { left: number[]; right: number[]; labels: number[] } {
  if (products < 2) throw new Error(`syntheticPairs: need at least 2 products, got ${products}`);
  const left: number[] = [];
  const right: number[] = [];
  const labels: number[] = [];
  for (let i = 0; i < pairs; i++) {
    const a = i % products;
    let b = (a + 1 + Math.floor(i / products)) % products;
    if (b === a) b = (a + 1) % products;
    left.push(a);
    right.push(b);
    labels.push(i % 2 === 0 ? 1 : 0);
  }
  return { left, right, labels };
}

/** Seconds per call of `run` over `repeats` calls (no warm-up: the caller does it). */
async function timeAsync(run: () => Promise<void>, repeats: number): Promise<Timing> {
  const start = performance.now();
  for (let i = 0; i < repeats; i++) await run();
  return { seconds: (performance.now() - start) / 1000 / repeats, repeats };
}

/** Embedding throughput of the whole model (towers + head, inference). */
export interface EmbeddingThroughput {
  productsPerSecond: number;
  secondsPerBatch: number;
  batchSize: number;
  batches: number;
  /** Seconds of the image tower alone on the same batch (one call). */
  imageTowerSeconds: number;
  /** Seconds of the two text towers and the head (total minus image tower). */
  otherSeconds: number;
}

/** Throughput numbers of an embedding run: products/s, and time split between the image tower and the rest. */
export function embeddingThroughput(
  batchSize: number,
  batches: number,
  secondsPerBatch: number,
  imageTowerSeconds: number,
): EmbeddingThroughput {
  return {
    productsPerSecond: batchSize / secondsPerBatch,
    secondsPerBatch,
    batchSize,
    batches,
    imageTowerSeconds,
    otherSeconds: Math.max(0, secondsPerBatch - imageTowerSeconds),
  };
}

/**
 * Times `batches` calls of `model.embed` on one synthetic batch of `batchSize` products, after a
 * warm-up call on a batch of `warmupSize` products (weights packed, buffers allocated).
 */
export async function benchEmbedding(
  model: SiameseRuCLIP,
  options: { batchSize: number; batches?: number; warmupSize?: number },
): Promise<EmbeddingThroughput> {
  const batches = options.batches ?? 1;
  const warm = syntheticBatch(model.config, Math.min(options.warmupSize ?? 2, options.batchSize), 11);
  const batch = syntheticBatch(model.config, options.batchSize);
  try {
    const embedOnce = async (b: ProductBatch): Promise<void> => {
      const out = model.embed(b, false);
      await out.data();
      out.dispose();
    };
    await embedOnce(warm);
    const start = performance.now();
    for (let i = 0; i < batches; i++) await embedOnce(batch);
    const secondsPerBatch = (performance.now() - start) / 1000 / batches;
    const imageStart = performance.now();
    const image = model.ruclip.encodeImage(batch.images);
    await image.data();
    image.dispose();
    const imageTowerSeconds = (performance.now() - imageStart) / 1000;
    return embeddingThroughput(options.batchSize, batches, secondsPerBatch, imageTowerSeconds);
  } finally {
    disposeBatch(warm);
    disposeBatch(batch);
  }
}

/** Training throughput of one mode. */
export interface TrainingThroughput {
  mode: "full" | "head";
  pairsPerSecond: number;
  secondsPerStep: number;
  pairsPerStep: number;
  productsPerStep: number;
  steps: number;
  /** Tensors alive after the timed steps minus before (0 when nothing leaks). */
  tensorGrowth: number;
}

/**
 * Times training steps (one warm-up step unless `warmup` is false, then `steps` timed ones) of `pairs` pairs over
 * `products` distinct products. Full mode encodes the products with every weight trainable; head
 * mode trains the head on random features standing in for cached tower features.
 */
export async function benchTrainingStep(
  model: SiameseRuCLIP,
  options: { mode: "full" | "head"; pairs: number; products: number; steps?: number; warmup?: boolean },
): Promise<TrainingThroughput> {
  const { mode, pairs, products } = options;
  const steps = options.steps ?? 1;
  const strategy = TRAINING_STRATEGIES[mode];
  const { variables } = strategy.prepare(model);
  const optimizer = new AdamW({ learningRate: 5e-5, weightDecay: 1e-2 });
  const sides = syntheticPairs(pairs, products);
  const left = tf.tensor1d(sides.left, "int32");
  const right = tf.tensor1d(sides.right, "int32");
  const labels = tf.tensor1d(sides.labels);
  const cached = strategy.towerFeatures === "required";
  const batch = cached ? undefined : syntheticBatch(model.config, products, 21);
  const features = cached
    ? tf.randomNormal([products, model.featureDim], 0, 1, "float32", 5) as tf.Tensor2D
    : undefined;
  const step = async (): Promise<void> => {
    const { value, grads } = tf.variableGrads(() => {
      const embeddings = strategy.embed(model, batch, features ?? null, true);
      const distances = pairwiseDistance(
        tf.gather(embeddings, left) as tf.Tensor2D,
        tf.gather(embeddings, right) as tf.Tensor2D,
      );
      return contrastiveLoss(distances, labels, 1);
    }, variables);
    await value.data();
    value.dispose();
    const clipped = (await clipGradientsByGlobalNorm(grads, 1)).gradients;
    optimizer.applyGradients(variables, clipped);
    Object.values(clipped).forEach((g) => g.dispose());
  };
  try {
    if (options.warmup ?? true) await step();
    const before = tf.memory().numTensors;
    const timing = await timeAsync(step, Math.max(1, steps));
    const tensorGrowth = tf.memory().numTensors - before;
    return {
      mode,
      pairsPerSecond: pairs / timing.seconds,
      secondsPerStep: timing.seconds,
      pairsPerStep: pairs,
      productsPerStep: products,
      steps,
      tensorGrowth,
    };
  } finally {
    optimizer.dispose();
    model.unlockTowers();
    tf.dispose([left, right, labels]);
    if (batch) disposeBatch(batch);
    features?.dispose();
  }
}
