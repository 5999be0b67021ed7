import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import {
  collectResults,
  type NotebookResult,
  saveNotebookResult,
  summaryRows,
  TESTING_NOTEBOOKS,
  writeReport,
} from "../lib/eval/report.ts";
import { comparisonFigure, confusionFigure, rocFigure, thinIndices } from "../lib/eval/figures.ts";
import { plotlyJs } from "../lib/notebook/display.ts";

function renderedResult(): Omit<NotebookResult, "created"> {
  return {
    notebook: TESTING_NOTEBOOKS[0].notebook,
    title: TESTING_NOTEBOOKS[0].title,
    dataset: "demo_geo",
    split: "test",
    params: { THRESHOLD_RULE: "fpr", TARGET_FPR: 0.05 },
    headline: {
      "SiameseRuCLIP": { test_f1: 0.805, test_fpr: 0.04, test_roc_auc: NaN },
      "SBERT zero-shot": { test_f1: 0.6, test_fpr: 0.05, test_roc_auc: 0.7 },
    },
    tables: [{ title: "TPR at FPR", rows: [{ fpr: 0.05, tpr: 0.748 }] }],
    figures: [
      {
        title: "ROC",
        figure: rocFigure([{
          name: "SiameseRuCLIP",
          roc: {
            fpr: Float64Array.from([0, 0.5, 1]),
            tpr: Float64Array.from([0, 0.8, 1]),
            thresholds: new Float64Array(3),
          },
          point: { fpr: 0.5, tpr: 0.8, label: "chosen" },
        }], "ROC"),
      },
      { title: "confusion", figure: confusionFigure({ tp: 5, fp: 1, tn: 7, fn: 2 }, "test") },
    ],
    notes: ["threshold chosen on validation"],
  };
}

describe("evaluation report", () => {
  it("writes a self-contained report and metrics.json from any subset of notebooks", async () => {
    const root = await Deno.makeTempDir();
    try {
      const empty = await writeReport(root);
      expect(empty.found).toEqual([]);
      expect(empty.missing.length).toBe(TESTING_NOTEBOOKS.length);
      const emptyHtml = await Deno.readTextFile(empty.html);
      expect(emptyHtml).toContain("notebooks/4_testing/contrastive_test_embs_from-pairwise-rendered.ipynb");
      expect(emptyHtml).not.toContain(plotlyJs().slice(0, 200));

      await saveNotebookResult(renderedResult(), root);
      const written = await writeReport(root);
      expect(written.found).toEqual([TESTING_NOTEBOOKS[0].notebook]);
      expect(written.missing).toEqual(TESTING_NOTEBOOKS.slice(1).map((n) => n.notebook));
      const html = await Deno.readTextFile(written.html);
      // plotly.js is inlined exactly once and nothing is fetched from the network.
      expect(html.split(plotlyJs().slice(0, 200)).length - 1).toBe(1);
      expect(html).not.toMatch(/<script[^>]+src=/);
      expect(html).toContain("0.8050");
      expect(html).toContain("pairwise-rendered: test_f1");
      expect(html).toContain("No results yet: run the notebook");
      expect(html).toContain("contrastive_test_embs_from-source_ruclip-only.ipynb");
      const metrics = JSON.parse(await Deno.readTextFile(written.metrics));
      const headline = metrics.notebooks[TESTING_NOTEBOOKS[0].notebook].headline;
      expect(headline.SiameseRuCLIP.test_f1).toBe(0.805);
      expect(headline.SiameseRuCLIP.test_roc_auc).toBe(null);
      expect(metrics.datasets).toEqual(["demo_geo"]);
      expect(metrics.missing.length).toBe(TESTING_NOTEBOOKS.length - 1);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });

  it("reports unreadable result files instead of failing", async () => {
    const root = await Deno.makeTempDir();
    try {
      await Deno.mkdir(join(root, "results"));
      await Deno.writeTextFile(join(root, "results", "broken.json"), "{not json");
      const collected = await collectResults(root);
      expect(collected.unreadable.length).toBe(1);
      expect(collected.unreadable[0].path).toContain("broken.json");
      await expect(saveNotebookResult({ ...renderedResult(), notebook: "../x" }, root)).rejects.toThrow(
        /plain file name/,
      );
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });
});

/** A top-k retrieval result run with `TOP_K` = k on `split`. */
function topKResult(k: number, split: string): NotebookResult {
  return {
    notebook: TESTING_NOTEBOOKS[2].notebook,
    title: TESTING_NOTEBOOKS[2].title,
    dataset: "demo_geo",
    split,
    created: "2024-01-01T00:00:00.000Z",
    params: { TOP_K: k },
    headline: {
      "SiameseRuCLIP": {
        [`recall@${k}`]: 0.625,
        [`mrr@${k}`]: 0.5,
        [`map@${k}`]: 0.4375,
        [`filtered_recall@${k}`]: 0.75,
        approximate_recall: 1,
      },
      "SBERT zero-shot": { [`recall@${k}`]: 0.375, [`mrr@${k}`]: 0.25, [`map@${k}`]: 0.1875 },
    },
    tables: [],
    figures: [],
    notes: [],
  };
}

describe("report numbers come from the run", () => {
  it("summarises top-k notebooks at the run's TOP_K, not a fixed k", () => {
    const rows = summaryRows([topKResult(5, "test")]);
    expect(rows[0]).toEqual({
      model: "SiameseRuCLIP",
      "source: recall@5": 0.625,
      "source: mrr@5": 0.5,
      "source: map@5": 0.4375,
      "source: filtered_recall@5": 0.75,
      "source: approximate_recall": 1,
    });
    expect(rows[1]["source: recall@5"]).toBe(0.375);
    expect(Object.keys(rows[0]).some((key) => key.includes("@10"))).toBe(false);
    // Without a TOP_K parameter the cut-off is read off the headline keys.
    const noParam = { ...topKResult(3, "test"), params: {} };
    expect(summaryRows([noParam])[0]["source: recall@3"]).toBe(0.625);
  });

  it("states the split, dataset and counts of the results it is given", async () => {
    const root = await Deno.makeTempDir();
    try {
      await saveNotebookResult(topKResult(5, "holdout"), root);
      const html = await Deno.readTextFile((await writeReport(root)).html);
      expect(html).not.toContain("test split");
      expect(html).toContain("split holdout");
      expect(html).toContain("2 model(s), all on the holdout split of demo_geo");
      expect(html).toContain(
        `1 notebook result(s) found,\n${TESTING_NOTEBOOKS.length - 1} of the ${TESTING_NOTEBOOKS.length}`,
      );
      expect(html).toContain("<th>source: recall@5</th>");
      expect(html).toContain("0.6250");
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });
});

describe("figures", () => {
  it("thins long curves keeping both ends, and builds grouped bars", () => {
    const kept = thinIndices(10_000, 400);
    expect(kept.length).toBeLessThanOrEqual(400);
    expect(kept[0]).toBe(0);
    expect(kept[kept.length - 1]).toBe(9_999);
    expect(thinIndices(3)).toEqual([0, 1, 2]);
    const figure = comparisonFigure([{ model: "a", metrics: { f1: 0.5, mrr: NaN } }], ["f1", "mrr"], "t");
    expect(figure.data[0].y).toEqual([0.5, null]);
  });
});
