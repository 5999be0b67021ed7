/**
 * Pair evidence: the classic features a feature-based matcher (Magellan-style) scores a product pair
 * with, computed from BOTH records together: TF-IDF cosines per field (word and character n-gram, the
 * IDF fitted on the training products' texts only), token overlap, model/part-number and number
 * agreement, size agreement (the size parser of lib/data/sizes.ts), price ratio and brand equality,
 * plus missing-value flags. `fitPairEvidence` learns what needs learning (the IDFs) from training
 * records; `pairEvidence` turns pairs into a row-major feature matrix whose columns `PAIR_EVIDENCE_FEATURES`
 * names. Every feature is a number in a small range (mostly [0, 1]); evidence that is missing (a field
 * one record lacks, no code or number on a side) is NaN, never 0: XGBoost learns where a missing value
 * goes, and 0 would claim "no overlap". A record's entity columns (cluster ids) are never evidence: they are
 * not among the fields read.
 *
 * @module
 */
import { fitTfidf, sparseDot, type SparseVector, type TfidfModel, tfidfVector } from "../eval/lexical.ts";
import { parseSizes, type ProductSize } from "../data/sizes.ts";
import { distance as levenshtein } from "fastest-levenshtein";

/** The fields of a product the evidence reads (missing ones are null or ""). */
export interface EvidenceRecord {
  name: string;
  description?: string | null;
  brand?: string | null;
  price?: number | null;
  /** Other attributes as one text ("modelno: a52; color: black"), read with the description as text. */
  attributes?: string | null;
}

/** The feature columns, in order. */
export const PAIR_EVIDENCE_FEATURES = [
  "tfidf_word_name",
  "tfidf_char_name",
  "tfidf_word_description",
  "tfidf_word_all",
  "tfidf_char_all",
  "name_edit_similarity",
  "token_jaccard_name",
  "token_containment_name",
  "code_shared",
  "code_conflict",
  "code_jaccard",
  "code_in_other_text",
  "number_jaccard_name",
  "number_conflict_name",
  "number_jaccard_all",
  "quantity_jaccard",
  "quantity_conflict",
  "size_match",
  "size_conflict",
  "price_ratio",
  "brand_equal",
  "brand_in_other_name",
  "name_length_ratio",
] as const;

export type PairEvidenceFeature = typeof PAIR_EVIDENCE_FEATURES[number];

/** What `fitPairEvidence` learnt from the training records. */
export interface PairEvidenceModel {
  wordName: TfidfModel;
  charName: TfidfModel;
  wordDescription: TfidfModel | null;
  wordAll: TfidfModel;
  charAll: TfidfModel;
  /** Training records it was fitted on. */
  records: number;
}

/** A pair feature matrix: `values` row-major [pairs, names.length]. */
export interface FeatureMatrix {
  names: string[];
  values: Float32Array;
  rows: number;
}

const clean = (text: string | null | undefined): string => (text ?? "").replace(/\s+/gu, " ").trim();

/** A record's whole text: name, brand, description and other attributes. */
export function allText(record: EvidenceRecord): string {
  return [record.name, record.brand, record.description, record.attributes].map(clean).filter((t) => t !== "")
    .join(" ");
}

/** Word tokens (lower-cased letter/digit runs, punctuation kept inside codes such as "st4000ne001" or "a52"). */
export function evidenceTokens(text: string): string[] {
  return clean(text).toLowerCase().match(/[\p{L}\p{N}]+(?:[-./][\p{L}\p{N}]+)*/gu) ?? [];
}

/**
 * Model / part-number tokens: three or more characters mixing letters and digits ("a52", "st4000ne001",
 * "rtx-3080"), dashes and dots removed so "RTX-3080" and "rtx3080" agree.
 */
export function codeTokens(text: string): Set<string> {
  const codes = new Set<string>();
  for (const token of evidenceTokens(text)) {
    const code = token.replace(/[-./]/gu, "");
    if (code.length >= 3 && /\p{L}/u.test(code) && /\p{N}/u.test(code)) codes.add(code);
  }
  return codes;
}

