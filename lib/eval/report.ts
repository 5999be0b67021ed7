/**
 * The evaluation report. Each testing notebook saves its results to `reports/results/<notebook>.json`
 * (`saveNotebookResult`); the last one collects whatever is there into a self-contained
 * `reports/report.html` (plotly.js embedded once, readable offline) and `reports/metrics.json` with
 * every headline number (`writeReport`). Any subset works: a missing notebook gets a section saying
 * which notebook to run.
 *
 * @module
 */
import { join } from "node:path";
import { reportsDir } from "../paths.ts";
import { writeFileAtomic, writeJsonAtomic } from "../fs.ts";
import { escapeHtml, type Figure, figureHtml, plotlyJs } from "../notebook/display.ts";
import { RANKING_METRIC_DEFINITIONS, rankingMetricKey, rankingMetricLabel } from "./ranking.ts";

/** A table saved with a notebook's results. */
export interface ResultTable {
  title: string;
  rows: Record<string, unknown>[];
}

/** What one testing notebook saves for the report. */
export interface NotebookResult {
  /** The notebook's file name without extension, e.g. "contrastive_test_embs_from-pairwise-rendered". */
  notebook: string;
  title: string;
  dataset: string;
  /** The split evaluated (normally "test"). */
  split: string;
  created: string;
  params: Record<string, unknown>;
  /** Headline numbers: model name -> metric -> value (null where undefined). */
  headline: Record<string, Record<string, number | null>>;
  tables: ResultTable[];
  figures: { title: string; figure: Figure }[];
  /** Self-contained HTML fragments (photo galleries, `lib/notebook/gallery.ts`), shown after the figures. */
  galleries?: { title: string; html: string }[];
  notes: string[];
}

/** The testing notebooks, in report order. */
export const TESTING_NOTEBOOKS: readonly { notebook: string; title: string }[] = [
  { notebook: "contrastive_test_embs_from-pairwise-rendered", title: "Rendered pairs: threshold chosen on validation" },
  { notebook: "contrastive_test_embs_from-pairwise-queries", title: "All query-candidate pairs and ranking" },
  { notebook: "contrastive_test_embs_from-source", title: "Top-k retrieval with the trained model" },
  {
    notebook: "contrastive_test_embs_from-source_ruclip-only",
    title: "Top-k retrieval: raw tower features and SBERT baselines",
  },
  {
    notebook: "clip_siamese_test",
    title: "Pair classifier: evidence of both records, with and without the Siamese features",
  },
  { notebook: "compare_runs", title: "Recorded runs compared" },
];

/**
 * The few numbers per notebook shown in the report's summary table (the rest stay in each section).
 * `{k}` stands for the notebook's top-k cut-off (`topKOf`), so the summary follows the run's `TOP_K`.
 */
export const SUMMARY_METRICS: Readonly<Record<string, readonly string[]>> = {
  "contrastive_test_embs_from-pairwise-rendered": [
    "test_f1",
    "test_precision",
    "test_recall",
    "test_fpr",
    "test_roc_auc",
  ],
  "contrastive_test_embs_from-pairwise-queries": ["precision", "tpr", "mrr", "map", "recall@10", "filtered_map"],
  "contrastive_test_embs_from-source": [
    "recall@{k}",
    "mrr@{k}",
    "map@{k}",
    "filtered_recall@{k}",
    "approximate_recall",
  ],
  "contrastive_test_embs_from-source_ruclip-only": ["recall@{k}", "mrr@{k}", "map@{k}"],
  "clip_siamese_test": ["test_f1", "test_roc_auc", "test_average_precision", "mrr", "map"],
};

/**
 * The top-k cut-off a notebook ran with: its `TOP_K` parameter, else the largest k of a `recall@k`
 * headline number, else undefined.
 */
export function topKOf(result: Pick<NotebookResult, "params" | "headline">): number | undefined {
  const param = result.params?.TOP_K;
  if (typeof param === "number" && Number.isInteger(param) && param > 0) return param;
  const ks = Object.values(result.headline).flatMap((metrics) =>
    Object.keys(metrics ?? {}).flatMap((key) => {
      const match = /^recall@(\d+)$/.exec(key);
      return match ? [Number(match[1])] : [];
    })
  );
  return ks.length ? Math.max(...ks) : undefined;
}

