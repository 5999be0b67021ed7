/**
 * `deno task results`: fills the result tables of README.md and docs/results.md from the benchmark reports
 * (reports/benchmarks/<name>.json, written by `deno task benchmark`); see lib/experiment/results_doc.ts.
 *
 *   deno task results            # rewrite the blocks that changed
 *   deno task results --check    # exit 1 when a document is not what the reports render
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { benchmarkReportsDir } from "../lib/experiment/benchmark_report.ts";
import { benchmarkReportLoader, renderResultBlocks } from "../lib/experiment/results_doc.ts";
import { writeFileAtomic } from "../lib/fs.ts";
import { projectRoot } from "../lib/paths.ts";

/** The documents holding result blocks. */
export const RESULT_DOCUMENTS = ["README.md", "docs/results.md"];

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, options: { check: { type: "boolean", default: false } } });
  const load = benchmarkReportLoader(benchmarkReportsDir());
  let stale = 0;
  for (const doc of RESULT_DOCUMENTS) {
    const path = join(projectRoot, doc);
    const text = await Deno.readTextFile(path);
    const rendered = renderResultBlocks(text, load, doc);
    if (rendered === text) {
      console.log(`${doc}: up to date`);
    } else if (values.check) {
      stale++;
      console.log(`${doc}: differs from the reports (run deno task results)`);
    } else {
      await writeFileAtomic(path, rendered);
      console.log(`${doc}: tables rendered from the reports`);
    }
  }
  if (stale) Deno.exit(1);
}
