/**
 * Results in the docs come from the benchmark reports, never typed: a markdown file marks where a table goes,
 *
 *   <!-- benchmark wdc-products-80cc-small f1 -->
 *   (generated; replaced on every render)
 *   <!-- /benchmark -->
 *
 * and `renderResultBlocks` fills each block from `reports/benchmarks/<name>.json` (tables: `f1`, `ranking`,
 * `trials`, `provenance`). `deno task results` renders README.md and docs/results.md; a test checks that the
 * committed docs equal the rendering of the committed reports.
 *
 * @module
 */
import { join } from "node:path";
import type { BenchmarkResult } from "./benchmark.ts";
import { f1Table, provenanceLine, rankingTable, trialsTable } from "./benchmark_report.ts";

/** The tables a block may name. */
export const RESULT_TABLES: Record<string, (result: BenchmarkResult) => string[]> = {
  f1: f1Table,
  ranking: rankingTable,
  trials: trialsTable,
  provenance: (result) => [provenanceLine(result)],
};

const BLOCK = /<!-- benchmark (\S+) (\S+) -->\n[\s\S]*?<!-- \/benchmark -->/g;

/** The benchmark reports a document's blocks name. */
export function resultBlockNames(markdown: string): string[] {
  return [...new Set([...markdown.matchAll(BLOCK)].map((m) => m[1]))];
}

/** Fills every block of `markdown` from the reports `load` returns; `where` names the document in errors. */
export function renderResultBlocks(
  markdown: string,
  load: (name: string) => BenchmarkResult,
  where: string,
): string {
  const opened = (markdown.match(/<!-- benchmark \S+ \S+ -->/g) ?? []).length;
  const closed = (markdown.match(/<!-- \/benchmark -->/g) ?? []).length;
  if (opened !== closed) {
    throw new Error(
      `${where}: ${opened} "<!-- benchmark <name> <table> -->" markers but ${closed} "<!-- /benchmark -->"`,
    );
  }
  return markdown.replace(BLOCK, (_block, name: string, table: string) => {
    const render = RESULT_TABLES[table];
    if (!render) {
      throw new Error(
        `${where}: block "${name} ${table}": unknown table "${table}"; use ${Object.keys(RESULT_TABLES).join(", ")}`,
      );
    }
    return [`<!-- benchmark ${name} ${table} -->`, ...render(load(name)), "<!-- /benchmark -->"].join("\n");
  });
}

/** Reads `<dir>/<name>.json`, naming the command that writes it when it is missing. */
export function benchmarkReportLoader(dir: string): (name: string) => BenchmarkResult {
  const cache = new Map<string, BenchmarkResult>();
  return (name) => {
    if (!cache.has(name)) {
      const path = join(dir, `${name}.json`);
      let text: string;
      try {
        text = Deno.readTextFileSync(path);
      } catch {
        throw new Error(`${path} is missing: run deno task benchmark --dataset ${name} first`);
      }
      cache.set(name, JSON.parse(text) as BenchmarkResult);
    }
    return cache.get(name)!;
  };
}