/** A notebook's `SUMMARY_METRICS` with `{k}` resolved; keys whose k is unknown are left out. */
export function summaryMetricKeys(result: Pick<NotebookResult, "notebook" | "params" | "headline">): string[] {
  const k = topKOf(result);
  return (SUMMARY_METRICS[result.notebook] ?? []).flatMap((key) => {
    if (!key.includes("{k}")) return [key];
    return k === undefined ? [] : [key.replaceAll("{k}", String(k))];
  });
}

/**
 * The summary table: one row per model, the `summaryMetricKeys` of every notebook found as
 * `<short notebook name>: <metric>` columns.
 */
export function summaryRows(found: readonly NotebookResult[]): Record<string, unknown>[] {
  const models = [...new Set(found.flatMap((r) => Object.keys(r.headline)))];
  return models.map((model) => {
    const row: Record<string, unknown> = { model };
    for (const result of found) {
      const short = result.notebook.replace(/^contrastive_test_embs_from-/, "");
      for (const key of summaryMetricKeys(result)) {
        row[`${short}: ${key}`] = result.headline[model]?.[key] ?? null;
      }
    }
    return row;
  });
}

/** "a", "a and b", "a, b and c". */
function listText(items: readonly string[]): string {
  return items.length <= 1 ? items.join("") : `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}

/** What the summary table covers, from the results themselves: notebooks, datasets, splits, models. */
export function summaryCaption(found: readonly NotebookResult[]): string {
  const datasets = [...new Set(found.map((r) => r.dataset))];
  const splits = [...new Set(found.map((r) => r.split))];
  const models = new Set(found.flatMap((r) => Object.keys(r.headline)));
  return `Headline numbers of ${found.length} notebook(s), ${models.size} model(s); ` +
    `dataset ${listText(datasets)}, ${splits.length === 1 ? "split" : "splits"} ${listText(splits)}`;
}

/** The caption of a notebook's headline table: its split and how many models it compares. */
export function headlineCaption(result: NotebookResult): string {
  const models = Object.keys(result.headline).length;
  return `Headline metrics: ${models} model(s), all on the ${result.split} split of ${result.dataset}`;
}

/** `reports/results/`. */
export function resultsDir(root: string = reportsDir()): string {
  return join(root, "results");
}

/** NaN and infinities become null so that the JSON is valid and says "undefined" plainly. */
function finiteOrNull(_key: string, value: unknown): unknown {
  return typeof value === "number" && !Number.isFinite(value) ? null : value;
}

/** Saves a notebook's results to `reports/results/<notebook>.json`; returns the path. */
export async function saveNotebookResult(
  result: Omit<NotebookResult, "created"> & { created?: string },
  root: string = reportsDir(),
): Promise<string> {
  if (!/^[\w.-]+$/.test(result.notebook)) {
    throw new Error(`saveNotebookResult: notebook name ${JSON.stringify(result.notebook)} is not a plain file name`);
  }
  const path = join(resultsDir(root), `${result.notebook}.json`);
  const full = { ...result, created: result.created ?? new Date().toISOString() };
  await writeFileAtomic(path, JSON.stringify(full, finiteOrNull, 1) + "\n");
  return path;
}

/** The saved results found, in `TESTING_NOTEBOOKS` order (then any others), and the notebooks missing. */
export interface CollectedResults {
  found: NotebookResult[];
  missing: { notebook: string; title: string }[];
  /** Files that could not be read, with the reason. */
  unreadable: { path: string; reason: string }[];
}

/** Reads every `reports/results/*.json`. */
export async function collectResults(root: string = reportsDir()): Promise<CollectedResults> {
  const dir = resultsDir(root);
  const byName = new Map<string, NotebookResult>();
  const unreadable: CollectedResults["unreadable"] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isFile || !entry.name.endsWith(".json")) continue;
      const path = join(dir, entry.name);
      try {
        const result = JSON.parse(await Deno.readTextFile(path)) as NotebookResult;
        if (typeof result.notebook !== "string" || typeof result.headline !== "object") {
          throw new Error("no notebook name or headline");
        }
        byName.set(result.notebook, result);
      } catch (error) {
        unreadable.push({ path, reason: (error as Error).message });
      }
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const known = TESTING_NOTEBOOKS.map((n) => n.notebook);
  const found = [
    ...known.filter((n) => byName.has(n)).map((n) => byName.get(n)!),
    ...[...byName.keys()].filter((n) => !known.includes(n)).sort().map((n) => byName.get(n)!),
  ];
  const missing = TESTING_NOTEBOOKS.filter((n) => !byName.has(n.notebook));
  return { found, missing, unreadable };
}

