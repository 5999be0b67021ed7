/**
 * A lexical baseline: TF-IDF cosine similarity between the two sides of each pair, with the IDF fitted on
 * TRAINING texts only. It reproduces scikit-learn's `TfidfVectorizer()` defaults (checked to 1e-9 against
 * tests/fixtures/eval/tfidf_reference.json, written by scripts/fixtures/make_lexical_fixtures.py):
 *
 * - tokens: lower-cased text, then every run of two or more word characters (`(?u)\b\w\w+\b`; a word
 *   character is a Unicode letter, digit/number or "_", as Python's `re` has it);
 * - term frequency: raw counts (`sublinear_tf=False`); vocabulary: every training term (no pruning);
 * - IDF: `ln((1 + n) / (1 + df)) + 1` (`smooth_idf=True`); terms unseen in training are ignored;
 * - each vector L2-normalised; the score is the cosine (the dot product; 0 when a side has no known term);
 * - or, with `analyzer: "char_wb"`, character n-grams inside word boundaries (default lengths 3-5), as
 *   `TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5))` (the same fixture's "char_wb" part).
 *
 * Scores follow lib/eval/pair_metrics.ts' convention (higher = more likely the same product), so
 * `chooseThreshold` on validation scores and `applyThreshold` on test scores take them as they are.
 *
 * @module
 */

/** Word characters as Python's `re` defines `\w` for str patterns: letters, numbers, underscore. */
const TOKEN = /[\p{L}\p{N}_]{2,}/gu;

/**
 * How texts become terms: `"word"` (scikit-learn's default token pattern) or `"char_wb"` (character
 * n-grams inside word boundaries: each whitespace-separated word padded with one space on each side,
 * as scikit-learn's `analyzer="char_wb"`).
 */
export type TfidfAnalyzer = "word" | "char_wb";

/** Options of `fitTfidf`. */
export interface TfidfOptions {
  /** Lower-case before tokenising (default true, as scikit-learn). */
  lowercase?: boolean;
  /** Default "word". */
  analyzer?: TfidfAnalyzer;
  /** n-gram lengths [min, max] of the char_wb analyzer (default [3, 5]); the word analyzer uses unigrams. */
  ngramRange?: [number, number];
}

/** A fitted TF-IDF model: term -> column (terms in code-point order, as scikit-learn) and each column's IDF. */
export interface TfidfModel {
  vocabulary: Map<string, number>;
  idf: Float64Array;
  lowercase: boolean;
  analyzer: TfidfAnalyzer;
  ngramRange: [number, number];
  /** Number of training texts the IDF was fitted on. */
  documents: number;
}

/** A sparse, L2-normalised TF-IDF vector: column indices ascending and their values. */
export interface SparseVector {
  indices: Int32Array;
  values: Float64Array;
}

/** The tokens of a text as scikit-learn's default analyzer makes them. */
export function tfidfTokens(text: string, lowercase = true): string[] {
  const source = lowercase ? text.toLowerCase() : text;
  return source.match(TOKEN) ?? [];
}

/** Character n-grams within word boundaries, as scikit-learn's `_char_wb_ngrams` (code points, not UTF-16 units). */
export function charWbNgrams(text: string, ngramRange: [number, number] = [3, 5], lowercase = true): string[] {
  const [minN, maxN] = ngramRange;
  if (!(Number.isInteger(minN) && Number.isInteger(maxN) && minN >= 1 && maxN >= minN)) {
    throw new Error(`char_wb ngramRange must be integers 1 <= min <= max, got [${minN}, ${maxN}]`);
  }
  const source = lowercase ? text.toLowerCase() : text;
  const grams: string[] = [];
  for (const word of source.split(/\s+/u)) {
    if (word === "") continue;
    const w = [..." " + word + " "];
    for (let n = minN; n <= maxN; n++) {
      let offset = 0;
      grams.push(w.slice(0, n).join(""));
      while (offset + n < w.length) {
        offset++;
        grams.push(w.slice(offset, offset + n).join(""));
      }
      if (offset === 0) break; // a word shorter than n counts once
    }
  }
  return grams;
}

function modelTerms(model: Pick<TfidfModel, "analyzer" | "ngramRange" | "lowercase">, text: string): string[] {
  return model.analyzer === "char_wb"
    ? charWbNgrams(text, model.ngramRange, model.lowercase)
    : tfidfTokens(text, model.lowercase);
}

