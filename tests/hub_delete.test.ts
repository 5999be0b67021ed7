import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { deleteRepoFiles, planDelete } from "../lib/hub/delete.ts";
import { listRemoteFiles } from "../lib/hub/listing.ts";
import { resolveConnection } from "../lib/hub/repo.ts";
import { startSeededHub } from "./fixtures/hub/make_data.ts";

const REPO = "INDEEPA/clip-siamese";

async function remotePaths(endpoint: string): Promise<string[]> {
  return (await listRemoteFiles(resolveConnection({ repo: REPO, endpoint }))).map((f) => f.path);
}

describe("deleteRepoFiles against the local stand-in", () => {
  it("planDelete lists matches of globs and re: regexes", async () => {
    const fx = await startSeededHub();
    try {
      const matches = await planDelete({
        repo: REPO,
        endpoint: fx.hub.endpoint,
        patterns: ["tables_demo/source/**", "re:^images_o.*\\.zip$"],
      });
      expect(matches).toEqual([
        { path: "images_other.zip", size: expect.any(Number), matchedBy: ["re:^images_o.*\\.zip$"] },
        { path: "tables_demo/source/export.xlsx", size: 3000, matchedBy: ["tables_demo/source/**"] },
      ]);
    } finally {
      await fx.cleanup();
    }
  });

  it("dry run by default and with a wrong word: lists matches, deletes nothing", async () => {
    const fx = await startSeededHub();
    try {
      const before = await remotePaths(fx.hub.endpoint);
      const options = { repo: REPO, endpoint: fx.hub.endpoint, patterns: ["*.zip"] };
      const dry = await deleteRepoFiles(options);
      expect(dry.dryRun).toBe(true);
      expect(dry.matches.map((m) => m.path)).toEqual(["images_demo.zip", "images_other.zip"]);
      expect(dry.message).toMatch(/CONFIRM=DELETE/);
      const wrong = await deleteRepoFiles({ ...options, confirm: "delete" });
      expect(wrong.dryRun).toBe(true);
      expect(wrong.deleted).toEqual([]);
      expect(fx.hub.requests.some((r) => r.path.includes("/commit/"))).toBe(false);
      expect(await remotePaths(fx.hub.endpoint)).toEqual(before);
    } finally {
      await fx.cleanup();
    }
  });

  it("with the right word deletes exactly the matches", async () => {
    const fx = await startSeededHub();
    try {
      const result = await deleteRepoFiles({
        repo: REPO,
        endpoint: fx.hub.endpoint,
        patterns: ["tables_demo/source/", "re:pairs\\.json$"],
        confirm: "YES",
        expectedWord: "YES",
      });
      expect(result.dryRun).toBe(false);
      expect(result.deleted).toEqual(["tables_demo/pairs.json", "tables_demo/source/export.xlsx"]);
      expect(await remotePaths(fx.hub.endpoint)).toEqual([
        "images_demo.zip",
        "images_other.zip",
        "tables_demo/processed/products.csv",
      ]);
      await expect(Deno.stat(join(fx.hub.root, "datasets", REPO, "tables_demo/source"))).rejects.toThrow();
    } finally {
      await fx.cleanup();
    }
  });

  it("rejects an empty pattern list and an invalid regex with clear errors", async () => {
    const fx = await startSeededHub();
    try {
      await expect(planDelete({ repo: REPO, endpoint: fx.hub.endpoint, patterns: [] })).rejects.toThrow(
        /DELETE_PATTERNS/,
      );
      await expect(planDelete({ repo: REPO, endpoint: fx.hub.endpoint, patterns: ["re:("] })).rejects.toThrow(
        /not a valid regular expression/,
      );
    } finally {
      await fx.cleanup();
    }
  });
});
