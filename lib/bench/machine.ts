/** Facts about the machine and library versions, recorded with every bench result. */
import { cpus, totalmem } from "node:os";
import { tf } from "../tf.ts";

/** Machine and version facts of a bench run. */
export interface MachineInfo {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  deno: string;
  v8: string;
  tfjs: string;
  os: string;
  /** What tfjs-backend-wasm reports about SIMD and threads (after it was loaded). */
  wasm?: { simd: boolean; multithread: boolean; threads: number | null };
}

/** Cores, CPU model, memory and versions. */
export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    cores: navigator.hardwareConcurrency ?? list.length,
    cpuModel: list[0]?.model ?? "unknown",
    memoryGiB: Math.round(totalmem() / 2 ** 30 * 10) / 10,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    tfjs: tf.version.tfjs,
    os: `${Deno.build.os} ${Deno.build.arch}`,
  };
}

/** SIMD / multithread support as tfjs-backend-wasm detects it, and its thread count. */
export async function wasmFeatures(): Promise<{ simd: boolean; multithread: boolean; threads: number | null }> {
  const wasm = await import("@tensorflow/tfjs-backend-wasm") as { getThreadsCount?: () => number };
  let threads: number | null = null;
  try {
    threads = wasm.getThreadsCount?.() ?? null;
  } catch {
    threads = null;
  }
  return {
    simd: Boolean(await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT")),
    multithread: Boolean(await tf.env().getAsync("WASM_HAS_MULTITHREAD_SUPPORT")),
    threads,
  };
}
