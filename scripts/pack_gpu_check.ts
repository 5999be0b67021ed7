/**
 * `deno task pack-gpu-check`: packs into one folder everything `deno task gpu-check` needs on a bare,
 * offline Linux x86-64 GPU machine (no network, no Node, no Deno):
 *
 *   deno.xz                    this Deno binary, xz-compressed
 *   app/gpu-check.js           scripts/gpu_check.ts and the npm code it imports, bundled by `deno bundle`
 *   app/node_modules/...       the files it loads from disk at run time (tfjs-backend-wasm's .wasm builds and
 *                              the pthread factory), at the paths require.resolve expects
 *   app/wasm_thread_worker.js  the wasm pthread worker shim; app/depthwise*.wasm, gelu*.wasm: our kernels;
 *                              app/unpack_deb.js: a .deb reader for machines without dpkg-deb
 *   libvulkan1_*.deb           Debian's Vulkan loader (apt-get download, or the apt cache)
 *   run.sh                     unpacks and runs: `sh run.sh` (see scripts/gpu_server/run.sh)
 *   MANIFEST.json              sizes and SHA-256 of every file
 *
 *   deno task pack-gpu-check [--out dist/gpu-check] [--fast]      (--fast: xz -0, for tests)
 *
 * The folder is built beside its destination and renamed into place, so a failed pack leaves nothing
 * half-written. It must stay under 60 MiB.
 */
import { basename, dirname, join, relative } from "node:path";
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { writeJsonAtomic } from "../lib/fs.ts";
import { sha256Hex } from "../lib/fs.ts";
import { projectRoot } from "../lib/paths.ts";

/** Largest allowed pack (the budget for a folder copied onto a GPU machine). */
export const PACK_LIMIT_BYTES = 60 * 2 ** 20;

/** Files tfjs-backend-wasm reads from disk at run time (not bundled: the Emscripten glue loads them by path). */
const WASM_RUNTIME_FILES = [
  "package.json",
  "dist/tfjs-backend-wasm.wasm",
  "dist/tfjs-backend-wasm-simd.wasm",
  "dist/tfjs-backend-wasm-threaded-simd.wasm",
  "wasm-out/tfjs-backend-wasm-threaded-simd.js",
  "wasm-out/tfjs-backend-wasm-threaded-simd.worker.js",
];

async function run(cmd: string, args: string[], options: { stdout?: string; cwd?: string } = {}): Promise<void> {
  const child = new Deno.Command(cmd, {
    args,
    cwd: options.cwd,
    stdout: options.stdout ? "piped" : "inherit",
    stderr: "inherit",
  }).spawn();
  if (options.stdout) {
    const file = await Deno.open(options.stdout, { write: true, create: true, truncate: true });
    await child.stdout.pipeTo(file.writable);
  }
  const status = await child.status;
  if (!status.success) throw new Error(`${cmd} ${args.join(" ")} failed (exit ${status.code})`);
}

/** Debian's libvulkan1 .deb: downloaded with apt-get, else taken from apt's cache. */
async function fetchVulkanDeb(into: string): Promise<string> {
  try {
    await run("apt-get", ["download", "-qq", "libvulkan1"], { cwd: into });
  } catch (error) {
    const cached = [...Deno.readDirSync("/var/cache/apt/archives")].find((e) =>
      /^libvulkan1_.*_amd64\.deb$/.test(e.name)
    );
    if (!cached) {
      throw new Error(
        `could not get Debian's libvulkan1 .deb (${
          String(error)
        }); run this on a Debian/Ubuntu machine with apt, or put the .deb in /var/cache/apt/archives`,
      );
    }
    await Deno.copyFile(join("/var/cache/apt/archives", cached.name), join(into, cached.name));
  }
  const deb = [...Deno.readDirSync(into)].find((e) => /^libvulkan1_.*\.deb$/.test(e.name));
  if (!deb) throw new Error(`apt-get download left no libvulkan1 .deb in ${into}`);
  return join(into, deb.name);
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) out.push(...await listFiles(path));
    else out.push(path);
  }
  return out.sort();
}

