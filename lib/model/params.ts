/**
 * The parameter store: every weight of a model is a `tf.Variable` registered under its PyTorch
 * name (e.g. `ruclip.visual.stages.1.blocks.0.conv_dw.weight`), so PyTorch state dicts load
 * without renaming. The store converts between PyTorch layouts (Linear [out, in], Conv2d
 * [out, in, kh, kw]) and tfjs layouts (dense [in, out], conv filters [kh, kw, in, out]).
 */
import { tf } from "../tf.ts";
import type { HostTensor, LoadReport, StateDict } from "./state_dict.ts";

/** How a parameter is laid out in PyTorch compared with tfjs. */
export type TorchLayout =
  /** Same layout in both (biases, LayerNorm, embeddings, layer scale, scalars). */
  | "same"
  /** nn.Linear weight: PyTorch [out, in], tfjs [in, out]. */
  | "linear"
  /** nn.Conv2d weight: PyTorch [out, in, kh, kw], tfjs conv2d filter [kh, kw, in, out]. */
  | "conv2d"
  /** Depthwise nn.Conv2d (groups = channels): PyTorch [C, 1, kh, kw], tfjs [kh, kw, C, 1]. */
  | "depthwise";

/** How a fresh parameter is filled. */
export type Initializer =
  | { kind: "zeros" }
  | { kind: "ones" }
  | { kind: "constant"; value: number }
  /** Normal with this std (BERT: 0.02). */
  | { kind: "normal"; std: number }
  /** Normal truncated at 2 std (timm: std 0.02). */
  | { kind: "truncatedNormal"; std: number }
  /** Uniform in [-bound, bound] (PyTorch nn.Linear default: bound = 1/sqrt(fan_in)). */
  | { kind: "uniform"; bound: number };

/** Options of `ParameterStore.add`. */
export interface AddParameterOptions {
  /** False for weights a checkpoint carries but the forward pass never reads (BERT pooler, CLIP logit scale). */
  usedInForward?: boolean;
}

/** Options of `loadStateDict`. */
export interface LoadStateDictOptions {
  /** Throw (before changing any weight) when anything is missing, unexpected or mismatched. Default true. */
  strict?: boolean;
  /**
   * Prepended to every state-dict key, e.g. `"ruclip."` to load a RuCLIP-tiny checkpoint
   * (`cc12m_rubert_tiny_ep_1.pt`) into a SiameseRuCLIP. With a prefix, only this model's
   * parameters under the prefix count as missing.
   */
  prefix?: string;
}

/** What the store keeps about each parameter. */
export interface ParameterEntry {
  name: string;
  variable: tf.Variable;
  torchShape: number[];
  layout: TorchLayout;
  usedInForward: boolean;
}

/**
 * State-dict keys that are buffers, not parameters, in HF BERT checkpoints: older transformers
 * saved `embeddings.position_ids` (int64 [1, max_positions]); we always use 0..T-1 positions
 * and token type 0, so these are accepted and ignored.
 */
const IGNORED_BUFFER_SUFFIXES = [".position_ids", "embeddings.token_type_ids"];

let storeCounter = 0;

