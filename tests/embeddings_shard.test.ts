import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import {
  embedShard,
  fnv1a32,
  mergeShardParts,
  parseShard,
  shardOf,
  shardPartPath,
  shardRows,
} from "../lib/embeddings/shard.ts";
import { type EmbeddingInfo, readEmbeddings, writeEmbeddings } from "../lib/embeddings/store.ts";

const DIM = 5;
const INFO: EmbeddingInfo = { tag: "fake", kind: "test", source: "hash encoder", distance: "euclidean" };

/** A deterministic test encoder: each SKU's vector comes from a hash of the SKU alone. */
function hashVector(sku: string): Float32Array {
  const out = new Float32Array(DIM);
  let h = fnv1a32(sku);
  for (let j = 0; j < DIM; j++) {
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
    out[j] = (h / 2 ** 32) * 2 - 1;
  }
  return out;
}

function countingEncoder() {
  const calls: string[][] = [];
  const encode = (skus: string[]) => {
    calls.push(skus);
    const out = new Float32Array(skus.length * DIM);
    skus.forEach((sku, i) => out.set(hashVector(sku), i * DIM));
    return Promise.resolve(out);
  };
  return { calls, encode };
}

const catalog = Array.from({ length: 57 }, (_, i) => `sku-${(i * 7919) % 1000}`);

async function unshardedRun(dir: string): Promise<string> {
  const output = join(dir, "whole", "fake.parquet");
  const { encode } = countingEncoder();
  const vectors = await encode(catalog);
  await writeEmbeddings(output, { skus: catalog, vectors, dim: DIM, info: INFO });
  return output;
}

describe("parseShard", () => {
  it("reads i/N", () => {
    expect(parseShard("0/2")).toEqual({ index: 0, count: 2 });
    expect(parseShard(" 3 / 4 ")).toEqual({ index: 3, count: 4 });
  });
  it("rejects bad text with one line naming the value and its source", () => {
    expect(() => parseShard("3/2")).toThrow(
      'SHARD = "3/2" (from the environment): expected i/N with 0 <= i < N, e.g. "0/2"',
    );
    for (const bad of ["", "1", "a/b", "-1/2", "1/0", "0/0", "1.5/2", "0/2/3"]) {
      expect(() => parseShard(bad, "test")).toThrow(`SHARD = ${JSON.stringify(bad)} (from test): expected i/N`);
    }
  });
});

describe("shard assignment", () => {
  it("is FNV-1a 32-bit of the SKU, independent of order, and covers every SKU once", () => {
    expect(fnv1a32("")).toBe(0x811c9dc5);
    expect(fnv1a32("a")).toBe(0xe40c292c); // published FNV-1a test vector
    expect(fnv1a32("foobar")).toBe(0xbf9cf968);
    const rows0 = shardRows(catalog, { index: 0, count: 2 });
    const rows1 = shardRows(catalog, { index: 1, count: 2 });
    expect([...rows0, ...rows1].sort((a, b) => a - b)).toEqual(catalog.map((_, i) => i));
    expect(rows0.length).toBeGreaterThan(10);
    expect(rows1.length).toBeGreaterThan(10);
    const reversed = [...catalog].reverse();
    const again = shardRows(reversed, { index: 0, count: 2 }).map((r) => reversed[r]).sort();
    expect(again).toEqual(rows0.map((r) => catalog[r]).sort());
    expect(shardOf("sku-1", 1)).toBe(0);
  });
  it("names part files beside the output", () => {
    expect(shardPartPath("/d/e/siamese_x.parquet", { index: 1, count: 3 })).toBe("/d/e/siamese_x.part-1-of-3.parquet");
    expect(() => shardPartPath("/d/x.parquet", { index: 2, count: 2 })).toThrow("shard 2/2 is not valid");
  });
});

