/**
 * `deno task notebooks [--preset demo|real] [names...]`: executes the notebook suite in order
 * through `jupyter nbconvert --execute` with the Deno kernel, writing executed notebooks and
 * HTML renderings to reports/walkthrough/. Parameters reach notebooks as environment variables
 * (e.g. `EPOCHS=3 deno task notebooks contrastive_train_data-splitting-by-query`).
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { ensureNotebookEnvironment } from "./setup.ts";
import { loadSuite, runNotebooks, selectNotebooks } from "../lib/notebook/runner.ts";
import { dataDir, reportsDir } from "../lib/paths.ts";
import { presetEnvironment, SUITE_PRESETS } from "../lib/notebook/params.ts";
import { prepareDemo } from "../lib/demo.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: { preset: { type: "string" }, help: { type: "boolean", short: "h" } },
  allowPositionals: true,
});
if (values.help) {
  console.log("usage: deno task notebooks [--preset demo|real|test] [notebook names...]");
  Deno.exit(0);
}
const preset = values.preset ?? Deno.env.get("SUITE_PRESET") ?? "demo";
// Ctrl-C reaches the notebook driver too, which passes it on to the kernel: the running notebook ends at its
// next step and is kept as a failed copy. This process stays to report it; a second Ctrl-C ends it at once.
let interrupts = 0;
if (Deno.build.os !== "windows") {
  Deno.addSignalListener("SIGINT", () => {
    if (++interrupts > 1) Deno.exit(130);
    console.error(
      "interrupt: the running notebook ends at its next step (its partial copy is kept as a failed run) and no " +
        "later notebook runs; press Ctrl-C again to end at once.",
    );
  });
}
try {
  if (!(SUITE_PRESETS as readonly string[]).includes(preset)) {
    throw new Error(`--preset ${JSON.stringify(preset)} is not allowed: use one of ${SUITE_PRESETS.join(", ")}`);
  }
  await ensureNotebookEnvironment();
  const suite = await loadSuite();
  const entries = selectNotebooks(suite, positionals, preset);
  const env: Record<string, string> = {
    SUITE_PRESET: preset,
    CLIP_SIAMESE_DATA: dataDir(),
    CLIP_SIAMESE_REPORTS: reportsDir(),
  };
  let cleanup: (() => Promise<void>) | undefined;
  if (preset !== "real") {
    const demo = await prepareDemo({ preset });
    // The preset fills only what the user left unset (DATASET=mine deno task demo uses "mine").
    Object.assign(env, presetEnvironment(demo.env));
    cleanup = demo.close;
  }
  const started = performance.now();
  let results;
  try {
    results = await runNotebooks(entries, { outDir: join(reportsDir(), "walkthrough"), env });
  } finally {
    await cleanup?.();
  }
  const failed = results.find((r) => !r.ok);
  console.log(
    `${results.filter((r) => r.ok).length}/${entries.length} notebooks executed in ${
      ((performance.now() - started) / 1000).toFixed(0)
    }s` +
      (failed ? `; stopped at ${failed.notebook}` : ""),
  );
  if (failed || results.length < entries.length) Deno.exit(1);
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  Deno.exit(1);
}
