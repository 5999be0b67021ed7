/**
 * A benchmark's reports: the summary over seeds (mean and spread per method and test split), the markdown
 * tables (with the published anchors, each on the test split it was measured on), and a self-contained HTML
 * page with the figure; `writeBenchmarkReports` writes `reports/benchmarks/<name>.json`, `.md` and `.html`.
 *
 * @module
 */
import { join } from "node:path";
import { htmlTable } from "../eval/report.ts";
import { writeFileAtomic, writeJsonAtomic } from "../fs.ts";
import { escapeHtml, type Figure, figureHtml, plotlyJs } from "../notebook/display.ts";
import { reportsDir } from "../paths.ts";
import type { BenchmarkResult, BenchmarkRow } from "./benchmark.ts";

/** The metrics summarised, with their labels. */
export const BENCHMARK_METRICS = [
  { key: "f1", label: "F1" },
  { key: "averagePrecision", label: "AP" },
  { key: "rocAuc", label: "ROC AUC" },
  { key: "mrr", label: "MRR" },
  { key: "map", label: "mAP" },
] as const;
export type BenchmarkMetric = typeof BENCHMARK_METRICS[number]["key"];

/** Mean, sample standard deviation and count of one metric over seeds. */
export interface SummaryCell {
  mean: number;
  sd: number;
  n: number;
}

/** One method's summary: per test split, per metric. */
export interface MethodSummary {
  method: string;
  kind: BenchmarkRow["kind"];
  splits: Record<string, Record<BenchmarkMetric, SummaryCell>>;
}

const KIND_ORDER: Record<BenchmarkRow["kind"], number> = { trained: 0, classifier: 1, baseline: 2 };

function cellOf(values: number[]): SummaryCell {
  const finite = values.filter(Number.isFinite);
  const n = finite.length;
  if (n === 0) return { mean: NaN, sd: NaN, n: 0 };
  const mean = finite.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(finite.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, sd, n };
}

/** Each method's mean and spread over the seeds, trained first, then classifiers, then baselines. */
export function benchmarkSummary(result: Pick<BenchmarkResult, "rows">): MethodSummary[] {
  const methods = [...new Set(result.rows.map((r) => r.method))];
  return methods.map((method) => {
    const rows = result.rows.filter((r) => r.method === method);
    const splits: MethodSummary["splits"] = {};
    for (const split of [...new Set(rows.map((r) => r.split))]) {
      const at = rows.filter((r) => r.split === split);
      splits[split] = Object.fromEntries(
        BENCHMARK_METRICS.map(({ key }) => [key, cellOf(at.map((r) => r[key]))]),
      ) as Record<BenchmarkMetric, SummaryCell>;
    }
    return { method, kind: rows[0].kind, splits };
  }).sort((a, b) => KIND_ORDER[a.kind] - KIND_ORDER[b.kind]);
}

/** A summary cell as text: `0.512`, or `0.512 ± 0.020` over several seeds; `—` when missing. */
export function formatCell(cell: SummaryCell | undefined, digits = 3): string {
  if (!cell || cell.n === 0) return "—";
  return cell.n > 1 ? `${cell.mean.toFixed(digits)} ± ${cell.sd.toFixed(digits)}` : cell.mean.toFixed(digits);
}

const fixed = (value: number | undefined, digits = 3) =>
  value !== undefined && Number.isFinite(value) ? value.toFixed(digits) : "—";

/**
 * The F1 table: every method of this run, then the published anchors (their sources numbered below the
 * table), one column per test split.
 */
export function f1Table(result: BenchmarkResult): string[] {
  const splits = result.splits.map((s) => s.split);
  const lines = [`| method | ${splits.join(" | ")} | source |`, `|---|${splits.map(() => "---:").join("|")}|---|`];
  for (const m of benchmarkSummary(result)) {
    const cells = splits.map((s) => formatCell(m.splits[s]?.f1));
    lines.push(`| ${m.method} | ${cells.join(" | ")} | this run (${m.kind}) |`);
  }
  const sources = [...new Set(result.anchors.map((a) => a.source))];
  for (const method of [...new Set(result.anchors.map((a) => a.method))]) {
    const anchors = result.anchors.filter((a) => a.method === method);
    const cells = splits.map((s) => fixed(anchors.find((a) => a.split === s)?.f1));
    lines.push(`| ${method} | ${cells.join(" | ")} | published [${sources.indexOf(anchors[0].source) + 1}] |`);
  }
  if (sources.length) {
    lines.push(
      "",
      ...sources.map((source, i) => `[${i + 1}] ${source}${i < sources.length - 1 ? "  " : ""}`),
    );
  }
  return lines;
}

