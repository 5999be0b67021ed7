/**
 * The demo's pretrained text tower (data/shipped/text-tower-demo, written by
 * scripts/fixtures/pretrain_demo_text_tower.py): the tfjs BERT tower loaded from its safetensors and its
 * ONNX export run through transformers.js both give PyTorch's embeddings.
 */
import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { tf } from "../lib/tf.ts";
import { selectBackend } from "../lib/backend.ts";
import { maskedMeanPool } from "../lib/model/bert.ts";
import { projectRoot } from "../lib/paths.ts";
import { maxAbsDiff } from "./helpers.ts";
import { loadSentenceEncoder } from "../lib/text/sbert.ts";
import { DEMO_TEXT_TOWER, setupModel } from "../lib/train/session.ts";

await selectBackend("cpu", { quiet: true });

interface TowerReference {
  dimension: number;
  texts: string[];
  embeddings: number[][];
  similarity: { texts: string[]; groups: number[] };
}

const reference: TowerReference = JSON.parse(
  await Deno.readTextFile(join(projectRoot, "tests", "fixtures", "text", "text_tower_reference.json")),
);
const config = JSON.parse(await Deno.readTextFile(join(DEMO_TEXT_TOWER, "config.json")));

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

describe("the demo's pretrained text tower", () => {
  it("records how it was pretrained, on another seed than the demo's", () => {
    expect(config.pretraining.method).toMatch(/name-description InfoNCE/);
    expect(config.pretraining.source).toMatch(/seed 1234/);
  });

  it("as the demo's description tower (tfjs, mean pooled) gives PyTorch's embeddings within 1e-4", async () => {
    const before = tf.memory().numTensors;
    const { model, tokenizer } = await setupModel({ preset: "demo", seed: 3 });
    const encoded = tokenizer.encode(reference.texts, { maxLength: 128, padding: "longest" });
    const shape: [number, number] = [encoded.batch, encoded.length];
    const vectors = tf.tidy(() => {
      const ids = tf.tensor2d(encoded.inputIds, shape, "int32");
      const mask = tf.tensor2d(encoded.attentionMask, shape, "int32");
      const pooled = maskedMeanPool(model.descriptionTransformer.apply(ids, mask, false), mask);
      return tf.div(pooled, tf.norm(pooled, "euclidean", 1, true));
    });
    const rows = vectors.arraySync() as number[][];
    vectors.dispose();
    model.dispose();
    rows.forEach((row, i) => expect(maxAbsDiff(row, reference.embeddings[i])).toBeLessThan(1e-4));
    expect(tf.memory().numTensors).toBe(before);
  });

  it("as a sentence model (its ONNX export through transformers.js) gives the same embeddings", async () => {
    const encoder = await loadSentenceEncoder(DEMO_TEXT_TOWER);
    try {
      expect(encoder.dimension).toBe(reference.dimension);
      const vectors = await encoder.embed(reference.texts);
      vectors.forEach((row, i) => expect(maxAbsDiff(row, reference.embeddings[i])).toBeLessThan(1e-4));
      // Listings of one product under different names sit closer than any two different products.
      const grouped = await encoder.embed(reference.similarity.texts);
      const groups = reference.similarity.groups;
      let minSame = 1, maxDifferent = -1;
      for (let i = 0; i < grouped.length; i++) {
        for (let j = i + 1; j < grouped.length; j++) {
          const c = cosine(grouped[i], grouped[j]);
          if (groups[i] === groups[j]) minSame = Math.min(minSame, c);
          else maxDifferent = Math.max(maxDifferent, c);
        }
      }
      expect(minSame).toBeGreaterThan(maxDifferent);
    } finally {
      await encoder.dispose();
    }
  });
});
