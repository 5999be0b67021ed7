import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { loadSuite } from "../lib/notebook/runner.ts";
import { projectRoot } from "../lib/paths.ts";
import { notebookDocument, percentToCells } from "../scripts/notebook_from_percent.ts";

async function check(paths: string[]): Promise<{ ok: boolean; log: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(projectRoot, "scripts", "check_notebooks.ts"), ...paths],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { ok: out.success, log: new TextDecoder().decode(out.stderr) };
}

describe("notebook type check", () => {
  it("passes on the suite's notebooks and names the notebook of a type error", async () => {
    const suite = await check([]);
    if (!suite.ok) throw new Error(suite.log);
    const notebooks = (await loadSuite()).length;
    expect(suite.log).toContain(`${notebooks}/${notebooks} notebooks are formatted, type-check, lint`);
    const dir = await Deno.makeTempDir();
    const bad = join(dir, "bad.ipynb");
    await Deno.writeTextFile(
      bad,
      JSON.stringify(notebookDocument(percentToCells("// %%\nconst n: number = 1;\n// %%\nconst s: string = n;\n"))),
    );
    try {
      const result = await check([bad]);
      expect(result.ok).toBe(false);
      expect(result.log).toContain(bad);
      expect(result.log).toMatch(/TS2322/);
      // Lint problems are located by cell; a long cell is named too.
      const long = Array.from({ length: 17 }, (_, i) => `console.log(${i});`).join("\n");
      await Deno.writeTextFile(
        bad,
        JSON.stringify(notebookDocument(percentToCells(`// %%\nlet unused = 1;\n// %%\n${long}\n`))),
      );
      const linted = await check([bad]);
      expect(linted.ok).toBe(false);
      expect(linted.log).toMatch(/no-unused-vars/);
      expect(linted.log).toContain(`${bad} (cell 1, line 1, column 5)`);
      expect(linted.log).toContain(`${bad} (cell 2): 17 lines of logic, more than 15`);
      expect(linted.log).toContain(`${bad}: not formatted`); // JSON.stringify's layout is not deno fmt's
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
