/**
 * Label-free pretraining of the text towers on a dataset's own texts, for towers that start from random
 * weights (an imported dataset with its learnt WordPiece vocabulary, where nothing can be downloaded).
 *
 * A product's name and its own description are two views of the same item: InfoNCE with in-batch
 * negatives, both directions (CLIP's objective; the demo's towers were pretrained the same way by
 * scripts/fixtures/pretrain_demo_text_tower.py, in PyTorch, on another marketplace). One BERT, the
 * description tower's, encodes both views (attention-masked mean, L2-normalised); dropout is the noise.
 * A product without a description text (its description is also its other attributes joined, see
 * session.ts' `productRecords`) has a single text: its second view is its name again under other dropout
 * masks (SimCSE's unsupervised objective), in the same batches, so a dataset of titles alone pretrains too.
 * Its weights are then written as an HF BertModel folder (config.json + model.safetensors) that
 * `setupModel({ textWeights })` loads into both text towers, as the demo's pretrained tower is.
 *
 * Only the rows given are read, and only their texts: a benchmark passes its training split's products
 * with a name (no label, no validation or test text).
 *
 * @module
 */
import { join } from "node:path";
import { tf } from "../tf.ts";
import { SeededRandom } from "../data/random.ts";
import { writeFileAtomic, writeJsonAtomic } from "../fs.ts";
import { maskedMeanPool } from "../model/bert.ts";
import { seedDropout } from "../model/layers.ts";
import { writeSafetensors } from "../model/safetensors.ts";
import type { SiameseRuCLIP } from "../model/siamese.ts";
import type { StateDict } from "../model/state_dict.ts";
import { beginInterruptible, InterruptedError, takeInterrupt } from "../notebook/interrupt.ts";
import { Progress } from "../notebook/progress.ts";
import { AdamW, clipGradientsByGlobalNorm } from "./adamw.ts";
import { loadTowerWeights } from "../model/load.ts";
import { shownPath } from "../paths.ts";
import { disposeProductBatch, type ProductInputs, type ProductRecord } from "./product_inputs.ts";

/** The pretraining's knobs. */
export interface TextPretrainingConfig {
  epochs: number;
  /** Products per step: each is the others' negative. */
  batchSize: number;
  learningRate: number;
  weightDecay: number;
  /** InfoNCE temperature on the cosine similarities. */
  temperature: number;
  /** Seed of the product order and the dropout masks. */
  seed: number;
}

/** As the demo's tower was pretrained (batch 256, temperature 0.05, lr 1e-3), for a few thousand products. */
export const TEXT_PRETRAINING_DEFAULTS: TextPretrainingConfig = {
  epochs: 10,
  batchSize: 128,
  learningRate: 1e-3,
  weightDecay: 0.01,
  temperature: 0.05,
  seed: 0,
};

/** What `pretrainTextTowers` did. */
export interface TextPretrainingResult {
  config: TextPretrainingConfig;
  /** Products whose texts were read. */
  products: number;
  /** Mean InfoNCE per epoch (both directions averaged), and seconds. */
  history: { epoch: number; loss: number; seconds: number }[];
  /** Products with a name and a description (two views); the rest had one view (SimCSE). */
  twoViews: number;
  /**
   * Top-1 accuracy of finding a product's own description from its name among the first (up to) 1000 rows
   * with a description; null when no product has one (nothing to align).
   */
  alignmentBefore: number | null;
  alignmentAfter: number | null;
  /** The HF BertModel folder written. */
  dir: string;
}

/** Options of `pretrainTextTowers`. */
export interface TextPretrainingOptions {
  /** Its description tower is trained (and only that); the caller disposes it. */
  model: SiameseRuCLIP;
  inputs: ProductInputs;
  /** Rows of `inputs` to read (products with a name; a description is the second view where there is one). */
  rows: readonly number[];
  config?: Partial<TextPretrainingConfig>;
  /** Where the HF BertModel folder goes (written atomically file by file; config.json last). */
  outDir: string;
  /** Recorded in config.json's `pretraining`. */
  source?: string;
  progress?: boolean;
  log?: (line: string) => void;
}

