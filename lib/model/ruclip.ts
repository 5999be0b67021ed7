/**
 * RuCLIP-tiny in tfjs: the reference's `RuCLIPtiny` module, with its parameter names
 * (`visual.*` timm ConvNeXt, `transformer.*` HF BERT, `final_ln` Linear(hidden -> projection),
 * `logit_scale`), so `cc12m_rubert_tiny_ep_1.pt` loads as is (under the prefix `ruclip.` inside
 * SiameseRuCLIP).
 *
 * Image features: pooled ConvNeXt features (768 for convnext_tiny).
 * Name features: final_ln(last hidden state of the [CLS] token).
 */
import { tf } from "../tf.ts";
import { type BertConfig, BertEncoder } from "./bert.ts";
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
}

/** The two CLIP towers: ConvNeXt for images, BERT + projection for names. */
export class RuCLIPTiny {
  readonly visual: ConvNeXt;
  readonly transformer: BertEncoder;
  readonly finalLn: Linear;
  /** CLIP temperature, log(1/0.07); loaded and saved, unused by the Siamese model. */
  readonly logitScale: tf.Variable;

  constructor(store: ParameterStore, prefix: string, readonly config: RuCLIPConfig) {
    const p = prefix ? `${prefix}.` : "";
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

  /** Name token ids / mask [n, T] -> final_ln([CLS] hidden state) [n, projectionDim]. */
  encodeName(ids: tf.Tensor2D, mask: tf.Tensor2D, training: boolean): tf.Tensor2D {
    return tf.tidy(() => {
      const hidden = this.transformer.apply(ids, mask, training);
      const cls = tf.squeeze(tf.slice(hidden, [0, 0, 0], [-1, 1, -1]), [1]);
      return this.finalLn.apply(cls) as tf.Tensor2D;
    });
  }
}