/** Units a quantity is written in, longest first, and the unit each stands for ("gb" for "гб"). */
const UNITS: readonly [string, string][] = [
  ["tb", "tb"],
  ["тб", "tb"],
  ["gb", "gb"],
  ["гб", "gb"],
  ["mb", "mb"],
  ["мб", "mb"],
  ["mah", "mah"],
  ["мач", "mah"],
  ["ghz", "ghz"],
  ["mhz", "mhz"],
  ["hz", "hz"],
  ["гц", "hz"],
  ["kw", "kw"],
  ["квт", "kw"],
  ["w", "w"],
  ["вт", "w"],
  ["v", "v"],
  ["в", "v"],
  ["mm", "mm"],
  ["мм", "mm"],
  ["cm", "cm"],
  ["см", "cm"],
  ["ml", "ml"],
  ["мл", "ml"],
  ["kg", "kg"],
  ["кг", "kg"],
  ["g", "g"],
  ["г", "g"],
  ["l", "l"],
  ["л", "l"],
  ["inch", "in"],
  ["in", "in"],
  ['"', "in"],
  ["rpm", "rpm"],
  ["mp", "mp"],
  ["мп", "mp"],
  ["m", "m"],
  ["м", "m"],
];
const QUANTITY = new RegExp(
  `(?<![\\p{L}\\p{N}.,])(\\d+(?:[.,]\\d+)?)\\s?(${
    UNITS.map(([u]) => u).sort((a, b) => b.length - a.length).join("|")
  })(?![\\p{L}])`,
  "giu",
);

/**
 * Quantities with their unit ("4TB", "128 GB", "3,5\"", "500 мл"), normalised to number + unit ("4tb",
 * "128gb", "3.5in", "500ml"): the specification a title states, which two offers of one product share.
 */
export function quantityTokens(text: string): Set<string> {
  const out = new Set<string>();
  const unitOf = new Map(UNITS);
  for (const match of clean(text).toLowerCase().matchAll(QUANTITY)) {
    out.add(`${Number(match[1].replace(",", "."))}${unitOf.get(match[2].toLowerCase()) ?? match[2]}`);
  }
  return out;
}

/** The numbers written in a text ("4", "3.5", "128"), with a decimal comma read as a point. */
export function numberTokens(text: string): Set<string> {
  const numbers = new Set<string>();
  for (const match of clean(text).matchAll(/(?<![\p{L}\p{N}])\d+(?:[.,]\d+)?(?![\p{N}])/gu)) {
    numbers.add(String(Number(match[0].replace(",", "."))));
  }
  return numbers;
}

function jaccard(a: ReadonlySet<string>, b: ReadonlySet<string>): number {
  if (a.size === 0 && b.size === 0) return 0;
  let shared = 0;
  for (const x of a) if (b.has(x)) shared++;
  return shared / (a.size + b.size - shared);
}

function sharedCount(a: ReadonlySet<string>, b: ReadonlySet<string>): number {
  let shared = 0;
  for (const x of a) if (b.has(x)) shared++;
  return shared;
}

function sizesAgree(a: ProductSize[], b: ProductSize[]): { match: number; conflict: number } {
  if (a.length === 0 || b.length === 0) return { match: 0, conflict: 0 };
  const match = a.some((x) => b.some((y) => x.long === y.long && x.short === y.short));
  return { match: match ? 1 : 0, conflict: match ? 0 : 1 };
}

const normalBrand = (brand: string | null | undefined) => clean(brand).toLowerCase().replace(/[^\p{L}\p{N}]+/gu, "");

function fitOrNull(texts: string[], options: Parameters<typeof fitTfidf>[1]): TfidfModel | null {
  try {
    return fitTfidf(texts, options);
  } catch {
    return null;
  }
}

