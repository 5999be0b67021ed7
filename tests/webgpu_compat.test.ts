// WebGPU on NVIDIA servers without one: tfjs's device descriptor through a stand-in adapter that
// offers both features and validates as Deno's strict enum converter does, and adapter classification.
// Needs WebGPU on llvmpipe (mesa-vulkan-drivers + libvulkan1) for the stand-in's real device.
import { describe, it } from "node:test";
import { expect } from "expect";
import { tf } from "../lib/tf.ts";
import { BackendUnavailableError, selectBackend } from "../lib/backend.ts";
import {
  type AdapterLike,
  clearWebgpuErrors,
  flattenRequiredFeatures,
  installWebgpuCompat,
  isSoftwareAdapter,
  patchAdapter,
  webgpuErrors,
} from "../lib/webgpu_compat.ts";

await selectBackend("cpu", { quiet: true });

/** GPUFeatureName values (WebGPU spec, and wgpu's extras as Deno 2.9 lists them). */
const KNOWN_FEATURES = new Set([
  "core-features-and-limits",
  "depth-clip-control",
  "depth32float-stencil8",
  "texture-compression-bc",
  "texture-compression-bc-sliced-3d",
  "texture-compression-etc2",
  "texture-compression-astc",
  "texture-compression-astc-sliced-3d",
  "timestamp-query",
  "indirect-first-instance",
  "shader-f16",
  "rg11b10ufloat-renderable",
  "bgra8unorm-storage",
  "float32-filterable",
  "float32-blendable",
  "clip-distances",
  "dual-source-blending",
  "subgroups",
  "texture-formats-tier1",
  "texture-formats-tier2",
  "primitive-index",
  "immediates",
]);

interface DeviceDescriptor {
  requiredFeatures?: Iterable<unknown>;
  requiredLimits?: Record<string, number>;
}

/**
 * As Deno's Rust WebIDL enum converter (the releases of denoland/webgpu-examples#22): every entry
 * must be a string naming a known feature, else a TypeError. (Deno 2.9.6 converts an inner array
 * to its string instead, so the real adapter here cannot show the failure.)
 */
function validateLikeDeno(descriptor: DeviceDescriptor | undefined): void {
  [...(descriptor?.requiredFeatures ?? [])].forEach((feature, index) => {
    if (typeof feature !== "string" || !KNOWN_FEATURES.has(feature)) {
      throw new TypeError(
        `Failed to execute 'requestDevice' on 'GPUAdapter': 'requiredFeatures' of 'GPUDeviceDescriptor' ` +
          `(Argument 1), index ${index} can not be converted to a enum`,
      );
    }
  });
}

const realGpu = navigator.gpu;

/**
 * A GPU object whose one adapter says it is an NVIDIA H200 with both `timestamp-query` and
 * `bgra8unorm-storage`, records each device descriptor as given, validates it like Deno, and
 * then asks a fresh llvmpipe adapter for the device with the features that one has.
 */
async function standInGpu(received: DeviceDescriptor[]): Promise<{ requestAdapter(): Promise<unknown> }> {
  const template = await realGpu.requestAdapter();
  if (!template) throw new Error("no WebGPU adapter: install mesa-vulkan-drivers and libvulkan1 (llvmpipe)");
  const adapter = {
    features: new Set([...template.features, "timestamp-query", "bgra8unorm-storage"]),
    limits: template.limits,
    isFallbackAdapter: false,
    info: { vendor: "nvidia", architecture: "hopper", device: "0x2335", description: "NVIDIA H200 (stand-in)" },
    async requestDevice(descriptor?: DeviceDescriptor): Promise<GPUDevice> {
      received.push({ ...descriptor, requiredFeatures: structuredClone([...(descriptor?.requiredFeatures ?? [])]) });
      validateLikeDeno(descriptor);
      const real = await realGpu.requestAdapter();
      const features = [...(descriptor?.requiredFeatures ?? [])].filter((f) => real!.features.has(f as string));
      return await real!.requestDevice({ ...descriptor, requiredFeatures: features } as GPUDeviceDescriptor);
    },
  };
  return { requestAdapter: () => Promise.resolve(adapter) };
}

/** Runs `body` with `navigator.gpu` replaced by `gpu`. */
async function withNavigatorGpu<T>(gpu: unknown, body: () => Promise<T>): Promise<T> {
  Object.defineProperty(navigator, "gpu", { value: gpu, configurable: true });
  try {
    return await body();
  } finally {
    delete (navigator as unknown as { gpu?: unknown }).gpu; // the prototype's getter again
  }
}

