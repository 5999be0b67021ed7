/**
 * Rebuilds lib/wasm_kernels/*.wasm from their AssemblyScript sources (lib/wasm_kernels/*.as).
 *
 *   deno run -A scripts/build_wasm_kernels.ts           # writes the .wasm files next to the sources
 *   deno run -A scripts/build_wasm_kernels.ts --check   # rebuilds to a temp dir, fails if they differ
 *
 * The compiler is AssemblyScript's asc, from npm, pinned by version here and by integrity in
 * lib/wasm_kernels/asc.lock.json (binaryen, its optimiser, is pinned exactly by asc itself). It
 * runs as a separate `deno run --no-config` so that the project's deno.lock and node_modules/
 * stay untouched: the build toolchain is not a dependency of the library, which only loads the
 * checked-in .wasm. The first build needs the npm registry (or Deno's npm cache); the output is
 * byte-for-byte reproducible (`--check`).
 *
 * Each source is built twice, because a wasm module that imports a memory must declare whether
 * it is shared: `<name>.wasm` imports a plain memory (tfjs-backend-wasm's SIMD build) and
 * `<name>_shared.wasm` a shared one (its threaded-SIMD build, whose heap is a SharedArrayBuffer).
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ASC = "npm:assemblyscript@0.28.20/asc";
const KERNEL_DIR = fileURLToPath(new URL("../lib/wasm_kernels/", import.meta.url));
const LOCK = join(KERNEL_DIR, "asc.lock.json");
const SOURCES = ["depthwise", "gelu"];

/**
 * asc flags shared by both variants. The stub runtime with no allocation, --noAssert and no
 * abort import leave a module with no data segments, globals or stack in linear memory: it only
 * reads and writes the pointers it is given, so it can share tfjs' heap safely.
 */
const COMMON_FLAGS = [
  "-O3",
  "--noAssert",
  "--runtime",
  "stub",
  "--use",
  "abort=",
  "--enable",
  "simd",
  "--importMemory",
  "--noExportMemory",
];
const VARIANTS: { suffix: string; flags: string[] }[] = [
  { suffix: "", flags: [] },
  // 65536 pages = 4 GiB, the wasm32 limit: any shared memory tfjs creates fits under it.
  { suffix: "_shared", flags: ["--sharedMemory", "--maximumMemory", "65536", "--enable", "threads"] },
];

async function asc(source: string, outFile: string, flags: string[]): Promise<void> {
  const frozen = await Deno.stat(LOCK).then(() => true, () => false);
  const args = [
    "run",
    "--no-config",
    `--lock=${LOCK}`,
    ...(frozen ? ["--frozen"] : []),
    "-A",
    ASC,
    source,
    ...COMMON_FLAGS,
    ...flags,
    "-o",
    outFile,
  ];
  const out = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    throw new Error(`asc failed for ${source}:\n${text}`);
  }
}

/** Builds every source and variant into `outDir`; returns the .wasm paths written. */
export async function buildWasmKernels(outDir: string = KERNEL_DIR): Promise<string[]> {
  const work = await Deno.makeTempDir({ prefix: "wasm_kernels_" });
  const written: string[] = [];
  try {
    for (const name of SOURCES) {
      // asc only reads .ts entry files; the source is kept as .as so that deno check/lint skip it.
      const source = join(work, `${name}.ts`);
      await Deno.copyFile(join(KERNEL_DIR, `${name}.as`), source);
      for (const variant of VARIANTS) {
        const outFile = join(outDir, `${name}${variant.suffix}.wasm`);
        await Deno.mkdir(dirname(outFile), { recursive: true });
        await asc(source, outFile, variant.flags);
        written.push(outFile);
      }
    }
  } finally {
    await Deno.remove(work, { recursive: true });
  }
  return written;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

if (import.meta.main) {
  if (Deno.args.includes("--check")) {
    const tmp = await Deno.makeTempDir({ prefix: "wasm_kernels_check_" });
    try {
      const stale: string[] = [];
      for (const built of await buildWasmKernels(tmp)) {
        const name = built.slice(tmp.length + 1);
        const checkedIn = await Deno.readFile(join(KERNEL_DIR, name)).catch(() => new Uint8Array());
        if (!sameBytes(checkedIn, await Deno.readFile(built))) stale.push(name);
      }
      if (stale.length > 0) {
        console.error(`stale: ${stale.join(", ")}; run deno run -A scripts/build_wasm_kernels.ts`);
        Deno.exit(1);
      }
      console.log("lib/wasm_kernels: the checked-in .wasm files match a rebuild");
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  } else {
    for (const path of await buildWasmKernels()) {
      console.log(`wrote ${path} (${(await Deno.stat(path)).size} bytes)`);
    }
  }
}
