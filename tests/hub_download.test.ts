import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { downloadDataRepo, downloadRepoFiles, HubDownloadError } from "../lib/hub/download.ts";
import { HubError } from "../lib/hub/repo.ts";
import { configureStopHandler, InterruptedError, stopPressed } from "../lib/notebook/interrupt.ts";
import { readTree, startSeededHub } from "./fixtures/hub/make_data.ts";

const REPO = "INDEEPA/clip-siamese";
const ALL_FILES = [
  "images_demo.zip",
  "images_other.zip",
  "tables_demo/pairs.json",
  "tables_demo/processed/products.csv",
  "tables_demo/source/export.xlsx",
];

function resolveGets(requests: { method: string; path: string }[]): string[] {
  return requests.filter((r) => r.method === "GET" && r.path.includes("/resolve/")).map((r) =>
    r.path.split("/resolve/main/")[1]
  );
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

describe("downloadRepoFiles against the local stand-in", () => {
  it("downloads the whole snapshot, then unpacks image zips into images_* folders", async () => {
    const fx = await startSeededHub();
    try {
      const { report, unpacked } = await downloadDataRepo({
        repo: REPO,
        endpoint: fx.hub.endpoint,
        destination: fx.destination,
      });
      expect(report.files.map((f) => f.path)).toEqual(ALL_FILES);
      expect(report.downloaded).toBe(5);
      expect(report.skipped).toBe(0);
      expect(unpacked.map((u) => [u.folder, u.status, u.files])).toEqual([
        ["images_demo", "unpacked", 3],
        ["images_other", "unpacked", 1],
      ]);
      const source = await readTree(join(fx.sourceDir, "images_demo"));
      const got = await readTree(join(fx.destination, "images_demo"));
      got.delete(".unpacked-from.json");
      expect(got).toEqual(source);
      expect(await Deno.readTextFile(join(fx.destination, "tables_demo/processed/products.csv"))).toContain("Глобус");
      expect((await listDir(fx.destination)).some((name) => name.endsWith(".part") || name.endsWith(".tmp"))).toBe(
        false,
      );
    } finally {
      await fx.cleanup();
    }
  });

  it("downloads only files matching the globs", async () => {
    const fx = await startSeededHub();
    try {
      const report = await downloadRepoFiles({
        repo: REPO,
        endpoint: fx.hub.endpoint,
        destination: fx.destination,
        globs: ["tables_*/**/*.csv", "images_other.zip"],
      });
      expect(report.files.map((f) => f.path)).toEqual(["images_other.zip", "tables_demo/processed/products.csv"]);
      expect(await listDir(fx.destination)).toEqual(["images_other.zip", "tables_demo"]);
    } finally {
      await fx.cleanup();
    }
  });

  it("resumes: files whose size and hash match are skipped without a GET; a changed file is fetched again", async () => {
    const fx = await startSeededHub();
    try {
      const options = { repo: REPO, endpoint: fx.hub.endpoint, destination: fx.destination };
      await downloadRepoFiles(options);
      await Deno.writeTextFile(join(fx.destination, "tables_demo/pairs.json"), "{}"); // locally damaged
      fx.hub.requests.length = 0;
      const second = await downloadRepoFiles(options);
      expect(second.skipped).toBe(4);
      expect(second.files.find((f) => f.status === "downloaded")?.path).toBe("tables_demo/pairs.json");
      expect(resolveGets(fx.hub.requests)).toEqual(["tables_demo/pairs.json"]);
    } finally {
      await fx.cleanup();
    }
  });

  it("Stop lets the files under way finish whole and starts no more; a rerun fetches only the rest", async () => {
    configureStopHandler({ notify: () => {}, exit: () => {} });
    const fx = await startSeededHub();
    try {
      const options = { repo: REPO, endpoint: fx.hub.endpoint, destination: fx.destination, concurrency: 1 };
      const error = await downloadRepoFiles({
        ...options,
        onProgress: (event) => event.done === 2 && stopPressed(),
      }).catch((e) => e);
      expect(error).toBeInstanceOf(InterruptedError);
      expect(error.message).toMatch(/^Hub download stopped at 2\/5 files \(Stop\)\. Kept: the 2 files finished/);
      expect(resolveGets(fx.hub.requests)).toEqual(ALL_FILES.slice(0, 2));
      fx.hub.requests.length = 0;
      const rest = await downloadRepoFiles(options);
      expect([rest.skipped, rest.downloaded]).toEqual([2, 3]);
      expect(resolveGets(fx.hub.requests)).toEqual(ALL_FILES.slice(2));
    } finally {
      await fx.cleanup();
    }
  });

  it("401: says authentication failed and to set HF_TOKEN", async () => {
    const fx = await startSeededHub({ requiredToken: "hf_right" });
    try {
      const attempt = downloadRepoFiles({
        repo: REPO,
        endpoint: fx.hub.endpoint,
        destination: fx.destination,
        token: "hf_wrong",
      });
      await expect(attempt).rejects.toThrow(/authentication failed for dataset INDEEPA\/clip-siamese.*set HF_TOKEN/);
      const ok = await downloadRepoFiles({
        repo: REPO,
        endpoint: fx.hub.endpoint,
        destination: fx.destination,
        token: "hf_right",
        globs: ["*.zip"],
      });
      expect(ok.downloaded).toBe(2);
    } finally {
      await fx.cleanup();
    }
  });

  it("404: names the missing repo or revision", async () => {
    const fx = await startSeededHub();
    try {
      const missingRepo = downloadRepoFiles({
        repo: "nobody/nothing",
        endpoint: fx.hub.endpoint,
        destination: fx.destination,
      });
      await expect(missingRepo).rejects.toThrow(/not found .*dataset nobody\/nothing/);
      const missingRevision = downloadRepoFiles({
        repo: REPO,
        revision: "v9",
        endpoint: fx.hub.endpoint,
        destination: fx.destination,
      });
      await expect(missingRevision).rejects.toThrow(/revision "v9"/);
      const error = await missingRevision.catch((e) => e);
      expect(error).toBeInstanceOf(HubError);
      expect(error.status).toBe(404);
    } finally {
      await fx.cleanup();
    }
  });

  it("500 on a file is retried and then succeeds", async () => {
    const fx = await startSeededHub();
    try {
      fx.hub.injectFault({ pathIncludes: "/resolve/main/images_demo.zip", status: 500, times: 2 });
      const retries: string[] = [];
      const report = await downloadRepoFiles({
        repo: REPO,
        endpoint: fx.hub.endpoint,
        destination: fx.destination,
        retryDelayMs: 1,
        onProgress: (e) => e.status === "retrying" && retries.push(e.message ?? ""),
      });
      expect(report.downloaded).toBe(5);
      expect(retries.length).toBe(2);
      expect(retries[0]).toMatch(/images_demo.zip: Hub returned HTTP 500/);
    } finally {
      await fx.cleanup();
    }
  });

  it("persistent 500 fails naming the file and status; other files still arrive", async () => {
    const fx = await startSeededHub();
    try {
      fx.hub.injectFault({ pathIncludes: "/resolve/main/tables_demo/pairs.json", status: 503, times: Infinity });
      const error = await downloadRepoFiles({
        repo: REPO,
        endpoint: fx.hub.endpoint,
        destination: fx.destination,
        retryDelayMs: 1,
        attempts: 3,
      }).catch((e) => e);
      expect(error).toBeInstanceOf(HubDownloadError);
      expect(error.message).toMatch(/tables_demo\/pairs.json: Hub returned HTTP 503.*gave up after 3 attempts/);
      expect(error.report.downloaded).toBe(4);
      await expect(Deno.stat(join(fx.destination, "tables_demo/pairs.json"))).rejects.toThrow();
      await expect(Deno.stat(join(fx.destination, "tables_demo/pairs.json.part"))).rejects.toThrow();
    } finally {
      await fx.cleanup();
    }
  });

  it("a connection dropped mid-download is retried, resuming with a Range request", async () => {
    const fx = await startSeededHub();
    try {
      fx.hub.injectFault({ pathIncludes: "/resolve/main/images_demo.zip", dropMidBody: true });
      const report = await downloadRepoFiles({
        repo: REPO,
        endpoint: fx.hub.endpoint,
        destination: fx.destination,
        retryDelayMs: 1,
        globs: ["images_demo.zip"],
      });
      expect(report.downloaded).toBe(1);
      const gets = fx.hub.requests.filter((r) => r.path.endsWith("images_demo.zip"));
      expect(gets.length).toBe(2);
      expect(gets[0].range).toBeNull();
      expect(gets[1].range).toMatch(/^bytes=\d+-$/);
      const source = await Deno.readFile(join(fx.hub.root, "datasets", REPO, "images_demo.zip"));
      expect(await Deno.readFile(join(fx.destination, "images_demo.zip"))).toEqual(source);
    } finally {
      await fx.cleanup();
    }
  });

  it("drops on every attempt: fails, keeps the old file, leaves no partial file", async () => {
    const fx = await startSeededHub();
    try {
      const target = join(fx.destination, "tables_demo/source/export.xlsx");
      await Deno.mkdir(join(target, ".."), { recursive: true });
      await Deno.writeTextFile(target, "old local copy");
      fx.hub.injectFault({ pathIncludes: "export.xlsx", dropMidBody: true, times: Infinity });
      const error = await downloadRepoFiles({
        repo: REPO,
        endpoint: fx.hub.endpoint,
        destination: fx.destination,
        retryDelayMs: 1,
        attempts: 3,
        globs: ["tables_demo/source/*"],
      }).catch((e) => e);
      expect(error).toBeInstanceOf(HubDownloadError);
      expect(error.message).toMatch(/export.xlsx: connection dropped after \d+ of 3000 bytes/);
      expect(await Deno.readTextFile(target)).toBe("old local copy");
      expect(await listDir(join(fx.destination, "tables_demo/source"))).toEqual(["export.xlsx"]);
    } finally {
      await fx.cleanup();
    }
  });

  it("a transfer whose bytes do not match the hash is discarded and fetched again", async () => {
    const fx = await startSeededHub();
    try {
      const real = await Deno.readFile(join(fx.hub.root, "datasets", REPO, "tables_demo/pairs.json"));
      fx.hub.injectFault({ pathIncludes: "pairs.json", replaceBody: new Uint8Array(real.length).fill(65) });
      const report = await downloadRepoFiles({
        repo: REPO,
        endpoint: fx.hub.endpoint,
        destination: fx.destination,
        retryDelayMs: 1,
        globs: ["tables_demo/pairs.json"],
      });
      expect(report.downloaded).toBe(1);
      expect(await Deno.readFile(join(fx.destination, "tables_demo/pairs.json"))).toEqual(real);
    } finally {
      await fx.cleanup();
    }
  });

  it("serves model repos too (resolve URLs without the datasets/ prefix)", async () => {
    const fx = await startSeededHub();
    try {
      const modelDir = join(fx.hub.root, "models", "tiny", "bert");
      await Deno.mkdir(modelDir, { recursive: true });
      await Deno.writeTextFile(join(modelDir, "config.json"), '{"hidden_size": 8}');
      await Deno.writeFile(join(modelDir, "model.safetensors"), new Uint8Array(100).fill(3));
      const report = await downloadRepoFiles({
        repo: "tiny/bert",
        repoType: "model",
        endpoint: fx.hub.endpoint,
        destination: fx.destination,
      });
      expect(report.files.map((f) => [f.path, f.status])).toEqual([
        ["config.json", "downloaded"],
        ["model.safetensors", "downloaded"],
      ]);
      expect(fx.hub.requests.some((r) => r.path === "/tiny/bert/resolve/main/config.json")).toBe(true);
    } finally {
      await fx.cleanup();
    }
  });
});
