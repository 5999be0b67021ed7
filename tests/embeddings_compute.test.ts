import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { encodeResumable } from "../lib/embeddings/resumable.ts";
import { configureStopHandler, InterruptedError, stopPressed } from "../lib/notebook/interrupt.ts";
import { pca2d } from "../lib/embeddings/projection.ts";

const encodeRange = (dim: number) => (start: number, end: number) =>
  Promise.resolve(Float32Array.from({ length: (end - start) * dim }, (_, i) => start * dim + i));

describe("resumable encoding", () => {
  it("resumes after an interruption and encodes each remaining row once", async () => {
    const dir = await Deno.makeTempDir();
    const partialPath = join(dir, "e.partial.safetensors");
    let calls = 0;
    const failing = (start: number, end: number) => {
      if (++calls === 4) throw new Error("interrupted");
      return encodeRange(3)(start, end);
    };
    await expect(
      encodeResumable({
        key: "k",
        count: 10,
        dim: 3,
        partialPath,
        encode: failing,
        batchSize: 2,
        saveEvery: 1,
        progress: false,
      }),
    ).rejects.toThrow("interrupted");
    const encoded: number[] = [];
    const result = await encodeResumable({
      key: "k",
      count: 10,
      dim: 3,
      partialPath,
      batchSize: 2,
      saveEvery: 1,
      progress: false,
      encode: (start, end) => (encoded.push(start), encodeRange(3)(start, end)),
    });
    expect(result.resumedRows).toBe(6);
    expect(encoded).toEqual([6, 8]);
    expect(Array.from(result.vectors)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    await expect(Deno.stat(partialPath)).rejects.toThrow();
  });

  it("Stop ends it after the running batch, with the rows done saved even between saves", async () => {
    configureStopHandler({ notify: () => {}, exit: () => {} });
    const dir = await Deno.makeTempDir();
    const partialPath = join(dir, "e.partial.safetensors");
    let calls = 0;
    const options = { key: "k", count: 10, dim: 3, partialPath, batchSize: 2, saveEvery: 100, progress: false };
    const error = await encodeResumable({
      ...options,
      label: "embedding",
      encode: (start, end) => {
        if (++calls === 2) stopPressed(); // during the second batch
        return encodeRange(3)(start, end);
      },
    }).catch((e) => e);
    expect(error).toBeInstanceOf(InterruptedError);
    expect(error.message).toBe(
      `embedding stopped at row 4/10 (Stop). Kept: the 4 rows done, in ${partialPath}. ` +
        "Resume: run it again with the same model and inputs: it goes on from row 4.",
    );
    const encoded: number[] = [];
    const result = await encodeResumable({
      ...options,
      encode: (start, end) => (encoded.push(start), encodeRange(3)(start, end)),
    });
    expect(result.resumedRows).toBe(4);
    expect(encoded).toEqual([4, 6, 8]);
    expect(Array.from(result.vectors)).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });

  it("ignores a partial file made with another key", async () => {
    const dir = await Deno.makeTempDir();
    const partialPath = join(dir, "e.partial.safetensors");
    let calls = 0;
    await encodeResumable({
      key: "old",
      count: 6,
      dim: 1,
      partialPath,
      batchSize: 1,
      saveEvery: 1,
      progress: false,
      encode: (s, e) => {
        if (++calls === 3) throw new Error("stop");
        return encodeRange(1)(s, e);
      },
    }).catch(() => {});
    const result = await encodeResumable({
      key: "new",
      count: 6,
      dim: 1,
      partialPath,
      encode: encodeRange(1),
      batchSize: 1,
      progress: false,
    });
    expect(result.resumedRows).toBe(0);
  });
});

describe("pca2d", () => {
  it("finds the direction of largest spread first", () => {
    // Points spread along (1, 1, 0) with a little noise along (0, 0, 1).
    const rows = [-2, -1, 0, 1, 2].flatMap((t, i) => [t, t, i % 2 ? 0.1 : -0.1]);
    const coords = pca2d(Float32Array.from(rows), 3);
    const first = [0, 1, 2, 3, 4].map((i) => coords[i * 2]);
    const spread = Math.max(...first) - Math.min(...first);
    expect(spread).toBeCloseTo(4 * Math.SQRT2, 3);
    const second = [0, 1, 2, 3, 4].map((i) => Math.abs(coords[i * 2 + 1]));
    expect(Math.max(...second)).toBeCloseTo(0.12, 3); // noise -0.1,+0.1,-0.1,+0.1,-0.1 centred on its mean -0.02
  });
});
