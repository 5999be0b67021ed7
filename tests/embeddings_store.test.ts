import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { embeddingPath, readEmbeddings, writeEmbeddings } from "../lib/embeddings/store.ts";

describe("embedding store", () => {
  it("round-trips SKUs, vectors and the description", async () => {
    const dir = await Deno.makeTempDir();
    const path = embeddingPath("demo_geo", "siamese_run1", dir);
    expect(path).toBe(join(dir, "embeddings", "demo_geo", "siamese_run1.parquet"));
    const vectors = new Float32Array([0.5, -1.25, 3, 0, 1e-3, 7]);
    await writeEmbeddings(path, {
      skus: ["10", "20", "30"],
      vectors,
      dim: 2,
      info: { tag: "siamese_run1", kind: "siamese", source: "ckpt", distance: "euclidean" },
    });
    const table = await readEmbeddings(path);
    expect(table.skus).toEqual(["10", "20", "30"]);
    expect(table.dim).toBe(2);
    expect(Array.from(table.vectors)).toEqual(Array.from(vectors));
    expect(table.info).toMatchObject({ kind: "siamese", dim: 2, count: 3, distance: "euclidean" });
  });

  it("rejects mismatched sizes and bad tags, and names a missing file", async () => {
    await expect(
      writeEmbeddings("/tmp/x.parquet", {
        skus: ["1"],
        vectors: new Float32Array(3),
        dim: 2,
        info: { tag: "x", kind: "k", source: "s", distance: "euclidean" },
      }),
    )
      .rejects.toThrow(/3 values for 1 SKUs x 2 dims/);
    expect(() => embeddingPath("d", "../evil")).toThrow(/may only hold/);
    await expect(readEmbeddings("/nonexistent/e.parquet")).rejects.toThrow(
      /run the compute_embeddings notebooks first/,
    );
  });
});
