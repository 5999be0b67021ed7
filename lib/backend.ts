/**
 * tfjs backend selection.
 *
 * Automatic order: `tensorflow` (tfjs-node-gpu or tfjs-node, when the user has installed one)
 * > `webgpu` (only on a real GPU adapter) > `wasm` > `cpu`. `TFJS_BACKEND` overrides it with
 * one of `tensorflow`, `webgpu`, `webgpu-software` (WebGPU on a software fallback adapter such as
 * llvmpipe: slow, but exercises the GPU code path on CPU machines), `wasm`, `cpu`.
 * An explicitly requested backend that is unavailable is an error, never a silent fallback.
 */
import { tf } from "./tf.ts";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "./paths.ts";
import {
  adapterDescription,
  type AdapterLike,
  installWebgpuCompat,
  installWebgpuKernelFixes,
  isSoftwareAdapter,
} from "./webgpu_compat.ts";
import { bridgeMissingKernels, registerFastSegmentSum, registerFastWasmKernels } from "./kernel_bridge.ts";
import { describeWasmStart, startWasmBackend, WasmThreadsError } from "./wasm_threads.ts";
import { registerWasmDepthwiseKernels } from "./wasm_kernels/depthwise.ts";
import { registerWasmGeluKernels } from "./wasm_kernels/gelu.ts";

export type BackendName = "tensorflow" | "webgpu" | "webgpu-software" | "wasm" | "cpu";
export const BACKEND_NAMES: readonly BackendName[] = ["tensorflow", "webgpu", "webgpu-software", "wasm", "cpu"];

export interface BackendChoice {
  /** What was asked for (`auto` when TFJS_BACKEND is unset). */
  requested: BackendName | "auto";
  /** The tfjs backend now active (`tensorflow`, `webgpu`, `wasm` or `cpu`). */
  backend: string;
  /** Why this backend: the probes that failed before it, or the override. */
  reason: string;
  /** Adapter description for WebGPU, thread count for wasm, package for tensorflow. */
  detail?: string;
}

export class BackendUnavailableError extends Error {
  constructor(backend: string, why: string) {
    super(`tfjs backend "${backend}" was requested but is unavailable: ${why}`);
    this.name = "BackendUnavailableError";
  }
}

interface Probe {
  ok: boolean;
  why: string;
  detail?: string;
}

const TFJS_NODE_PACKAGES = ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"];

async function probeTensorflow(): Promise<Probe> {
  for (const name of TFJS_NODE_PACKAGES) {
    if (!existsSync(join(projectRoot, "node_modules", ...name.split("/")))) continue;
    try {
      await import(`npm:${name}@4.22.0`);
      if (tf.findBackend("tensorflow")) return { ok: true, why: `${name} is installed`, detail: name };
      return { ok: false, why: `${name} loaded but registered no "tensorflow" backend` };
    } catch (error) {
      return { ok: false, why: `${name} is installed but failed to load (${String(error).split("\n")[0]})` };
    }
  }
  return {
    ok: false,
    why: "neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed (see environment.md)",
  };
}

async function probeWebgpu(allowSoftware: boolean): Promise<Probe> {
  const gpu = (globalThis.navigator as unknown as { gpu?: { requestAdapter(): Promise<AdapterLike | null> } })?.gpu;
  if (!gpu) return { ok: false, why: "navigator.gpu is not available in this runtime" };
  // Before tfjs's factory asks for its adapter: fixes its requiredFeatures for Deno (webgpu_compat.ts).
  installWebgpuCompat(gpu);
  let adapter: AdapterLike | null;
  try {
    adapter = await gpu.requestAdapter();
  } catch (error) {
    return { ok: false, why: `requestAdapter failed (${String(error).split("\n")[0]})` };
  }
  if (!adapter) return { ok: false, why: "no WebGPU adapter (no Vulkan driver found)" };
  // Read from the adapter's info before any device exists (Deno 2.1 threw on it afterwards).
  const description = adapterDescription(adapter);
  const software = isSoftwareAdapter(adapter);
  if (software && !allowSoftware) {
    return {
      ok: false,
      why: `only a software fallback adapter (${description}); use TFJS_BACKEND=webgpu-software to run on it anyway`,
      detail: description,
    };
  }
  try {
    await import("@tensorflow/tfjs-backend-webgpu");
    installWebgpuKernelFixes(); // int32/bool -> float32 casts that tfjs's shaders can read (webgpu_compat.ts)
  } catch (error) {
    return { ok: false, why: `@tensorflow/tfjs-backend-webgpu failed to load (${String(error).split("\n")[0]})` };
  }
  return {
    ok: true,
    why: software ? `software adapter ${description}` : `GPU adapter ${description}`,
    detail: description,
  };
}

