/**
 * `deno task gpu-check`: adapter and driver facts, backend equality, and timed training steps and an
 * embedding batch on the GPU backend against wasm in the same run (lib/bench/gpu_check.ts).
 *
 *   deno task gpu-check                       webgpu on a hardware adapter, else webgpu-software at small sizes
 *   deno task gpu-check --quick               small sizes even on a GPU
 *   deno task gpu-check --backend webgpu-software|webgpu|wasm|tensorflow
 *   deno task gpu-check --no-wasm             skip the wasm comparison
 *   deno task gpu-check --out DIR             write gpu-check.md/.json to DIR (default: reports/)
 *
 * Exits 1 when the equality check fails, a step fails or a step leaks tensors.
 */
import { join } from "node:path";
import { type BackendName, parseBackendName } from "../lib/backend.ts";
import { renderGpuCheckMarkdown, runGpuCheck } from "../lib/bench/gpu_check.ts";
import { writeFileAtomic, writeJsonAtomic } from "../lib/fs.ts";
import { reportsDir } from "../lib/paths.ts";

const USAGE = "usage: deno task gpu-check [--quick] [--no-wasm] [--backend NAME] [--out DIR]";
const args = [...Deno.args];
let backend: BackendName | undefined;
let out = reportsDir();
let quick = false;
let noWasm = false;
while (args.length) {
  const arg = args.shift()!;
  const [flag, inline] = arg.includes("=") ? arg.split("=", 2) : [arg, undefined];
  const value = (): string => {
    const v = inline ?? args.shift();
    if (v === undefined) throw new Error(`gpu-check: ${flag} needs a value\n${USAGE}`);
    return v;
  };
  if (flag === "--quick") quick = true;
  else if (flag === "--no-wasm") noWasm = true;
  else if (flag === "--backend") {
    const parsed = parseBackendName(value());
    backend = parsed === "auto" ? undefined : parsed;
  } else if (flag === "--out") out = value();
  else {
    console.error(`gpu-check: unknown argument ${arg}\n${USAGE}`);
    Deno.exit(2);
  }
}

const result = await runGpuCheck({ backend, quick, noWasm, log: (m) => console.log(`[gpu-check] ${m}`) });
const markdown = renderGpuCheckMarkdown(result);
console.log(`\n${markdown}`);
await writeJsonAtomic(join(out, "gpu-check.json"), result);
await writeFileAtomic(join(out, "gpu-check.md"), markdown);
console.log(`[gpu-check] wrote ${join(out, "gpu-check.md")} and ${join(out, "gpu-check.json")}`);
// Pthread workers of the wasm backend must not keep a finished check alive.
Deno.exit(result.ok ? 0 : 1);
