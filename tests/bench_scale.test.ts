import { describe, it } from "node:test";
import { expect } from "expect";
import {
  benchFilter,
  generateScaleData,
  quantile,
  renderScaleMarkdown,
  runScaleBench,
} from "../lib/bench/scale_bench.ts";

describe("scale bench", () => {
  it("runs at a tiny size: one row per method, recall in [0, 1], exact recall 1", async () => {
    const workDir = await Deno.makeTempDir({ prefix: "scale-test-" });
    const result = await runScaleBench({ size: 3_000, queries: 8, workDir, usearch: { expansionAdd: 64 } });
    expect(result.rows.map((r) => r.method)).toEqual([
      "exact (TS brute force)",
      "usearch HNSW (in memory)",
      "LanceDB (on disk)",
    ]);
    for (const row of result.rows) {
      for (const value of [row.recall, row.filteredRecall]) {
        expect(value).toBeGreaterThanOrEqual(0);
        expect(value).toBeLessThanOrEqual(1);
      }
      expect(row.medianMs).toBeGreaterThan(0);
      expect(row.p95Ms).toBeGreaterThanOrEqual(row.medianMs);
      expect(row.peakRssMiB).toBeGreaterThan(0);
    }
    expect(result.rows[0].recall).toBe(1);
    expect(result.rows[0].filteredRecall).toBe(1);
    // LanceDB without a vector index (small table) is exact, filter inside the search included.
    expect(result.rows[2].settings).toBe("flat (no vector index)");
    expect(result.rows[2].filteredRecall).toBeCloseTo(1, 6);
    expect(result.rows[2].diskMiB).toBeGreaterThan(3_000 * 462 * 4 / 2 ** 20 * 0.9);
    expect(result.filterSelectivity).toBeGreaterThan(0.1);
    expect(result.filterSelectivity).toBeLessThan(0.35);
    const markdown = renderScaleMarkdown(result);
    expect(markdown).toContain("| method | settings | build s |");
    expect(markdown.split("\n").filter((l) => l.startsWith("| ")).length).toBe(2 + 3);
    await Deno.remove(workDir, { recursive: true });
  });

  it("generates the same data for the same seed, and a filter keeping about a fifth of the rows", () => {
    const a = generateScaleData(500, 8, 3, 5, 42);
    const b = generateScaleData(500, 8, 3, 5, 42);
    expect(a.vectors).toEqual(b.vectors);
    expect(a.price).toEqual(b.price);
    expect(generateScaleData(500, 8, 3, 5, 43).vectors).not.toEqual(a.vectors);
    const filter = benchFilter(a, 0);
    expect(filter.stock).toEqual({ gt: 0 });
    expect(quantile([5, 1, 3, 2, 4], 0.5)).toBe(3);
    expect(quantile([5, 1, 3, 2, 4], 0.95)).toBe(5);
  });

  it("rejects a size below k", async () => {
    await expect(runScaleBench({ size: 50, k: 100, workDir: "/tmp" })).rejects.toThrow(
      "scale bench: size = 50; expected an integer >= k (100)",
    );
  });
});