const PREFIX = "description_transformer.";

/** L2-normalised masked mean of the description BERT over token ids. */
function encode(model: SiameseRuCLIP, ids: tf.Tensor2D, mask: tf.Tensor2D, training: boolean): tf.Tensor2D {
  return tf.tidy(() => {
    const pooled = maskedMeanPool(model.descriptionTransformer.apply(ids, mask, training), mask);
    return tf.div(pooled, tf.maximum(tf.norm(pooled, "euclidean", 1, true), 1e-12)) as tf.Tensor2D;
  });
}

/** Symmetric InfoNCE of matching rows of a and b (each [n, d], normalised). */
export function symmetricInfoNce(a: tf.Tensor2D, b: tf.Tensor2D, temperature: number): tf.Scalar {
  return tf.tidy(() => {
    // Cross-entropy as logsumexp - the matching logit (tf.losses.softmaxCrossEntropy's custom gradient
    // leaks a tensor per call on the cpu backend).
    const logits = tf.div(tf.matMul(a, b, false, true), temperature) as tf.Tensor2D;
    const matching = tf.sum(tf.mul(logits, tf.eye(a.shape[0])), 1);
    const forward = tf.mean(tf.sub(tf.logSumExp(logits, 1), matching));
    const backward = tf.mean(tf.sub(tf.logSumExp(logits, 0), matching));
    return tf.mul(tf.add(forward, backward), 0.5) as tf.Scalar;
  });
}

/** Top-1 accuracy of name -> own description among the given rows (no dropout); null without rows. */
async function alignment(
  model: SiameseRuCLIP,
  inputs: ProductInputs,
  rows: readonly number[],
): Promise<number | null> {
  if (rows.length === 0) return null;
  const batch = inputs.textBatch(rows);
  try {
    const hits = tf.tidy(() => {
      const a = encode(model, batch.nameIds, batch.nameMask, false);
      const b = encode(model, batch.descIds, batch.descMask, false);
      const best = tf.argMax(tf.matMul(a, b, false, true), 1);
      return tf.sum(tf.cast(tf.equal(best, tf.range(0, rows.length, 1, "int32")), "int32"));
    });
    const value = (await hits.data())[0];
    hits.dispose();
    return value / rows.length;
  } finally {
    disposeProductBatch(batch);
  }
}

function checkConfig(config: TextPretrainingConfig): void {
  const positiveInteger = (value: number) => Number.isInteger(value) && value > 0;
  const bad = (field: keyof TextPretrainingConfig, rule: string) =>
    new Error(`TextPretrainingConfig.${field} = ${JSON.stringify(config[field])}; expected ${rule}`);
  if (!positiveInteger(config.epochs)) throw bad("epochs", "an integer >= 1");
  if (!(Number.isInteger(config.batchSize) && config.batchSize >= 2)) throw bad("batchSize", "an integer >= 2");
  if (!(config.learningRate > 0)) throw bad("learningRate", "a number > 0");
  if (!(config.weightDecay >= 0)) throw bad("weightDecay", "a number >= 0");
  if (!(config.temperature > 0)) throw bad("temperature", "a number > 0");
  if (!(Number.isInteger(config.seed) && config.seed >= 0)) throw bad("seed", "an integer >= 0");
}

/** The description BERT's weights under HF BertModel names, and its HF config. */
async function huggingFaceBert(model: SiameseRuCLIP): Promise<{ stateDict: StateDict; config: object }> {
  const all = await model.stateDict();
  const stateDict: StateDict = new Map();
  for (const [name, tensor] of all) {
    if (name.startsWith(PREFIX)) stateDict.set(name.slice(PREFIX.length), tensor);
  }
  const c = model.config.descriptionBert;
  return {
    stateDict,
    config: {
      architectures: ["BertModel"],
      model_type: "bert",
      vocab_size: c.vocabSize,
      hidden_size: c.hiddenSize,
      num_hidden_layers: c.numLayers,
      num_attention_heads: c.numHeads,
      intermediate_size: c.intermediateSize,
      hidden_act: "gelu",
      max_position_embeddings: c.maxPositions,
      type_vocab_size: c.typeVocabSize,
      layer_norm_eps: c.layerNormEps,
      hidden_dropout_prob: c.hiddenDropout,
      attention_probs_dropout_prob: c.attentionDropout,
      pad_token_id: 0,
    },
  };
}

