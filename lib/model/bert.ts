/**
 * BERT encoder in tfjs with Hugging Face `BertModel` parameter names:
 *
 *   embeddings.{word_embeddings, position_embeddings, token_type_embeddings, LayerNorm}
 *   encoder.layer.N.attention.self.{query, key, value}
 *   encoder.layer.N.attention.output.{dense, LayerNorm}
 *   encoder.layer.N.intermediate.dense
 *   encoder.layer.N.output.{dense, LayerNorm}
 *   pooler.dense            (kept so checkpoints load; the towers here never use it)
 *
 * Positions are 0..T-1 and token types are all 0 (HF defaults when not given). Padding keys get
 * a large negative additive attention score. GELU is exact (erf); LayerNorm eps from the config
 * (1e-12 for BERT). Dropout (hidden and attention probabilities) only when training.
 */
import { tf } from "../tf.ts";
import { dropout, Embedding, gelu, LayerNorm, Linear } from "./layers.ts";
import type { ParameterStore } from "./params.ts";

/** Sizes of a BERT (HF BertConfig names in camelCase). */
export interface BertConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  maxPositions: number;
  typeVocabSize: number;
  /** 1e-12 in BERT. */
  layerNormEps: number;
  /** hidden_dropout_prob (0.1). */
  hiddenDropout: number;
  /** attention_probs_dropout_prob (0.1). */
  attentionDropout: number;
}

/** Added to attention scores of padding keys (exp() of it is exactly 0 in float32). */
const MASKED_SCORE = -1e9;
const BERT_INIT = { weight: { kind: "normal", std: 0.02 }, bias: { kind: "zeros" } } as const;

class BertLayer {
  private readonly query: Linear;
  private readonly key: Linear;
  private readonly value: Linear;
  private readonly attentionDense: Linear;
  private readonly attentionNorm: LayerNorm;
  private readonly intermediate: Linear;
  private readonly outputDense: Linear;
  private readonly outputNorm: LayerNorm;

  constructor(store: ParameterStore, prefix: string, private readonly config: BertConfig) {
    const h = config.hiddenSize;
    this.query = new Linear(store, `${prefix}.attention.self.query`, h, h, BERT_INIT);
    this.key = new Linear(store, `${prefix}.attention.self.key`, h, h, BERT_INIT);
    this.value = new Linear(store, `${prefix}.attention.self.value`, h, h, BERT_INIT);
    this.attentionDense = new Linear(store, `${prefix}.attention.output.dense`, h, h, BERT_INIT);
    this.attentionNorm = new LayerNorm(store, `${prefix}.attention.output.LayerNorm`, h, config.layerNormEps);
    this.intermediate = new Linear(store, `${prefix}.intermediate.dense`, h, config.intermediateSize, BERT_INIT);
    this.outputDense = new Linear(store, `${prefix}.output.dense`, config.intermediateSize, h, BERT_INIT);
    this.outputNorm = new LayerNorm(store, `${prefix}.output.LayerNorm`, h, config.layerNormEps);
  }

  /** x [n, T, H], additiveMask [n, 1, 1, T] -> [n, T, H]. */
  apply(x: tf.Tensor3D, additiveMask: tf.Tensor, training: boolean): tf.Tensor3D {
    return tf.tidy(() => {
      const [n, t, h] = x.shape;
      const heads = this.config.numHeads;
      const headDim = h / heads;
      const split = (y: tf.Tensor): tf.Tensor4D => tf.transpose(tf.reshape(y, [n, t, heads, headDim]), [0, 2, 1, 3]);
      const q = split(this.query.apply(x));
      const k = split(this.key.apply(x));
      const v = split(this.value.apply(x));
      const scores = tf.add(tf.div(tf.matMul(q, k, false, true), Math.sqrt(headDim)), additiveMask);
      const probs = dropout(tf.softmax(scores, -1), this.config.attentionDropout, training);
      const context = tf.reshape(tf.transpose(tf.matMul(probs as tf.Tensor4D, v), [0, 2, 1, 3]), [n, t, h]);
      const attended = this.attentionNorm.apply(
        tf.add(dropout(this.attentionDense.apply(context), this.config.hiddenDropout, training), x),
      );
      const inner = gelu(this.intermediate.apply(attended));
      return this.outputNorm.apply(
        tf.add(dropout(this.outputDense.apply(inner), this.config.hiddenDropout, training), attended),
      ) as tf.Tensor3D;
    });
  }
}