function product(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The tfjs shape of a parameter with this PyTorch shape and layout. */
export function tfShapeOf(torchShape: number[], layout: TorchLayout): number[] {
  switch (layout) {
    case "same":
      return [...torchShape];
    case "linear":
      return [torchShape[1], torchShape[0]];
    case "conv2d":
      return [torchShape[2], torchShape[3], torchShape[1], torchShape[0]];
    case "depthwise":
      return [torchShape[2], torchShape[3], torchShape[0], torchShape[1]];
  }
}

const TO_TF_PERM: Record<Exclude<TorchLayout, "same">, number[]> = {
  linear: [1, 0],
  conv2d: [2, 3, 1, 0],
  depthwise: [2, 3, 0, 1],
};
const TO_TORCH_PERM: Record<Exclude<TorchLayout, "same">, number[]> = {
  linear: [1, 0],
  conv2d: [3, 2, 0, 1],
  depthwise: [2, 3, 0, 1],
};

/** Converts a host tensor in PyTorch layout to a float32 tfjs tensor in tfjs layout. */
export function torchToTf(host: HostTensor, layout: TorchLayout): tf.Tensor {
  return tf.tidy(() => {
    const data = host.data instanceof Float32Array ? host.data : Float32Array.from(host.data);
    const t = tf.tensor(data, host.shape, "float32");
    return layout === "same" ? t : tf.transpose(t, TO_TF_PERM[layout]);
  });
}

/**
 * Converts a tfjs tensor in tfjs layout back to a host tensor in PyTorch layout. Asynchronous
 * because a synchronous read (`dataSync`) fails on webgpu under Deno; the values are copied, so
 * the result does not alias the tensor's (cpu backend) storage.
 */
export async function tfToTorch(value: tf.Tensor, layout: TorchLayout): Promise<HostTensor> {
  const t = layout === "same" ? value : tf.transpose(value, TO_TORCH_PERM[layout]);
  try {
    const data = (await t.data()) as Float32Array;
    return { dtype: "float32", shape: [...t.shape], data: Float32Array.from(data) };
  } finally {
    if (t !== value) t.dispose();
  }
}

function initialValue(shape: number[], init: Initializer, seed: number): tf.Tensor {
  switch (init.kind) {
    case "zeros":
      return tf.zeros(shape);
    case "ones":
      return tf.ones(shape);
    case "constant":
      return tf.fill(shape, init.value);
    case "normal":
      return tf.randomNormal(shape, 0, init.std, "float32", seed);
    case "truncatedNormal":
      return tf.truncatedNormal(shape, 0, init.std, "float32", seed);
    case "uniform":
      return tf.randomUniform(shape, -init.bound, init.bound, "float32", seed);
  }
}

/** Named tf.Variables with PyTorch names, shapes and layouts; loads and saves PyTorch state dicts. */
export class ParameterStore {
  private readonly entries = new Map<string, ParameterEntry>();
  private readonly id: number;
  private nextSeed: number;
  private disposed = false;

  /**
   * @param seed seed of the random initialisers (each parameter gets seed + its index)
   * @param zeroInit fill every parameter with zeros instead (fast; for models that will load weights)
   */
  constructor(seed = 0, private readonly zeroInit = false) {
    this.id = ++storeCounter;
    this.nextSeed = seed;
  }

  /** Creates and registers a parameter; returns its variable (tfjs layout). */
  add(
    name: string,
    torchShape: number[],
    layout: TorchLayout,
    init: Initializer,
    options: AddParameterOptions = {},
  ): tf.Variable {
    if (this.entries.has(name)) throw new Error(`parameter "${name}" is declared twice in the model`);
    const shape = tfShapeOf(torchShape, layout);
    const seed = this.nextSeed++;
    const value = tf.tidy(() => initialValue(shape, this.zeroInit ? { kind: "zeros" } : init, seed));
    const variable = tf.variable(value, true, `m${this.id}/${name}`, "float32");
    value.dispose();
    this.entries.set(name, {
      name,
      variable,
      torchShape: [...torchShape],
      layout,
      usedInForward: options.usedInForward ?? true,
    });
    return variable;
  }

  /** The variable of a parameter by PyTorch name. */
  get(name: string): tf.Variable {
    const entry = this.entries.get(name);
    if (!entry) throw new Error(`model has no parameter "${name}"`);
    return entry.variable;
  }

  /** All parameter entries in declaration order. */
  list(): ParameterEntry[] {
    return [...this.entries.values()];
  }

  /** Variables selected by a name filter (default: those the forward pass uses). */
  variables(filter: (entry: ParameterEntry) => boolean = (e) => e.usedInForward): tf.Variable[] {
    return this.list().filter(filter).map((e) => e.variable);
  }

  /** Number of scalar weights (all parameters, as PyTorch's `sum(p.numel())`), optionally filtered. */
  parameterCount(filter: (entry: ParameterEntry) => boolean = () => true): number {
    return this.list().filter(filter).reduce((sum, e) => sum + product(e.torchShape), 0);
  }

  /**
   * Loads a PyTorch state dict: converts layouts, checks shapes. Strict mode (default) throws
   * before changing anything when a parameter is missing, a key is unexpected or a shape differs;
   * otherwise it loads what matches and reports the rest.
   */
  loadStateDict(sd: StateDict, options: LoadStateDictOptions = {}): LoadReport {
    this.assertAlive();
    const strict = options.strict ?? true;
    const prefix = options.prefix ?? "";
    const report: LoadReport = { missing: [], unexpected: [], mismatched: [] };
    const toLoad: [ParameterEntry, HostTensor][] = [];
    const seen = new Set<string>();
    for (const [key, host] of sd) {
      const name = prefix + key;
      const entry = this.entries.get(name);
      if (!entry) {
        if (!IGNORED_BUFFER_SUFFIXES.some((s) => name.endsWith(s))) report.unexpected.push(name);
        continue;
      }
      seen.add(name);
      const sameShape = host.shape.length === entry.torchShape.length &&
        host.shape.every((d, i) => d === entry.torchShape[i]);
      if (!sameShape || host.data.length !== product(entry.torchShape)) {
        report.mismatched.push(
          `${name}: expected [${entry.torchShape.join(", ")}], got [${host.shape.join(", ")}]` +
            (sameShape ? ` with ${host.data.length} values` : ""),
        );
        continue;
      }
      toLoad.push([entry, host]);
    }
    for (const name of this.entries.keys()) {
      if (name.startsWith(prefix) && !seen.has(name)) report.missing.push(name);
    }
    const problems = report.missing.length + report.unexpected.length + report.mismatched.length;
    if (strict && problems > 0) {
      const show = (label: string, items: string[]): string =>
        items.length === 0
          ? ""
          : `\n  ${label} (${items.length}): ${items.slice(0, 20).join("; ")}${items.length > 20 ? "; ..." : ""}`;
      throw new Error(
        `state dict does not fit the model${prefix ? ` (keys prefixed with "${prefix}")` : ""}:` +
          show("missing", report.missing) + show("unexpected", report.unexpected) +
          show("shape mismatch", report.mismatched) +
          `\n  Check that the checkpoint and the model preset match, or pass { strict: false } to load what fits.`,
      );
    }
    for (const [entry, host] of toLoad) {
      const value = torchToTf(host, entry.layout);
      entry.variable.assign(value);
      value.dispose();
    }
    return report;
  }

  /**
   * The weights as a PyTorch state dict (PyTorch names, shapes and layouts), in declaration order.
   * Asynchronous (see `tfToTorch`): checkpoints are saved every epoch, on every backend.
   */
  async stateDict(): Promise<StateDict> {
    this.assertAlive();
    const sd: StateDict = new Map();
    for (const entry of this.entries.values()) sd.set(entry.name, await tfToTorch(entry.variable, entry.layout));
    return sd;
  }

  /** Disposes every variable; the store cannot be used afterwards. */
  dispose(): void {
    for (const entry of this.entries.values()) entry.variable.dispose();
    this.entries.clear();
    this.disposed = true;
  }

  private assertAlive(): void {
    if (this.disposed) throw new Error("model parameters were disposed; create the model again");
  }
}
