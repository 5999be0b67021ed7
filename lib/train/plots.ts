/** Plots of a training run: loss and validation metrics per epoch. */
import type { Figure } from "../notebook/display.ts";
import type { EpochRecord } from "./trainer.ts";

/** Training curve: train/val loss (left axis), F1 and ROC AUC (right axis) per epoch. */
export function trainingCurveFigure(history: readonly EpochRecord[], title = "Training curve"): Figure {
  const epochs = history.map((r) => r.epoch);
  const line = (name: string, values: number[], axis: "y" | "y2", dash?: string) => ({
    type: "scatter",
    mode: "lines+markers",
    name,
    x: epochs,
    y: values,
    yaxis: axis,
    line: dash ? { dash } : undefined,
  });
  return {
    data: [
      line("train loss", history.map((r) => r.trainLoss), "y"),
      line("val loss", history.map((r) => r.valLoss), "y"),
      line("val F1", history.map((r) => r.f1), "y2", "dot"),
      line("val ROC AUC", history.map((r) => r.auc), "y2", "dot"),
    ],
    layout: {
      title: { text: title },
      height: 380,
      xaxis: { title: { text: "epoch" }, dtick: 1 },
      yaxis: { title: { text: "contrastive loss" } },
      yaxis2: { title: { text: "F1 / AUC" }, overlaying: "y", side: "right", range: [0, 1] },
      legend: { orientation: "h", y: -0.2 },
    },
  };
}
