/**
 * The slice of @huggingface/transformers 4.3.1's API that lib/text uses, declared by hand.
 *
 * Why: the package's own .d.ts files pull protobufjs' `@types/node@14` into the type graph, which
 * hides Deno's built-in Node types (e.g. `node:test` stops type-checking in every test importing
 * lib/text). Modules import transformers with `// @ts-types="./transformers_api.d.ts"` instead.
 */

/** Tokenizer as loaded by `AutoTokenizer.from_pretrained`. */
export interface PreTrainedTokenizer {
  encode(text: string, options?: { add_special_tokens?: boolean }): number[];
  tokenize(text: string, options?: { add_special_tokens?: boolean }): string[];
  get_vocab(): Map<string, number> | Record<string, number>;
  pad_token_id?: number | null;
  readonly model_max_length: number;
}

/** Options of `from_pretrained`. */
export interface PretrainedOptions {
  local_files_only?: boolean;
  cache_dir?: string | null;
  revision?: string;
  device?: string;
  dtype?: string;
  config?: unknown;
}

export const AutoTokenizer: {
  from_pretrained(pathOrId: string, options?: PretrainedOptions): Promise<PreTrainedTokenizer>;
};

/** Tensor type names used here. */
export type DataType = "float32" | "int64" | "int32" | "float16" | "uint8" | "int8" | "bool";

/** transformers.js tensor (CPU data view). */
export class Tensor {
  constructor(type: DataType, data: BigInt64Array | Float32Array | Int32Array, dims: number[]);
  readonly type: DataType;
  readonly data: BigInt64Array | Float32Array | Int32Array | Uint16Array | Uint8Array | Int8Array;
  readonly dims: number[];
  dispose(): void;
}

/** Model config as read from config.json. */
export interface PretrainedConfig {
  model_type?: string;
  hidden_size?: number;
  max_position_embeddings?: number;
  [key: string]: unknown;
}

/** An encoder model: called with named input tensors, returns named output tensors. */
export interface PreTrainedModel {
  (inputs: Record<string, Tensor>): Promise<Record<string, Tensor>>;
  readonly config: PretrainedConfig;
  dispose(): Promise<unknown>;
}

export const AutoModel: {
  from_pretrained(pathOrId: string, options?: PretrainedOptions): Promise<PreTrainedModel>;
};

/** Global settings of the library. */
export const env: {
  allowRemoteModels: boolean;
  allowLocalModels: boolean;
  localModelPath: string;
  remoteHost: string;
  cacheDir: string | null;
  fetch: (input: string | URL, init?: unknown) => Promise<unknown>;
  [key: string]: unknown;
};

/** The feature-extraction pipeline (used by tests as a cross-check of our pooling). */
export type FeatureExtractionPipeline =
  & ((
    texts: string | string[],
    options?: { pooling?: "none" | "mean" | "cls"; normalize?: boolean },
  ) => Promise<Tensor>)
  & { dispose(): Promise<unknown> };

export function pipeline(
  task: "feature-extraction",
  model: string,
  options?: PretrainedOptions,
): Promise<FeatureExtractionPipeline>;