describe("sharded embedding", () => {
  it("merges SHARD=0/2 and 1/2 into the file an unsharded run writes, and skips finished parts", async () => {
    const dir = await Deno.makeTempDir();
    const whole = await unshardedRun(dir);
    const output = join(dir, "sharded", "fake.parquet");
    const { calls, encode } = countingEncoder();
    const results = [];
    for (const index of [0, 1]) {
      results.push(
        await embedShard({
          output,
          skus: catalog,
          shard: { index, count: 2 },
          dim: DIM,
          key: "k1",
          info: INFO,
          encode,
          batchSize: 8,
          progress: false,
        }),
      );
    }
    expect(results.map((r) => r.skipped)).toEqual([false, false]);
    expect(results[0].rows + results[1].rows).toBe(catalog.length);
    const encodedOnce = calls.flat().length;
    expect(encodedOnce).toBe(catalog.length);
    const merged = await mergeShardParts({ output, skus: catalog, count: 2, key: "k1" });
    expect(merged.rows).toBe(catalog.length);
    expect(await Deno.readFile(output)).toEqual(await Deno.readFile(whole));
    const info = JSON.parse(await Deno.readTextFile(output.replace(".parquet", ".json")));
    const wholeInfo = JSON.parse(await Deno.readTextFile(whole.replace(".parquet", ".json")));
    expect({ ...info, created: 0 }).toEqual({ ...wholeInfo, created: 0 });
    expect(Object.keys(info)).toEqual(Object.keys(wholeInfo));
    // A rerun skips both finished parts: no encoder call.
    for (const index of [0, 1]) {
      const again = await embedShard({
        output,
        skus: catalog,
        shard: { index, count: 2 },
        dim: DIM,
        key: "k1",
        info: INFO,
        encode,
        progress: false,
      });
      expect(again.skipped).toBe(true);
    }
    expect(calls.flat().length).toBe(encodedOnce);
    // Another key redoes the part.
    const redone = await embedShard({
      output,
      skus: catalog,
      shard: { index: 1, count: 2 },
      dim: DIM,
      key: "k2",
      info: INFO,
      encode,
      progress: false,
    });
    expect(redone.skipped).toBe(false);
    expect(calls.flat().length).toBe(encodedOnce + redone.rows);
    await expect(mergeShardParts({ output, skus: catalog, count: 2, key: "k1" })).rejects.toThrow(
      "fake.part-1-of-2.parquet: it was made by another encoder",
    );
    await expect(mergeShardParts({ output, skus: catalog, count: 2 })).rejects.toThrow(
      'has key "k2" but fake.part-0-of-2.parquet has key "k1"',
    );
  });

  it("an unfinished part (parquet without its JSON) is redone, and a missing part stops the merge", async () => {
    const dir = await Deno.makeTempDir();
    const output = join(dir, "fake.parquet");
    const { calls, encode } = countingEncoder();
    const options = { output, skus: catalog, dim: DIM, key: "k", info: INFO, encode, progress: false };
    const first = await embedShard({ ...options, shard: { index: 0, count: 3 } });
    await expect(mergeShardParts({ output, skus: catalog, count: 3 })).rejects.toThrow(
      "2 of 3 parts of fake.parquet are not complete (fake.part-1-of-3.parquet: missing; fake.part-2-of-3.parquet: missing)",
    );
    await Deno.remove(first.path.replace(".parquet", ".json"));
    const before = calls.flat().length;
    const again = await embedShard({ ...options, shard: { index: 0, count: 3 } });
    expect(again.skipped).toBe(false);
    expect(calls.flat().length - before).toBe(first.rows);
  });

  it("rejects a SKU in two parts with different vectors, accepts identical duplicates", async () => {
    const dir = await Deno.makeTempDir();
    const output = join(dir, "fake.parquet");
    const skus = ["a", "b", "c", "d"];
    const writePart = async (index: number, partSkus: string[], offset: number) => {
      const vectors = new Float32Array(partSkus.length * DIM);
      partSkus.forEach((sku, i) => vectors.set(hashVector(sku).map((v) => v + offset), i * DIM));
      await writeEmbeddings(shardPartPath(output, { index, count: 2 }), {
        skus: partSkus,
        vectors,
        dim: DIM,
        info: { ...INFO, shard: { index, count: 2 }, key: "k", skusHash: "x", count: partSkus.length, dim: DIM },
      });
    };
    await writePart(0, ["a", "b", "c"], 0);
    await writePart(1, ["c", "d"], 0);
    const ok = await mergeShardParts({ output, skus, count: 2 });
    expect(ok.rows).toBe(4);
    const table = await readEmbeddings(output);
    expect(table.skus).toEqual(skus);
    expect(Array.from(table.vectors.subarray(2 * DIM, 3 * DIM))).toEqual(Array.from(hashVector("c")));
    await writePart(1, ["c", "d"], 0.5);
    await expect(mergeShardParts({ output, skus, count: 2 })).rejects.toThrow(
      'SKU "c" is in fake.part-0-of-2.parquet and fake.part-1-of-2.parquet with different vectors',
    );
    await writePart(1, ["d"], 0);
    await expect(mergeShardParts({ output, skus: [...skus, "e"], count: 2 })).rejects.toThrow(
      '1 catalog SKUs are in no part (first: "e")',
    );
  });
});
