/**
 * Figures of the pair classifier: its fit (validation log loss per round, the kept round marked) and
 * why it decides (each feature's mean |SHAP contribution|, largest on top).
 *
 * @module
 */
import type { Figure } from "../notebook/display.ts";
import { modelColor } from "../eval/figures.ts";
import type { FitReport } from "./classifier.ts";

/** Validation log loss per boosting round of each classifier, with the round each kept. */
export function classifierFitFigure(fits: readonly { model: string; report: FitReport }[], title: string): Figure {
  return {
    data: fits.flatMap(({ model, report }) => {
      const rounds = report.history.filter((h) => h.validation !== undefined);
      const kept = rounds.find((h) => h.round === report.bestRound);
      return [
        {
          type: "scatter",
          mode: "lines",
          name: model,
          x: rounds.map((h) => h.round),
          y: rounds.map((h) => h.validation),
          line: { color: modelColor(model) },
        },
        ...(kept
          ? [{
            type: "scatter",
            mode: "markers",
            name: `${model}: kept round ${kept.round}`,
            x: [kept.round],
            y: [kept.validation],
            marker: { color: modelColor(model), size: 10, symbol: "diamond" },
          }]
          : []),
      ];
    }),
    layout: {
      title: { text: title },
      xaxis: { title: { text: "boosting round" } },
      yaxis: { title: { text: "validation log loss" } },
      height: 380,
    },
  };
}

/** Mean |contribution| per feature as horizontal bars, the `top` largest, largest on top. */
export function featureImportanceFigure(
  importances: readonly { feature: string; importance: number }[],
  title: string,
  top = 20,
): Figure {
  const shown = importances.slice(0, top).reverse();
  return {
    data: [{
      type: "bar",
      orientation: "h",
      x: shown.map((f) => f.importance),
      y: shown.map((f) => f.feature),
      marker: { color: shown.map((f) => (/^(siamese|raw)_/.test(f.feature) ? "#0072B2" : "#999999")) },
      hovertemplate: "%{y}: %{x:.4f}<extra></extra>",
    }],
    layout: {
      title: { text: title },
      xaxis: { title: { text: "mean |SHAP contribution| to the log-odds (test pairs)" } },
      margin: { l: 200 },
      height: Math.max(300, 22 * shown.length + 120),
    },
  };
}
