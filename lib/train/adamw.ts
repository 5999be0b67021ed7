/**
 * AdamW (decoupled weight decay, Loshchilov & Hutter), with PyTorch's `torch.optim.AdamW`
 * semantics, and gradient clipping by global norm as `torch.nn.utils.clip_grad_norm_`.
 *
 * For each parameter p with gradient g, at step t (1-based):
 *   p <- p * (1 - lr * weightDecay)
 *   m <- beta1 * m + (1 - beta1) * g
 *   v <- beta2 * v + (1 - beta2) * g^2
 *   p <- p - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
 */
import { tf } from "../tf.ts";
import type { StateDict } from "../model/state_dict.ts";

export interface AdamWConfig {
  learningRate: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  weightDecay?: number;
}

/** AdamW over named variables; its moments can be saved and restored for resuming. */
export class AdamW {
  learningRate: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly weightDecay: number;
  /** Steps taken so far. */
  step = 0;
  private readonly moments = new Map<string, { m: tf.Variable; v: tf.Variable }>();

  constructor(config: AdamWConfig) {
    if (!(config.learningRate > 0)) throw new Error(`AdamW: learningRate must be > 0, got ${config.learningRate}`);
    this.learningRate = config.learningRate;
    this.beta1 = config.beta1 ?? 0.9;
    this.beta2 = config.beta2 ?? 0.999;
    this.epsilon = config.epsilon ?? 1e-8;
    this.weightDecay = config.weightDecay ?? 1e-2;
  }

  private momentsOf(variable: tf.Variable): { m: tf.Variable; v: tf.Variable } {
    let entry = this.moments.get(variable.name);
    if (!entry) {
      entry = tf.tidy(() => ({
        m: tf.variable(tf.zerosLike(variable), false),
        v: tf.variable(tf.zerosLike(variable), false),
      }));
      this.moments.set(variable.name, entry);
    }
    return entry;
  }

  /** Applies one update; `gradients` maps variable names to gradients (not disposed here). */
  applyGradients(variables: tf.Variable[], gradients: Record<string, tf.Tensor>): void {
    this.step += 1;
    const t = this.step;
    const lr = this.learningRate;
    const biasCorrection1 = 1 - Math.pow(this.beta1, t);
    const biasCorrection2 = 1 - Math.pow(this.beta2, t);
    for (const variable of variables) {
      const gradient = gradients[variable.name];
      if (!gradient) continue;
      const { m, v } = this.momentsOf(variable);
      tf.tidy(() => {
        const decayed = this.weightDecay > 0 ? tf.mul(variable, 1 - lr * this.weightDecay) : variable;
        const newM = tf.add(tf.mul(m, this.beta1), tf.mul(gradient, 1 - this.beta1));
        const newV = tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(gradient), 1 - this.beta2));
        m.assign(newM);
        v.assign(newV);
        const denominator = tf.add(tf.sqrt(tf.div(newV, biasCorrection2)), this.epsilon);
        variable.assign(tf.sub(decayed, tf.mul(tf.div(newM, denominator), lr / biasCorrection1)));
      });
    }
  }

  /** Moments as a state dict (`<name>/adam_m`, `<name>/adam_v`), for checkpoints. */
  async stateDict(): Promise<StateDict> {
    const out: StateDict = new Map();
    for (const [name, { m, v }] of this.moments) {
      out.set(`${name}/adam_m`, { dtype: "float32", shape: m.shape, data: (await m.data()) as Float32Array });
      out.set(`${name}/adam_v`, { dtype: "float32", shape: v.shape, data: (await v.data()) as Float32Array });
    }
    return out;
  }

  /** Restores moments saved by `stateDict` and the step count. */
  loadStateDict(state: StateDict, step: number): void {
    this.dispose();
    this.step = step;
    for (const [key, tensor] of state) {
      const match = key.match(/^(.*)\/adam_(m|v)$/);
      if (!match) throw new Error(`optimizer state: unexpected entry "${key}"`);
      const [, name, which] = match;
      const entry = this.moments.get(name) ?? ({} as { m: tf.Variable; v: tf.Variable });
      entry[which as "m" | "v"] = tf.tidy(() => tf.variable(tf.tensor(tensor.data, tensor.shape, "float32"), false));
      this.moments.set(name, entry);
    }
  }

  /** Frees the moment variables. */
  dispose(): void {
    for (const { m, v } of this.moments.values()) {
      m?.dispose();
      v?.dispose();
    }
    this.moments.clear();
  }
}

/**
 * Scales gradients so their global L2 norm is at most `maxNorm` (as clip_grad_norm_ with
 * norm_type 2: scale = maxNorm / (norm + 1e-6) when that is < 1). Returns the new gradients
 * (the inputs are disposed when replaced) and the norm before clipping.
 */
export async function clipGradientsByGlobalNorm(
  gradients: Record<string, tf.Tensor>,
  maxNorm: number,
): Promise<{ gradients: Record<string, tf.Tensor>; norm: number }> {
  const normTensor = tf.tidy(() => tf.sqrt(tf.addN(Object.values(gradients).map((g) => tf.sum(tf.square(g))))));
  const norm = (await normTensor.data())[0];
  normTensor.dispose();
  const scale = maxNorm / (norm + 1e-6);
  if (!(maxNorm > 0) || !Number.isFinite(norm) || scale >= 1) return { gradients, norm };
  const clipped: Record<string, tf.Tensor> = {};
  for (const [name, gradient] of Object.entries(gradients)) {
    clipped[name] = tf.mul(gradient, scale);
    gradient.dispose();
  }
  return { gradients: clipped, norm };
}
