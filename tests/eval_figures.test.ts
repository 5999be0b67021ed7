import { describe, it } from "node:test";
import { expect } from "expect";
import {
  colorAt,
  comparisonFigure,
  confusionFigure,
  contrastRatio,
  KNOWN_MODEL_COLORS,
  modelColor,
  OTHER_MODEL_COLORS,
  relativeLuminance,
  type RocEntry,
  rocFigure,
  stackedLabelRows,
} from "../lib/eval/figures.ts";
import type { Figure } from "../lib/notebook/display.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

/** A short ROC curve through (0,0), (fpr,tpr) and (1,1). */
function roc(fpr: number, tpr: number): RocEntry["roc"] {
  return {
    fpr: Float64Array.from([0, fpr, 1]),
    tpr: Float64Array.from([0, tpr, 1]),
    thresholds: new Float64Array(3),
  };
}

/** The colour of the first trace named `name` (line colour, else marker colour). */
function traceColor(figure: Figure, name: string): string | undefined {
  const trace: Any = figure.data.find((t) => t.name === name);
  return trace?.line?.color ?? trace?.marker?.color;
}

describe("confusion figure", () => {
  const confusion = { tp: 412, fn: 30, fp: 25, tn: 1200 };
  const figure = confusionFigure(confusion, "test");
  const heatmap: Any = figure.data[0];
  const layout: Any = figure.layout;

  it("maps the largest count to the darkest colour of an explicit scale and shows a colour bar", () => {
    expect(Array.isArray(heatmap.colorscale)).toBe(true);
    const scale = heatmap.colorscale as [number, string][];
    expect(scale.length).toBeGreaterThanOrEqual(2);
    const luminances = scale.map(([, color]) => relativeLuminance(color));
    // Where the largest count lands: z max is zmax (so t = 1), the last stop unless reversed.
    const zMax = Math.max(...heatmap.z.flat());
    expect(heatmap.zmax).toBe(zMax);
    expect(heatmap.zmin).toBe(0);
    const maxEnd = heatmap.reversescale === true ? 0 : scale.length - 1;
    const minEnd = scale.length - 1 - maxEnd;
    expect(luminances[maxEnd]).toBe(Math.min(...luminances));
    expect(luminances[minEnd]).toBe(Math.max(...luminances));
    expect(luminances[minEnd] - luminances[maxEnd]).toBeGreaterThan(0.5);
    expect(heatmap.showscale).toBe(true);
    expect(heatmap.colorbar.title.text).toBe("pairs");
  });

  it("labels each cell with its count and row share in a contrasting colour, axes predicted/true", () => {
    expect(layout.xaxis.title.text).toBe("predicted");
    expect(layout.yaxis.title.text).toBe("true");
    const scale = heatmap.colorscale as [number, string][];
    const texts = layout.annotations.map((a: Any) => a.text);
    expect(texts).toContain("412<br>(93.2% of true same)");
    expect(texts).toContain("30<br>(6.8% of true same)");
    expect(texts).toContain("1200<br>(98.0% of true different)");
    expect(texts).toContain("25<br>(2.0% of true different)");
    const zmax = heatmap.zmax;
    for (const annotation of layout.annotations) {
      const count = Number(String(annotation.text).split("<br>")[0]);
      const cell = colorAt(scale, count / zmax);
      // WCAG AA for large text at least; the darkest cell gets light text, the palest dark text.
      expect(contrastRatio(cell, annotation.font.color)).toBeGreaterThanOrEqual(3);
    }
    const byCount = (n: number) => layout.annotations.find((a: Any) => a.text.startsWith(`${n}<br>`));
    expect(relativeLuminance(byCount(1200).font.color)).toBeGreaterThan(0.9);
    expect(relativeLuminance(byCount(25).font.color)).toBeLessThan(0.1);
  });

  it("says so when a row is empty", () => {
    const empty: Any = confusionFigure({ tp: 0, fn: 0, fp: 3, tn: 4 }, "t").layout;
    expect(empty.annotations[0].text).toBe("0<br>(no true same pairs)");
  });
});

