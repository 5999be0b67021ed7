/**
 * What a machine offers for WebGPU, as `deno task gpu-check` reports it before timing anything:
 * the adapter (vendor, device, software or hardware, features, limits), the NVIDIA driver when
 * there is one, the Vulkan loader and ICD files, and the environment variables that steer them.
 * Everything is read, nothing is changed; a missing piece is reported, never an exception.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type AdapterInfoLike, ensureRuntimeDir, isSoftwareAdapter } from "../webgpu_compat.ts";

/** The adapter as navigator.gpu reports it. */
export interface AdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** What the runtime says (Deno may hard-code false). */
  isFallbackAdapter: boolean | null;
  /** Our classification: the flag, or a software renderer's name in the adapter info. */
  software: boolean;
  features: string[];
  limits: Record<string, number>;
}

/** Everything gpu-check records about the GPU side of the machine. */
export interface GpuInfo {
  navigatorGpu: boolean;
  adapter: AdapterReport | null;
  /** Why there is no adapter, when there is none. */
  adapterError?: string;
  /** `nvidia-smi` fields, or null when nvidia-smi is absent. */
  nvidiaSmi: Record<string, string>[] | null;
  /** /proc/driver/nvidia/version, first line. */
  nvidiaKernelDriver: string | null;
  /** Vulkan ICD manifests found in the usual folders and in VK_DRIVER_FILES / VK_ICD_FILENAMES. */
  vulkanIcdFiles: string[];
  /** Where libvulkan.so.1 was found (LD_LIBRARY_PATH first, then the system folders), or null. */
  vulkanLoader: string | null;
  environment: Record<string, string | null>;
}

const LIMITS = [
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxStorageBuffersPerShaderStage",
];

const ENVIRONMENT = [
  "DENO_WEBGPU_BACKEND",
  "VK_DRIVER_FILES",
  "VK_ICD_FILENAMES",
  "NVIDIA_DRIVER_CAPABILITIES",
  "NVIDIA_VISIBLE_DEVICES",
  "LD_LIBRARY_PATH",
  "TFJS_BACKEND",
  "TFJS_WASM_THREADS",
];

/** Folders where Vulkan loaders look for ICD manifests (and where the NVIDIA container toolkit puts its own). */
export const ICD_FOLDERS = [
  "/usr/share/vulkan/icd.d",
  "/etc/vulkan/icd.d",
  "/usr/local/share/vulkan/icd.d",
  "/usr/local/nvidia/share/vulkan/icd.d",
];

const LOADER_FOLDERS = ["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib/x86_64-linux-gnu"];

function listJson(folder: string): string[] {
  try {
    return readdirSync(folder).filter((f) => f.endsWith(".json")).map((f) => join(folder, f));
  } catch {
    return [];
  }
}

/** ICD manifests on this machine, those named by VK_DRIVER_FILES / VK_ICD_FILENAMES first. */
export function findIcdFiles(env: (name: string) => string | undefined = (n) => Deno.env.get(n)): string[] {
  const named = [env("VK_DRIVER_FILES"), env("VK_ICD_FILENAMES")]
    .flatMap((v) => (v ?? "").split(":"))
    .filter((p) => p.length > 0);
  return [...new Set([...named, ...ICD_FOLDERS.flatMap(listJson)])];
}

/** The Vulkan loader `libvulkan.so.1` (LD_LIBRARY_PATH first, then the system folders), or null. */
export function findLoader(): string | null {
  const folders = [...(Deno.env.get("LD_LIBRARY_PATH") ?? "").split(":").filter(Boolean), ...LOADER_FOLDERS];
  for (const folder of folders) {
    const path = join(folder, "libvulkan.so.1");
    if (existsSync(path)) return path;
  }
  return null;
}

async function nvidiaSmi(): Promise<Record<string, string>[] | null> {
  const fields = ["name", "driver_version", "memory.total", "compute_cap", "pci.bus_id"];
  try {
    const out = await new Deno.Command("nvidia-smi", {
      args: [`--query-gpu=${fields.join(",")}`, "--format=csv,noheader"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) return [{ error: new TextDecoder().decode(out.stderr).trim().slice(0, 200) }];
    return new TextDecoder().decode(out.stdout).trim().split("\n").filter(Boolean).map((line) => {
      const values = line.split(",").map((v) => v.trim());
      return Object.fromEntries(fields.map((f, i) => [f, values[i] ?? ""]));
    });
  } catch {
    return null;
  }
}

interface GpuAdapterLike {
  info?: Record<string, unknown>;
  isFallbackAdapter?: boolean;
  features?: Iterable<string>;
  limits?: Record<string, number>;
}

/** Reads the adapter (before any device is requested: reading `info` afterwards threw in Deno 2.1). */
export async function describeAdapter(): Promise<{ adapter: AdapterReport | null; error?: string }> {
  const gpu = (globalThis.navigator as unknown as { gpu?: { requestAdapter(): Promise<GpuAdapterLike | null> } })
    ?.gpu;
  if (!gpu) return { adapter: null, error: "navigator.gpu is not available in this runtime" };
  ensureRuntimeDir();
  let adapter: GpuAdapterLike | null;
  try {
    adapter = await gpu.requestAdapter();
  } catch (error) {
    return { adapter: null, error: `requestAdapter failed: ${String(error).split("\n")[0]}` };
  }
  if (!adapter) {
    return {
      adapter: null,
      error: "requestAdapter returned null: no Vulkan loader (libvulkan.so.1) or no Vulkan driver (ICD) was found",
    };
  }
  const info = (adapter.info ?? {}) as Record<string, unknown>;
  const text = (key: string): string => (typeof info[key] === "string" ? info[key] as string : "");
  // wgpu reports PCI vendor ids as decimal strings (4318 = 0x10de NVIDIA, 65541 = 0x10005 Mesa): show them in hex.
  const vendor = /^\d+$/.test(text("vendor")) ? `0x${Number(text("vendor")).toString(16)}` : text("vendor");
  const flag = typeof info.isFallbackAdapter === "boolean"
    ? info.isFallbackAdapter as boolean
    : typeof adapter.isFallbackAdapter === "boolean"
    ? adapter.isFallbackAdapter
    : null;
  const limits: Record<string, number> = {};
  for (const name of LIMITS) {
    const value = adapter.limits?.[name];
    if (typeof value === "number") limits[name] = value;
  }
  return {
    adapter: {
      vendor,
      architecture: text("architecture"),
      device: text("device"),
      description: text("description"),
      isFallbackAdapter: flag,
      software: isSoftwareAdapter({ info: info as AdapterInfoLike, isFallbackAdapter: flag ?? undefined }),
      features: [...(adapter.features ?? [])].sort(),
      limits,
    },
  };
}

/** Collects GpuInfo (see the module comment). */
export async function gpuInfo(): Promise<GpuInfo> {
  const { adapter, error } = await describeAdapter();
  let kernelDriver: string | null = null;
  try {
    kernelDriver = readFileSync("/proc/driver/nvidia/version", "utf8").split("\n")[0].trim();
  } catch {
    kernelDriver = null;
  }
  return {
    navigatorGpu: Boolean((globalThis.navigator as unknown as { gpu?: unknown })?.gpu),
    adapter,
    ...(error ? { adapterError: error } : {}),
    nvidiaSmi: await nvidiaSmi(),
    nvidiaKernelDriver: kernelDriver,
    vulkanIcdFiles: findIcdFiles(),
    vulkanLoader: findLoader(),
    environment: Object.fromEntries(ENVIRONMENT.map((name) => [name, Deno.env.get(name) ?? null])),
  };
}
