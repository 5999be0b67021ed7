/**
 * Plotly figures of the testing notebooks: ROC curves with the chosen operating point, a confusion
 * matrix, and grouped bars comparing models. Curves are thinned to a few hundred points so that the
 * report stays small.
 *
 * @module
 */
import type { Figure } from "../notebook/display.ts";
import type { ConfusionMatrix, RocCurve } from "./pair_metrics.ts";
import type { ModelMetrics } from "./flows.ts";

/** Indices of at most `maxPoints` points of a curve, always keeping the first and the last. */
export function thinIndices(length: number, maxPoints = 400): number[] {
  if (length <= maxPoints) return Array.from({ length }, (_, i) => i);
  const step = (length - 1) / (maxPoints - 1);
  return [...new Set(Array.from({ length: maxPoints }, (_, i) => Math.round(i * step)))];
}

/** One ROC curve to draw, with an optional marked operating point. */
export interface RocEntry {
  name: string;
  roc: RocCurve;
  point?: { fpr: number; tpr: number; label: string };
}

/** ROC curves (FPR on x, TPR on y) with the chosen points marked and the chance diagonal. */
export function rocFigure(entries: readonly RocEntry[], title: string): Figure {
  const data: Record<string, unknown>[] = [];
  for (const entry of entries) {
    const keep = thinIndices(entry.roc.fpr.length);
    data.push({
      type: "scatter",
      mode: "lines",
      name: entry.name,
      x: keep.map((i) => entry.roc.fpr[i]),
      y: keep.map((i) => entry.roc.tpr[i]),
    });
    if (entry.point) {
      data.push({
        type: "scatter",
        mode: "markers+text",
        name: `${entry.name}: ${entry.point.label}`,
        x: [entry.point.fpr],
        y: [entry.point.tpr],
        text: [entry.point.label],
        textposition: "bottom right",
        marker: { size: 11, symbol: "x" },
      });
    }
  }
  data.push({
    type: "scatter",
    mode: "lines",
    name: "chance",
    x: [0, 1],
    y: [0, 1],
    line: { dash: "dot", color: "#999" },
  });
  return {
    data,
    layout: {
      title: { text: title },
      xaxis: { title: { text: "false positive rate" }, range: [0, 1] },
      yaxis: { title: { text: "true positive rate" }, range: [0, 1.02] },
      height: 480,
    },
  };
}

/** A 2x2 confusion matrix heatmap (rows: true class, columns: predicted class). */
export function confusionFigure(confusion: ConfusionMatrix, title: string): Figure {
  const z = [[confusion.tp, confusion.fn], [confusion.fp, confusion.tn]];
  const labels = ["same", "different"];
  return {
    data: [{
      type: "heatmap",
      z,
      x: labels.map((l) => `predicted ${l}`),
      y: labels.map((l) => `true ${l}`),
      text: z.map((row) => row.map(String)),
      texttemplate: "%{text}",
      colorscale: "Blues",
      showscale: false,
    }],
    layout: { title: { text: title }, yaxis: { autorange: "reversed" }, height: 360, width: 480 },
  };
}

/** Grouped bars: one group per metric, one bar per model. */
export function comparisonFigure(models: readonly ModelMetrics[], metrics: readonly string[], title: string): Figure {
  return {
    data: models.map((m) => ({
      type: "bar",
      name: m.model,
      x: [...metrics],
      y: metrics.map((key) => {
        const value = m.metrics[key];
        return value === undefined || value === null || Number.isNaN(value) ? null : value;
      }),
    })),
    layout: { title: { text: title }, barmode: "group", yaxis: { range: [0, 1] }, height: 420 },
  };
}
