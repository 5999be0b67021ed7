/**
 * WordPiece vocabularies learnt from a dataset's training texts (lib/text/wordpiece_training.ts), saved
 * as a Hugging Face tokenizer folder and read back by the suite's own loader (lib/text/tokenizer.ts).
 */
import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { saveWordPieceTokenizer, SPECIAL_TOKENS, trainWordPiece } from "../lib/text/wordpiece_training.ts";
import { loadTokenizer } from "../lib/text/tokenizer.ts";

const TRAIN = [
  "Смартфон Samsung Galaxy A52 128 ГБ, чёрный",
  "Samsung Galaxy A52 smartphone 128GB black",
  "Кабель USB-C — USB-A, 1 м, белый",
  "USB-C cable 1 m white, fast charging",
  "Кофемашина DeLonghi Magnifica S автоматическая",
  "DeLonghi Magnifica S automatic coffee machine",
  "Чайник электрический Bosch 1,7 л",
  "Bosch electric kettle 1.7 l",
];
/** Never passed to the trainer: its words must not be in the vocabulary. */
const VALIDATION = ["Пылесос Dyson V15 Detect", "Dyson V15 Detect vacuum"];

/** Joins word pieces back into words ("##" continues the previous piece). */
function joinPieces(pieces: string[]): string[] {
  const words: string[] = [];
  for (const piece of pieces) {
    if (piece.startsWith("##") && words.length > 0) words[words.length - 1] += piece.slice(2);
    else words.push(piece);
  }
  return words;
}

describe("trainWordPiece", () => {
  it("learns from training texts only, saves a folder the suite's loader reads, and round-trips", async () => {
    const vocabulary = await trainWordPiece(TRAIN, { vocabSize: 400 });
    expect(vocabulary.tokens.slice(0, 5)).toEqual([...SPECIAL_TOKENS]);
    expect(vocabulary.trainingTexts).toBe(TRAIN.length);
    expect(new Set(vocabulary.tokens).size).toBe(vocabulary.tokens.length);
    for (const word of ["samsung", "galaxy", "кабель", "delonghi", "magnifica"]) {
      expect(vocabulary.tokens).toContain(word);
    }
    const validationWords = VALIDATION.join(" ").toLowerCase().split(/\s+/).filter((w) => w.length > 3);
    for (const word of validationWords) expect(vocabulary.tokens).not.toContain(word);
    expect(vocabulary.tokens.some((t) => /dyson|пылес|detect|vacu/.test(t))).toBe(false);
    for (const letter of ["п", "v", "##п", "##v"]) expect(vocabulary.tokens).not.toContain(letter); // validation only

    const folder = await saveWordPieceTokenizer(join(await Deno.makeTempDir(), "tok"), vocabulary);
    const files = [...Deno.readDirSync(folder)].map((e) => e.name).sort();
    expect(files).toEqual(["special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"]);
    expect((await Deno.readTextFile(join(folder, "vocab.txt"))).trim().split("\n")).toEqual(vocabulary.tokens);

    const tokenizer = await loadTokenizer(folder);
    expect(tokenizer.vocabSize).toBe(vocabulary.tokens.length);
    expect(tokenizer.padId).toBe(0);
    const sentence = "Samsung Galaxy смартфон, белый кабель";
    const pieces = tokenizer.tokenize(sentence);
    expect(joinPieces(pieces)).toEqual(["samsung", "galaxy", "смартфон", ",", "белый", "кабель"]);
    const ids = tokenizer.ids(sentence);
    expect(ids[0]).toBe(2); // [CLS]
    expect(ids.at(-1)).toBe(3); // [SEP]
    expect(ids.slice(1, -1)).toEqual(pieces.map((p) => vocabulary.tokens.indexOf(p)));
    // Unseen words are spelt from known pieces; a character never seen in training is [UNK].
    expect(joinPieces(tokenizer.tokenize("Galaxy machine"))).toEqual(["galaxy", "machine"]);
    expect(tokenizer.tokenize("samsung 漢 ¥")).toEqual(["samsung", "[UNK]", "[UNK]"]);
    const batch = tokenizer.encode(["кабель", "samsung galaxy black"], { maxLength: 6 });
    expect([...batch.inputIds.subarray(0, 6)]).toEqual([2, vocabulary.tokens.indexOf("кабель"), 3, 0, 0, 0]);
    expect([...batch.attentionMask.subarray(0, 6)]).toEqual([1, 1, 1, 0, 0, 0]);
  });

  it("caps the vocabulary after the trainer's base alphabet, which it never cuts", async () => {
    const full = await trainWordPiece(TRAIN);
    expect(full.tokens.length).toBe(full.learntTokens + 5);
    const cap = full.alphabetSize + 5 + 10;
    const capped = await trainWordPiece(TRAIN, { vocabSize: cap });
    expect(capped.tokens).toHaveLength(cap);
    expect(capped.learntTokens).toBe(full.learntTokens);
    // The alphabet (every character, and "##" + every character that continues a word) is whole.
    const alphabet = (v: typeof full) => new Set(v.tokens.slice(5, 5 + v.alphabetSize));
    expect(alphabet(capped)).toEqual(alphabet(full));
    for (const ch of new Set(TRAIN.join("").toLowerCase().replace(/\s/g, ""))) {
      expect(alphabet(full).has(ch)).toBe(true);
    }
    // After it come the first merges: tokens of two or more characters.
    for (const token of capped.tokens.slice(5 + capped.alphabetSize)) {
      expect([...token.replace(/^##/, "")].length).toBeGreaterThan(1);
    }
    await expect(trainWordPiece(TRAIN, { vocabSize: 20 })).rejects.toThrow(
      /vocabSize=20 is smaller than the training texts' alphabet/,
    );
  });

  it("keeps case when asked and rejects unusable input", async () => {
    const cased = await trainWordPiece(TRAIN, { lowercase: false });
    expect(cased.tokens).toContain("S");
    await expect(trainWordPiece(["", "  "])).rejects.toThrow(/no non-empty training text/);
    await expect(trainWordPiece(TRAIN, { vocabSize: 3 })).rejects.toThrow(/vocabSize=3 must be an integer > 5/);
  });
});
