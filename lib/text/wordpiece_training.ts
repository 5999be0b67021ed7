/**
 * Learning a WordPiece vocabulary from a dataset's own TRAINING texts, for datasets that come without a
 * tokenizer, in any language and with nothing to download. The training is Hugging Face's Rust
 * `tokenizers` (the npm package `tokenizers`, its Node binding, prebuilt for each platform inside the
 * package): a BERT normaliser (lower-casing, accents kept, so Cyrillic and Latin both survive), the BERT
 * pre-tokeniser and the binding's WordPiece trainer.
 *
 * The binding's `train` uses the trainer's defaults (it takes no options): up to 30,000 tokens and no
 * special tokens. The trainer adds tokens in a fixed order — the alphabet, then the `##` continuation
 * characters, then each merge in the order it was learnt — so keeping the first `vocabSize - 5` tokens is
 * exactly the vocabulary the trainer would stop at with a smaller budget. The five BERT special tokens
 * come first ([PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4, as in data/shipped/tokenizer-demo/) and the
 * learnt tokens follow in the trainer's order.
 *
 * Training is not bit-for-bit repeatable: the trainer numbers the `##` characters in hash-map order and
 * breaks ties between equally frequent merges by those numbers, so two runs on the same texts may order
 * the alphabet differently and keep different tokens among equally frequent merges (the alphabet and the
 * size are the same). Train once and keep the saved folder: it is the reproducible artefact.
 *
 * `saveWordPieceTokenizer` writes a Hugging Face tokenizer folder (tokenizer.json, vocab.txt,
 * tokenizer_config.json, special_tokens_map.json) that `loadTokenizer` (tokenizer.ts, through
 * @huggingface/transformers) reads.
 *
 * @module
 */
import tokenizers from "tokenizers";
import { join } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../fs.ts";

/** The special tokens, in id order. */
export const SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] as const;

/** Options of `trainWordPiece`. */
export interface WordPieceTrainingOptions {
  /** Largest vocabulary, special tokens included (default 30,000, at least the alphabet + 5). */
  vocabSize?: number;
  /** Lower-case before splitting (default true). */
  lowercase?: boolean;
}

/** A learnt vocabulary: tokens in id order (the special tokens first). */
export interface WordPieceVocabulary {
  tokens: string[];
  lowercase: boolean;
  /** Texts it was learnt from (non-empty ones). */
  trainingTexts: number;
  /** Tokens the trainer learnt before the `vocabSize` cap was applied (special tokens excluded). */
  learntTokens: number;
  /** Size of the base alphabet (characters and `##` characters), which the cap never cuts. */
  alphabetSize: number;
}

// The binding's typings are not bundled for Deno's checker in a form it picks up; the parts used here:
interface NativeTokenizer {
  setNormalizer(normalizer: unknown): void;
  setPreTokenizer(preTokenizer: unknown): void;
  setDecoder(decoder: unknown): void;
  setPostProcessor(processor: unknown): void;
  addSpecialTokens(tokens: string[]): void;
  train(files: string[]): void;
  getVocab(withAddedTokens?: boolean): Record<string, number>;
  save(path: string, pretty?: boolean): void;
}
interface TokenizersModule {
  Tokenizer: new (model: unknown) => NativeTokenizer;
  WordPiece: {
    empty(): unknown;
    init(vocab: Record<string, number>, options?: Record<string, unknown>): unknown;
  };
  bertNormalizer(options?: Record<string, unknown>): unknown;
  bertPreTokenizer(): unknown;
  wordPieceDecoder(prefix?: string, cleanup?: boolean): unknown;
  templateProcessing(single: string, pair?: string, specialTokens?: [string, number][]): unknown;
}
const tk = tokenizers as unknown as TokenizersModule;

function configured(model: unknown, lowercase: boolean): NativeTokenizer {
  const tokenizer = new tk.Tokenizer(model);
  tokenizer.setNormalizer(
    tk.bertNormalizer({ cleanText: true, handleChineseChars: true, stripAccents: false, lowercase }),
  );
  tokenizer.setPreTokenizer(tk.bertPreTokenizer());
  tokenizer.setDecoder(tk.wordPieceDecoder("##", true));
  return tokenizer;
}

/**
 * Learns a WordPiece vocabulary from `trainingTexts` only (pass the training split's texts, never
 * validation or test). Throws when there is no text or the cap is smaller than the alphabet.
 */
