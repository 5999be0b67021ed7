/**
 * The suite at the keyboard: what a new user types, replayed through the real batch runner and
 * the Deno kernel. A typo or a wrong path stops the parameters cell (In[1]) with one line naming
 * the parameter, the value and what is allowed, before anything runs.
 */
import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { projectRoot } from "../lib/paths.ts";
import { executeNotebook } from "../lib/notebook/runner.ts";
import { ensureNotebookEnvironment } from "../scripts/setup.ts";

const TRAINING = join(projectRoot, "notebooks", "3_training", "contrastive_train_data-splitting-by-query.ipynb");

async function firstCellError(env: Record<string, string>): Promise<{ cell?: string; error: string }> {
  const outDir = await Deno.makeTempDir({ prefix: "keyboard-" });
  try {
    const result = await executeNotebook(TRAINING, { outDir, env, timeoutSeconds: 300 });
    expect(result.ok).toBe(false);
    expect(result.kind).toBe("cell-error");
    // The partly executed notebook is kept, with the error in its first code cell.
    const executed = JSON.parse(await Deno.readTextFile(result.executed!));
    expect(result.executed).toContain(join(outDir, "failed"));
    const errors = executed.cells.flatMap((c: { outputs?: { output_type: string }[] }) =>
      (c.outputs ?? []).filter((o) => o.output_type === "error")
    );
    expect(errors.length).toBe(1);
    return { cell: result.failedCell, error: result.error ?? "" };
  } finally {
    await Deno.remove(outDir, { recursive: true });
  }
}

describe("the training notebook at the keyboard", () => {
  it("stops typos in the parameters cell with one line", async () => {
    await ensureNotebookEnvironment();
    const cases: [Record<string, string>, RegExp][] = [
      [
        { MODE: "heda" },
        /MODE="heda" \(from the environment\) is not allowed: use one of head, text, full \(did you mean "head"\?\)/,
      ],
      [{ LOSS: "contrastve" }, /LOSS="contrastve" .*did you mean "contrastive"/],
      [{ BEST_METRIC: "aucc" }, /BEST_METRIC="aucc" .*one of f1, auc, loss/],
      [{ EPOCHS: "0" }, /EPOCHS="0" .*an integer >= 1/],
    ];
    for (const [env, message] of cases) {
      const { cell, error } = await firstCellError(env);
      expect(cell).toBe("In[1]");
      expect(error).toMatch(message);
      expect(error.split("\n").filter((l) => l.trim()).length).toBe(1);
    }
  });

  it("resolves paths from the project root and never sends a missing path to the Hub", async () => {
    await ensureNotebookEnvironment();
    const resume = await firstCellError({ RESUME: "data/train_results/tmp/x/epoch-002" });
    expect(resume.cell).toBe("In[1]");
    expect(resume.error).toContain(`looked at ${join(projectRoot, "data/train_results/tmp/x/epoch-002")}`);
    const weights = await firstCellError({ WEIGHTS: "demo/best" });
    expect(weights.error).toContain(`looked at ${join(projectRoot, "demo/best")}`);
    expect(weights.error).toContain("for the Hub repository write hf-hub:demo/best");
  });
});