async function probeWasm(): Promise<Probe> {
  try {
    await import("@tensorflow/tfjs-backend-cpu");
    await import("@tensorflow/tfjs-backend-wasm");
    bridgeMissingKernels("wasm");
    registerFastSegmentSum("wasm");
    registerFastWasmKernels();
    registerWasmDepthwiseKernels(); // ConvNeXt's 7x7 depthwise conv and its gradients (lib/wasm_kernels/)
    registerWasmGeluKernels(); // exact GELU forward and backward in one pass each (lib/model/layers.ts uses them)
    // Starts it now, with TFJS_WASM_THREADS threads (see wasm_threads.ts): threads must be set before it starts.
    const started = await startWasmBackend();
    const detail = describeWasmStart({ ...started, note: undefined });
    return { ok: true, why: `WebAssembly backend, ${describeWasmStart(started)}`, detail };
  } catch (error) {
    if (error instanceof WasmThreadsError) throw error; // a bad TFJS_WASM_THREADS is an error, never a fallback
    return { ok: false, why: `@tensorflow/tfjs-backend-wasm failed to load (${String(error).split("\n")[0]})` };
  }
}

async function probeCpu(): Promise<Probe> {
  await import("@tensorflow/tfjs-backend-cpu");
  registerFastSegmentSum("cpu");
  return { ok: true, why: "plain JavaScript backend" };
}

function probe(name: BackendName): Promise<Probe> {
  switch (name) {
    case "tensorflow":
      return probeTensorflow();
    case "webgpu":
      return probeWebgpu(false);
    case "webgpu-software":
      return probeWebgpu(true);
    case "wasm":
      return probeWasm();
    case "cpu":
      return probeCpu();
  }
}

function tfjsName(name: BackendName): string {
  return name === "webgpu-software" ? "webgpu" : name;
}

async function activate(name: BackendName): Promise<boolean> {
  // tfjs' own banner recommending tfjs-node is noise here: we print our own reason.
  tf.env().set("IS_TEST", true);
  try {
    const ok = await tf.setBackend(tfjsName(name));
    await tf.ready();
    return ok && tf.getBackend() === tfjsName(name);
  } catch {
    return false;
  }
}

/** Parses a TFJS_BACKEND value; unknown names are an error listing the valid ones. */
export function parseBackendName(value: string): BackendName | "auto" {
  const lowered = value.trim().toLowerCase();
  if (lowered === "" || lowered === "auto") return "auto";
  if ((BACKEND_NAMES as readonly string[]).includes(lowered)) return lowered as BackendName;
  throw new Error(`TFJS_BACKEND=${value} is not a known backend; use one of auto, ${BACKEND_NAMES.join(", ")}`);
}

let current: BackendChoice | undefined;

/**
 * Selects and activates the tfjs backend (see the module comment), logs the choice with its
 * reason, and returns it. `requested` defaults to `$TFJS_BACKEND`, else automatic.
 */
export async function selectBackend(
  requested: BackendName | "auto" = parseBackendName(Deno.env.get("TFJS_BACKEND") ?? "auto"),
  options: { quiet?: boolean } = {},
): Promise<BackendChoice> {
  let choice: BackendChoice;
  if (requested !== "auto") {
    const result = await probe(requested);
    if (!result.ok) throw new BackendUnavailableError(requested, result.why);
    if (!(await activate(requested))) {
      throw new BackendUnavailableError(requested, "tf.setBackend failed to initialise it");
    }
    choice = { requested, backend: tf.getBackend(), reason: `requested (${result.why})`, detail: result.detail };
  } else {
    const skipped: string[] = [];
    choice = { requested, backend: "cpu", reason: "" };
    for (const name of ["tensorflow", "webgpu", "wasm", "cpu"] as BackendName[]) {
      const result = await probe(name);
      if (result.ok && (await activate(name))) {
        choice = {
          requested,
          backend: tf.getBackend(),
          reason: [result.why, ...skipped.map((s) => `skipped ${s}`)].join("; "),
          detail: result.detail,
        };
        break;
      }
      skipped.push(`${name}: ${result.ok ? "failed to initialise" : result.why}`);
    }
  }
  current = choice;
  if (!options.quiet) console.log(`tfjs backend: ${choice.backend} (${choice.reason})`);
  return choice;
}

/** The last choice made by selectBackend, if any. */
export function currentBackend(): BackendChoice | undefined {
  return current;
}
