/** Plots of product embeddings. */
import type { Figure } from "../notebook/display.ts";
import { pca2d } from "./projection.ts";

/** A 2-D PCA scatter of embeddings, one trace per group (e.g. category), hover text per point. */
export function projectionFigure(
  vectors: Float32Array,
  dim: number,
  groups: readonly string[],
  hover: readonly string[],
  title: string,
): Figure {
  const coords = pca2d(vectors, dim);
  const byGroup = new Map<string, number[]>();
  groups.forEach((g, i) => byGroup.set(g || "(none)", [...(byGroup.get(g || "(none)") ?? []), i]));
  return {
    data: [...byGroup].map(([group, rows]) => ({
      type: "scattergl",
      mode: "markers",
      name: group,
      x: rows.map((i) => coords[i * 2]),
      y: rows.map((i) => coords[i * 2 + 1]),
      text: rows.map((i) => hover[i]),
      marker: { size: 5, opacity: 0.7 },
    })),
    layout: {
      title: { text: title },
      height: 460,
      xaxis: { title: { text: "PC 1" } },
      yaxis: { title: { text: "PC 2" } },
    },
  };
}
