/**
 * Result tables in the docs are rendered from the benchmark reports (lib/experiment/results_doc.ts): a block
 * is filled from its report, a bad block is named, and the committed README.md and docs/results.md equal the
 * rendering of the committed reports/benchmarks/*.json.
 */
import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import type { BenchmarkResult } from "../lib/experiment/benchmark.ts";
import { f1Table } from "../lib/experiment/benchmark_report.ts";
import { benchmarkReportLoader, renderResultBlocks, resultBlockNames } from "../lib/experiment/results_doc.ts";
import { projectRoot } from "../lib/paths.ts";
import { RESULT_DOCUMENTS } from "../scripts/render_results.ts";

const result = {
  name: "toy",
  title: "a toy",
  dataset: "toy",
  quick: false,
  seeds: [42],
  rule: "F1-optimal",
  splits: [{ split: "test", description: "all", pairs: 4, positives: 2 }],
  trials: [],
  chosen: [],
  rows: [{
    method: "m",
    kind: "trained",
    seed: 42,
    split: "test",
    pairs: 4,
    positives: 2,
    precision: 1,
    recall: 0.5,
    f1: 0.6667,
    rocAuc: 0.75,
    averagePrecision: 0.8,
    threshold: 0,
    validationF1: 0.7,
    mrr: 1,
    map: 1,
    queries: 2,
  }],
  anchors: [{ method: "published m", split: "test", f1: 0.5, source: "a paper" }],
  seconds: 1,
} as unknown as BenchmarkResult;

describe("result tables rendered from the benchmark reports", () => {
  it("fills each block from its report and leaves the rest of the document as it is", () => {
    const doc = "intro\n<!-- benchmark toy f1 -->\nold numbers\n<!-- /benchmark -->\noutro\n";
    const rendered = renderResultBlocks(doc, () => result, "doc.md");
    expect(rendered).toBe(
      ["intro", "<!-- benchmark toy f1 -->", ...f1Table(result), "<!-- /benchmark -->", "outro", ""].join("\n"),
    );
    expect(rendered).toContain("| m | 0.667 | this run (trained) |");
    expect(rendered).toContain("| published m | 0.500 | published [1] |\n\n[1] a paper\n");
    expect(renderResultBlocks(rendered, () => result, "doc.md")).toBe(rendered);
    expect(resultBlockNames(doc)).toEqual(["toy"]);
  });

  it("names an unknown table, an unclosed block and a missing report", () => {
    expect(() => renderResultBlocks("<!-- benchmark toy nope -->\n<!-- /benchmark -->", () => result, "d.md"))
      .toThrow('d.md: block "toy nope": unknown table "nope"; use f1, ranking, trials, provenance');
    expect(() => renderResultBlocks("<!-- benchmark toy f1 -->\n", () => result, "d.md")).toThrow(
      /d\.md: 1 "<!-- benchmark <name> <table> -->" markers but 0/,
    );
    expect(() => benchmarkReportLoader("/nonexistent")("wdc")).toThrow(
      "/nonexistent/wdc.json is missing: run deno task benchmark --dataset wdc first",
    );
  });

  it("README.md and docs/results.md are what the committed reports render", async () => {
    const load = benchmarkReportLoader(join(projectRoot, "reports", "benchmarks"));
    let blocks = 0;
    for (const doc of RESULT_DOCUMENTS) {
      const text = await Deno.readTextFile(join(projectRoot, doc));
      blocks += resultBlockNames(text).length;
      expect(renderResultBlocks(text, load, doc)).toBe(text);
    }
    expect(blocks).toBeGreaterThan(0);
  });
});
