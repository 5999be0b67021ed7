/**
 * RuCLIP-tiny in tfjs: the reference's `RuCLIPtiny` module, with its parameter names
 * (`visual.*` timm ConvNeXt, `transformer.*` HF BERT, `final_ln` Linear(hidden -> projection),
 * `logit_scale`), so `cc12m_rubert_tiny_ep_1.pt` loads as is (under the prefix `ruclip.` inside
 * SiameseRuCLIP).
 *
 * Image features: pooled ConvNeXt features (768 for convnext_tiny).
 * Name features: final_ln(last hidden state of the [CLS] token), or with the config's `namePooling`
 * "mean", final_ln(attention-masked mean of the last hidden states).
 */
import { tf } from "../tf.ts";
import { type BertConfig, BertEncoder, maskedMeanPool } from "./bert.ts";
import { ConvNeXt, type ConvNeXtConfig } from "./convnext.ts";
import { Linear } from "./layers.ts";
import type { ParameterStore } from "./params.ts";

/** Sizes of a RuCLIP-tiny. */
export interface RuCLIPConfig {
  convnext: ConvNeXtConfig;
  /** The name (caption) BERT. */
  nameBert: BertConfig;
  /** Output size of final_ln (768: the image feature size of convnext_tiny). */
  projectionDim: number;
  /**
   * How the name tower pools its last hidden states: "cls" (the reference's, the [CLS] token) or "mean"
   * (attention-masked mean, as the description tower). Absent: "cls". A randomly initialised BERT's [CLS]
   * state barely depends on the other tokens (each layer adds little to the residual stream), so towers
   * trained from scratch start from nearly constant name features with "cls"; "mean" starts them from a
   * bag of token embeddings. No weights change.
   */
  namePooling?: NamePooling;
}

/** The name tower's poolings (RuCLIPConfig `namePooling`). */
export const NAME_POOLINGS = ["cls", "mean"] as const;
export type NamePooling = typeof NAME_POOLINGS[number];

/** The two CLIP towers: ConvNeXt for images, BERT + projection for names. */
export class RuCLIPTiny {
  readonly visual: ConvNeXt;
  readonly transformer: BertEncoder;
  readonly finalLn: Linear;
  /** CLIP temperature, log(1/0.07); loaded and saved, unused by the Siamese model. */
  readonly logitScale: tf.Variable;
  readonly namePooling: NamePooling;

  constructor(store: ParameterStore, prefix: string, readonly config: RuCLIPConfig) {
    const p = prefix ? `${prefix}.` : "";
    const pooling = config.namePooling ?? "cls";
    if (!(NAME_POOLINGS as readonly string[]).includes(pooling)) {
      throw new Error(
        `RuCLIPConfig.namePooling = ${JSON.stringify(pooling)}; expected one of ${NAME_POOLINGS.join(", ")}`,
      );
    }
    this.namePooling = pooling;
    this.visual = new ConvNeXt(store, `${p}visual`, config.convnext);
    this.transformer = new BertEncoder(store, `${p}transformer`, config.nameBert);
    this.finalLn = new Linear(store, `${p}final_ln`, config.nameBert.hiddenSize, config.projectionDim);
    this.logitScale = store.add(`${p}logit_scale`, [], "same", { kind: "constant", value: Math.log(1 / 0.07) }, {
      usedInForward: false,
    });
  }

  /** images [n, H, W, 3] NHWC normalised -> [n, visual.numFeatures]. */
  encodeImage(images: tf.Tensor4D): tf.Tensor2D {
    return this.visual.apply(images);
  }

  /** Name token ids / mask [n, T] -> final_ln(pooled hidden states) [n, projectionDim]. */
  encodeName(ids: tf.Tensor2D, mask: tf.Tensor2D, training: boolean): tf.Tensor2D {
    return tf.tidy(() => {
      const hidden = this.transformer.apply(ids, mask, training);
      const pooled = this.namePooling === "mean"
        ? maskedMeanPool(hidden, mask)
        : tf.squeeze(tf.slice(hidden, [0, 0, 0], [-1, 1, -1]), [1]);
      return this.finalLn.apply(pooled) as tf.Tensor2D;
    });
  }
}
