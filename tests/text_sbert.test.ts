import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
// @ts-types="../lib/text/transformers_api.d.ts"
import { env, pipeline } from "@huggingface/transformers";
import {
  DEMO_SENTENCE_MODEL,
  loadSentenceEncoder,
  meanPoolNormalize,
  type SentenceEncoder,
} from "../lib/text/sbert.ts";
import { projectRoot } from "../lib/paths.ts";
import { maxAbsDiff } from "./helpers.ts";

interface SbertReference {
  max_seq_length: number;
  dimension: number;
  texts: string[];
  embeddings: number[][];
  similarity: { texts: string[]; groups: number[] };
}

const reference: SbertReference = JSON.parse(
  await Deno.readTextFile(join(projectRoot, "tests", "fixtures", "text", "sbert_reference.json")),
);

/** Loads the demo model with fetch disabled, proving the local path never uses the network. */
async function loadOffline(): Promise<SentenceEncoder> {
  const originalFetch = env.fetch;
  env.fetch = () => Promise.reject(new Error("network used while loading a local model"));
  try {
    return await loadSentenceEncoder(DEMO_SENTENCE_MODEL);
  } finally {
    env.fetch = originalFetch;
  }
}

const encoder = await loadOffline();

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

describe("tiny sentence encoder (ONNX via transformers.js)", () => {
  it("reports the dimension and token budget of the shipped model", () => {
    expect(encoder.dimension).toBe(reference.dimension);
    expect(encoder.maxLength).toBe(reference.max_seq_length);
  });

  it("matches the PyTorch reference embeddings within 1e-4", async () => {
    const vectors = await encoder.embed(reference.texts);
    expect(vectors.length).toBe(reference.texts.length);
    vectors.forEach((v, i) => expect(maxAbsDiff(v, reference.embeddings[i])).toBeLessThan(1e-4));
  });

  it("returns unit-length vectors of the model's dimension, including for an empty text", async () => {
    const vectors = await encoder.embed(["", "глобус", "Карта мира 100x70 см"]);
    for (const v of vectors) {
      expect(v.length).toBe(encoder.dimension);
      expect(Math.abs(Math.sqrt(dot(v, v)) - 1)).toBeLessThan(1e-5);
    }
  });

  it("gives the same vectors batched and one by one, in input order, and reports progress", async () => {
    const texts = reference.similarity.texts;
    const progress: Array<[number, number]> = [];
    const batched = await encoder.embed(texts, { batchSize: 4, onProgress: (d, t) => progress.push([d, t]) });
    expect(progress).toEqual([[4, 9], [8, 9], [9, 9]]);
    for (let i = 0; i < texts.length; i++) {
      const [single] = await encoder.embed([texts[i]], { batchSize: 1 });
      expect(maxAbsDiff(batched[i], single)).toBeLessThan(1e-5);
    }
  });

  it("is deterministic", async () => {
    const a = await encoder.embed(reference.texts);
    const b = await encoder.embed(reference.texts);
    a.forEach((v, i) => expect(Array.from(v)).toEqual(Array.from(b[i])));
  });

  it("places the same product under different names closer than different products", async () => {
    const { texts, groups } = reference.similarity;
    const vectors = await encoder.embed(texts);
    const same: number[] = [];
    const different: number[] = [];
    for (let i = 0; i < texts.length; i++) {
      for (let j = i + 1; j < texts.length; j++) {
        (groups[i] === groups[j] ? same : different).push(dot(vectors[i], vectors[j]));
      }
    }
    const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean(same)).toBeGreaterThan(mean(different) + 0.2);
  });

  it("equals the feature-extraction pipeline's mean pooling + normalize for short texts", async () => {
    const extractor = await pipeline("feature-extraction", DEMO_SENTENCE_MODEL, { local_files_only: true });
    try {
      const texts = reference.texts;
      const output = await extractor(texts, { pooling: "mean", normalize: true });
      const ours = await encoder.embed(texts);
      const data = output.data as Float32Array;
      texts.forEach((_, i) => {
        const row = data.subarray(i * encoder.dimension, (i + 1) * encoder.dimension);
        expect(maxAbsDiff(row, ours[i])).toBeLessThan(1e-5);
      });
      output.dispose();
    } finally {
      await extractor.dispose();
    }
  });

  it("truncates long texts to maxLength instead of failing", async () => {
    const long = "Настенная политическая карта мира, ламинированная. ".repeat(200);
    const [v] = await encoder.embed([long]);
    expect(Math.abs(Math.sqrt(dot(v, v)) - 1)).toBeLessThan(1e-5);
    const ids = encoder.tokenizer.encode([long], { maxLength: encoder.maxLength });
    expect(ids.length).toBe(encoder.maxLength);
  });
});

describe("meanPoolNormalize", () => {
  it("averages only unmasked tokens and normalises", () => {
    // batch 1, length 3, dim 2; the third token is padding and must be ignored.
    const hidden = new Float32Array([3, 0, 1, 4, 100, 100]);
    const [v] = meanPoolNormalize(hidden, new Int32Array([1, 1, 0]), 1, 3, 2);
    expect(v[0]).toBeCloseTo(2 / Math.hypot(2, 2), 6);
    expect(v[1]).toBeCloseTo(2 / Math.hypot(2, 2), 6);
  });
});

describe("loadSentenceEncoder errors", () => {
  it("names a folder without a model", async () => {
    const folder = await Deno.makeTempDir();
    try {
      await expect(loadSentenceEncoder(folder)).rejects.toThrow(/has no config\.json/);
    } finally {
      await Deno.remove(folder, { recursive: true });
    }
  });

  it("names the missing ONNX file for a dtype", async () => {
    await expect(loadSentenceEncoder(DEMO_SENTENCE_MODEL, { dtype: "q8" })).rejects.toThrow(
      /no onnx\/model_quantized\.onnx for dtype "q8"/,
    );
  });

  it("says a missing path-like folder is missing", async () => {
    await expect(loadSentenceEncoder("./data/shipped/no-such-model")).rejects.toThrow(
      /sentence model ".*": no such file or folder \/.*\/data\/shipped\/no-such-model/,
    );
  });
});
