/**
 * What tfjs-backend-webgpu 4.22 needs from Deno's WebGPU (wgpu) that it does not always get, and
 * how we tell a software adapter from a GPU.
 *
 * - tfjs's backend factory (`dist/base.js`) builds its device descriptor with
 *   `requiredFeatures.push(['bgra8unorm-storage'])`: an array inside the array, whenever the
 *   adapter offers both `timestamp-query` and `bgra8unorm-storage` (NVIDIA does; so does llvmpipe
 *   under Deno 2.9). WebIDL would turn the inner array into its string, and Deno 2.9.6 does, but
 *   Deno releases with the strict Rust enum converter reject it ("'requiredFeatures' ... can not be
 *   converted to a enum", denoland/webgpu-examples#22) and the backend never starts.
 * - Deno 2.1 threw when `adapter.info` was read after `requestDevice` (tfjs#8518), which tfjs does.
 * - tfjs casts int32/bool to float32 on webgpu by relabelling the same int32 buffer, and its
 *   transpose shader reads that buffer raw: naga rejects the shader ("Argument 1 value ... doesn't
 *   match the type"), and WebGPU then drops the whole command batch, so every tensor computed with
 *   it reads back as zeros, without an exception. A reduction over a non-last axis of a cast mask
 *   (BERT's masked mean pooling) is enough. `installWebgpuKernelFixes` makes those casts convert.
 * - tfjs's AddN binds every input as a storage buffer of one shader; a device allows 8 per stage
 *   (tfjs asks for no more), so the global gradient norm over ~150 parameters fails the same
 *   silent way. The fix sums in chunks that fit.
 *
 * `installWebgpuCompat` wraps `navigator.gpu.requestAdapter` so that every adapter it hands out
 * (tfjs's included: its factory calls exactly that) has a `requestDevice` that flattens and
 * de-duplicates `requiredFeatures`, and an `info` read once, before any device exists. Wrapping the
 * GPU object rather than `GPUAdapter.prototype` also covers stand-in adapters in tests. Devices made
 * that way report their uncaptured errors (shader validation and the like) to `webgpuErrors()`.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tf } from "./tf.ts";

/** The adapter facts we read (a subset of GPUAdapterInfo; everything optional, runtimes differ). */
export interface AdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  /** Where the spec put it in 2024; older runtimes have it on the adapter. */
  isFallbackAdapter?: boolean;
}

/** An adapter as far as classification goes. */
export interface AdapterLike {
  info?: AdapterInfoLike;
  isFallbackAdapter?: boolean;
}

/**
 * Names of software renderers as they appear in an adapter's vendor, architecture, device or
 * description: Mesa llvmpipe / lavapipe / softpipe, SwiftShader (Chrome, Dawn), Microsoft's
 * Basic Render Driver (WARP on D3D12), and anything calling itself a software rasterizer.
 */
const SOFTWARE_RENDERER = /llvmpipe|lavapipe|softpipe|swiftshader|software|microsoft basic render|\bwarp\b/i;

/** Khronos vendor id of Mesa (0x10005), which Mesa reports for its CPU Vulkan drivers. */
const MESA_VENDOR_ID = 0x10005;

function vendorId(vendor: string | undefined): number | undefined {
  if (!vendor) return undefined;
  const text = vendor.trim();
  const value = /^0x[0-9a-f]+$/i.test(text) ? parseInt(text, 16) : /^\d+$/.test(text) ? Number(text) : NaN;
  return Number.isFinite(value) ? value : undefined;
}

/**
 * True when the adapter renders on the CPU. Either signal suffices: the fallback flag (on the
 * adapter or its info) or a software renderer's name or vendor id. The flag alone is not enough
 * because Deno has hard-coded it to false in some versions (ext/webgpu/adapter.rs, a TODO), so
 * llvmpipe can say `isFallbackAdapter: false`; a `false` flag must not silence the name check.
 */
export function isSoftwareAdapter(adapter: AdapterLike): boolean {
  const info = adapter.info ?? {};
  if (info.isFallbackAdapter === true || adapter.isFallbackAdapter === true) return true;
  const names = [info.vendor, info.architecture, info.device, info.description].filter((s): s is string => !!s);
  if (names.some((name) => SOFTWARE_RENDERER.test(name))) return true;
  return vendorId(info.vendor) === MESA_VENDOR_ID;
}

/** A readable name for the adapter: its description, else vendor and architecture. */
export function adapterDescription(adapter: AdapterLike): string {
  const info = adapter.info ?? {};
  return info.description || [info.vendor, info.architecture].filter(Boolean).join(" ") || "unknown adapter";
}

