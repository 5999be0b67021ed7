/**
 * Sentence embeddings of product texts (name + description), as the reference notebook
 * `compute_embeddings_sbert` makes them with sentence-transformers: a BERT-like encoder run by
 * ONNX Runtime through @huggingface/transformers, mean pooling over the attention mask, then L2
 * normalisation.
 *
 * Tokenisation goes through ProductTokenizer rather than the feature-extraction pipeline so that
 * texts are cut like sentence-transformers cuts them: at `max_seq_length` (from
 * sentence_bert_config.json) with the closing [SEP] kept. For texts that fit, the result equals
 * `pipeline("feature-extraction", model)(texts, { pooling: "mean", normalize: true })` (tested).
 */
// @ts-types="./transformers_api.d.ts"
import { AutoModel, type PreTrainedModel, Tensor } from "@huggingface/transformers";
import { join } from "node:path";
import { concatRows } from "../embeddings/catalog.ts";
import { exists } from "../fs.ts";
import { shippedDir } from "../paths.ts";
import { loadTokenizer, pretrainedLoadOptions, type ProductTokenizer } from "./tokenizer.ts";
import { formatModelSource, type ModelSource, resolveModelSource } from "../hub/model_source.ts";

/** Multilingual (Russian included) sentence model with ONNX weights on the Hub, for real data. */
export const DEFAULT_SENTENCE_MODEL = "hf-hub:Xenova/paraphrase-multilingual-MiniLM-L12-v2";

/** sentence-transformers' max_seq_length for DEFAULT_SENTENCE_MODEL. */
export const DEFAULT_SENTENCE_MAX_LENGTH = 128;

/** The tiny random-weight stand-in shipped for demos and tests (not a trained model). */
export const DEMO_SENTENCE_MODEL: string = join(shippedDir, "sbert-tiny");

/** ONNX weight variants transformers.js knows, by dtype. */
export type SentenceModelDType = "fp32" | "fp16" | "q8" | "int8" | "uint8" | "q4" | "q4f16" | "bnb4";

const ONNX_FILE_SUFFIX: Record<SentenceModelDType, string> = {
  fp32: "",
  fp16: "_fp16",
  q8: "_quantized",
  int8: "_int8",
  uint8: "_uint8",
  q4: "_q4",
  q4f16: "_q4f16",
  bnb4: "_bnb4",
};

/** How to load a sentence model. */
export interface SentenceEncoderOptions {
  /** ONNX Runtime execution provider (default "cpu"). */
  device?: "cpu" | "webgpu";
  /** Which weight file to use: fp32 = onnx/model.onnx (default), q8 = onnx/model_quantized.onnx, ... */
  dtype?: SentenceModelDType;
  /** Token budget per text; default: sentence_bert_config.json's max_seq_length, else 128 for Hub ids. */
  maxLength?: number;
}

/** How to run `embed`. */
export interface EmbedOptions {
  /** Texts per forward pass (default 32). */
  batchSize?: number;
  /** Called after each batch with the number of texts embedded so far and the total. */
  onProgress?: (done: number, total: number) => void;
}

/** A loaded sentence encoder. */
export interface SentenceEncoder {
  /** The folder or Hub id it was loaded from. */
  readonly source: string;
  /** Embedding size (the encoder's hidden size). */
  readonly dimension: number;
  /** Token budget per text, special tokens included. */
  readonly maxLength: number;
  /** The tokenizer used. */
  readonly tokenizer: ProductTokenizer;
  /** One unit-length embedding per text, in input order. */
  embed(texts: string[], options?: EmbedOptions): Promise<Float32Array[]>;
  /** Releases the ONNX session. */
  dispose(): Promise<void>;
}

/** Reads max_seq_length from a local sentence_bert_config.json, if there is one. */
async function localMaxSeqLength(folder: string): Promise<number | undefined> {
  const file = join(folder, "sentence_bert_config.json");
  if (!(await exists(file))) return undefined;
  const value = JSON.parse(await Deno.readTextFile(file))?.max_seq_length;
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < 3) throw new Error(`${file}: max_seq_length=${value} is not an integer >= 3`);
  return value;
}

/** Checks that a local folder holds config.json and the ONNX file for `dtype`. */
async function checkModelFolder(folder: string, dtype: SentenceModelDType): Promise<void> {
  if (!(await exists(join(folder, "config.json")))) {
    throw new Error(`sentence model folder ${folder} has no config.json; it needs the Hugging Face model layout`);
  }
  const onnx = join(folder, "onnx", `model${ONNX_FILE_SUFFIX[dtype]}.onnx`);
  if (!(await exists(onnx))) {
    throw new Error(
      `sentence model folder ${folder} has no onnx/model${ONNX_FILE_SUFFIX[dtype]}.onnx for dtype "${dtype}"; ` +
        `export it to ONNX or pick a dtype whose file exists`,
    );
  }
}

/** Mean of the unmasked token states of each row, L2-normalised. `hidden` is [batch, length, dim]. */
export function meanPoolNormalize(
  hidden: Float32Array,
  mask: Int32Array,
  batch: number,
  length: number,
  dim: number,
): Float32Array[] {
  const out: Float32Array[] = [];
  for (let b = 0; b < batch; b++) {
    const sum = new Float64Array(dim);
    let count = 0;
    for (let t = 0; t < length; t++) {
      if (mask[b * length + t] === 0) continue;
      count++;
      const offset = (b * length + t) * dim;
      for (let d = 0; d < dim; d++) sum[d] += hidden[offset + d];
    }
    const pooled = new Float32Array(dim);
    let norm = 0;
    for (let d = 0; d < dim; d++) {
      pooled[d] = sum[d] / Math.max(count, 1e-9);
      norm += pooled[d] * pooled[d];
    }
    const scale = 1 / Math.max(Math.sqrt(norm), 1e-12);
    for (let d = 0; d < dim; d++) pooled[d] *= scale;
    out.push(pooled);
  }
  return out;
}

