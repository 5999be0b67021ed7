import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { tf } from "../lib/tf.ts";
import { selectBackend } from "../lib/backend.ts";
import { ProductInputs, type ProductRecord } from "../lib/train/product_inputs.ts";
import { setupModel } from "../lib/train/session.ts";
import {
  pretrainModelTextTowers,
  pretrainTextTowers,
  symmetricInfoNce,
  textPretrainingMessage,
  textPretrainingRows,
} from "../lib/train/text_pretraining.ts";
import { readSafetensorsFile } from "../lib/model/safetensors.ts";
import { configureStopHandler, stopPressed } from "../lib/notebook/interrupt.ts";

await selectBackend("cpu", { quiet: true });
const dir = await Deno.makeTempDir({ prefix: "text-pretraining-test-" });

// Sixteen products: a name and its own description share their distinctive words.
const words = ["карта", "глобус", "атлас", "пазл", "плакат", "книга", "компас", "линейка"];
const colours = ["красный", "синий"];
const products: ProductRecord[] = words.flatMap((word, i) =>
  colours.map((colour, j) => ({
    sku: `p${i}-${j}`,
    name: `${word} ${colour}`,
    description: `это ${word}, цвет ${colour}, подарок`,
    imagePath: join(dir, "missing.png"),
  }))
);

