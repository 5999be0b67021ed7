import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
// @ts-types="../lib/text/transformers_api.d.ts"
import { env } from "@huggingface/transformers";
import { loadTokenizer, type ProductTokenizer } from "../lib/text/tokenizer.ts";
import { resolveModelSource } from "../lib/hub/model_source.ts";
import { projectRoot, shippedDir } from "../lib/paths.ts";

interface ReferenceCase {
  text: string;
  tokens: string[];
  ids: number[];
  ids_max77: number[];
  ids_max16: number[];
}
interface Reference {
  vocab_size: number;
  pad_id: number;
  cls_id: number;
  sep_id: number;
  unk_id: number;
  cases: ReferenceCase[];
}

const reference: Reference = JSON.parse(
  await Deno.readTextFile(join(projectRoot, "tests", "fixtures", "text", "tokenizer_reference.json")),
);
const demoFolder = join(shippedDir, "tokenizer-demo");

/** Loads the demo tokenizer with fetch disabled, proving the local path never uses the network. */
async function loadOffline(): Promise<ProductTokenizer> {
  const originalFetch = env.fetch;
  env.fetch = () => Promise.reject(new Error("network used while loading a local tokenizer"));
  try {
    return await loadTokenizer(demoFolder);
  } finally {
    env.fetch = originalFetch;
  }
}

const tokenizer = await loadOffline();

function row(batch: { inputIds: Int32Array; length: number }, r: number): number[] {
  return Array.from(batch.inputIds.subarray(r * batch.length, (r + 1) * batch.length));
}

function padded(ids: number[], length: number, padId: number): number[] {
  return [...ids, ...new Array(length - ids.length).fill(padId)];
}

describe("demo tokenizer", () => {
  it("has the vocabulary size and pad id of the Python reference", () => {
    expect(tokenizer.vocabSize).toBe(reference.vocab_size);
    expect(tokenizer.padId).toBe(reference.pad_id);
    expect(reference.vocab_size).toBeGreaterThan(1000);
  });

  it("matches the pure-Python WordPiece reference on every case (tokens and ids)", () => {
    for (const c of reference.cases) {
      expect({ text: c.text, tokens: ["[CLS]", ...tokenizer.tokenize(c.text), "[SEP]"] }).toEqual({
        text: c.text,
        tokens: c.tokens,
      });
      expect({ text: c.text, ids: tokenizer.ids(c.text) }).toEqual({ text: c.text, ids: c.ids });
    }
  });

  it("splits mixed Latin/Cyrillic/digit sizes into known pieces", () => {
    expect(tokenizer.tokenize("100x70 см")).toEqual(["100", "##x", "##70", "см"]);
    expect(tokenizer.tokenize("100х70 см")).toEqual(["100", "##х", "##70", "см"]);
  });

  it("encodes a batch to 77 ids with padding and mask", () => {
    const texts = reference.cases.map((c) => c.text);
    const batch = tokenizer.encode(texts);
    expect(batch.batch).toBe(texts.length);
    expect(batch.length).toBe(77);
    expect(batch.inputIds.length).toBe(texts.length * 77);
    reference.cases.forEach((c, r) => {
      expect(row(batch, r)).toEqual(padded(c.ids_max77, 77, reference.pad_id));
      const mask = Array.from(batch.attentionMask.subarray(r * 77, (r + 1) * 77));
      expect(mask).toEqual(padded(new Array(c.ids_max77.length).fill(1), 77, 0));
    });
  });

  it("truncates long text keeping [SEP] last, as HF Python does", () => {
    const long = reference.cases.find((c) => c.ids.length > 77);
    if (!long) throw new Error("fixture lacks a case longer than 77 tokens");
    const batch = tokenizer.encode([long.text]);
    const ids = row(batch, 0);
    expect(ids[0]).toBe(reference.cls_id);
    expect(ids[76]).toBe(reference.sep_id);
    expect(ids.slice(1, 76)).toEqual(long.ids.slice(1, 76));
    expect(Array.from(batch.attentionMask).every((m) => m === 1)).toBe(true);
    const short = tokenizer.encode([long.text], { maxLength: 16 });
    expect(row(short, 0)).toEqual(long.ids_max16);
  });

  it("encodes the empty string as [CLS] [SEP] then padding", () => {
    const batch = tokenizer.encode([""], { maxLength: 8 });
    expect(row(batch, 0)).toEqual([reference.cls_id, reference.sep_id, ...new Array(6).fill(reference.pad_id)]);
    expect(Array.from(batch.attentionMask)).toEqual([1, 1, 0, 0, 0, 0, 0, 0]);
  });

  it("pads to the longest row when asked", () => {
    const batch = tokenizer.encode(["глобус", "карта мира политическая"], { padding: "longest" });
    expect(batch.length).toBe(5);
    expect(row(batch, 0)).toEqual([...tokenizer.ids("глобус"), reference.pad_id, reference.pad_id]);
    expect(Array.from(batch.attentionMask)).toEqual([1, 1, 1, 0, 0, 1, 1, 1, 1, 1]);
  });

  it("maps unknown symbols to [UNK] and lowercases", () => {
    expect(tokenizer.ids("ГЛОБУС")).toEqual(tokenizer.ids("глобус"));
    expect(tokenizer.ids("🌍")).toEqual([reference.cls_id, reference.unk_id, reference.sep_id]);
  });

  it("rejects a maxLength with no room for text", () => {
    expect(() => tokenizer.encode(["карта"], { maxLength: 2 })).toThrow(/maxLength=2/);
  });
});

describe("loadTokenizer errors and sources", () => {
  it("names the missing tokenizer.json", async () => {
    const folder = await Deno.makeTempDir();
    try {
      await expect(loadTokenizer(folder)).rejects.toThrow(/has no tokenizer\.json/);
    } finally {
      await Deno.remove(folder, { recursive: true });
    }
  });

  it("says a path-like folder is missing instead of trying the Hub", async () => {
    await expect(loadTokenizer("./no/such/tokenizer-folder")).rejects.toThrow(/tokenizer ".*": no such file or folder/);
    await expect(loadTokenizer("/no/such/folder")).rejects.toThrow(/no such file or folder \/no\/such\/folder/);
    await expect(loadTokenizer("cointegrated/rubert-tiny")).rejects.toThrow(/write hf-hub:cointegrated\/rubert-tiny/);
  });

  it("tells local folders from Hub ids", async () => {
    expect(await resolveModelSource("data/shipped/tokenizer-demo")).toEqual({ kind: "local", path: demoFolder });
    expect(await resolveModelSource("hf-hub:cointegrated/rubert-tiny")).toEqual({
      kind: "hub",
      id: "cointegrated/rubert-tiny",
    });
  });

  // Loading a Hub id needs the network (or a loopback Hub server); not run offline.
  it.skip("loads a Hub id through HF_ENDPOINT", () => {});
});