/** The content of `metrics.json`: every headline number by notebook and model, and what is missing. */
export interface MetricsFile {
  created: string;
  datasets: string[];
  notebooks: Record<
    string,
    { title: string; dataset: string; split: string; created: string; headline: NotebookResult["headline"] }
  >;
  missing: string[];
}

/** Builds `metrics.json`'s content from collected results. */
export function metricsFile(collected: CollectedResults, created = new Date().toISOString()): MetricsFile {
  return {
    created,
    datasets: [...new Set(collected.found.map((r) => r.dataset))],
    notebooks: Object.fromEntries(collected.found.map((r) => [r.notebook, {
      title: r.title,
      dataset: r.dataset,
      split: r.split,
      created: r.created,
      headline: r.headline,
    }])),
    missing: collected.missing.map((m) => m.notebook),
  };
}

function formatValue(value: unknown): string {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number") {
    if (Number.isInteger(value)) return String(value);
    return Math.abs(value) >= 1e4 || (Math.abs(value) < 1e-3 && value !== 0)
      ? value.toExponential(3)
      : value.toFixed(4);
  }
  if (typeof value === "object") return escapeHtml(JSON.stringify(value));
  return escapeHtml(String(value));
}

/** An HTML table of records (columns: the union of keys, in first-seen order). */
export function htmlTable(rows: readonly Record<string, unknown>[], caption?: string): string {
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  return `<table>${caption ? `<caption>${escapeHtml(caption)}</caption>` : ""}<thead><tr>${
    columns.map((c) => {
      const key = rankingMetricKey(c);
      const title = key ? ` title="${escapeHtml(`${c}: ${RANKING_METRIC_DEFINITIONS[key].definition}`)}"` : "";
      return `<th${title}>${escapeHtml(key ? rankingMetricLabel(c) : c)}</th>`;
    }).join("")
  }</tr></thead><tbody>${
    rows.map((row) => `<tr>${columns.map((c) => `<td>${formatValue(row[c])}</td>`).join("")}</tr>`).join("")
  }</tbody></table>`;
}

/** The headline table of a notebook: one row per model. */
export function headlineRows(result: NotebookResult): Record<string, unknown>[] {
  return Object.entries(result.headline).map(([model, metrics]) => ({ model, ...metrics }));
}

const STYLE = `body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:0.8em 0;font-size:13px}caption{text-align:left;font-weight:bold;padding:4px 0}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.missing{background:#fff4e0;border:1px solid #f0c070;padding:0.6em 1em}.note{color:#555}section{margin-bottom:2.5em}
.scroll{overflow-x:auto}`;

/** The definitions of the ranking metrics the report shows (full-list mAP/MRR vs their top-k variants). */
function rankingDefinitionsHtml(collected: CollectedResults): string {
  const names = collected.found.flatMap((r) => Object.values(r.headline).flatMap((m) => Object.keys(m)));
  const keys = [...new Set(names.map(rankingMetricKey).filter((k) => k !== undefined))];
  if (!keys.length) return "";
  const items = keys.map((k) =>
    `<li><b>${escapeHtml(RANKING_METRIC_DEFINITIONS[k].label)}</b>: ${
      escapeHtml(RANKING_METRIC_DEFINITIONS[k].definition)
    }</li>`
  );
  return `<details><summary>ranking metrics: definitions (the full-list mAP and MRR are not the top-k mAP@k and MRR@k)</summary><ul>${
    items.join("")
  }</ul></details>`;
}

