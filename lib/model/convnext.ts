/**
 * ConvNeXt image tower in tfjs, with timm's `convnext_tiny(num_classes=0)` parameter names:
 *
 *   stem.0 (conv 4x4 stride 4), stem.1 (LayerNorm2d)
 *   stages.N.downsample.0 (LayerNorm2d), stages.N.downsample.1 (conv 2x2 stride 2)   for N > 0
 *   stages.N.blocks.M.{conv_dw (depthwise 7x7), norm (LayerNorm), mlp.fc1, mlp.fc2, gamma (layer scale)}
 *   head.norm (LayerNorm2d applied after global average pooling)
 *
 * Input images are NHWC float32 (already normalised); output is [n, dims.at(-1)] pooled features.
 * All LayerNorms use eps 1e-6 as timm; GELU is exact (erf). No stochastic depth (timm's default 0).
 */
import { tf } from "../tf.ts";
import { gelu, LayerNorm, Linear } from "./layers.ts";
import { registerFastGradients } from "../fast_gradients.ts";
import type { ParameterStore } from "./params.ts";

/** Sizes of a ConvNeXt. */
export interface ConvNeXtConfig {
  /** Blocks per stage, e.g. [3, 3, 9, 3] for convnext_tiny. */
  depths: number[];
  /** Channels per stage, e.g. [96, 192, 384, 768]. */
  dims: number[];
  /** Input channels (3). */
  inChannels?: number;
  /** LayerNorm epsilon (timm: 1e-6). */
  layerNormEps?: number;
  /** Initial value of the layer scale `gamma` (timm: 1e-6). */
  layerScaleInit?: number;
}

const TIMM_INIT = { weight: { kind: "truncatedNormal", std: 0.02 }, bias: { kind: "zeros" } } as const;

class ConvNeXtBlock {
  private readonly dwWeight: tf.Variable;
  private readonly dwBias: tf.Variable;
  private readonly norm: LayerNorm;
  private readonly fc1: Linear;
  private readonly fc2: Linear;
  private readonly gamma: tf.Variable;

  constructor(store: ParameterStore, prefix: string, dim: number, eps: number, layerScaleInit: number) {
    this.dwWeight = store.add(`${prefix}.conv_dw.weight`, [dim, 1, 7, 7], "depthwise", TIMM_INIT.weight);
    this.dwBias = store.add(`${prefix}.conv_dw.bias`, [dim], "same", TIMM_INIT.bias);
    this.norm = new LayerNorm(store, `${prefix}.norm`, dim, eps);
    this.fc1 = new Linear(store, `${prefix}.mlp.fc1`, dim, 4 * dim, TIMM_INIT);
    this.fc2 = new Linear(store, `${prefix}.mlp.fc2`, 4 * dim, dim, TIMM_INIT);
    this.gamma = store.add(`${prefix}.gamma`, [dim], "same", { kind: "constant", value: layerScaleInit });
  }

  apply(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      let y: tf.Tensor = tf.depthwiseConv2d(x, this.dwWeight as tf.Tensor4D, 1, "same");
      y = tf.add(y, this.dwBias);
      y = this.fc2.apply(gelu(this.fc1.apply(this.norm.apply(y))));
      return tf.add(x, tf.mul(y, this.gamma)) as tf.Tensor4D;
    });
  }
}

/** A strided, unpadded conv with bias (stem 4x4/4, downsample 2x2/2), PyTorch names `{prefix}.weight/.bias`. */
class PatchConv {
  private readonly weight: tf.Variable;
  private readonly bias: tf.Variable;

  constructor(store: ParameterStore, prefix: string, inCh: number, outCh: number, private readonly size: number) {
    this.weight = store.add(`${prefix}.weight`, [outCh, inCh, size, size], "conv2d", TIMM_INIT.weight);
    this.bias = store.add(`${prefix}.bias`, [outCh], "same", TIMM_INIT.bias);
  }

  apply(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => tf.add(tf.conv2d(x, this.weight as tf.Tensor4D, this.size, "valid"), this.bias));
  }
}

/** ConvNeXt feature extractor (timm layout, classifier removed). */
export class ConvNeXt {
  /** Size of the pooled feature vector (timm's `num_features`). */
  readonly numFeatures: number;
  private readonly stem: PatchConv;
  private readonly stemNorm: LayerNorm;
  private readonly stages: { downsample?: { norm: LayerNorm; conv: PatchConv }; blocks: ConvNeXtBlock[] }[] = [];
  private readonly headNorm: LayerNorm;

  constructor(store: ParameterStore, prefix: string, readonly config: ConvNeXtConfig) {
    // The patchify and 7x7 depthwise convs' gradients on fast kernels where tfjs' would be slow (fast_gradients.ts).
    registerFastGradients();
    const { depths, dims } = config;
    if (depths.length !== dims.length || depths.length === 0) {
      throw new Error(
        `ConvNeXt config: depths (${depths.length}) and dims (${dims.length}) must be equally long and non-empty`,
      );
    }
    const eps = config.layerNormEps ?? 1e-6;
    const layerScaleInit = config.layerScaleInit ?? 1e-6;
    const p = prefix ? `${prefix}.` : "";
    this.stem = new PatchConv(store, `${p}stem.0`, config.inChannels ?? 3, dims[0], 4);
    this.stemNorm = new LayerNorm(store, `${p}stem.1`, dims[0], eps);
    for (let i = 0; i < depths.length; i++) {
      const stagePrefix = `${p}stages.${i}`;
      const downsample = i === 0 ? undefined : {
        norm: new LayerNorm(store, `${stagePrefix}.downsample.0`, dims[i - 1], eps),
        conv: new PatchConv(store, `${stagePrefix}.downsample.1`, dims[i - 1], dims[i], 2),
      };
      const blocks: ConvNeXtBlock[] = [];
      for (let j = 0; j < depths[i]; j++) {
        blocks.push(new ConvNeXtBlock(store, `${stagePrefix}.blocks.${j}`, dims[i], eps, layerScaleInit));
      }
      this.stages.push({ downsample, blocks });
    }
    this.numFeatures = dims[dims.length - 1];
    this.headNorm = new LayerNorm(store, `${p}head.norm`, this.numFeatures, eps);
  }

  /** images [n, H, W, C] NHWC float32 (H and W multiples of 32 for a 4-stage net) -> features [n, numFeatures]. */
  apply(images: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => {
      let x = this.stemNorm.apply(this.stem.apply(images)) as tf.Tensor4D;
      for (const stage of this.stages) {
        if (stage.downsample) x = stage.downsample.conv.apply(stage.downsample.norm.apply(x) as tf.Tensor4D);
        for (const block of stage.blocks) x = block.apply(x);
      }
      return this.headNorm.apply(tf.mean(x, [1, 2])) as tf.Tensor2D;
    });
  }
}
