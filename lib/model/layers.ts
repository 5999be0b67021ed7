/**
 * Small building blocks shared by ConvNeXt, BERT and the Siamese head: Linear, LayerNorm,
 * Embedding (parameters registered in a ParameterStore under PyTorch names), exact GELU and dropout.
 * All work on channels-last tensors (the last axis is the feature axis).
 */
import { tf } from "../tf.ts";
import type { Initializer, ParameterStore } from "./params.ts";

/** PyTorch nn.Linear's default initialiser bound: 1/sqrt(fan_in). */
export function torchDefaultLinearInit(inFeatures: number): Initializer {
  return { kind: "uniform", bound: 1 / Math.sqrt(inFeatures) };
}

/** nn.Linear: `{prefix}.weight` (PyTorch [out, in]) and `{prefix}.bias` [out]; applies to the last axis. */
export class Linear {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;

  constructor(
    store: ParameterStore,
    readonly prefix: string,
    readonly inFeatures: number,
    readonly outFeatures: number,
    init: { weight: Initializer; bias: Initializer } = {
      weight: torchDefaultLinearInit(inFeatures),
      bias: torchDefaultLinearInit(inFeatures),
    },
    usedInForward = true,
  ) {
    this.weight = store.add(`${prefix}.weight`, [outFeatures, inFeatures], "linear", init.weight, { usedInForward });
    this.bias = store.add(`${prefix}.bias`, [outFeatures], "same", init.bias, { usedInForward });
  }

  /** x[..., in] -> [..., out]. */
  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      if (x.rank === 2) return tf.add(tf.matMul(x as tf.Tensor2D, this.weight as tf.Tensor2D), this.bias);
      const lead = x.shape.slice(0, -1);
      const flat = tf.reshape(x, [-1, this.inFeatures]) as tf.Tensor2D;
      const y = tf.add(tf.matMul(flat, this.weight as tf.Tensor2D), this.bias);
      return tf.reshape(y, [...lead, this.outFeatures]);
    });
  }
}

/** nn.LayerNorm over the last axis: `{prefix}.weight`, `{prefix}.bias`. Biased variance, as PyTorch. */
export class LayerNorm {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;

  constructor(store: ParameterStore, readonly prefix: string, readonly size: number, readonly eps: number) {
    this.weight = store.add(`${prefix}.weight`, [size], "same", { kind: "ones" });
    this.bias = store.add(`${prefix}.bias`, [size], "same", { kind: "zeros" });
  }

  /** Normalises the last axis, then scales and shifts. */
  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(x, -1, true);
      const normed = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.eps)));
      return tf.add(tf.mul(normed, this.weight), this.bias);
    });
  }
}

/** nn.Embedding: `{prefix}.weight` [count, dim]; looks up int32 ids. */
export class Embedding {
  readonly weight: tf.Variable;

  constructor(
    store: ParameterStore,
    readonly prefix: string,
    readonly count: number,
    readonly dim: number,
    std: number,
  ) {
    this.weight = store.add(`${prefix}.weight`, [count, dim], "same", { kind: "normal", std });
  }

  /** ids [...] (int32) -> [..., dim]. */
  apply(ids: tf.Tensor): tf.Tensor {
    // gradient: UnsortedSegmentSum; lib/backend.ts registers a one-pass version for cpu and wasm
    return tf.gather(this.weight, ids);
  }
}

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** True when the active backend has a fused kernel `name` (lib/wasm_kernels/gelu.ts registers them for wasm). */
function hasFusedKernel(name: "Gelu" | "GeluGrad"): boolean {
  const backend = tf.getBackend();
  return backend === "wasm" && tf.getKernel(name, backend) !== undefined;
}

/** 0.5 * x * (1 + erf(x / sqrt(2))) from tfjs ops (every backend). */
function geluComposite(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)));
}

/** dy * (Phi(x) + x * phi(x)): the exact GELU derivative, Phi the normal CDF and phi its density. */
function geluGradComposite(x: tf.Tensor, dy: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const cdf = tf.mul(tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1), 0.5);
    const pdf = tf.mul(tf.exp(tf.mul(tf.square(x), -0.5)), INV_SQRT_2PI);
    return tf.mul(dy, tf.add(cdf, tf.mul(x, pdf)));
  });
}

/**
 * GELU as one gradient-tape node that saves only its input: the composite form would keep four
 * intermediates of the MLP's 4x-wide activations alive for the backward pass (about half of a ConvNeXt
 * training step's memory), and its backward would run five elementwise kernels.
 */
const geluNode = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const x = args[0] as tf.Tensor;
  (args[1] as tf.GradSaveFunc)([x]);
  return {
    value: hasFusedKernel("Gelu") ? tf.engine().runKernel("Gelu", { x }, {}) as tf.Tensor : geluComposite(x),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const grad = dy as tf.Tensor;
      return hasFusedKernel("GeluGrad")
        ? tf.engine().runKernel("GeluGrad", { x: saved[0], dy: grad }, {}) as tf.Tensor
        : geluGradComposite(saved[0], grad);
    },
  };
});

/** Exact GELU, as PyTorch's nn.GELU() default: 0.5 * x * (1 + erf(x / sqrt(2))). */
export function gelu(x: tf.Tensor): tf.Tensor {
  return geluNode(x) as tf.Tensor;
}

/** Seed of the next dropout mask, or null for unseeded masks (see seedDropout). */
let nextDropoutSeed: number | null = null;

/**
 * Makes the following dropout masks reproducible: the n-th dropout call after `seedDropout(s)` draws
 * its mask with seed s + n. The trainer seeds each step from the run's seed and the step number, so a
 * run (and a resumed run) repeats exactly. `null` goes back to unseeded masks.
 */
export function seedDropout(seed: number | null): void {
  nextDropoutSeed = seed;
}

/** Inverted dropout (scales kept values by 1/(1-rate)) when training; identity otherwise. */
export function dropout(x: tf.Tensor, rate: number, training: boolean): tf.Tensor {
  if (!training || rate <= 0) return x;
  if (nextDropoutSeed === null) return tf.dropout(x, rate);
  return tf.dropout(x, rate, undefined, nextDropoutSeed++);
}