describe("tfjs webgpu on an adapter offering timestamp-query and bgra8unorm-storage", () => {
  it("is rejected without the fix and initialises with it (selectBackend installs it)", async () => {
    if (!realGpu || !(await realGpu.requestAdapter())) {
      throw new Error("this test needs WebGPU on llvmpipe: install mesa-vulkan-drivers and libvulkan1");
    }
    await import("@tensorflow/tfjs-backend-webgpu");
    const engine = tf.engine();
    const { factory, priority } = engine.registryFactory.webgpu;
    // A webgpu backend made earlier in this process would be reused without calling the factory.
    if (engine.registry.webgpu) {
      tf.removeBackend("webgpu");
      tf.registerBackend("webgpu", factory, priority);
    }

    // Without the fix: tfjs's own factory, on a stand-in that validates as Deno does.
    const unfixed: DeviceDescriptor[] = [];
    await withNavigatorGpu(await standInGpu(unfixed), async () => {
      await expect(Promise.resolve().then(factory)).rejects.toThrow(/index 1 can not be converted to a enum/);
    });
    expect(unfixed.map((d) => d.requiredFeatures)).toEqual([["timestamp-query", ["bgra8unorm-storage"]]]);

    // With it: the library's selection, which installs the fix on whatever navigator.gpu is.
    const fixed: DeviceDescriptor[] = [];
    try {
      await withNavigatorGpu(await standInGpu(fixed), async () => {
        const choice = await selectBackend("webgpu", { quiet: true });
        expect(choice.backend).toBe("webgpu");
        expect(choice.detail).toBe("NVIDIA H200 (stand-in)");
        const product = tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5], [6]]));
        expect(Array.from(await product.data())).toEqual([17, 39]);
        product.dispose();
      });
      expect(fixed.map((d) => d.requiredFeatures)).toEqual([["timestamp-query", "bgra8unorm-storage"]]);
      expect(fixed[0].requiredLimits).toBeDefined();
    } finally {
      await selectBackend("cpu", { quiet: true });
      tf.removeBackend("webgpu");
      tf.registerBackend("webgpu", factory, priority);
    }
  });

  it("flattens and de-duplicates requiredFeatures, and patches an adapter or GPU only once", async () => {
    expect(flattenRequiredFeatures(["timestamp-query", ["bgra8unorm-storage"], "timestamp-query"])).toEqual([
      "timestamp-query",
      "bgra8unorm-storage",
    ]);
    expect(flattenRequiredFeatures([])).toEqual([]);
    const calls: unknown[] = [];
    let infoReads = 0;
    const adapter = {
      get info() {
        infoReads += 1;
        return { description: "x" };
      },
      requestDevice(descriptor?: DeviceDescriptor) {
        calls.push(descriptor);
        return Promise.resolve("device");
      },
    };
    const gpu = { requestAdapter: () => Promise.resolve(adapter) };
    expect(installWebgpuCompat(gpu)).toBe(true);
    expect(installWebgpuCompat(gpu)).toBe(true);
    const got = (await gpu.requestAdapter()) as typeof adapter;
    expect(patchAdapter(got)).toBe(adapter);
    expect(infoReads).toBe(1); // read once, before any device; later reads get the snapshot
    expect(got.info).toEqual({ description: "x" });
    expect(await got.requestDevice({ requiredFeatures: [["a"], "b", ["b"]] })).toBe("device");
    await got.requestDevice();
    expect(calls).toEqual([{ requiredFeatures: ["a", "b"] }, undefined]);
  });
});