/** Pair AP, MRR and mAP per method and test split. */
export function rankingTable(result: BenchmarkResult): string[] {
  const splits = result.splits.map((s) => s.split);
  const lines = [
    `| method | ${splits.map((s) => `${s}: AP / MRR / mAP`).join(" | ")} |`,
    `|---|${splits.map(() => "---:").join("|")}|`,
  ];
  for (const m of benchmarkSummary(result)) {
    const three = (s: string) =>
      (["averagePrecision", "mrr", "map"] as const).map((k) => formatCell(m.splits[s]?.[k])).join(" / ");
    lines.push(`| ${m.method} | ${splits.map(three).join(" | ")} |`);
  }
  return lines;
}

/** The trials: configuration, status, the validation choice. */
export function trialsTable(result: BenchmarkResult): string[] {
  const lines = [
    "| seed | trial | status | mode | loss | lr | margin | batch | epochs | residual | best epoch | val F1 | seconds |",
    "|---:|---|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|",
  ];
  for (const t of result.trials) {
    const chosen = result.chosen.some((c) => c.seed === t.seed && c.trial === t.name) ? " (chosen)" : "";
    const status = t.status === "failed" ? `failed: ${(t.error ?? "").split("\n")[0]}` : t.reused ? "read back" : "ran";
    const residual = t.residualScale
      ? `${t.residualScale.trained} -> ${t.residualScale.chosen}`
      : t.headResidual === null
      ? "—"
      : String(t.headResidual);
    const c = t.config;
    lines.push(
      `| ${t.seed} | ${t.name}${chosen} | ${status} | ${c.mode} | ${c.loss} | ${c.learningRate} | ${c.margin} | ` +
        `${c.batchSize} | ${c.epochs} | ${residual} | ${t.bestEpoch ?? "—"} | ${fixed(t.validationF1)} | ` +
        `${t.seconds === undefined ? "—" : t.seconds.toFixed(0)} |`,
    );
  }
  return lines;
}

/** The command-line flags that pick these seeds (the default is one seed, 42). */
function seedFlags(seeds: readonly number[]): string {
  return (seeds.length > 1 ? ` --seeds ${seeds.length}` : "") + (seeds[0] !== 42 ? ` --seed ${seeds[0]}` : "");
}

/** One line on how the numbers were made: seeds, time, rule, the command. */
export function provenanceLine(result: BenchmarkResult): string {
  const seeds = result.seeds.length > 1 ? `mean ± sd over seeds ${result.seeds.join(", ")}` : `seed ${result.seeds[0]}`;
  const reused = result.trials.filter((t) => t.reused);
  const time = reused.length
    ? `${result.seconds.toFixed(0)} s, with ${reused.length} of ${result.trials.length} trials read back from an ` +
      `earlier run (they took ${reused.reduce((sum, t) => sum + (t.seconds ?? 0), 0).toFixed(0)} s)`
    : `${result.seconds.toFixed(0)} s in all`;
  return `${result.quick ? "**QUICK smoke run, not a result.** " : ""}${seeds}; ${time}; threshold rule: ` +
    `${result.rule}. Written by \`deno task benchmark --dataset ${result.name}${seedFlags(result.seeds)}` +
    `${result.quick ? " --quick" : ""}\`.`;
}

/** The report as markdown. */
export function renderBenchmarkMarkdown(result: BenchmarkResult): string {
  const lines: string[] = [
    `# Benchmark: ${result.title} (\`${result.dataset}\`)`,
    "",
    provenanceLine(result),
    "",
    "Test splits: " +
    result.splits.map((s) => `\`${s.split}\` (${s.description}; ${s.pairs} pairs, ${s.positives} positive)`).join(
      ", ",
    ) + ".",
    "",
    "## F1 at the validation-chosen threshold",
    "",
    ...f1Table(result),
    "",
    "## AP, MRR and mAP",
    "",
    ...rankingTable(result),
    "",
    "## Trials (validation only chooses)",
    "",
    ...trialsTable(result),
    "",
    "## Every row",
    "",
    "| method | seed | test split | pairs | precision | recall | F1 | ROC AUC | AP | MRR | mAP | val F1 |",
    "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of result.rows) {
    lines.push(
      `| ${r.method} | ${r.seed ?? "—"} | ${r.split} | ${r.pairs} | ${fixed(r.precision)} | ${fixed(r.recall)} | ` +
        `${fixed(r.f1)} | ${fixed(r.rocAuc)} | ${fixed(r.averagePrecision)} | ${fixed(r.mrr)} | ${fixed(r.map)} | ` +
        `${fixed(r.validationF1)} |`,
    );
  }
  lines.push("", "## Notes", "", ...result.notes.map((n) => `- ${n}`), "");
  return lines.join("\n");
}