/**
 * Fits the evidence's TF-IDF models on the TRAINING records' texts only (pass the training split's
 * distinct products). Throws when the names hold no term at all.
 */
export function fitPairEvidence(trainingRecords: readonly EvidenceRecord[]): PairEvidenceModel {
  if (trainingRecords.length === 0) throw new Error("fitPairEvidence: no training records");
  const names = trainingRecords.map((r) => clean(r.name));
  const all = trainingRecords.map(allText);
  const descriptions = trainingRecords.map((r) => clean(r.description));
  const char = { analyzer: "char_wb" as const, ngramRange: [3, 5] as [number, number] };
  return {
    wordName: fitTfidf(names),
    charName: fitTfidf(names, char),
    wordDescription: fitOrNull(descriptions, {}),
    wordAll: fitTfidf(all),
    charAll: fitTfidf(all, char),
    records: trainingRecords.length,
  };
}

/** Everything about one record the features compare, computed once per record. */
interface RecordView {
  wordName: SparseVector;
  charName: SparseVector;
  wordDescription: SparseVector | null;
  wordAll: SparseVector;
  charAll: SparseVector;
  nameTokens: Set<string>;
  codes: Set<string>;
  nameNumbers: Set<string>;
  allNumbers: Set<string>;
  quantities: Set<string>;
  allCompact: string;
  sizes: ProductSize[];
  brand: string;
  nameCompact: string;
  hasDescription: boolean;
  price: number | null;
  nameLength: number;
}

function view(model: PairEvidenceModel, record: EvidenceRecord): RecordView {
  const name = clean(record.name);
  const description = clean(record.description);
  const all = allText(record);
  const price = typeof record.price === "number" && Number.isFinite(record.price) && record.price > 0
    ? record.price
    : null;
  return {
    wordName: tfidfVector(model.wordName, name),
    charName: tfidfVector(model.charName, name),
    wordDescription: model.wordDescription && description !== ""
      ? tfidfVector(model.wordDescription, description)
      : null,
    wordAll: tfidfVector(model.wordAll, all),
    charAll: tfidfVector(model.charAll, all),
    nameTokens: new Set(evidenceTokens(name)),
    codes: codeTokens(all),
    nameNumbers: numberTokens(name),
    allNumbers: numberTokens(all),
    quantities: quantityTokens(all),
    allCompact: all.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, ""),
    sizes: parseSizes(all),
    brand: normalBrand(record.brand),
    nameCompact: name.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, ""),
    hasDescription: description !== "",
    price,
    nameLength: [...name].length,
  };
}

