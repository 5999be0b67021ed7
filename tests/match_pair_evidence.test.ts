/**
 * Pair evidence (lib/match/pair_evidence.ts): the classic pair features read what they claim to read.
 */
import { describe, it } from "node:test";
import { expect } from "expect";
import {
  codeTokens,
  type EvidenceRecord,
  fitPairEvidence,
  numberTokens,
  PAIR_EVIDENCE_FEATURES,
  pairEvidence,
  quantityTokens,
} from "../lib/match/pair_evidence.ts";

const records: EvidenceRecord[] = [
  { name: "Seagate IronWolf 4TB ST4000VN008 NAS HDD", brand: "Seagate", price: 100, description: "3.5 inch 5900 rpm" },
  { name: "Seagate 4 TB IronWolf st4000vn008", brand: "seagate", price: 105, description: "" },
  { name: "WD Red Plus 4TB WD40EFZX", brand: "Western Digital", price: 98, description: "3.5 inch 5400 rpm" },
  { name: "Seagate IronWolf 8TB ST8000VN004", brand: "Seagate", price: null, description: null },
];

const column = (values: Float32Array, row: number, name: string) =>
  values[row * PAIR_EVIDENCE_FEATURES.length + PAIR_EVIDENCE_FEATURES.indexOf(name as never)];

describe("pair evidence", () => {
  it("reads codes and numbers the way product titles write them", () => {
    expect([...codeTokens("RTX-3080 card, st4000vn008 and A52")].sort()).toEqual(["a52", "rtx3080", "st4000vn008"]);
    expect([...numberTokens("3,5 inch 4 TB, 128 GB")].sort()).toEqual(["128", "3.5", "4"]);
    // Quantities with their unit, normalised across spellings and alphabets; a bare number or "m2" is none.
    expect([...quantityTokens('HDD 4TB 3,5" 128 MB, 7200rpm, 500 мл, 2 m, 12V 1.5A, m2 slot')]).toEqual([
      "4tb",
      "3.5in",
      "128mb",
      "7200rpm",
      "500ml",
      "2m",
      "12v",
    ]);
    expect([...quantityTokens("4 ТБ жёсткий диск")]).toEqual(["4tb"]);
  });

  it("scores the matching pair above the look-alikes on the features that tell them apart", () => {
    const model = fitPairEvidence(records);
    const { values, rows, names } = pairEvidence(model, records, [0, 0, 0], [1, 2, 3]);
    expect(rows).toBe(3);
    expect(names).toEqual([...PAIR_EVIDENCE_FEATURES]);
    expect(values.length).toBe(3 * PAIR_EVIDENCE_FEATURES.length);
    // Every value is in [0, 1] or missing (NaN), never infinite.
    expect(values.every((v) => Number.isNaN(v) || (v >= 0 && v <= 1))).toBe(true);
    // same product: shared code, equal brand, no code conflict; one side has no description: missing, not 0
    expect(column(values, 0, "code_shared")).toBe(1);
    expect(column(values, 0, "code_conflict")).toBe(0);
    expect(column(values, 0, "brand_equal")).toBe(1);
    expect(column(values, 0, "tfidf_word_description")).toBeNaN();
    expect(column(values, 0, "price_ratio")).toBeCloseTo(100 / 105, 6);
    // "ST4000VN008" (and "4TB") of one title are inside the other's text; both state 4 TB.
    expect(column(values, 0, "code_in_other_text")).toBe(1);
    expect(column(values, 0, "quantity_jaccard")).toBeCloseTo(1 / 3, 6); // {4tb, 3.5in, 5900rpm} vs {4tb}
    expect(column(values, 0, "quantity_conflict")).toBe(0);
    expect(column(values, 2, "quantity_conflict")).toBe(1); // 4TB vs 8TB
    expect(column(values, 0, "name_edit_similarity")).toBeGreaterThan(column(values, 1, "name_edit_similarity"));
    // other brand
    expect(column(values, 1, "brand_equal")).toBe(0);
    expect(column(values, 1, "tfidf_word_description")).toBeGreaterThan(0);
    // same brand, other model: the codes conflict and the price is missing (NaN, not a ratio of 0)
    expect(column(values, 2, "code_conflict")).toBe(1);
    expect(column(values, 2, "price_ratio")).toBeNaN();
    for (const f of ["tfidf_word_name", "tfidf_char_name", "token_jaccard_name"]) {
      expect(column(values, 0, f)).toBeGreaterThan(column(values, 1, f));
    }
  });

  it("is symmetric in the two records", () => {
    const model = fitPairEvidence(records);
    const ab = pairEvidence(model, records, [0, 2], [1, 3]).values;
    const ba = pairEvidence(model, records, [1, 3], [0, 2]).values;
    ab.forEach((v, i) => Number.isNaN(v) ? expect(ba[i]).toBeNaN() : expect(Math.abs(v - ba[i])).toBeLessThan(1e-6));
  });

  it("reads the other attributes as text, and never an entity column", () => {
    const withAttributes: EvidenceRecord[] = [
      { name: "Bravia TV", attributes: "modelno: kd55x80k; color: black" },
      { name: "Sony TV 55", attributes: "modelno: KD-55X80K" },
      { name: "Sony TV 55", attributes: "modelno: kd65x80k" },
    ];
    const model = fitPairEvidence(withAttributes);
    const { values } = pairEvidence(model, withAttributes, [0, 0], [1, 2]);
    expect(column(values, 0, "code_shared")).toBe(1);
    expect(column(values, 1, "code_conflict")).toBe(1);
    expect(PAIR_EVIDENCE_FEATURES.some((f) => /cluster|group/.test(f))).toBe(false);
  });

  it("names the pair and side whose record does not exist", () => {
    const model = fitPairEvidence(records);
    expect(() => pairEvidence(model, records, [0, 1], [1, 9])).toThrow(/right record 9 of pair 1/);
    expect(() => pairEvidence(model, records, [0], [])).toThrow(/1 left but 0 right/);
    expect(() => fitPairEvidence([])).toThrow(/no training records/);
  });
});