describe("isSoftwareAdapter", () => {
  const llvmpipe = {
    vendor: "65541",
    architecture: "",
    device: "0",
    description: "llvmpipe (LLVM 15.0.6, 256 bits)",
  };
  const cases: [string, AdapterLike, boolean][] = [
    ["llvmpipe as Deno 2.9.6 reports it", { info: { ...llvmpipe, isFallbackAdapter: true } }, true],
    ["llvmpipe with the flag hard-coded to false", { info: { ...llvmpipe, isFallbackAdapter: false } }, true],
    [
      "llvmpipe (flag false) described only by its vendor id",
      { info: { vendor: "0x10005", description: "", isFallbackAdapter: false } },
      true,
    ],
    ["the flag on the adapter (older runtimes)", { isFallbackAdapter: true, info: { vendor: "x" } }, true],
    [
      "SwiftShader",
      { info: { vendor: "google", architecture: "swiftshader", description: "SwiftShader Device (Subzero)" } },
      true,
    ],
    ["WARP", { info: { vendor: "microsoft", description: "Microsoft Basic Render Driver" } }, true],
    ["lavapipe by name", { isFallbackAdapter: false, info: { description: "lavapipe" } }, true],
    [
      "NVIDIA H200 (wgpu on Vulkan)",
      { isFallbackAdapter: false, info: { vendor: "4318", device: "9013", description: "NVIDIA H200" } },
      false,
    ],
    [
      "NVIDIA H200 (named vendor)",
      {
        info: {
          vendor: "nvidia",
          architecture: "hopper",
          device: "0x2335",
          description: "NVIDIA H200",
          isFallbackAdapter: false,
        },
      },
      false,
    ],
    ["AMD RADV", { info: { vendor: "4098", description: "AMD Radeon RX 7900 XTX (RADV NAVI31)" } }, false],
    ["no information at all", {}, false],
  ];
  for (const [name, adapter, software] of cases) {
    it(`${name}: ${software ? "software" : "hardware"}`, () => {
      expect(isSoftwareAdapter(adapter)).toBe(software);
    });
  }

  it("on a machine with only llvmpipe, plain webgpu is refused and webgpu-software is not", async () => {
    const adapter = await realGpu?.requestAdapter();
    if (!adapter) throw new Error("this test needs WebGPU on llvmpipe: install mesa-vulkan-drivers and libvulkan1");
    if (!isSoftwareAdapter(adapter as unknown as AdapterLike)) return; // a GPU machine: nothing to refuse
    await expect(selectBackend("webgpu", { quiet: true })).rejects.toThrow(BackendUnavailableError);
    await expect(selectBackend("webgpu", { quiet: true })).rejects.toThrow(/software fallback adapter \(llvmpipe/);
    const choice = await selectBackend("webgpu-software", { quiet: true });
    expect(choice.reason).toMatch(/software adapter llvmpipe/);
    await selectBackend("cpu", { quiet: true });
  });
});

describe("tfjs webgpu kernels that WebGPU (naga) rejects without a word", () => {
  /** Runs `graph` on cpu and on webgpu-software (GPU paths forced), returning both results. */
  async function onBoth(graph: () => tf.Tensor): Promise<{ cpu: number[]; webgpu: number[] }> {
    await selectBackend("cpu", { quiet: true });
    const reference = tf.tidy(graph);
    const cpu = Array.from(await reference.data());
    reference.dispose();
    await selectBackend("webgpu-software", { quiet: true });
    const forward = tf.env().getBool("WEBGPU_CPU_FORWARD");
    tf.env().set("WEBGPU_CPU_FORWARD", false); // small tensors too: the GPU path is the one in question
    clearWebgpuErrors();
    try {
      const result = tf.tidy(graph);
      const webgpu = Array.from(await result.data());
      result.dispose();
      expect(webgpuErrors()).toEqual([]);
      return { cpu, webgpu };
    } finally {
      tf.env().set("WEBGPU_CPU_FORWARD", forward);
      await selectBackend("cpu", { quiet: true });
    }
  }

  it("a reduction over a non-last axis of an int32 mask cast to float32 (masked mean pooling)", async () => {
    // Unfixed, tfjs's transpose shader reads the cast's int32 buffer as f32: the shader is invalid
    // and the batch's results are zeros.
    const { cpu, webgpu } = await onBoth(() => {
      const mask = tf.tensor2d([[1, 1, 1, 0], [1, 0, 0, 0]], [2, 4], "int32");
      const hidden = tf.tensor3d(Array.from({ length: 2 * 4 * 3 }, (_, i) => i - 7), [2, 4, 3]);
      const m = tf.expandDims(tf.cast(mask, "float32"), -1);
      return tf.div(tf.sum(tf.mul(hidden, m), 1), tf.sum(m, 1));
    });
    expect(cpu).toEqual([-4, -3, -2, 5, 6, 7]);
    expect(webgpu).toEqual(cpu);
  });

  it("a bool mask cast to float32 and transposed, and AddN over more inputs than a shader may bind", async () => {
    const { cpu, webgpu } = await onBoth(() => {
      const flags = tf.cast(tf.greater(tf.tensor2d([[1, -1, 2], [-2, 3, -3]]), 0), "float32");
      const terms = Array.from({ length: 20 }, (_, i) => tf.fill([3], i));
      return tf.concat([tf.reshape(tf.transpose(flags), [-1]), tf.addN(terms)]);
    });
    expect(cpu).toEqual([1, 0, 0, 1, 1, 0, 190, 190, 190]);
    expect(webgpu).toEqual(cpu);
  });
});
