/**
 * Plotly figures of the testing notebooks: ROC curves with the chosen operating points, a confusion
 * matrix, and grouped bars comparing models. Curves are thinned to a few hundred points so that the
 * report stays small.
 *
 * Every per-model trace takes its colour from `modelColor`, so a model has the same colour in every
 * figure and in the report. Colours come from the Okabe-Ito colour-blind-safe palette.
 *
 * @module
 */
import type { Figure } from "../notebook/display.ts";
import type { ConfusionMatrix, RocCurve } from "./pair_metrics.ts";
import type { ModelMetrics } from "./flows.ts";
import { rankingMetricLabel } from "./ranking.ts";

/** Indices of at most `maxPoints` points of a curve, always keeping the first and the last. */
export function thinIndices(length: number, maxPoints = 400): number[] {
  if (length <= maxPoints) return Array.from({ length }, (_, i) => i);
  const step = (length - 1) / (maxPoints - 1);
  return [...new Set(Array.from({ length: maxPoints }, (_, i) => Math.round(i * step)))];
}

// ---------------------------------------------------------------------------------------------
// Colours

/**
 * Fixed colours of the models the notebooks compare (Okabe-Ito blue, vermillion, bluish green, black for
 * the lexical baseline). Keys are lower-case model names, see `modelKey`.
 */
export const KNOWN_MODEL_COLORS: Readonly<Record<string, string>> = {
  "siameseruclip": "#0072B2",
  "sbert zero-shot": "#D55E00",
  "raw tower features": "#009E73",
  "tf-idf cosine": "#000000",
};

/**
 * The rest of the Okabe-Ito palette (orange, sky blue, reddish purple), for models not in
 * `KNOWN_MODEL_COLORS`. Okabe-Ito yellow is left out: it is unreadable on a white background.
 */
export const OTHER_MODEL_COLORS: readonly string[] = ["#E69F00", "#56B4E9", "#CC79A7"];

/** A split named in parentheses after a model name, e.g. "SiameseRuCLIP (validation)". */
const SPLIT_SUFFIX = /\s*\((?:validation|val|test|train|training)\)\s*$/i;

/** The model a trace belongs to: its name without a split suffix, trimmed and lower-cased. */
export function modelKey(name: string): string {
  return name.replace(SPLIT_SUFFIX, "").trim().toLowerCase();
}

/** 32-bit FNV-1a hash of a string (stable across runs and platforms). */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/**
 * The colour of a model in every figure: a fixed colour for the known models, otherwise one of
 * `OTHER_MODEL_COLORS` picked by a hash of the name. A split suffix ("(validation)", "(test)") does
 * not change the colour.
 */
export function modelColor(name: string): string {
  const key = modelKey(name);
  return KNOWN_MODEL_COLORS[key] ?? OTHER_MODEL_COLORS[fnv1a(key) % OTHER_MODEL_COLORS.length];
}

/** `#rrggbb` or `rgb(r, g, b)` as 0..255 channels. */
export function parseColor(color: string): [number, number, number] {
  const hex = /^#([0-9a-f]{6})$/i.exec(color.trim());
  if (hex) {
    const v = parseInt(hex[1], 16);
    return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
  }
  const rgb = /^rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)/i.exec(color.trim());
  if (rgb) return [Number(rgb[1]), Number(rgb[2]), Number(rgb[3])];
  throw new Error(`parseColor: unsupported colour ${JSON.stringify(color)}`);
}

/** 0..255 channels as `#rrggbb`. */
function toHex(rgb: readonly number[]): string {
  return "#" + rgb.map((c) => Math.round(Math.min(255, Math.max(0, c))).toString(16).padStart(2, "0")).join("");
}