/** HF BertModel (encoder + unused pooler); `apply` returns last_hidden_state. */
export class BertEncoder {
  private readonly wordEmbeddings: Embedding;
  private readonly positionEmbeddings: Embedding;
  private readonly tokenTypeEmbeddings: Embedding;
  private readonly embeddingNorm: LayerNorm;
  private readonly layers: BertLayer[] = [];

  constructor(store: ParameterStore, prefix: string, readonly config: BertConfig) {
    if (config.hiddenSize % config.numHeads !== 0) {
      throw new Error(`BERT config: hiddenSize ${config.hiddenSize} is not a multiple of numHeads ${config.numHeads}`);
    }
    const p = prefix ? `${prefix}.` : "";
    const h = config.hiddenSize;
    this.wordEmbeddings = new Embedding(store, `${p}embeddings.word_embeddings`, config.vocabSize, h, 0.02);
    this.positionEmbeddings = new Embedding(store, `${p}embeddings.position_embeddings`, config.maxPositions, h, 0.02);
    this.tokenTypeEmbeddings = new Embedding(
      store,
      `${p}embeddings.token_type_embeddings`,
      config.typeVocabSize,
      h,
      0.02,
    );
    this.embeddingNorm = new LayerNorm(store, `${p}embeddings.LayerNorm`, h, config.layerNormEps);
    for (let i = 0; i < config.numLayers; i++) this.layers.push(new BertLayer(store, `${p}encoder.layer.${i}`, config));
    // pooler.dense: part of every BertModel checkpoint, not used by mean pooling or [CLS] projection
    new Linear(store, `${p}pooler.dense`, h, h, BERT_INIT, false);
  }

  /** ids [n, T] int32, mask [n, T] int32 (1 = token, 0 = padding) -> last hidden state [n, T, hidden]. */
  apply(ids: tf.Tensor2D, mask: tf.Tensor2D, training: boolean): tf.Tensor3D {
    const [n, t] = ids.shape;
    if (t > this.config.maxPositions) {
      throw new Error(
        `BERT input has ${t} tokens but the model has ${this.config.maxPositions} positions; truncate the text`,
      );
    }
    if (mask.shape[0] !== n || mask.shape[1] !== t) {
      throw new Error(`BERT attention mask shape [${mask.shape}] differs from token ids shape [${ids.shape}]`);
    }
    return tf.tidy(() => {
      const positions = tf.range(0, t, 1, "int32");
      let x = tf.add(this.wordEmbeddings.apply(ids), this.positionEmbeddings.apply(positions));
      x = tf.add(x, this.tokenTypeEmbeddings.apply(tf.zeros([1], "int32")));
      x = dropout(this.embeddingNorm.apply(x), this.config.hiddenDropout, training);
      const additiveMask = tf.reshape(tf.mul(tf.sub(1, tf.cast(mask, "float32")), MASKED_SCORE), [n, 1, 1, t]);
      let hidden = x as tf.Tensor3D;
      for (const layer of this.layers) hidden = layer.apply(hidden, additiveMask, training);
      return hidden;
    });
  }
}

/**
 * Attention-masked mean over tokens: sum(h * mask) / sum(mask); hidden [n, T, H], mask [n, T] -> [n, H].
 * A row with no tokens at all gives zeros (the reference would give NaN).
 */
export function maskedMeanPool(hidden: tf.Tensor3D, mask: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const m = tf.expandDims(tf.cast(mask, "float32"), -1);
    return tf.div(tf.sum(tf.mul(hidden, m), 1), tf.maximum(tf.sum(m, 1), 1e-9)) as tf.Tensor2D;
  });
}