function features(a: RecordView, b: RecordView): number[] {
  const sharedNameTokens = sharedCount(a.nameTokens, b.nameTokens);
  const minTokens = Math.min(a.nameTokens.size, b.nameTokens.size);
  const codesBoth = a.codes.size > 0 && b.codes.size > 0;
  const codeShared = sharedCount(a.codes, b.codes);
  const numbersBoth = a.nameNumbers.size > 0 && b.nameNumbers.size > 0;
  const allNumbersBoth = a.allNumbers.size > 0 && b.allNumbers.size > 0;
  const sizes = sizesAgree(a.sizes, b.sizes);
  const sizesBoth = a.sizes.length > 0 && b.sizes.length > 0;
  const pricesBoth = a.price !== null && b.price !== null;
  const brandsBoth = a.brand !== "" && b.brand !== "";
  const brandInOther = (a.brand !== "" && b.nameCompact.includes(a.brand)) ||
    (b.brand !== "" && a.nameCompact.includes(b.brand));
  const maxLength = Math.max(a.nameLength, b.nameLength);
  const quantitiesBoth = a.quantities.size > 0 && b.quantities.size > 0;
  const codesInOther = (codes: Set<string>, text: string) => [...codes].filter((c) => text.includes(c)).length;
  const nameDistance = Math.max(a.nameCompact.length, b.nameCompact.length);
  const row: Record<PairEvidenceFeature, number> = {
    tfidf_word_name: sparseDot(a.wordName, b.wordName),
    tfidf_char_name: sparseDot(a.charName, b.charName),
    tfidf_word_description: a.wordDescription && b.wordDescription
      ? sparseDot(a.wordDescription, b.wordDescription)
      : NaN,
    tfidf_word_all: sparseDot(a.wordAll, b.wordAll),
    tfidf_char_all: sparseDot(a.charAll, b.charAll),
    name_edit_similarity: nameDistance > 0 ? 1 - levenshtein(a.nameCompact, b.nameCompact) / nameDistance : NaN,
    token_jaccard_name: minTokens > 0 ? jaccard(a.nameTokens, b.nameTokens) : NaN,
    token_containment_name: minTokens > 0 ? sharedNameTokens / minTokens : NaN,
    code_shared: codesBoth ? (codeShared > 0 ? 1 : 0) : NaN,
    code_conflict: codesBoth ? (codeShared === 0 ? 1 : 0) : NaN,
    code_jaccard: codesBoth ? jaccard(a.codes, b.codes) : NaN,
    code_in_other_text: a.codes.size + b.codes.size > 0
      ? (codesInOther(a.codes, b.allCompact) + codesInOther(b.codes, a.allCompact)) / (a.codes.size + b.codes.size)
      : NaN,
    number_jaccard_name: numbersBoth ? jaccard(a.nameNumbers, b.nameNumbers) : NaN,
    number_conflict_name: numbersBoth ? (sharedCount(a.nameNumbers, b.nameNumbers) === 0 ? 1 : 0) : NaN,
    number_jaccard_all: allNumbersBoth ? jaccard(a.allNumbers, b.allNumbers) : NaN,
    quantity_jaccard: quantitiesBoth ? jaccard(a.quantities, b.quantities) : NaN,
    quantity_conflict: quantitiesBoth ? (sharedCount(a.quantities, b.quantities) === 0 ? 1 : 0) : NaN,
    size_match: sizesBoth ? sizes.match : NaN,
    size_conflict: sizesBoth ? sizes.conflict : NaN,
    price_ratio: pricesBoth ? Math.min(a.price!, b.price!) / Math.max(a.price!, b.price!) : NaN,
    brand_equal: brandsBoth ? (a.brand === b.brand ? 1 : 0) : NaN,
    brand_in_other_name: a.brand !== "" || b.brand !== "" ? (brandInOther ? 1 : 0) : NaN,
    name_length_ratio: maxLength > 0 ? Math.min(a.nameLength, b.nameLength) / maxLength : NaN,
  };
  return PAIR_EVIDENCE_FEATURES.map((f) => row[f]);
}

/**
 * The evidence of each pair (records[left[i]], records[right[i]]): a [pairs, PAIR_EVIDENCE_FEATURES.length]
 * matrix. `records` is indexed by the pair indices (e.g. the rows of ProductInputs); each record is
 * analysed once however many pairs it is in.
 */
export function pairEvidence(
  model: PairEvidenceModel,
  records: readonly EvidenceRecord[],
  left: ArrayLike<number>,
  right: ArrayLike<number>,
): FeatureMatrix {
  if (left.length !== right.length) throw new Error(`pairEvidence: ${left.length} left but ${right.length} right`);
  const views = new Map<number, RecordView>();
  const viewOf = (index: number, i: number, side: string) => {
    let v = views.get(index);
    if (!v) {
      const record = records[index];
      if (!record) throw new Error(`pairEvidence: ${side} record ${index} of pair ${i} does not exist`);
      views.set(index, v = view(model, record));
    }
    return v;
  };
  const dim = PAIR_EVIDENCE_FEATURES.length;
  const values = new Float32Array(left.length * dim);
  for (let i = 0; i < left.length; i++) {
    values.set(features(viewOf(left[i], i, "left"), viewOf(right[i], i, "right")), i * dim);
  }
  return { names: [...PAIR_EVIDENCE_FEATURES], values, rows: left.length };
}
