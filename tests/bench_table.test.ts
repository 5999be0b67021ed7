import { describe, it } from "node:test";
import { expect } from "expect";
import {
  attachThreadScaling,
  type BenchRow,
  formatRatio,
  formatValue,
  renderMarkdownTable,
  renderTextTable,
  speedRatio,
} from "../lib/bench/report.ts";
import { syntheticPairs } from "../lib/bench/model_bench.ts";
import { torchBenchArgs } from "../lib/bench/torch_runner.ts";

const rows: BenchRow[] = [
  {
    section: "embedding",
    item: "real preset, batch 32",
    backend: "wasm",
    value: 1.5,
    unit: "products/s",
    direction: "higher",
    torchValue: 6,
  },
  {
    section: "evaluation",
    item: "110,780 pairs",
    backend: "JS",
    value: 50,
    unit: "ms",
    direction: "lower",
    torchValue: 200,
  },
  {
    section: "training",
    item: "full | real",
    backend: "cpu",
    value: null,
    unit: "pairs/s",
    direction: "higher",
    note: "skipped",
  },
];

describe("bench ratios", () => {
  it("divides ours by PyTorch for throughputs and PyTorch by ours for times", () => {
    expect(speedRatio(1.5, 6, "higher")).toBeCloseTo(0.25);
    expect(speedRatio(50, 200, "lower")).toBeCloseTo(4);
  });

  it("is null when a side is missing, zero or not finite", () => {
    expect(speedRatio(null, 6, "higher")).toBeNull();
    expect(speedRatio(1, undefined, "higher")).toBeNull();
    expect(speedRatio(0, 6, "lower")).toBeNull();
    expect(speedRatio(1, Number.NaN, "higher")).toBeNull();
  });
});

describe("bench formatting", () => {
  it("keeps 3 significant digits and groups thousands", () => {
    expect(formatValue(0.123456)).toBe("0.123");
    expect(formatValue(1.5)).toBe("1.50");
    expect(formatValue(42.42)).toBe("42.4");
    expect(formatValue(5342.4)).toBe("5,342");
    expect(formatValue(null)).toBe("-");
    expect(formatRatio(0.25)).toBe("0.25x");
    expect(formatRatio(18.2)).toBe("18x");
    expect(formatRatio(null)).toBe("-");
  });

  it("renders aligned text and escaped markdown with the ratio column", () => {
    const text = renderTextTable(rows).split("\n");
    expect(text).toHaveLength(5);
    expect(text[0].indexOf("ours vs PyTorch")).toBe(text[2].indexOf("0.25x"));
    expect(text[3]).toContain("4.00x");
    const markdown = renderMarkdownTable(rows).split("\n");
    expect(markdown[1]).toBe("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    expect(markdown[4]).toContain("full \\| real");
    expect(markdown[4]).toContain("|  | - | pairs/s | - | - |  | skipped |");
  });

  it("shows each multi-threaded row against its own 1-thread twin, and nothing for other rows", () => {
    const measured = (threads: number, value: number, item = "real preset, batch 32"): BenchRow => ({
      section: "embedding",
      item,
      backend: "wasm",
      threads,
      value,
      unit: "products/s",
      direction: "higher",
    });
    const scaled = attachThreadScaling([measured(1, 2), measured(2, 3.4), measured(2, 5, "other item"), rows[1]]);
    expect(scaled[0].oneThreadValue).toBeUndefined();
    expect(scaled[1].oneThreadValue).toBe(2);
    expect(scaled[2].oneThreadValue).toBeUndefined(); // no 1-thread twin
    expect(scaled[3].oneThreadValue).toBeUndefined();
    const text = renderTextTable(scaled).split("\n");
    expect(text[3]).toContain("1.70x");
    expect(text[0].indexOf("vs 1 thread")).toBe(text[3].indexOf("1.70x"));
  });
});

describe("bench helpers", () => {
  it("makes pairs of two different products", () => {
    const { left, right, labels } = syntheticPairs(20, 4);
    expect(left).toHaveLength(20);
    left.forEach((l, i) => {
      expect(right[i]).not.toBe(l);
      expect(right[i]).toBeGreaterThanOrEqual(0);
      expect(right[i]).toBeLessThan(4);
    });
    expect(labels.filter((l) => l === 1)).toHaveLength(10);
    expect(() => syntheticPairs(3, 1)).toThrow(/at least 2 products/);
  });

  it("passes the same sizes to the PyTorch script", () => {
    const args = torchBenchArgs({
      threads: 2,
      preset: "real",
      batchSize: 32,
      imageSize: 224,
      tokens: 77,
      trainPairs: 1,
      headPairs: 60,
      headSteps: 20,
      skipFull: true,
    });
    expect(args[0]).toMatch(/scripts[\\/]bench[\\/]torch_bench\.py$/);
    expect(args.slice(1, 5)).toEqual(["--threads", "2", "--preset", "real"]);
    expect(args).toContain("--skip-full");
    expect(args[args.indexOf("--batch") + 1]).toBe("32");
  });
});