/** Pretrains the description tower (see the module comment) and writes it as an HF BertModel folder. */
export async function pretrainTextTowers(options: TextPretrainingOptions): Promise<TextPretrainingResult> {
  const config: TextPretrainingConfig = { ...TEXT_PRETRAINING_DEFAULTS, ...options.config };
  checkConfig(config);
  beginInterruptible();
  const { model, inputs } = options;
  const rows = [...options.rows];
  if (rows.length < 2) throw new Error(`text pretraining needs at least 2 products with a name, got ${rows.length}`);
  for (const row of rows) {
    if (!(Number.isInteger(row) && row >= 0 && row < inputs.size)) {
      throw new Error(`text pretraining: row ${row} is not one of the ${inputs.size} prepared products`);
    }
  }
  const log = options.log ?? (() => {});
  const variables = model.parameters().variables((e) => e.usedInForward && e.name.startsWith(PREFIX));
  const optimizer = new AdamW({ learningRate: config.learningRate, weightDecay: config.weightDecay });
  const twoViews = rows.filter((row) => inputs.hasDescription(row));
  const probe = twoViews.slice(0, 1000);
  const alignmentBefore = await alignment(model, inputs, probe);
  log(
    `text pretraining on ${rows.length} products (${twoViews.length} name-description, ` +
      `${rows.length - twoViews.length} name only): name -> own description top-1 of ${probe.length}, before ` +
      `${alignmentBefore?.toFixed(3) ?? "-"}`,
  );
  const history: TextPretrainingResult["history"] = [];
  const random = new SeededRandom(config.seed);
  let step = 0;
  let bar: Progress | undefined;
  try {
    for (let epoch = 1; epoch <= config.epochs; epoch++) {
      const started = performance.now();
      const order = random.shuffle(rows);
      // Full batches only (a last batch of a few products has too few negatives), as the PyTorch script.
      const steps = Math.max(1, Math.floor(order.length / config.batchSize));
      bar = new Progress({
        total: steps,
        label: `text pretraining ${epoch}/${config.epochs}`,
        unit: "steps",
        silent: options.progress === false,
      });
      let sum = 0;
      for (let s = 0; s < steps; s++) {
        const batchRows = order.slice(s * config.batchSize, (s + 1) * config.batchSize);
        const [nameIds, nameMask] = inputs.textView(batchRows, "name");
        const [otherIds, otherMask] = inputs.textView(
          batchRows,
          batchRows.map((row) => inputs.hasDescription(row) ? "description" : "name"),
        );
        seedDropout(config.seed * 1_000_003 + (++step) * 1_009);
        let value: tf.Scalar;
        let grads: tf.NamedTensorMap;
        try {
          ({ value, grads } = tf.variableGrads(() =>
            symmetricInfoNce(
              encode(model, nameIds, nameMask, true),
              encode(model, otherIds, otherMask, true),
              config.temperature,
            ), variables));
        } finally {
          seedDropout(null);
          tf.dispose([nameIds, nameMask, otherIds, otherMask]);
        }
        const loss = (await value.data())[0];
        value.dispose();
        if (!Number.isFinite(loss)) {
          Object.values(grads).forEach((g) => g.dispose());
          throw new Error(`text pretraining diverged: loss ${loss} at epoch ${epoch}, step ${s + 1}`);
        }
        const clipped = (await clipGradientsByGlobalNorm(grads, 1)).gradients;
        optimizer.applyGradients(variables, clipped);
        Object.values(clipped).forEach((g) => g.dispose());
        sum += loss;
        await bar.tick(1, { loss: sum / (s + 1) });
        if (takeInterrupt()) {
          const where = `epoch ${epoch}/${config.epochs}, step ${s + 1}/${steps}`;
          await bar.stop(`interrupted at ${where}`);
          throw new InterruptedError(
            `text pretraining stopped at ${where}`,
            `nothing on disk: the pretrained towers are written when pretraining ends (the model in memory ` +
              "holds partly pretrained text towers).",
            "run the pretraining again; it starts over.",
          );
        }
      }
      await bar.done();
      const record = { epoch, loss: sum / steps, seconds: (performance.now() - started) / 1000 };
      history.push(record);
      log(`  pretraining epoch ${epoch}: InfoNCE ${record.loss.toFixed(4)}, ${record.seconds.toFixed(1)} s`);
    }
  } catch (error) {
    await bar?.stop(error);
    throw error;
  } finally {
    optimizer.dispose();
  }
  const alignmentAfter = await alignment(model, inputs, probe);
  log(`  name -> own description top-1 of ${probe.length}, after ${alignmentAfter?.toFixed(3) ?? "-"}`);

  const { stateDict, config: hfConfig } = await huggingFaceBert(model);
  await Deno.mkdir(options.outDir, { recursive: true });
  await writeFileAtomic(join(options.outDir, "model.safetensors"), writeSafetensors(stateDict, { format: "pt" }));
  const pretraining = {
    method: "name-description InfoNCE (mean pooling, in-batch negatives, both directions), dropout as noise; " +
      "a product without a description: its name under two dropout masks (SimCSE)",
    ...config,
    products: rows.length,
    two_views: twoViews.length,
    source: options.source ?? "",
    name_to_description_top1: { before: alignmentBefore, after: alignmentAfter, among: probe.length },
  };
  await writeJsonAtomic(join(options.outDir, "config.json"), { ...hfConfig, pretraining });
  return {
    config,
    products: rows.length,
    twoViews: twoViews.length,
    history,
    alignmentBefore,
    alignmentAfter,
    dir: options.outDir,
  };
}

