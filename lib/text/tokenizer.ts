/**
 * Product-text tokenisation: loads a Hugging Face tokenizer (a local folder or a Hub id) through
 * @huggingface/transformers and encodes batches of product names/descriptions into fixed-length
 * id and mask arrays, truncating the way HF Python does (the closing [SEP] is kept) and padding.
 *
 * The reference SiameseRuCLIP tokenises with `max_length=77, truncation=True, padding="max_length"`.
 */
// @ts-types="./transformers_api.d.ts"
import { AutoTokenizer, env, type PreTrainedTokenizer } from "@huggingface/transformers";
import { join } from "node:path";
import { exists } from "../fs.ts";
import { dataDir } from "../paths.ts";
import { type ModelSource, resolveModelSource } from "../hub/model_source.ts";

/** Token budget of the reference model's text towers. */
export const DEFAULT_MAX_LENGTH = 77;

/** Options passed to transformers' `from_pretrained` for a given source. */
export interface PretrainedLoadOptions {
  local_files_only: boolean;
  cache_dir?: string;
  revision?: string;
}

/** A batch of encoded texts, row-major `[batch, length]`. */
export interface EncodedBatch {
  /** Token ids, `batch * length` entries. */
  inputIds: Int32Array;
  /** 1 for real tokens, 0 for padding; same layout as `inputIds`. */
  attentionMask: Int32Array;
  /** Number of texts. */
  batch: number;
  /** Tokens per row (after truncation and padding). */
  length: number;
}

/** How `encode` truncates and pads. */
export interface EncodeOptions {
  /** Longest row, special tokens included (default 77). */
  maxLength?: number;
  /** "max_length" pads every row to `maxLength` (default); "longest" pads to the batch's longest row. */
  padding?: "max_length" | "longest";
}

/** A loaded tokenizer for product texts. */
export interface ProductTokenizer {
  /** The folder or Hub id it was loaded from. */
  readonly source: string;
  /** Number of entries in the vocabulary (the embedding table's row count). */
  readonly vocabSize: number;
  /** Id used for padding. */
  readonly padId: number;
  /** Ids of one text with special tokens, not truncated. */
  ids(text: string): number[];
  /** Word pieces of one text, without special tokens. */
  tokenize(text: string): string[];
  /** Encodes texts: special tokens, truncation keeping the closing special token(s), padding, mask. */
  encode(texts: string[], options?: EncodeOptions): EncodedBatch;
}

/**
 * The `from_pretrained` options for a source. A local folder is read with `local_files_only`, so
 * nothing touches the network. A Hub id downloads through transformers' own hub client into
 * `dataDir()/models` (from `$HF_ENDPOINT` when set; cache only when `$HF_HUB_OFFLINE=1`).
 */
export function pretrainedLoadOptions(source: ModelSource): PretrainedLoadOptions {
  if (source.kind === "local") return { local_files_only: true };
  const revision = source.revision ? { revision: source.revision } : {};
  const endpoint = Deno.env.get("HF_ENDPOINT");
  if (endpoint) env.remoteHost = endpoint.endsWith("/") ? endpoint : `${endpoint}/`;
  const offline = ["1", "true", "yes"].includes((Deno.env.get("HF_HUB_OFFLINE") ?? "").toLowerCase());
  return { local_files_only: offline, cache_dir: join(dataDir(), "models"), ...revision };
}

/** Checks that a local folder holds the files a transformers tokenizer needs. */
async function checkTokenizerFolder(folder: string): Promise<void> {
  for (const file of ["tokenizer.json", "tokenizer_config.json"]) {
    if (!(await exists(join(folder, file)))) {
      throw new Error(
        `tokenizer folder ${folder} has no ${file}; it needs tokenizer.json and tokenizer_config.json ` +
          `(Hugging Face "fast tokenizer" layout; re-save with tokenizer.save_pretrained())`,
      );
    }
  }
}

/** How many special tokens the template puts before and after the text. */
function specialTokenLayout(tokenizer: PreTrainedTokenizer): { head: number; tail: number } {
  const probe = "a";
  const content: number[] = tokenizer.encode(probe, { add_special_tokens: false });
  const full: number[] = tokenizer.encode(probe);
  for (let head = 0; head + content.length <= full.length; head++) {
    if (content.every((id, i) => full[head + i] === id)) {
      return { head, tail: full.length - head - content.length };
    }
  }
  throw new Error("tokenizer: cannot locate the text between the special tokens of its template");
}

/** Wraps a transformers tokenizer as a ProductTokenizer. */
export function wrapTokenizer(tokenizer: PreTrainedTokenizer, source: string): ProductTokenizer {
  const padId = tokenizer.pad_token_id;
  if (typeof padId !== "number") {
    throw new Error(`tokenizer ${source} has no pad token; set "pad_token" in its tokenizer_config.json`);
  }
  const vocab = tokenizer.get_vocab() as Map<string, number> | Record<string, number>;
  const vocabSize = vocab instanceof Map ? vocab.size : Object.keys(vocab).length;
  const { head, tail } = specialTokenLayout(tokenizer);

  const truncate = (ids: number[], maxLength: number): number[] => {
    if (ids.length <= maxLength) return ids;
    return [...ids.slice(0, maxLength - tail), ...ids.slice(ids.length - tail)];
  };

  return {
    source,
    vocabSize,
    padId,
    ids: (text: string): number[] => tokenizer.encode(text),
    tokenize: (text: string): string[] => tokenizer.tokenize(text),
    encode(texts: string[], options: EncodeOptions = {}): EncodedBatch {
      const maxLength = options.maxLength ?? DEFAULT_MAX_LENGTH;
      if (!Number.isInteger(maxLength) || maxLength < head + tail + 1) {
        throw new Error(`encode: maxLength=${maxLength} must be an integer >= ${head + tail + 1} (room for one token)`);
      }
      const rows = texts.map((text, i) => {
        if (typeof text !== "string") throw new Error(`encode: text #${i} is ${typeof text}, expected a string`);
        return truncate(tokenizer.encode(text), maxLength);
      });
      const length = options.padding === "longest" ? Math.max(0, ...rows.map((row) => row.length)) : maxLength;
      const inputIds = new Int32Array(rows.length * length).fill(padId);
      const attentionMask = new Int32Array(rows.length * length);
      rows.forEach((row, r) => {
        inputIds.set(row, r * length);
        attentionMask.fill(1, r * length, r * length + row.length);
      });
      return { inputIds, attentionMask, batch: rows.length, length };
    },
  };
}

/**
 * Loads a tokenizer from a local folder (tokenizer.json + tokenizer_config.json) or a Hub id.
 * A local folder never touches the network.
 */
export async function loadTokenizer(pathOrHubId: string): Promise<ProductTokenizer> {
  const source = await resolveModelSource(pathOrHubId, "tokenizer");
  if (source.kind === "local") await checkTokenizerFolder(source.path);
  const where = source.kind === "local" ? source.path : source.id;
  try {
    const tokenizer = await AutoTokenizer.from_pretrained(where, pretrainedLoadOptions(source));
    return wrapTokenizer(tokenizer, where);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot load tokenizer from ${where}: ${message}`);
  }
}