describe("model colours", () => {
  const models = ["SiameseRuCLIP", "SBERT zero-shot", "raw tower features", "my new model"];
  const rocEntries: RocEntry[] = models.flatMap((m, i) => [
    { name: `${m} (validation)`, roc: roc(0.1 + i / 10, 0.8), point: { fpr: 0.1, tpr: 0.8, label: "chosen" } },
    { name: `${m} (test)`, roc: roc(0.12 + i / 10, 0.78), point: { fpr: 0.12, tpr: 0.78, label: "on test" } },
  ]);
  const rocPlot = rocFigure(rocEntries, "ROC");
  const bars = comparisonFigure(models.map((model) => ({ model, metrics: { f1: 0.5 } })), ["f1"], "bars");
  const reversed = comparisonFigure(
    [...models].reverse().map((model) => ({ model, metrics: { f1: 0.5 } })),
    ["f1"],
    "",
  );

  it("gives a model the same colour in the ROC curves, their markers and the comparison bars", () => {
    for (const m of models) {
      const color = traceColor(bars, m);
      expect(typeof color).toBe("string");
      expect(traceColor(reversed, m)).toBe(color);
      expect(traceColor(rocPlot, `${m} (validation)`)).toBe(color);
      expect(traceColor(rocPlot, `${m} (test)`)).toBe(color);
      const markers = rocPlot.data.filter((t: Any) => t.mode === "markers" && String(t.name).startsWith(m));
      expect(markers.length).toBe(2);
      for (const marker of markers as Any[]) expect(marker.marker.color).toBe(color);
      const labels = (rocPlot.layout as Any).annotations.filter((a: Any) => String(a.text).startsWith(m));
      expect(labels.length).toBe(2);
      for (const label of labels) expect(label.font.color).toBe(color);
      expect(modelColor(m)).toBe(color);
    }
  });

  it("gives distinct models distinct colours and unknown names a stable colour off the known ones", () => {
    const colors = models.map((m) => traceColor(bars, m));
    expect(new Set(colors).size).toBe(models.length);
    const known = Object.values(KNOWN_MODEL_COLORS);
    expect(new Set(known.map((c) => c.toLowerCase())).size).toBe(known.length);
    for (const name of ["my new model", "SBERT fine-tuned", "x"]) {
      expect(modelColor(name)).toBe(modelColor(name));
      expect(known).not.toContain(modelColor(name));
      expect(OTHER_MODEL_COLORS).toContain(modelColor(name));
    }
    // The split a curve belongs to and the letter case don't change a model's colour.
    expect(modelColor("SiameseRuCLIP (test)")).toBe(modelColor("siameseruclip"));
    // The chance line stays grey, not a model colour.
    expect(known).not.toContain(traceColor(rocPlot, "chance"));
  });
});

describe("ROC operating point labels", () => {
  /** Label boxes in pixels (vertical extent only: all labels share one right-aligned column). */
  function labelBoxes(figure: Figure): { top: number; bottom: number; ax: number; xanchor: string }[] {
    const layout: Any = figure.layout;
    const plotPx = layout.height - layout.margin.t - layout.margin.b;
    const [y0, y1] = layout.yaxis.range;
    const pxPerUnit = plotPx / (y1 - y0);
    return layout.annotations.map((a: Any) => {
      expect(a.ayref).toBe("y");
      const half = (a.font.size * 1.3 + 2 * (a.borderpad + a.borderwidth)) / 2;
      const center = (a.ay - y0) * pxPerUnit;
      return { top: center + half, bottom: center - half, ax: a.ax, xanchor: a.xanchor };
    });
  }

  function expectNoOverlap(boxes: { top: number; bottom: number; ax: number; xanchor: string }[]): void {
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const apart = boxes[i].bottom >= boxes[j].top || boxes[j].bottom >= boxes[i].top;
        expect({ i, j, apart }).toEqual({ i, j, apart: true });
      }
    }
  }

  it("gives close operating points labels that do not collide, each pointing at its point", () => {
    const points = [[0.05, 0.8], [0.051, 0.801], [0.052, 0.8], [0.05, 0.799]];
    const figure = rocFigure(
      points.map(([fpr, tpr], i) => ({ name: `model ${i}`, roc: roc(fpr, tpr), point: { fpr, tpr, label: "chosen" } })),
      "ROC",
    );
    // No text drawn next to the markers (that is what piled up); the labels are annotations.
    expect(figure.data.some((t: Any) => String(t.mode).includes("text"))).toBe(false);
    const annotations: Any[] = (figure.layout as Any).annotations;
    expect(annotations.length).toBe(points.length);
    annotations.forEach((a, i) => {
      expect([a.x, a.y]).toEqual(points[i]);
      expect(a.showarrow).toBe(true);
      expect(a.text).toBe(`model ${i}: chosen`);
    });
    const boxes = labelBoxes(figure);
    expect(new Set(boxes.map((b) => `${b.ax} ${b.xanchor}`)).size).toBe(1);
    expectNoOverlap(boxes);
  });

  it("keeps many labels apart and inside the plot by making the figure taller", () => {
    const n = 24;
    const figure = rocFigure(
      Array.from({ length: n }, (_, i) => ({
        name: `m${i}`,
        roc: roc(0.3, 0.9),
        point: { fpr: 0.3, tpr: 0.9 - i * 1e-4, label: "p" },
      })),
      "ROC",
    );
    const boxes = labelBoxes(figure);
    expectNoOverlap(boxes);
    const layout: Any = figure.layout;
    const plotPx = layout.height - layout.margin.t - layout.margin.b;
    for (const box of boxes) {
      expect(box.bottom).toBeGreaterThanOrEqual(0);
      expect(box.top).toBeLessThanOrEqual(plotPx);
    }
  });

  it("stacks label rows in the order of the points' heights", () => {
    expect(stackedLabelRows([0.5, 0.1, 0.3], 0, 1)).toEqual([2, 0, 1]);
    expect(stackedLabelRows([0.2, 0.2], 0.1, 0.5)).toEqual([0.1, 0.6]);
  });
});
