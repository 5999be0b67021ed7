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

/** Exact GELU, as PyTorch's nn.GELU() default: 0.5 * x * (1 + erf(x / sqrt(2))). */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)));
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