describe("label-free text pretraining (name-description InfoNCE)", () => {
  it("symmetric InfoNCE equals the cross-entropy worked by hand", async () => {
    const a = tf.tensor2d([[1, 0], [0, 1]]);
    const b = tf.tensor2d([[0.6, 0.8], [0, 1]]);
    const loss = symmetricInfoNce(a, b, 0.5);
    // logits = a b^T / 0.5 = [[1.2, 0], [1.6, 2]]; rows: a -> b, columns: b -> a.
    const ce = (row: number[], target: number) => -row[target] + Math.log(row.reduce((s, x) => s + Math.exp(x), 0));
    const forward = (ce([1.2, 0], 0) + ce([1.6, 2], 1)) / 2;
    const backward = (ce([1.2, 1.6], 0) + ce([0, 2], 1)) / 2;
    expect((await loss.data())[0]).toBeCloseTo((forward + backward) / 2, 5);
    tf.dispose([a, b, loss]);
  });

  it("aligns names with their own descriptions, writes an HF BertModel both towers load, and leaks nothing", async () => {
    const { model, tokenizer } = await setupModel({ preset: "tiny", seed: 1 });
    const inputs = await ProductInputs.build(products, { tokenizer, imageSize: 32, maxTokens: 16, progress: false });
    const before = tf.memory().numTensors;
    const outDir = join(dir, "tower");
    const lines: string[] = [];
    const result = await pretrainTextTowers({
      model,
      inputs,
      rows: products.map((_, i) => i),
      config: { epochs: 12, batchSize: 8, learningRate: 3e-3, seed: 2 },
      outDir,
      progress: false,
      log: (line) => lines.push(line),
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(result.history).toHaveLength(12);
    expect(result.history[11].loss).toBeLessThan(result.history[0].loss);
    expect(result.twoViews).toBe(16);
    expect(result.alignmentAfter!).toBeGreaterThan(result.alignmentBefore!);
    expect(lines.join("\n")).toMatch(/before .*\n[\s\S]*after /);

    // The folder: HF names (no tower prefix), the config's sizes, and the pretraining recorded.
    const written = (await readSafetensorsFile(join(outDir, "model.safetensors"))).tensors;
    expect(written.has("embeddings.word_embeddings.weight")).toBe(true);
    expect([...written.keys()].some((name) => name.startsWith("description_transformer."))).toBe(false);
    const config = JSON.parse(await Deno.readTextFile(join(outDir, "config.json")));
    expect(config.hidden_size).toBe(model.config.descriptionBert.hiddenSize);
    expect(config.pretraining.products).toBe(16);
    expect(config.pretraining.name_to_description_top1.after).toBe(result.alignmentAfter);

    // Both text towers of a new model start from it; its description tower equals the pretrained one.
    const trained = await model.stateDict();
    const loaded = await setupModel({ preset: "tiny", seed: 7, textWeights: outDir });
    const sd = await loaded.model.stateDict();
    const name = "encoder.layer.0.attention.self.query.weight";
    expect(Array.from(sd.get(`description_transformer.${name}`)!.data)).toEqual(
      Array.from(trained.get(`description_transformer.${name}`)!.data),
    );
    expect(Array.from(sd.get(`ruclip.transformer.${name}`)!.data)).toEqual(
      Array.from(trained.get(`description_transformer.${name}`)!.data),
    );
    expect(loaded.summary).toContain("text towers from");
    await expect(setupModel({ preset: "tiny", weights: outDir, textWeights: outDir })).rejects.toThrow(
      /give one of the two/,
    );
    loaded.model.dispose();
    model.dispose();
  });

  it("the notebook's step: training products with a name, both towers loaded, and what it says", async () => {
    const records = [...products, {
      sku: "bare",
      name: "карта",
      description: " ",
      imagePath: join(dir, "missing.png"),
    }];
    const { model, tokenizer } = await setupModel({ preset: "tiny", seed: 1 });
    const inputs = await ProductInputs.build(records, { tokenizer, imageSize: 32, maxTokens: 16, progress: false });
    const pairs = [
      { skuLeft: "p1-0", skuRight: "p1-1" },
      { skuLeft: "p0-0", skuRight: "bare" },
      { skuLeft: "p0-0", skuRight: "p3-1" },
    ];
    const rows = textPretrainingRows(inputs, records, pairs);
    expect(rows).toEqual([0, 2, 3, 7, 16]); // p0-0, p1-0, p1-1, p3-1 and "bare", whose name is its only text
    const result = await pretrainModelTextTowers({
      model,
      inputs,
      rows,
      config: { epochs: 1, batchSize: 4 },
      outDir: join(dir, "notebook-step"),
      progress: false,
    });
    const sd = await model.stateDict();
    const name = "encoder.layer.1.output.dense.weight";
    expect(Array.from(sd.get(`ruclip.transformer.${name}`)!.data)).toEqual(
      Array.from(sd.get(`description_transformer.${name}`)!.data),
    );
    expect(result.twoViews).toBe(4);
    expect(textPretrainingMessage(result)).toContain(
      "on 5 training products (name vs own description for 4, two dropout views of the name for 1; name -> own",
    );
    expect(textPretrainingMessage(result)).toContain("START_TEXT_WEIGHTS");
    expect(textPretrainingMessage(null)).toContain("PRETRAIN_EPOCHS");
    model.dispose();
  });

  it("pretrains on titles alone (no description anywhere): two dropout views of each name, SimCSE-style", async () => {
    const titles = products.map((p) => ({ ...p, description: "" }));
    const { model, tokenizer } = await setupModel({ preset: "tiny", seed: 1 });
    const inputs = await ProductInputs.build(titles, { tokenizer, imageSize: 32, maxTokens: 16, progress: false });
    const rows = textPretrainingRows(inputs, titles, [{ skuLeft: "p0-0", skuRight: "p1-1" }, {
      skuLeft: "p2-0",
      skuRight: "p5-1",
    }]);
    expect(rows).toEqual([0, 3, 4, 11]);
    const before = tf.memory().numTensors;
    const result = await pretrainTextTowers({
      model,
      inputs,
      rows: titles.map((_, i) => i),
      config: { epochs: 8, batchSize: 8, learningRate: 3e-3, seed: 2 },
      outDir: join(dir, "titles"),
      progress: false,
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(result).toMatchObject({ products: 16, twoViews: 0, alignmentBefore: null, alignmentAfter: null });
    expect(result.history.every((h) => Number.isFinite(h.loss))).toBe(true);
    expect(result.history[7].loss).toBeLessThan(result.history[0].loss);
    // Each name finds its own second view: far below ln(8) ~ 2.08, where identical empty views would leave it.
    expect(result.history[7].loss).toBeLessThan(0.5);
    expect(textPretrainingMessage(result)).toContain(
      "on 16 training products (no description: each name under two dropout masks, SimCSE-style); both towers",
    );
    const config = JSON.parse(await Deno.readTextFile(join(dir, "titles", "config.json")));
    expect(config.pretraining).toMatchObject({ products: 16, two_views: 0 });
    model.dispose();
  });

  it("Stop ends it after the running step, writing nothing", async () => {
    configureStopHandler({ notify: () => {}, exit: () => {} });
    const { model, tokenizer } = await setupModel({ preset: "tiny", seed: 1 });
    const inputs = await ProductInputs.build(products, { tokenizer, imageSize: 32, maxTokens: 16, progress: false });
    const before = tf.memory().numTensors;
    const outDir = join(dir, "stopped");
    const pretraining = pretrainTextTowers({
      model,
      inputs,
      rows: [...Array(16).keys()],
      config: { epochs: 3, batchSize: 4 },
      outDir,
      progress: false,
      log: (line) => line.startsWith("text pretraining on") && stopPressed(),
    });
    await expect(pretraining).rejects.toThrow(
      "text pretraining stopped at epoch 1/3, step 1/4 (Stop). Kept: nothing on disk",
    );
    await expect(Deno.stat(outDir)).rejects.toThrow();
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it("refuses bad settings and rows, naming them", async () => {
    const { model, tokenizer } = await setupModel({ preset: "tiny", seed: 1 });
    const inputs = await ProductInputs.build(products, { tokenizer, imageSize: 32, maxTokens: 16, progress: false });
    const run = (config: object, rows = [0, 1, 2]) =>
      pretrainTextTowers({ model, inputs, rows, config, outDir: join(dir, "bad"), progress: false });
    await expect(run({ temperature: 0 })).rejects.toThrow(
      /TextPretrainingConfig.temperature = 0; expected a number > 0/,
    );
    await expect(run({ batchSize: 1 })).rejects.toThrow(/batchSize = 1/);
    await expect(run({}, [0])).rejects.toThrow(/at least 2 products/);
    await expect(run({}, [0, 99])).rejects.toThrow(/row 99 is not one of the 16 prepared products/);
    model.dispose();
  });
});