/** The figure: F1 per method and test split (mean, with the spread over seeds), the published anchors beside. */
export function benchmarkFigure(result: BenchmarkResult): Figure {
  const summary = benchmarkSummary(result);
  const methods = [...summary.map((m) => m.method), ...new Set(result.anchors.map((a) => `${a.method} (published)`))];
  return {
    data: result.splits.map((s) => ({
      type: "bar",
      orientation: "h",
      name: s.split,
      y: methods,
      x: methods.map((method) => {
        const run = summary.find((m) => m.method === method);
        if (run) return run.splits[s.split]?.f1.mean ?? null;
        return result.anchors.find((a) => `${a.method} (published)` === method && a.split === s.split)?.f1 ?? null;
      }),
      error_x: {
        type: "data",
        array: methods.map((method) => summary.find((m) => m.method === method)?.splits[s.split]?.f1.sd ?? 0),
        visible: result.seeds.length > 1,
      },
    })),
    layout: {
      title: { text: `F1 at the validation-chosen threshold: ${result.title}` },
      barmode: "group",
      height: 160 + 26 * methods.length * Math.max(1, result.splits.length / 1.5),
      margin: { l: 320 },
      xaxis: { title: { text: "F1" }, range: [0, 1] },
      yaxis: { autorange: "reversed" },
    },
  };
}

/** The self-contained HTML page (plotly.js inlined). */
export function renderBenchmarkHtml(result: BenchmarkResult): string {
  const summary = benchmarkSummary(result);
  const table = (metric: BenchmarkMetric) =>
    summary.map((m) => ({
      method: m.method,
      kind: m.kind,
      ...Object.fromEntries(result.splits.map((s) => [s.split, formatCell(m.splits[s.split]?.[metric])])),
    }));
  const trials = result.trials.map((t) => ({
    seed: t.seed,
    trial: t.name,
    status: t.status === "failed" ? `failed: ${(t.error ?? "").split("\n")[0]}` : t.reused ? "read back" : "ran",
    mode: t.config.mode,
    loss: t.config.loss,
    epochs: t.config.epochs,
    best_epoch: t.bestEpoch ?? "",
    val_f1: t.validationF1 ?? "",
    seconds: t.seconds ?? "",
  }));
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Benchmark: ${
    escapeHtml(result.title)
  }</title>
<style>body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:0.8em 0;font-size:13px}caption{text-align:left;font-weight:bold;padding:4px 0}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}td:first-child,th:first-child{text-align:left}.note{color:#555}</style>
<script type="text/javascript">${plotlyJs()}</script></head><body>
<h1>Benchmark: ${escapeHtml(result.title)}</h1>
<p class="note">dataset <code>${escapeHtml(result.dataset)}</code> · seeds ${result.seeds.join(", ")} · ${
    escapeHtml(result.rule)
  }${result.quick ? " · <b>quick smoke run, not a result</b>" : ""}</p>
${figureHtml(benchmarkFigure(result), { includePlotly: false })}
${htmlTable(table("f1"), "F1 at the validation-chosen threshold")}
${htmlTable(result.anchors.map((a) => ({ ...a })), "published anchors (each on the test split it was measured on)")}
${htmlTable(table("averagePrecision"), "pair AP")}
${htmlTable(table("mrr"), "MRR")}
${htmlTable(table("map"), "mAP")}
${htmlTable(trials, "trials (validation only chooses)")}
<ul>${result.notes.map((n) => `<li class="note">${escapeHtml(n)}</li>`).join("")}</ul>
</body></html>
`;
}

/** The folder of the benchmark reports: `<reports>/benchmarks`. */
export function benchmarkReportsDir(root: string = reportsDir()): string {
  return join(root, "benchmarks");
}

/**
 * Writes `<name>.json`, `.md` and `.html` under `dir` (a quick run: `<name>-quick.*`, so a smoke run never
 * replaces a result); returns their paths.
 */
export async function writeBenchmarkReports(
  result: BenchmarkResult,
  dir: string = benchmarkReportsDir(),
): Promise<{ json: string; markdown: string; html: string }> {
  const stem = join(dir, `${result.name}${result.quick ? "-quick" : ""}`);
  const paths = { json: `${stem}.json`, markdown: `${stem}.md`, html: `${stem}.html` };
  await writeJsonAtomic(paths.json, result);
  await writeFileAtomic(paths.markdown, renderBenchmarkMarkdown(result));
  await writeFileAtomic(paths.html, renderBenchmarkHtml(result));
  return paths;
}
