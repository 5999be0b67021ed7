import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { crc32, unpackImageArchives, zipFolderDeterministic } from "../lib/hub/archive.ts";
import { downloadDataRepo } from "../lib/hub/download.ts";
import { compilePattern } from "../lib/hub/patterns.ts";
import { fakeBytes, readTree, startSeededHub, writeSampleData } from "./fixtures/hub/make_data.ts";

describe("image archives", () => {
  it("zips deterministically: same folder, same bytes, whatever the file times", async () => {
    const dir = await Deno.makeTempDir();
    try {
      await writeSampleData(dir);
      const folder = join(dir, "images_demo");
      await zipFolderDeterministic(folder, join(dir, "a.zip"));
      await Deno.utime(join(folder, "1.jpg"), new Date(2020, 1, 1), new Date(2020, 1, 1));
      await zipFolderDeterministic(folder, join(dir, "b.zip"));
      expect(await Deno.readFile(join(dir, "a.zip"))).toEqual(await Deno.readFile(join(dir, "b.zip")));
      await Deno.writeFile(join(folder, "1.jpg"), fakeBytes(99, 10));
      await zipFolderDeterministic(folder, join(dir, "c.zip"));
      expect(await Deno.readFile(join(dir, "c.zip"))).not.toEqual(await Deno.readFile(join(dir, "a.zip")));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  it("crc32 matches the standard check value", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
  });

  it("round-trips a folder and skips an archive already unpacked", async () => {
    const dir = await Deno.makeTempDir();
    try {
      await writeSampleData(dir);
      await zipFolderDeterministic(join(dir, "images_other"), join(dir, "images_copy.zip"));
      const first = await unpackImageArchives(dir);
      expect(first.map((r) => [r.folder, r.status])).toEqual([["images_copy", "unpacked"]]);
      const copy = await readTree(join(dir, "images_copy"));
      copy.delete(".unpacked-from.json");
      expect(copy).toEqual(await readTree(join(dir, "images_other")));
      const second = await unpackImageArchives(dir);
      expect(second[0].status).toBe("up-to-date");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  it("a corrupt zip gives a clear error and leaves the existing folder untouched", async () => {
    const dir = await Deno.makeTempDir();
    try {
      await writeSampleData(dir);
      const before = await readTree(join(dir, "images_demo"));
      await Deno.writeFile(join(dir, "images_demo.zip"), fakeBytes(5, 4000)); // not a zip at all
      await expect(unpackImageArchives(dir)).rejects.toThrow(
        /corrupt zip .*images_demo.zip.*images_demo\/ was left untouched/,
      );
      // a zip whose entry bytes were damaged (CRC mismatch, stored entries)
      await zipFolderDeterministic(join(dir, "images_other"), join(dir, "images_demo.zip"));
      const bytes = await Deno.readFile(join(dir, "images_demo.zip"));
      bytes[100] ^= 0xff;
      await Deno.writeFile(join(dir, "images_demo.zip"), bytes);
      await expect(unpackImageArchives(dir)).rejects.toThrow(/fails its CRC check/);
      expect(await readTree(join(dir, "images_demo"))).toEqual(before);
      const leftovers = [];
      for await (const entry of Deno.readDir(dir)) if (entry.name.includes(".unpack-")) leftovers.push(entry.name);
      expect(leftovers).toEqual([]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  it("a corrupt zip on the Hub: download succeeds, unpacking fails clearly, local images stay", async () => {
    const fx = await startSeededHub();
    try {
      await downloadDataRepo({ repo: "INDEEPA/clip-siamese", endpoint: fx.hub.endpoint, destination: fx.destination });
      const before = await readTree(join(fx.destination, "images_demo"));
      await Deno.writeFile(join(fx.hub.root, "datasets/INDEEPA/clip-siamese/images_demo.zip"), fakeBytes(1, 500));
      const attempt = downloadDataRepo({
        repo: "INDEEPA/clip-siamese",
        endpoint: fx.hub.endpoint,
        destination: fx.destination,
      });
      await expect(attempt).rejects.toThrow(/corrupt zip/);
      expect(await readTree(join(fx.destination, "images_demo"))).toEqual(before);
    } finally {
      await fx.cleanup();
    }
  });
});

describe("file patterns", () => {
  it("globs match whole paths; re: patterns are regular expressions", () => {
    expect(compilePattern("tables_*/**").test("tables_demo/processed/x.csv")).toBe(true);
    expect(compilePattern("*.zip").test("images_demo.zip")).toBe(true);
    expect(compilePattern("*.zip").test("sub/images_demo.zip")).toBe(false);
    expect(compilePattern("**/*.csv").test("a.csv")).toBe(true);
    expect(compilePattern("tables_demo/").test("tables_demo/a/b.csv")).toBe(true);
    expect(compilePattern("re:^images_.*\\.zip$").test("images_x.zip")).toBe(true);
    expect(compilePattern("re:processed").test("tables_demo/processed/x.csv")).toBe(true);
    expect(() => compilePattern("  ")).toThrow(/empty file pattern/);
  });
});