/** Packs the folder (see the module comment); returns its total size in bytes. */
export async function packGpuCheck(outDir: string, options: { fast?: boolean } = {}): Promise<number> {
  const staging = `${outDir}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  await Deno.mkdir(join(staging, "app"), { recursive: true });
  try {
    console.log("[pack] bundling scripts/gpu_check.ts ...");
    await run(Deno.execPath(), [
      "bundle",
      "--quiet",
      "--platform",
      "deno",
      "--output",
      join(staging, "app", "gpu-check.js"),
      join(projectRoot, "scripts", "gpu_check.ts"),
    ], { cwd: projectRoot });
    // The Emscripten glue inside tfjs-backend-wasm's Node build reads the CommonJS free variable `__dirname`,
    // which an ES module bundle does not define: give it the bundle's folder (the .wasm paths are set
    // explicitly by lib/wasm_threads.ts, so only its existence matters).
    const bundle = join(staging, "app", "gpu-check.js");
    await Deno.writeTextFile(
      bundle,
      'globalThis.__dirname ??= new URL(".", import.meta.url).pathname.replace(/\\/$/, "");\n' +
        "globalThis.__filename ??= new URL(import.meta.url).pathname;\n" + await Deno.readTextFile(bundle),
    );

    const require = createRequire(join(projectRoot, "lib", "backend.ts"));
    const wasmPackage = dirname(require.resolve("@tensorflow/tfjs-backend-wasm/package.json"));
    for (const file of WASM_RUNTIME_FILES) {
      const to = join(staging, "app", "node_modules", "@tensorflow", "tfjs-backend-wasm", file);
      await Deno.mkdir(dirname(to), { recursive: true });
      await Deno.copyFile(join(wasmPackage, file), to);
    }
    for (
      const [from, to] of [
        [join(projectRoot, "lib", "wasm_thread_worker.js"), "wasm_thread_worker.js"],
        [join(projectRoot, "scripts", "gpu_server", "unpack_deb.js"), "unpack_deb.js"],
        // lib/wasm_kernels/depthwise.ts reads these beside its module, which in the bundle is app/gpu-check.js.
        [join(projectRoot, "lib", "wasm_kernels", "depthwise.wasm"), "depthwise.wasm"],
        [join(projectRoot, "lib", "wasm_kernels", "depthwise_shared.wasm"), "depthwise_shared.wasm"],
        [join(projectRoot, "lib", "wasm_kernels", "gelu.wasm"), "gelu.wasm"],
        [join(projectRoot, "lib", "wasm_kernels", "gelu_shared.wasm"), "gelu_shared.wasm"],
      ]
    ) {
      if (!existsSync(from)) throw new Error(`${from} is missing: the pack needs it`);
      await Deno.copyFile(from, join(staging, "app", to));
    }
    await Deno.copyFile(join(projectRoot, "scripts", "gpu_server", "run.sh"), join(staging, "run.sh"));
    await Deno.chmod(join(staging, "run.sh"), 0o755);

    console.log(`[pack] libvulkan1 .deb ...`);
    await fetchVulkanDeb(staging);

    console.log(`[pack] compressing ${Deno.execPath()} with xz${options.fast ? " -0" : " -6"} ...`);
    await run("xz", [options.fast ? "-0" : "-6", "-T0", "-c", Deno.execPath()], { stdout: join(staging, "deno.xz") });

    const files = await listFiles(staging);
    const manifest: { path: string; bytes: number; sha256: string }[] = [];
    let total = 0;
    for (const file of files) {
      const bytes = await Deno.readFile(file);
      total += bytes.byteLength;
      manifest.push({ path: relative(staging, file), bytes: bytes.byteLength, sha256: await sha256Hex([bytes], 64) });
    }
    if (total > PACK_LIMIT_BYTES) {
      const largest = [...manifest].sort((a, b) => b.bytes - a.bytes).slice(0, 5)
        .map((m) => `${m.path} ${(m.bytes / 2 ** 20).toFixed(1)} MiB`);
      throw new Error(
        `the pack is ${(total / 2 ** 20).toFixed(1)} MiB, over the ${PACK_LIMIT_BYTES / 2 ** 20} MiB limit; largest: ${
          largest.join(", ")
        }`,
      );
    }
    await writeJsonAtomic(join(staging, "MANIFEST.json"), {
      createdAt: new Date().toISOString(),
      deno: Deno.version.deno,
      totalBytes: total,
      files: manifest,
    });
    await Deno.remove(outDir, { recursive: true }).catch(() => {});
    await Deno.mkdir(dirname(outDir), { recursive: true });
    await Deno.rename(staging, outDir);
    return total;
  } catch (error) {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
    throw error;
  }
}

if (import.meta.main) {
  const args = Deno.args;
  const outIndex = args.indexOf("--out");
  const out = outIndex >= 0 ? args[outIndex + 1] : join(projectRoot, "dist", "gpu-check");
  if (!out) {
    console.error("usage: deno task pack-gpu-check [--out DIR] [--fast]");
    Deno.exit(2);
  }
  const total = await packGpuCheck(out, { fast: args.includes("--fast") });
  console.log(
    `[pack] ${out}: ${(total / 2 ** 20).toFixed(1)} MiB. Copy the folder to the GPU machine and run: sh ${
      basename(out)
    }/run.sh`,
  );
}