/**
 * `requiredFeatures` as a flat list of distinct strings: nested arrays (tfjs's bug) are
 * flattened, duplicates dropped, order kept. Anything else is passed through for the runtime to
 * reject as it would have.
 */
export function flattenRequiredFeatures(features: Iterable<unknown>): unknown[] {
  const out: unknown[] = [];
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(visit);
    else if (!out.includes(value)) out.push(value);
  };
  for (const value of features) visit(value);
  return out;
}

const PATCHED = Symbol.for("siamese-ruclip.webgpu-compat");

type Patchable = Record<PropertyKey, unknown>;

function isPatched(target: object): boolean {
  return (target as Patchable)[PATCHED] === true;
}

function markPatched(target: object): void {
  Object.defineProperty(target, PATCHED, { value: true });
}

const deviceErrors: string[] = [];

/**
 * Uncaptured WebGPU errors of the devices made through a patched adapter, oldest first (at most
 * 100 kept). WebGPU reports a bad shader only here: the work it was batched with silently reads
 * back as zeros, so a check that numbers are right should also check this is empty.
 */
export function webgpuErrors(): readonly string[] {
  return deviceErrors;
}

/** Empties `webgpuErrors()`. */
export function clearWebgpuErrors(): void {
  deviceErrors.length = 0;
}

function watchDevice(device: unknown): void {
  const target = device as { addEventListener?: (type: string, listener: (event: Event) => void) => void };
  if (typeof target?.addEventListener !== "function") return;
  target.addEventListener("uncapturederror", (event: Event) => {
    const message = String((event as unknown as { error?: { message?: string } }).error?.message ?? event).trim();
    if (deviceErrors.length === 0) console.error(`WebGPU error (results computed with it are wrong): ${message}`);
    if (deviceErrors.length < 100) deviceErrors.push(message);
  });
}

/**
 * Gives one adapter the fixed `requestDevice` and a snapshot of `info` (own properties; the
 * adapter's class is untouched). Idempotent; returns the adapter.
 */
export function patchAdapter<A extends object>(adapter: A): A {
  if (isPatched(adapter)) return adapter;
  const target = adapter as unknown as Patchable;
  // Read before any device exists: Deno 2.1 threw on `info` afterwards, and tfjs reads it afterwards.
  let info: unknown;
  let hasInfo = false;
  try {
    info = target.info;
    hasInfo = info !== undefined;
  } catch {
    hasInfo = false;
  }
  if (hasInfo) Object.defineProperty(adapter, "info", { value: info, configurable: true, enumerable: true });
  const requestDevice = target.requestDevice;
  if (typeof requestDevice === "function") {
    Object.defineProperty(adapter, "requestDevice", {
      configurable: true,
      writable: true,
      value: async function (descriptor?: { requiredFeatures?: Iterable<unknown> }): Promise<unknown> {
        const fixed = descriptor?.requiredFeatures
          ? { ...descriptor, requiredFeatures: flattenRequiredFeatures(descriptor.requiredFeatures) }
          : descriptor;
        // Awaited: some Deno releases return the device itself, not a promise (denoland/deno#32180).
        const device = await requestDevice.call(adapter, fixed);
        watchDevice(device);
        return device;
      },
    });
  }
  markPatched(adapter);
  return adapter;
}

/** The part of `navigator.gpu` we wrap. */
export interface GpuLike {
  requestAdapter(options?: unknown): Promise<unknown>;
}

/**
 * Gives the Vulkan drivers an XDG_RUNTIME_DIR when the environment has none (servers, containers, CI):
 * Mesa's drivers print "error: XDG_RUNTIME_DIR is invalid or not set in the environment." once per
 * adapter otherwise, which reads like a failure though nothing failed. A private folder under the
 * system temp folder, made once; an XDG_RUNTIME_DIR that is set is left alone.
 */
export function ensureRuntimeDir(): void {
  if (Deno.env.get("XDG_RUNTIME_DIR")) return;
  const dir = join(tmpdir(), `clip-siamese-runtime-${Deno.uid?.() ?? "user"}`);
  try {
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    Deno.env.set("XDG_RUNTIME_DIR", dir);
  } catch {
    // Only the message is at stake.
  }
}

/**
 * Wraps `gpu.requestAdapter` (default: `navigator.gpu`) so that every adapter it returns is
 * patched (see `patchAdapter`). Call it before tfjs's webgpu backend initialises. Idempotent per
 * GPU object. Returns false when there is no WebGPU in this runtime.
 */