/**
 * The rows to pretrain on: the products of the given (training) pairs that have a name, each once, in row
 * order (a description, where there is one, is the second view).
 */
export function textPretrainingRows(
  inputs: ProductInputs,
  records: readonly ProductRecord[],
  pairs: readonly { skuLeft: string; skuRight: string }[],
): number[] {
  const bySku = new Map(records.map((r) => [String(r.sku), r]));
  const skus = new Set(pairs.flatMap((p) => [p.skuLeft, p.skuRight]));
  return [...skus].filter((sku) => {
    const record = bySku.get(sku);
    return record !== undefined && record.name.trim() !== "" && inputs.has(sku);
  }).map((sku) => inputs.indexOf(sku)).sort((a, b) => a - b);
}

/**
 * The training notebook's step: pretrains the model's description tower (`pretrainTextTowers`) and loads
 * the result into its name tower too, so both text towers start from it, as `setupModel({ textWeights })`
 * would.
 */
export async function pretrainModelTextTowers(options: TextPretrainingOptions): Promise<TextPretrainingResult> {
  const result = await pretrainTextTowers(options);
  const report = await loadTowerWeights(options.model, "name", result.dir, { strict: true });
  if (report.missing.length || report.mismatched.length) {
    throw new Error(`${result.dir} does not fit the name tower:\n${report.summary}`);
  }
  return result;
}

/** What the training notebook says after its text-pretraining step (its result, or that there was none). */
export function textPretrainingMessage(result: TextPretrainingResult | null): string {
  if (!result) return "No label-free text pretraining (`PRETRAIN_EPOCHS` 0).";
  const views = result.twoViews === result.products
    ? "name vs own description"
    : result.twoViews === 0
    ? "no description: each name under two dropout masks, SimCSE-style"
    : `name vs own description for ${result.twoViews}, two dropout views of the name for ${
      result.products - result.twoViews
    }`;
  const aligned = result.alignmentBefore === null || result.alignmentAfter === null
    ? ""
    : `; name -> own description top-1 ${result.alignmentBefore.toFixed(3)} before, ` +
      `${result.alignmentAfter.toFixed(3)} after`;
  return `Text towers pretrained without labels on ${result.products} training products (${views}${aligned}); ` +
    `both towers start from it. Written to \`${shownPath(result.dir)}\`: give it to the embedding notebook as ` +
    "`START_TEXT_WEIGHTS`, so its raw tower features are this starting point.";
}
