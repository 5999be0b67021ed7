import { describe, it } from "node:test";
import { expect } from "expect";
import { concatRows, embedCatalog, type EmbedCatalogOptions } from "../lib/embeddings/catalog.ts";
import { embeddingPath } from "../lib/embeddings/store.ts";

/** A deterministic stand-in encoder: each SKU's vector is a function of its row; counts the rows it encodes. */
function encoder(dim: number) {
  const calls: number[] = [];
  const encode = (rows: number[]) => {
    calls.push(...rows);
    return Promise.resolve(
      concatRows(rows.map((r) => Float32Array.from({ length: dim }, (_, j) => Math.sin(r * 7 + j))), dim),
    );
  };
  return { encode, calls };
}

describe("embedCatalog", () => {
  it("SHARD=0/2 and SHARD=1/2 merged equal one unsharded run, and a finished part is not redone", async () => {
    const root = await Deno.makeTempDir({ prefix: "embed-catalog-" });
    try {
      const skus = Array.from({ length: 37 }, (_, i) => `sku-${i * 13}`);
      const base = (tag: string, encode: EmbedCatalogOptions["encode"]): EmbedCatalogOptions => ({
        dataset: "demo",
        tag,
        kind: "towers",
        source: "test",
        distance: "euclidean",
        skus,
        dim: 5,
        key: "k1",
        batchSize: 4,
        encode,
        root,
        progress: false,
      });
      const whole = encoder(5);
      const single = await embedCatalog(base("whole", whole.encode));
      expect(single.partsDone).toBe(1);
      expect(whole.calls.length).toBe(37);

      const sharded = encoder(5);
      const first = await embedCatalog({ ...base("sharded", sharded.encode), shard: "0/2" });
      expect(first.vectors).toBe(null);
      expect(first.partsDone).toBe(1);
      const again = await embedCatalog({ ...base("sharded", sharded.encode), shard: "0/2" });
      expect(again.skipped).toBe(true);
      const second = await embedCatalog({ ...base("sharded", sharded.encode), shard: "1/2" });
      expect(second.partsDone).toBe(2);
      expect(second.path).toBe(embeddingPath("demo", "sharded", root));
      expect(sharded.calls.length).toBe(37); // each row encoded once over both shards and the rerun
      expect(second.vectors).toEqual(single.vectors);
      const bytes = (tag: string) => Deno.readFile(embeddingPath("demo", tag, root));
      expect(await bytes("sharded")).toEqual(await bytes("whole"));
      await expect(embedCatalog({ ...base("bad", sharded.encode), shard: "2/2" })).rejects.toThrow(
        'SHARD = "2/2" (from the SHARD parameter): expected i/N with 0 <= i < N',
      );
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });
});