export async function trainWordPiece(
  trainingTexts: readonly string[],
  options: WordPieceTrainingOptions = {},
): Promise<WordPieceVocabulary> {
  const vocabSize = options.vocabSize ?? 30000;
  const lowercase = options.lowercase ?? true;
  if (!Number.isInteger(vocabSize) || vocabSize < SPECIAL_TOKENS.length + 1) {
    throw new Error(`trainWordPiece: vocabSize=${vocabSize} must be an integer > ${SPECIAL_TOKENS.length}`);
  }
  const texts = trainingTexts.map((t, i) => {
    if (typeof t !== "string") throw new Error(`trainWordPiece: training text #${i} is ${typeof t}, not a string`);
    return t.replace(/[\r\n]+/g, " ").trim();
  }).filter((t) => t !== "");
  if (texts.length === 0) throw new Error("trainWordPiece: no non-empty training text to learn a vocabulary from");
  const dir = await Deno.makeTempDir({ prefix: "wordpiece-" });
  let learnt: [string, number][];
  try {
    const file = join(dir, "train.txt");
    await Deno.writeTextFile(file, texts.join("\n") + "\n");
    const trainer = configured(tk.WordPiece.empty(), lowercase);
    trainer.train([file]);
    learnt = Object.entries(trainer.getVocab(true)).sort((a, b) => a[1] - b[1]);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  const special = new Set<string>(SPECIAL_TOKENS);
  const ordered = learnt.map(([token]) => token).filter((token) => !special.has(token));
  // The base alphabet: single characters and "##" + one character (the trainer adds them before any merge).
  const alphabetSize = ordered.findIndex((token) => [...token.replace(/^##/, "")].length > 1);
  const base = alphabetSize < 0 ? ordered.length : alphabetSize;
  const budget = vocabSize - SPECIAL_TOKENS.length;
  if (budget < base) {
    throw new Error(
      `trainWordPiece: vocabSize=${vocabSize} is smaller than the training texts' alphabet ` +
        `(${base} characters and ##-characters + ${SPECIAL_TOKENS.length} special tokens); use at least ${
          base + SPECIAL_TOKENS.length
        }`,
    );
  }
  return {
    tokens: [...SPECIAL_TOKENS, ...ordered.slice(0, budget)],
    lowercase,
    trainingTexts: texts.length,
    learntTokens: ordered.length,
    alphabetSize: base,
  };
}

/**
 * Writes `vocabulary` as a Hugging Face tokenizer folder: tokenizer.json (serialised by the `tokenizers`
 * library), vocab.txt (one token per line, line = id), tokenizer_config.json and special_tokens_map.json.
 * Each file is written atomically. Returns the folder.
 */
export async function saveWordPieceTokenizer(folder: string, vocabulary: WordPieceVocabulary): Promise<string> {
  const vocab: Record<string, number> = {};
  vocabulary.tokens.forEach((token, id) => {
    if (token in vocab) throw new Error(`saveWordPieceTokenizer: token ${JSON.stringify(token)} appears twice`);
    vocab[token] = id;
  });
  const tokenizer = configured(
    tk.WordPiece.init(vocab, { unkToken: "[UNK]", continuingSubwordPrefix: "##", maxInputCharsPerWord: 100 }),
    vocabulary.lowercase,
  );
  tokenizer.setPostProcessor(
    tk.templateProcessing("[CLS] $A [SEP]", "[CLS] $A [SEP] $B:1 [SEP]:1", [["[CLS]", vocab["[CLS]"]], [
      "[SEP]",
      vocab["[SEP]"],
    ]]),
  );
  tokenizer.addSpecialTokens([...SPECIAL_TOKENS]);
  const dir = await Deno.makeTempDir({ prefix: "wordpiece-save-" });
  let json: string;
  try {
    const file = join(dir, "tokenizer.json");
    tokenizer.save(file, true);
    json = await Deno.readTextFile(file);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  const specialMap = {
    pad_token: "[PAD]",
    unk_token: "[UNK]",
    cls_token: "[CLS]",
    sep_token: "[SEP]",
    mask_token: "[MASK]",
  };
  await Deno.mkdir(folder, { recursive: true });
  await writeFileAtomic(join(folder, "tokenizer.json"), json);
  await writeFileAtomic(join(folder, "vocab.txt"), vocabulary.tokens.join("\n") + "\n");
  await writeJsonAtomic(join(folder, "tokenizer_config.json"), {
    tokenizer_class: "BertTokenizer",
    do_lower_case: vocabulary.lowercase,
    strip_accents: false,
    tokenize_chinese_chars: true,
    model_max_length: 512,
    clean_up_tokenization_spaces: true,
    ...specialMap,
  });
  await writeJsonAtomic(join(folder, "special_tokens_map.json"), specialMap);
  return folder;
}
