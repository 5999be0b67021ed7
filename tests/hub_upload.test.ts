import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { downloadDataRepo } from "../lib/hub/download.ts";
import { uploadDataRepo } from "../lib/hub/upload.ts";
import { fakeBytes, readTree, startSeededHub } from "./fixtures/hub/make_data.ts";

const REPO = "INDEEPA/clip-siamese";

describe("uploadDataRepo against the local stand-in", () => {
  it("uploads nothing when the local data equals the remote; then only new or changed files", async () => {
    const fx = await startSeededHub();
    try {
      const options = { repo: REPO, endpoint: fx.hub.endpoint, dataDir: fx.sourceDir };
      const first = await uploadDataRepo(options);
      expect(first.uploaded).toEqual([]);
      expect(first.plan.files.every((f) => f.action === "unchanged")).toBe(true);
      expect(first.plan.zipped).toEqual(["images_demo.zip", "images_other.zip"]);
      expect(first.plan.refusedImages).toEqual([]);

      await Deno.writeFile(join(fx.sourceDir, "images_demo/4.jpg"), fakeBytes(4, 1234));
      await Deno.writeTextFile(join(fx.sourceDir, "tables_demo/pairs.json"), '{"pairs": []}');
      await Deno.writeTextFile(join(fx.sourceDir, "tables_demo/new.csv"), "a\n1\n");
      fx.hub.requests.length = 0;
      const second = await uploadDataRepo(options);
      expect(second.uploaded).toEqual(["images_demo.zip", "tables_demo/new.csv", "tables_demo/pairs.json"]);
      expect(second.commitOid).toMatch(/^[0-9a-f]{40}$/);
      const lfsPuts = fx.hub.requests.filter((r) => r.method === "PUT");
      expect(lfsPuts.length).toBe(1); // only the changed zip went through LFS

      const third = await uploadDataRepo(options);
      expect(third.uploaded).toEqual([]);

      const { report } = await downloadDataRepo({ repo: REPO, endpoint: fx.hub.endpoint, destination: fx.destination });
      expect(report.files.length).toBe(6);
      const images = await readTree(join(fx.destination, "images_demo"));
      expect([...images.keys()].filter((k) => !k.startsWith("."))).toEqual(["1.jpg", "2.jpg", "3.jpg", "4.jpg"]);
      expect(await Deno.readTextFile(join(fx.destination, "tables_demo/pairs.json"))).toBe('{"pairs": []}');
    } finally {
      await fx.cleanup();
    }
  });

  it("never uploads loose image files, and a dry run uploads nothing", async () => {
    const fx = await startSeededHub();
    try {
      await Deno.writeFile(join(fx.sourceDir, "tables_demo/preview.png"), fakeBytes(9, 300));
      await Deno.writeTextFile(join(fx.sourceDir, "tables_demo/extra.txt"), "x");
      const dry = await uploadDataRepo({ repo: REPO, endpoint: fx.hub.endpoint, dataDir: fx.sourceDir, dryRun: true });
      expect(dry.plan.refusedImages).toEqual(["tables_demo/preview.png"]);
      expect(dry.plan.files.filter((f) => f.action !== "unchanged").map((f) => f.path)).toEqual([
        "tables_demo/extra.txt",
      ]);
      expect(dry.uploaded).toEqual([]);
      expect(fx.hub.requests.some((r) => r.method === "POST")).toBe(false);
      const real = await uploadDataRepo({ repo: REPO, endpoint: fx.hub.endpoint, dataDir: fx.sourceDir });
      expect(real.uploaded).toEqual(["tables_demo/extra.txt"]);
      const repoDir = join(fx.hub.root, "datasets", REPO, "tables_demo");
      expect(await Deno.readTextFile(join(repoDir, "extra.txt"))).toBe("x");
      await expect(Deno.stat(join(repoDir, "preview.png"))).rejects.toThrow();
    } finally {
      await fx.cleanup();
    }
  });

  it("a failed commit (HTTP 500) reports the status and changes nothing remotely", async () => {
    const fx = await startSeededHub();
    try {
      await Deno.writeTextFile(join(fx.sourceDir, "tables_demo/extra.txt"), "x");
      fx.hub.injectFault({ pathIncludes: "/commit/main", status: 500 });
      const attempt = uploadDataRepo({ repo: REPO, endpoint: fx.hub.endpoint, dataDir: fx.sourceDir });
      await expect(attempt).rejects.toThrow(/HTTP 500 .*committing 1 file/);
      await expect(Deno.stat(join(fx.hub.root, "datasets", REPO, "tables_demo/extra.txt"))).rejects.toThrow();
    } finally {
      await fx.cleanup();
    }
  });
});