/** WCAG relative luminance of a colour: 0 for black, 1 for white. */
export function relativeLuminance(color: string): number {
  const linear = parseColor(color).map((c) => {
    const s = c / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2];
}

/** WCAG contrast ratio of two colours (1 to 21). */
export function contrastRatio(a: string, b: string): number {
  const [hi, lo] = [relativeLuminance(a), relativeLuminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

/** Light and dark text colours for labels drawn on coloured cells. */
export const LIGHT_TEXT = "#ffffff";
/** See `LIGHT_TEXT`. */
export const DARK_TEXT = "#1a1a1a";

/** `LIGHT_TEXT` or `DARK_TEXT`, whichever contrasts more with `background`. */
export function contrastingTextColor(background: string): string {
  return contrastRatio(background, LIGHT_TEXT) >= contrastRatio(background, DARK_TEXT) ? LIGHT_TEXT : DARK_TEXT;
}

/** A plotly colorscale: stops in [0, 1], ascending, with a colour each. */
export type Colorscale = readonly (readonly [number, string])[];

/** The colour a colorscale gives to a position `t` in [0, 1] (linear in RGB between stops, as plotly does). */
export function colorAt(scale: Colorscale, t: number): string {
  const x = Math.min(1, Math.max(0, t));
  for (let i = 1; i < scale.length; i++) {
    const [p1, c1] = scale[i];
    if (x > p1) continue;
    const [p0, c0] = scale[i - 1];
    const f = p1 === p0 ? 1 : (x - p0) / (p1 - p0);
    const a = parseColor(c0);
    const b = parseColor(c1);
    return toHex(a.map((v, k) => v + (b[k] - v) * f));
  }
  return toHex(parseColor(scale[scale.length - 1][1]));
}

/**
 * The sequential scale of confusion matrices, light (0) to dark (the largest count): ColorBrewer
 * "Blues" with explicit stops. Plotly's named "Blues" runs the other way (dark at 0) and would need
 * `reversescale`, so an explicit scale leaves no ambiguity.
 */
export const COUNT_COLORSCALE: Colorscale = [
  "#f7fbff",
  "#deebf7",
  "#c6dbef",
  "#9ecae1",
  "#6baed6",
  "#4292c6",
  "#2171b5",
  "#08519c",
  "#08306b",
].map((color, i, all) => [i / (all.length - 1), color] as const);

/** Escapes the characters plotly's pseudo-HTML text would interpret. */
function plotlyText(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

// ---------------------------------------------------------------------------------------------
// ROC

/** One ROC curve to draw, with an optional marked operating point. */
export interface RocEntry {
  name: string;
  roc: RocCurve;
  /** The model whose colour the curve takes; default: `name` (a split suffix is ignored by `modelColor`). */
  model?: string;
  point?: { fpr: number; tpr: number; label: string };
}

/** Line dashes and marker symbols of a model's first, second, ... curve in one figure. */
const DASHES = ["solid", "dash", "dot", "dashdot"] as const;
const SYMBOLS = ["circle", "diamond", "square", "triangle-up"] as const;

/** Fixed geometry of the ROC figure, so that label positions can be computed in pixels. */
export const ROC_LAYOUT = {
  height: 480,
  margin: { t: 60, b: 60, l: 60, r: 20 },
  yRange: [0, 1.02] as const,
  /** Label font size and padding; a label row is `fontSize * 1.3 + 2 * (borderpad + borderwidth)` pixels. */
  labelFont: 11,
  labelBorderpad: 3,
  labelBorderwidth: 1,
  /** Labels stack upwards from this TPR... */
  labelBottom: 0.03,
  /** ...and, if they fit, stay below this one (the lower-right triangle, where ROC curves rarely go). */
  labelTop: 0.5,
  /** The right end of every label, in FPR units. */
  labelRight: 0.98,
} as const;

/** Height in pixels of one label box of the ROC figure, plus a 2 px gap. */
export function rocLabelRowPx(): number {
  const { labelFont, labelBorderpad, labelBorderwidth } = ROC_LAYOUT;
  return Math.ceil(labelFont * 1.3 + 2 * (labelBorderpad + labelBorderwidth)) + 2;
}

/** The figure height that gives `labels` stacked labels room between `labelBottom` and `labelTop`. */
export function rocFigureHeight(labels: number): number {
  const { height, margin, yRange, labelBottom, labelTop } = ROC_LAYOUT;
  const span = yRange[1] - yRange[0];
  const neededPlotPx = Math.ceil(((labels - 1) * rocLabelRowPx() * span) / (labelTop - labelBottom));
  return Math.max(height, neededPlotPx + margin.t + margin.b);
}

/**
 * Label rows for points at heights `ys`: the lowest point gets the lowest row, and consecutive rows
 * are `step` apart, so no two labels overlap however close the points are. Returns one row height
 * per point, in the order given.
 */
export function stackedLabelRows(ys: readonly number[], bottom: number, step: number): number[] {
  const order = ys.map((y, i) => ({ y, i })).sort((a, b) => a.y - b.y || a.i - b.i);
  const rows = new Array<number>(ys.length);
  order.forEach(({ i }, rank) => rows[i] = bottom + rank * step);
  return rows;
}

/** A marked operating point as it is drawn: where, in which colour, with which text. */
interface OperatingPoint {
  fpr: number;
  tpr: number;
  color: string;
  text: string;
}

/** Plotly annotations labelling operating points in a stacked column, each with an arrow to its point. */
function operatingPointAnnotations(points: readonly OperatingPoint[], height: number): Record<string, unknown>[] {
  const { margin, yRange, labelBottom, labelRight, labelFont, labelBorderpad, labelBorderwidth } = ROC_LAYOUT;
  const unitsPerPx = (yRange[1] - yRange[0]) / (height - margin.t - margin.b);
  const rows = stackedLabelRows(points.map((p) => p.tpr), labelBottom, rocLabelRowPx() * unitsPerPx);
  return points.map((p, i) => ({
    x: p.fpr,
    y: p.tpr,
    xref: "x",
    yref: "y",
    axref: "x",
    ayref: "y",
    ax: labelRight,
    ay: rows[i],
    xanchor: "right",
    yanchor: "middle",
    text: plotlyText(p.text),
    showarrow: true,
    arrowhead: 0,
    arrowwidth: 1,
    arrowcolor: p.color,
    standoff: 4,
    font: { size: labelFont, color: p.color },
    bgcolor: "rgba(255,255,255,0.85)",
    bordercolor: p.color,
    borderwidth: labelBorderwidth,
    borderpad: labelBorderpad,
  }));
}

/** How many curves of the same model came before each entry (0 for a model's first curve). */
function occurrenceIndices(models: readonly string[]): number[] {
  const seen = new Map<string, number>();
  return models.map((m) => {
    const n = seen.get(m) ?? 0;
    seen.set(m, n + 1);
    return n;
  });
}

/**
 * ROC curves (FPR on x, TPR on y) in their models' colours, with the chosen operating points marked
 * and the chance diagonal. A model's second curve (e.g. test after validation) is dashed. The points'
 * labels stand in a column in the lower right with an arrow to their point, one row each, so close
 * points never get overlapping labels; hovering a point shows its label too.
 */
export function rocFigure(entries: readonly RocEntry[], title: string): Figure {
  const models = entries.map((e) => modelKey(e.model ?? e.name));
  const occurrence = occurrenceIndices(models);
  const data: Record<string, unknown>[] = [];
  const points: OperatingPoint[] = [];
  entries.forEach((entry, i) => {
    const color = modelColor(entry.model ?? entry.name);
    const keep = thinIndices(entry.roc.fpr.length);
    data.push({
      type: "scatter",
      mode: "lines",
      name: entry.name,
      legendgroup: entry.name,
      x: keep.map((k) => entry.roc.fpr[k]),
      y: keep.map((k) => entry.roc.tpr[k]),
      line: { color, dash: DASHES[occurrence[i] % DASHES.length] },
    });
    if (!entry.point) return;
    const text = `${entry.name}: ${entry.point.label}`;
    points.push({ fpr: entry.point.fpr, tpr: entry.point.tpr, color, text });
    data.push({
      type: "scatter",
      mode: "markers",
      name: text,
      legendgroup: entry.name,
      showlegend: false,
      x: [entry.point.fpr],
      y: [entry.point.tpr],
      hovertemplate: `${plotlyText(text)}<br>FPR %{x:.4f}, TPR %{y:.4f}<extra></extra>`,
      marker: { size: 10, color, symbol: SYMBOLS[occurrence[i] % SYMBOLS.length], line: { color: "#fff", width: 1 } },
    });
  });
  data.push({
    type: "scatter",
    mode: "lines",
    name: "chance",
    x: [0, 1],
    y: [0, 1],
    line: { dash: "dot", color: "#999" },
  });
  const height = rocFigureHeight(points.length);
  return {
    data,
    layout: {
      title: { text: title },
      xaxis: { title: { text: "false positive rate" }, range: [0, 1] },
      yaxis: { title: { text: "true positive rate" }, range: [...ROC_LAYOUT.yRange] },
      height,
      margin: { ...ROC_LAYOUT.margin },
      annotations: operatingPointAnnotations(points, height),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Confusion matrix

/** The classes of the confusion matrix, in row/column order. */
const CLASSES = ["same", "different"] as const;

/** A cell's text: its count and its share of the row, e.g. `412<br>(93.2% of true same)`. */
export function confusionCellText(count: number, rowTotal: number, rowClass: string): string {
  if (rowTotal <= 0) return `${count}<br>(no true ${rowClass} pairs)`;
  return `${count}<br>(${(100 * count / rowTotal).toFixed(1)}% of true ${rowClass})`;
}

/** The counts of a confusion matrix as rows (true same, true different) by columns (predicted same, different). */
export function confusionGrid(confusion: ConfusionMatrix): number[][] {
  return [[confusion.tp, confusion.fn], [confusion.fp, confusion.tn]];
}

/**
 * A 2x2 confusion matrix heatmap (rows: true class, columns: predicted class) on a light-to-dark
 * scale (darkest = largest count) with a colour bar. Each cell shows its count and its share of the
 * row in a colour that contrasts with the cell.
 */
export function confusionFigure(confusion: ConfusionMatrix, title: string): Figure {
  const z = confusionGrid(confusion);
  const zmax = Math.max(1, ...z.flat());
  const annotations = z.flatMap((row, r) => {
    const total = row[0] + row[1];
    // On category axes an annotation's x/y are the categories' serial numbers.
    return row.map((count, c) => ({
      x: c,
      y: r,
      xref: "x",
      yref: "y",
      text: confusionCellText(count, total, CLASSES[r]),
      showarrow: false,
      font: { size: 13, color: contrastingTextColor(colorAt(COUNT_COLORSCALE, count / zmax)) },
    }));
  });
  return {
    data: [{
      type: "heatmap",
      z,
      x: [...CLASSES],
      y: [...CLASSES],
      zmin: 0,
      zmax,
      colorscale: COUNT_COLORSCALE.map(([p, color]) => [p, color]),
      reversescale: false,
      showscale: true,
      colorbar: { title: { text: "pairs" } },
      hovertemplate: "true %{y}, predicted %{x}: %{z} pairs<extra></extra>",
    }],
    layout: {
      title: { text: title },
      xaxis: { title: { text: "predicted" } },
      yaxis: { title: { text: "true" }, autorange: "reversed" },
      annotations,
      height: 380,
      width: 540,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Comparison bars

/** A metric value for a bar: null where undefined or NaN. */
function barValue(value: number | null | undefined): number | null {
  return value === undefined || value === null || Number.isNaN(value) ? null : value;
}

/** Grouped bars: one group per metric, one bar per model, in the model's colour. */
export function comparisonFigure(models: readonly ModelMetrics[], metrics: readonly string[], title: string): Figure {
  return {
    data: models.map((m) => ({
      type: "bar",
      name: m.model,
      x: metrics.map(rankingMetricLabel),
      y: metrics.map((key) => barValue(m.metrics[key])),
      marker: { color: modelColor(m.model) },
    })),
    layout: { title: { text: title }, barmode: "group", yaxis: { range: [0, 1] }, height: 420 },
  };
}
