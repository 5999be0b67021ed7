/**
 * `deno task sweep <notebook> PARAM=v1,v2 [PARAM2=...] [--random N --seed S] [--preset demo|real|test] [--name NAME]`:
 * one run of the notebook per point of the grid (every combination, or N drawn with the seed), each through the
 * batch runner (`deno task notebooks`), so each point leaves its run record and its walkthrough. The state is in
 * data/sweeps/<name>/sweep.json: run the same command again and the finished points are skipped (an
 * interrupted sweep resumes); a failing point is reported and the others go on. The summary (one row per point
 * with its run record's metrics) is printed and written to data/sweeps/<name>/summary.json.
 *
 *   deno task sweep contrastive_train_data-splitting-by-query LR=1e-4,3e-4 MARGIN=1,2
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { LocalRunStore } from "../lib/experiment/run_record.ts";
import { parseSweepGrid, runSweep, sweepPoints, sweepSummary } from "../lib/experiment/sweep.ts";
import { writeJsonAtomic } from "../lib/fs.ts";
import { loadSuite } from "../lib/notebook/runner.ts";
import { dataDir, projectRoot, shownPath } from "../lib/paths.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: {
    random: { type: "string" },
    seed: { type: "string", default: "0" },
    preset: { type: "string" },
    name: { type: "string" },
  },
  allowPositionals: true,
});
const [notebook, ...assignments] = positionals;
const suite = await loadSuite();
if (!notebook || !suite.some((e) => e.name === notebook)) {
  throw new Error(
    `usage: deno task sweep <notebook> PARAM=v1,v2 ...; the notebook ${JSON.stringify(notebook ?? "")} is not one ` +
      `of ${suite.map((e) => e.name).join(", ")}`,
  );
}
const grid = parseSweepGrid(assignments);
const random = values.random === undefined ? undefined : Number(values.random);
const seed = Number(values.seed);
if (!Number.isInteger(seed)) throw new Error(`--seed ${values.seed}: expected an integer`);
const points = sweepPoints(grid, { random, seed });
const name = values.name ??
  `${notebook}-${Object.entries(grid).map(([k, v]) => `${k}_${v.join("_")}`).join("-")}`.replace(/[^\w.-]+/g, "_")
    .slice(0, 100);
const dir = join(dataDir(), "sweeps", name);
const store = new LocalRunStore();
console.log(`sweep ${name}: ${points.length} point(s) of ${notebook} (state: ${shownPath(join(dir, "sweep.json"))})`);

const state = await runSweep({
  notebook,
  points,
  dir,
  listRuns: () => store.list(),
  runPoint: async (point) => {
    const args = [
      "run",
      "-A",
      join(projectRoot, "scripts", "notebooks.ts"),
      ...(values.preset ? ["--preset", values.preset] : []),
      notebook,
    ];
    const { code } = await new Deno.Command(Deno.execPath(), {
      args,
      cwd: projectRoot,
      env: point,
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    return { ok: code === 0, log: `the batch runner exited with code ${code}` };
  },
});
const summary = sweepSummary(state, await store.list());
await writeJsonAtomic(join(dir, "summary.json"), summary);
const columns = [...new Set(summary.flatMap((row) => Object.keys(row)))];
const cell = (v: unknown) => (typeof v === "number" && !Number.isInteger(v) ? v.toFixed(4) : String(v ?? "—"));
console.log(
  [
    "",
    `| ${columns.join(" | ")} |`,
    `|${columns.map(() => "---").join("|")}|`,
    ...summary.map((row) => `| ${columns.map((c) => cell(row[c])).join(" | ")} |`),
  ].join("\n"),
);
console.log(`\nsummary: ${shownPath(join(dir, "summary.json"))}`);
if (state.points.some((p) => p.status !== "finished")) Deno.exit(1);