export function installWebgpuCompat(
  gpu: GpuLike | undefined = (globalThis.navigator as unknown as { gpu?: GpuLike } | undefined)?.gpu,
): boolean {
  if (!gpu) return false;
  ensureRuntimeDir();
  if (isPatched(gpu)) return true;
  const requestAdapter = gpu.requestAdapter;
  Object.defineProperty(gpu, "requestAdapter", {
    configurable: true,
    writable: true,
    value: async function (options?: unknown): Promise<unknown> {
      const adapter = await requestAdapter.call(gpu, options);
      return adapter && typeof adapter === "object" ? patchAdapter(adapter) : adapter;
    },
  });
  markPatched(gpu);
  return true;
}

/** What the Cast fix needs of tfjs's WebGPUBackend (not exported as a type by the package). */
interface WebgpuBackendLike {
  device?: { limits?: { maxStorageBuffersPerShaderStage?: number } };
  shouldExecuteOnCPU(inputs: TensorInfoLike[]): boolean;
  tensorMap: { get(dataId: object): { values?: ArrayLike<number> | null } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): TensorInfoLike;
  disposeData(dataId: object): boolean;
}

interface TensorInfoLike {
  dataId: object;
  shape: number[];
  dtype: tf.DataType;
}

let kernelFixesInstalled = false;

/**
 * Replaces two tfjs-backend-webgpu kernels (see the module comment):
 * - Cast: int32 and bool tensors cast to float32 get a float32 buffer of their own (the original
 *   shares the int32 buffer). On the CPU-forward path the values are converted on the host,
 *   otherwise by a multiplication by 1, whose shader converts what it reads. Other casts are the
 *   original kernel's.
 * - AddN: more inputs than the device's storage buffers per shader stage (less one for the output)
 *   are summed in chunks, then the partial sums; fewer go to the original kernel as they are.
 * Call it once the webgpu backend's kernels are registered; idempotent. False when they are not.
 */
export function installWebgpuKernelFixes(): boolean {
  if (kernelFixesInstalled) return true;
  const original = tf.getKernel("Cast", "webgpu");
  const multiply = tf.getKernel("Multiply", "webgpu");
  const addN = tf.getKernel("AddN", "webgpu");
  if (!original || !multiply || !addN) return false;
  tf.unregisterKernel("AddN", "webgpu");
  tf.registerKernel({
    kernelName: "AddN",
    backendName: "webgpu",
    kernelFunc: (args) => {
      const backend = args.backend as unknown as WebgpuBackendLike;
      const perChunk = Math.max(2, (backend.device?.limits?.maxStorageBuffersPerShaderStage ?? 8) - 1);
      let level = args.inputs as unknown as TensorInfoLike[];
      if (level.length <= perChunk) return addN.kernelFunc(args);
      const partials: TensorInfoLike[] = [];
      while (level.length > perChunk) {
        const next: TensorInfoLike[] = [];
        for (let i = 0; i < level.length; i += perChunk) {
          const chunk = level.slice(i, i + perChunk);
          if (chunk.length === 1) {
            next.push(chunk[0]);
            continue;
          }
          const partial = addN.kernelFunc({ inputs: chunk as never, backend: args.backend, attrs: {} }) as never;
          partials.push(partial);
          next.push(partial);
        }
        level = next;
      }
      try {
        return addN.kernelFunc({ inputs: level as never, backend: args.backend, attrs: {} });
      } finally {
        for (const partial of partials) backend.disposeData(partial.dataId);
      }
    },
  });
  tf.unregisterKernel("Cast", "webgpu");
  tf.registerKernel({
    kernelName: "Cast",
    backendName: "webgpu",
    kernelFunc: (args) => {
      const x = (args.inputs as { x: TensorInfoLike }).x;
      const { dtype } = args.attrs as unknown as { dtype: tf.DataType };
      if (dtype !== "float32" || (x.dtype !== "int32" && x.dtype !== "bool")) return original.kernelFunc(args);
      const backend = args.backend as unknown as WebgpuBackendLike;
      const values = backend.tensorMap.get(x.dataId).values;
      if (backend.shouldExecuteOnCPU([x]) && values) {
        return backend.makeTensorInfo([...x.shape], "float32", Float32Array.from(values)) as never;
      }
      const one = backend.makeTensorInfo([], "float32", new Float32Array([1]));
      try {
        return multiply.kernelFunc({ inputs: { a: x, b: one } as never, backend: args.backend, attrs: {} });
      } finally {
        backend.disposeData(one.dataId);
      }
    },
  });
  kernelFixesInstalled = true;
  return true;
}
