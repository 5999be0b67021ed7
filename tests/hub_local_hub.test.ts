import { describe, it } from "node:test";
import { expect } from "expect";
import { listRemoteFiles } from "../lib/hub/listing.ts";
import { describeEndpoint, resolveConnection } from "../lib/hub/repo.ts";
import { startSeededHub } from "./fixtures/hub/make_data.ts";

describe("local Hub stand-in", () => {
  it("paginates tree listings with Link headers, and @huggingface/hub follows them", async () => {
    const fx = await startSeededHub({ pageSize: 2 });
    try {
      const files = await listRemoteFiles(
        resolveConnection({ repo: "INDEEPA/clip-siamese", endpoint: fx.hub.endpoint }),
      );
      expect(files.map((f) => [f.path, f.digestKind])).toEqual([
        ["images_demo.zip", "sha256"],
        ["images_other.zip", "sha256"],
        ["tables_demo/pairs.json", "git-sha1"],
        ["tables_demo/processed/products.csv", "git-sha1"],
        ["tables_demo/source/export.xlsx", "sha256"],
      ]);
      expect(fx.hub.requests.filter((r) => r.path.includes("/tree/")).length).toBeGreaterThan(3);
    } finally {
      await fx.cleanup();
    }
  });

  it("listens on loopback only, refuses paths outside the repo, and says it is a stand-in", async () => {
    const fx = await startSeededHub();
    try {
      expect(fx.hub.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const response = await fetch(`${fx.hub.endpoint}/datasets/INDEEPA/clip-siamese/resolve/main/%2E%2E/%2E%2E/x`);
      await response.body?.cancel();
      expect([400, 404]).toContain(response.status);
      expect(describeEndpoint(fx.hub.endpoint)).toMatch(/LOCAL STAND-IN/);
      expect(describeEndpoint("https://huggingface.co")).not.toMatch(/STAND-IN/);
    } finally {
      await fx.cleanup();
    }
  });
});