function int64Tensor(values: Int32Array, dims: number[]): Tensor {
  return new Tensor("int64", BigInt64Array.from(values, (v) => BigInt(v)), dims);
}

/** Runs one padded batch through the model and pools it. */
async function embedBatch(
  model: PreTrainedModel,
  tokenizer: ProductTokenizer,
  texts: string[],
  maxLength: number,
): Promise<Float32Array[]> {
  const encoded = tokenizer.encode(texts, { maxLength, padding: "longest" });
  const dims = [encoded.batch, encoded.length];
  const inputs = {
    input_ids: int64Tensor(encoded.inputIds, dims),
    attention_mask: int64Tensor(encoded.attentionMask, dims),
    token_type_ids: int64Tensor(new Int32Array(encoded.inputIds.length), dims),
  };
  try {
    const outputs = await model(inputs);
    const hidden = outputs.last_hidden_state;
    if (!hidden) throw new Error(`model returned no last_hidden_state (outputs: ${Object.keys(outputs).join(", ")})`);
    try {
      if (hidden.type !== "float32" || !(hidden.data instanceof Float32Array)) {
        throw new Error(`last_hidden_state is ${hidden.type}; expected float32 (use dtype fp32 or q8 on cpu)`);
      }
      const [batch, length, dim] = hidden.dims;
      return meanPoolNormalize(hidden.data, encoded.attentionMask, batch, length, dim);
    } finally {
      for (const output of Object.values(outputs)) output.dispose();
    }
  } finally {
    for (const input of Object.values(inputs)) input.dispose();
  }
}

/**
 * Loads a sentence model from a local folder (HF layout with onnx/model*.onnx) or a Hub id, e.g.
 * DEFAULT_SENTENCE_MODEL for real data or DEMO_SENTENCE_MODEL offline. A local folder never
 * touches the network; a missing model is one error line naming the folder/id and the cause.
 */
export async function loadSentenceEncoder(
  modelIdOrPath: string = DEMO_SENTENCE_MODEL,
  options: SentenceEncoderOptions = {},
): Promise<SentenceEncoder> {
  const dtype = options.dtype ?? "fp32";
  if (!(dtype in ONNX_FILE_SUFFIX)) {
    throw new Error(`dtype "${dtype}" is not one of ${Object.keys(ONNX_FILE_SUFFIX).join(", ")}`);
  }
  const source: ModelSource = await resolveModelSource(modelIdOrPath, "sentence model");
  const where = source.kind === "local" ? source.path : source.id;
  if (source.kind === "local") await checkModelFolder(source.path, dtype);
  const tokenizer = await loadTokenizer(formatModelSource(source));
  let model: PreTrainedModel;
  try {
    model = await AutoModel.from_pretrained(where, {
      ...pretrainedLoadOptions(source),
      device: options.device ?? "cpu",
      dtype,
    });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot load sentence model from ${where}: ${message.split("\n")[0]}`);
  }
  const dimension = Number(model.config.hidden_size);
  if (!Number.isInteger(dimension) || dimension <= 0) {
    await model.dispose();
    throw new Error(`sentence model ${where}: config.json has no valid hidden_size`);
  }
  const configured = source.kind === "local" ? await localMaxSeqLength(source.path) : DEFAULT_SENTENCE_MAX_LENGTH;
  const positions = Number(model.config.max_position_embeddings ?? Infinity);
  const maxLength = options.maxLength ?? Math.min(configured ?? 512, positions);

  return {
    source: where,
    dimension,
    maxLength,
    tokenizer,
    async embed(texts: string[], embedOptions: EmbedOptions = {}): Promise<Float32Array[]> {
      const batchSize = embedOptions.batchSize ?? 32;
      if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`embed: batchSize=${batchSize} must be >= 1`);
      // Longest texts first (as sentence-transformers does) so each batch pads little.
      const order = texts.map((text, i) => ({ i, n: text.length })).sort((a, b) => b.n - a.n || a.i - b.i);
      const result: Float32Array[] = new Array(texts.length);
      for (let start = 0; start < order.length; start += batchSize) {
        const slice = order.slice(start, start + batchSize);
        const vectors = await embedBatch(model, tokenizer, slice.map(({ i }) => texts[i]), maxLength);
        slice.forEach(({ i }, k) => (result[i] = vectors[k]));
        embedOptions.onProgress?.(Math.min(start + batchSize, texts.length), texts.length);
      }
      return result;
    },
    async dispose(): Promise<void> {
      await model.dispose();
    },
  };
}

/**
 * An `embedCatalog` encoder over `texts` (one per catalog row): the rows' sentence embeddings as one
 * row-major matrix.
 */
export function textRowsEncoder(
  encoder: SentenceEncoder,
  texts: readonly string[],
  batchSize?: number,
): (rows: number[]) => Promise<Float32Array> {
  return async (rows) => {
    return concatRows(await encoder.embed(rows.map((r) => texts[r]), { batchSize }), encoder.dimension);
  };
}
