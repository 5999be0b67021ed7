/** Plots of a training run: loss and validation metrics per epoch. */
import type { Figure, LivePlot } from "../notebook/display.ts";
import { epochCurveRow, type EpochRecord } from "./trainer.ts";
import type { ResidualScaleChoice } from "./residual_scale.ts";
import type { TextPretrainingResult } from "./text_pretraining.ts";

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

/** The validation metrics of each head-residual scale tried, the chosen one marked (`chooseResidualScale`). */
export function residualScaleFigure(choice: ResidualScaleChoice, title = "Head residual scale on validation"): Figure {
  const scales = choice.rows.map((r) => r.scale);
  const line = (name: string, values: (number | null)[], dash?: string) => ({
    type: "scatter",
    mode: "lines+markers",
    name,
    x: scales,
    y: values,
    line: dash ? { dash } : undefined,
  });
  const data = [
    line("pair AP", choice.rows.map((r) => r.ap)),
    ...(choice.rows.some((r) => r.mrr !== null)
      ? [line("MRR", choice.rows.map((r) => r.mrr)), line("mAP", choice.rows.map((r) => r.map))]
      : []),
    line("score (mean)", choice.rows.map((r) => r.score), "dot"),
  ];
  const chosen = choice.rows.find((r) => r.scale === choice.scale)!;
  return {
    data: [
      ...data,
      {
        type: "scatter",
        mode: "markers",
        name: `chosen (${choice.scale})`,
        x: [chosen.scale],
        y: [chosen.score],
        marker: { size: 14, symbol: "star" },
      },
    ],
    layout: {
      title: { text: `${title} (trained at ${choice.trainedScale})` },
      height: 360,
      xaxis: { title: { text: "residual scale s: embedding [head(x), s·x]" }, type: "log" },
      yaxis: { title: { text: "validation metric" } },
      legend: { orientation: "h", y: -0.25 },
    },
  };
}

/** The label-free text pretraining's InfoNCE per epoch (`pretrainTextTowers`). */
export function textPretrainingFigure(result: TextPretrainingResult, title = "Label-free text pretraining"): Figure {
  return {
    data: [{
      type: "scatter",
      mode: "lines+markers",
      name: "InfoNCE",
      x: result.history.map((r) => r.epoch),
      y: result.history.map((r) => r.loss),
    }],
    layout: {
      title: { text: `${title} (${result.products} products)` },
      height: 320,
      xaxis: { title: { text: "epoch" }, dtick: 1 },
      yaxis: { title: { text: "name-description InfoNCE" } },
    },
  };
}

/**
 * The training notebook's per-epoch step: the epoch into the run record's curves (when recorded), then
 * the live training curve redrawn.
 */
export function liveTrainingEpochs(
  plot: LivePlot,
  title: string,
  run?: { epoch(row: Record<string, number>): Promise<void> },
): (record: EpochRecord, history: EpochRecord[]) => Promise<void> {
  return async (record, history) => {
    await run?.epoch(epochCurveRow(record));
    await plot.update(trainingCurveFigure(history, title));
  };
}