/** The self-contained report (plotly.js inlined once in the head). */
export function reportHtml(collected: CollectedResults, created = new Date().toISOString()): string {
  const anyFigure = collected.found.some((r) => r.figures.length > 0);
  const sections = collected.found.map((r) => {
    const figures = r.figures.map((f) =>
      `<h4>${escapeHtml(f.title)}</h4>` + figureHtml(f.figure, { includePlotly: false })
    ).join("\n");
    const galleries = (r.galleries ?? []).map((g) => `<h4>${escapeHtml(g.title)}</h4>${g.html}`).join("\n");
    return `<section id="${escapeHtml(r.notebook)}"><h2>${escapeHtml(r.title)}</h2>
<p class="note">notebook <code>${escapeHtml(r.notebook)}</code> · dataset <b>${escapeHtml(r.dataset)}</b> · split <b>${
      escapeHtml(r.split)
    }</b> · run ${escapeHtml(r.created)}</p>
${Object.keys(r.headline).length ? `<div class="scroll">${htmlTable(headlineRows(r), headlineCaption(r))}</div>` : ""}
${r.notes.map((n) => `<p class="note">${escapeHtml(n)}</p>`).join("\n")}
${r.tables.map((t) => `<div class="scroll">${htmlTable(t.rows, t.title)}</div>`).join("\n")}
${figures}
${galleries}
<details><summary>parameters</summary>${htmlTable([r.params])}</details></section>`;
  });
  const missing = collected.missing.map((m) =>
    `<section><h2>${escapeHtml(m.title)}</h2><p class="missing">No results yet: run the notebook ` +
    `<code>notebooks/4_testing/${escapeHtml(m.notebook)}.ipynb</code> (it saves <code>reports/results/${
      escapeHtml(m.notebook)
    }.json</code>), then rebuild this report.</p></section>`
  );
  const unreadable = collected.unreadable.map((u) =>
    `<p class="missing">Could not read ${escapeHtml(u.path)}: ${escapeHtml(u.reason)}; re-run its notebook.</p>`
  );
  const contents = [...collected.found, ...collected.missing].map((r) =>
    `<li><a href="#${escapeHtml(r.notebook)}">${escapeHtml(r.title)}</a>${"headline" in r ? "" : " (missing)"}</li>`
  ).join("");
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>SiameseRuCLIP evaluation report</title>
<style>${STYLE}</style>${anyFigure ? `<script type="text/javascript">${plotlyJs()}</script>` : ""}</head><body>
<h1>SiameseRuCLIP evaluation report</h1>
<p class="note">Built ${escapeHtml(created)} from reports/results/: ${collected.found.length} notebook result(s) found,
${collected.missing.length} of the ${TESTING_NOTEBOOKS.length} testing notebooks missing. Scores are -distance; where a notebook uses a threshold, it is chosen on validation pairs and
applied unchanged to the evaluated split (named in each section). Every number here is also in metrics.json.</p>
<ul>${contents}</ul>
${rankingDefinitionsHtml(collected)}
${
    collected.found.length
      ? `<h2>Summary</h2><div class="scroll">${
        htmlTable(summaryRows(collected.found), summaryCaption(collected.found))
      }</div>`
      : ""
  }
${unreadable.join("\n")}
${sections.join("\n")}
${missing.join("\n")}
</body></html>
`;
}

/** Paths written by `writeReport` and what went into them. */
export interface WrittenReport {
  html: string;
  metrics: string;
  found: string[];
  missing: string[];
}

/** Collects the saved results and writes `report.html` and `metrics.json` under `root`. */
export async function writeReport(root: string = reportsDir()): Promise<WrittenReport> {
  const collected = await collectResults(root);
  const created = new Date().toISOString();
  const html = join(root, "report.html");
  const metrics = join(root, "metrics.json");
  await writeFileAtomic(html, reportHtml(collected, created));
  await writeJsonAtomic(metrics, JSON.parse(JSON.stringify(metricsFile(collected, created), finiteOrNull)));
  return {
    html,
    metrics,
    found: collected.found.map((r) => r.notebook),
    missing: collected.missing.map((m) => m.notebook),
  };
}
