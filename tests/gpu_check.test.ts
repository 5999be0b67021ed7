// gpu-check and its offline pack: the report on this (GPU-less) machine, and the packed folder run from
// elsewhere with a bare environment (no Deno on PATH, no network where a network namespace can be made).
import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { renderGpuCheckMarkdown, runGpuCheck } from "../lib/bench/gpu_check.ts";
import { findIcdFiles } from "../lib/bench/gpu_info.ts";
import { PACK_LIMIT_BYTES, packGpuCheck } from "../scripts/pack_gpu_check.ts";

/** A PATH folder with only the tools run.sh may use (so neither Deno nor Node can be found). */
async function barePath(dir: string): Promise<string> {
  const bin = join(dir, "bin");
  await Deno.mkdir(bin);
  for (const tool of ["sh", "dirname", "basename", "mkdir", "chmod", "mv", "rm", "xz", "tar"]) {
    const found = ["/usr/bin", "/bin"].map((d) => join(d, tool)).find((p) => {
      try {
        return Deno.statSync(p).isFile;
      } catch {
        return false;
      }
    });
    if (!found) throw new Error(`${tool} is not installed; run.sh needs it`);
    await Deno.symlink(found, join(bin, tool));
  }
  return bin;
}

async function canUnshareNetwork(): Promise<boolean> {
  try {
    const out = await new Deno.Command("/usr/bin/unshare", { args: ["-n", "true"], stdout: "null", stderr: "null" })
      .output();
    return out.success;
  } catch {
    return false;
  }
}

describe("gpu-check", () => {
  it("finds the ICD manifest named by VK_DRIVER_FILES first", () => {
    const files = findIcdFiles((name) => (name === "VK_DRIVER_FILES" ? "/opt/nvidia/nvidia_icd.json" : undefined));
    expect(files[0]).toBe("/opt/nvidia/nvidia_icd.json");
  });

  it("without a GPU, runs on the software adapter at small sizes and says so", async () => {
    const result = await runGpuCheck({ noWasm: true });
    expect(result.target).toBe("webgpu-software");
    expect(result.softwareOnly).toBe(true);
    expect(result.sizes.preset).toBe("tiny");
    expect(result.errors).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.timings.map((t) => t.workload)).toEqual(["embedding", "full-mode training", "head-mode training"]);
    for (const t of result.timings) {
      expect(t.value).toBeGreaterThan(0);
      expect(t.tensorGrowth).toBe(0);
    }
    const markdown = renderGpuCheckMarkdown(result);
    expect(markdown).toContain("**No GPU was used**");
    expect(markdown).toMatch(/Equal on `webgpu`: 15\/15 outputs/);
  });
});

describe("pack-gpu-check", () => {
  it("packs a folder under 60 MiB that runs gpu-check from elsewhere with no Deno, Node or network", async () => {
    const dir = await Deno.makeTempDir({ prefix: "gpu-pack-" });
    try {
      const packed = join(dir, "gpu-check");
      const total = await packGpuCheck(packed, { fast: true });
      expect(total).toBeLessThan(PACK_LIMIT_BYTES);
      const manifest = JSON.parse(await Deno.readTextFile(join(packed, "MANIFEST.json")));
      const paths = manifest.files.map((f: { path: string }) => f.path);
      expect(paths).toContain("deno.xz");
      expect(paths).toContain("app/gpu-check.js");
      expect(paths.some((p: string) => /^libvulkan1_.*\.deb$/.test(p))).toBe(true);
      // Moved, as onto another machine; a bare environment; our Vulkan loader from the .deb; no network.
      const moved = join(dir, "elsewhere");
      await Deno.rename(packed, moved);
      const path = await barePath(dir);
      const command = [join(path, "sh"), join(moved, "run.sh"), "--backend", "webgpu-software", "--quick"];
      const isolated = await canUnshareNetwork();
      const out = await new Deno.Command(isolated ? "/usr/bin/unshare" : command[0], {
        args: isolated ? ["-n", ...command] : command.slice(1),
        env: { PATH: path, HOME: dir, GPU_CHECK_BUNDLED_VULKAN: "1" },
        clearEnv: true,
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(240_000),
      }).output();
      const log = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      if (!out.success) throw new Error(`run.sh failed (exit ${out.code}):\n${log.slice(-3000)}`);
      expect(log).toContain("unpacking Deno");
      expect(log).toContain("unpacking the Vulkan loader");
      const report = JSON.parse(await Deno.readTextFile(join(moved, "reports", "gpu-check.json")));
      expect(report.ok).toBe(true);
      expect(report.info.vulkanLoader).toContain(join(moved, ".unpacked", "vulkan"));
      expect(report.timings.map((t: { backend: string }) => t.backend.split(" ")[0])).toContain("wasm");
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  });
});