function codePointCompare(a: string, b: string): number {
  const x = [...a], y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0)! - y[i].codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/** Fits the vocabulary and IDF on `trainingTexts` (the training split's texts only). */
export function fitTfidf(trainingTexts: readonly string[], options: TfidfOptions = {}): TfidfModel {
  const lowercase = options.lowercase ?? true;
  const analyzer = options.analyzer ?? "word";
  if (analyzer !== "word" && analyzer !== "char_wb") {
    throw new Error(`fitTfidf: analyzer must be "word" or "char_wb", got ${JSON.stringify(analyzer)}`);
  }
  const ngramRange: [number, number] = options.ngramRange ?? (analyzer === "char_wb" ? [3, 5] : [1, 1]);
  const shape = { analyzer, ngramRange, lowercase };
  const df = new Map<string, number>();
  trainingTexts.forEach((text, i) => {
    if (typeof text !== "string") throw new Error(`fitTfidf: training text #${i} is ${typeof text}, not a string`);
    for (const term of new Set(modelTerms(shape, text))) df.set(term, (df.get(term) ?? 0) + 1);
  });
  if (df.size === 0) {
    throw new Error(
      `fitTfidf: the ${trainingTexts.length} training texts hold no ${
        analyzer === "word" ? "term of two or more word characters" : "character"
      }`,
    );
  }
  const terms = [...df.keys()].sort(codePointCompare);
  const n = trainingTexts.length;
  const idf = new Float64Array(terms.length);
  terms.forEach((term, j) => (idf[j] = Math.log((1 + n) / (1 + df.get(term)!)) + 1));
  return { vocabulary: new Map(terms.map((t, j) => [t, j])), idf, ...shape, documents: n };
}

/** The L2-normalised TF-IDF vector of one text (terms outside the vocabulary ignored). */
export function tfidfVector(model: TfidfModel, text: string): SparseVector {
  const counts = new Map<number, number>();
  for (const term of modelTerms(model, text)) {
    const j = model.vocabulary.get(term);
    if (j !== undefined) counts.set(j, (counts.get(j) ?? 0) + 1);
  }
  const indices = Int32Array.from([...counts.keys()].sort((a, b) => a - b));
  const values = Float64Array.from(indices, (j) => counts.get(j)! * model.idf[j]);
  let sum = 0;
  for (const v of values) sum += v * v;
  const norm = Math.sqrt(sum);
  if (norm > 0) { for (let i = 0; i < values.length; i++) values[i] /= norm; }
  return { indices, values };
}

/** Dot product of two sparse vectors (their cosine, as both are L2-normalised or empty). */
export function sparseDot(a: SparseVector, b: SparseVector): number {
  let i = 0, j = 0, sum = 0;
  while (i < a.indices.length && j < b.indices.length) {
    if (a.indices[i] === b.indices[j]) sum += a.values[i++] * b.values[j++];
    else if (a.indices[i] < b.indices[j]) i++;
    else j++;
  }
  return sum;
}

/** TF-IDF cosine of each (left[i], right[i]) text pair. */
export function tfidfCosine(model: TfidfModel, left: readonly string[], right: readonly string[]): Float64Array {
  if (left.length !== right.length) {
    throw new Error(`tfidfCosine: ${left.length} left texts but ${right.length} right texts`);
  }
  const cache = new Map<string, SparseVector>();
  const vector = (text: string) => {
    let v = cache.get(text);
    if (!v) cache.set(text, v = tfidfVector(model, text));
    return v;
  };
  return Float64Array.from(left, (text, i) => sparseDot(vector(text), vector(right[i])));
}

/**
 * Scores product pairs by id: `texts` maps each product id to its text (e.g. name + description), and
 * each pair's score is the TF-IDF cosine of its two texts. Throws naming the first id without a text.
 */
export function lexicalPairScores(
  model: TfidfModel,
  texts: ReadonlyMap<string, string>,
  left: readonly string[],
  right: readonly string[],
  where = "pairs",
): Float64Array {
  const textOf = (id: string, i: number, side: string): string => {
    const text = texts.get(id);
    if (text === undefined) throw new Error(`${where}: ${side} product ${id} of pair ${i} has no text`);
    return text;
  };
  return tfidfCosine(model, left.map((id, i) => textOf(id, i, "left")), right.map((id, i) => textOf(id, i, "right")));
}
