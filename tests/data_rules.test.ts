import { describe, it } from "node:test";
import { expect } from "expect";
import { classifyCandidate, labelCandidates, mappingFrame, mappingFromFrame } from "../lib/data/labeller.ts";
import { compileRules } from "../lib/data/rules.ts";
import { parseSizes } from "../lib/data/sizes.ts";
import { scoreLabeller } from "../lib/data/score.ts";

const rules = compileRules({
  version: 1,
  size_margin: 0.2,
  must_not: ["([2-9]|\\d{2,})\\s*шт"],
  queries: {
    "100": { must: ["политическ", "мира", "карт"], must_not: ["физическ", "скретч", "двусторон"] },
    "200": { must: ["глобус"], must_not: ["подсвет"] },
  },
});
const rule = rules.queries.get("100")!;
const querySizes = parseSizes("Карта мира политическая 100x70 см");

describe("classifyCandidate", () => {
  const table: [string, string][] = [
    ["Политическая карта мира 1000×700 мм", "positive"],
    ["Карта мира политическая 70 на 100", "positive"],
    ["Карта мира политическая 120x80 см", "positive"], // within 20%
    ["Карта мира политическая 150x100 см", "hard"], // size off
    ["Карта мира политическая", "hard"], // no size counts as failure
    ["Карта мира политическая и физическая 100x70", "hard"], // must-not
    ["Карта мира политическая 100x70 набор 2 шт", "hard"], // common must-not
    ["Карта мира полит. 100x70", "soft"], // abbreviation misses a must
    ["Глобус мира политический", "soft"],
  ];
  for (const [text, expected] of table) {
    it(`${text} -> ${expected}`, () => {
      expect(classifyCandidate(text, rule, querySizes, rules.sizeMargin)).toBe(expected);
    });
  }
  it("skips the size check when the query has no size", () => {
    expect(classifyCandidate("Глобус 32 см", rules.queries.get("200")!, [], 0.2)).toBe("positive");
    expect(classifyCandidate("Глобус с подсветкой", rules.queries.get("200")!, [], 0.2)).toBe("hard");
  });
});

describe("compileRules", () => {
  it("rejects a wrong version, a bad pattern and a bad size, naming the query", () => {
    expect(() => compileRules({ version: 2, queries: {} }, "r.json")).toThrow(/r.json.*version/);
    expect(() => compileRules({ version: 1, queries: { "5": { must: ["("] } } }, "r.json")).toThrow(
      /query 5 must\[0\]/,
    );
    expect(() => compileRules({ version: 1, queries: { "5": { must: ["a"], sizes: ["big"] } } }, "r.json")).toThrow(
      /query 5/,
    );
    expect(() => compileRules({ version: 1, queries: { "5": { must: [] } } }, "r.json")).toThrow(/at least one/);
  });
});

describe("labelCandidates", () => {
  const products = [
    { sku: "100", name: "Карта мира политическая 100x70 см", description: "", seller: "Q" },
    { sku: "101", name: "Политическая карта мира", description: "Размер 1000×700 мм", seller: "A" },
    { sku: "102", name: "Карта мира политическая 150x100", description: "", seller: "B" },
    { sku: "103", name: "Атлас", description: "", seller: "B" },
    { sku: "104", name: "Карта мира политическая 100x70", description: "", seller: "Q" },
  ];
  const result = labelCandidates(products, rules, "Q");

  it("classifies every other seller's product for queries with rules", () => {
    const q = result.queries.find((x) => x.query_sku === "100")!;
    expect(q).toMatchObject({
      has_rule: true,
      positives: ["101"],
      hard: ["102"],
      soft: ["103"],
      query_sizes: "100x70",
    });
    expect(result.queries.find((x) => x.query_sku === "104")!.has_rule).toBe(false);
    expect(result.candidates.length).toBe(3);
  });

  it("round-trips the mapping through a table with list columns", () => {
    expect(mappingFromFrame(mappingFrame(result.queries))).toEqual(result.queries);
  });

  it("scores positives against ground truth", () => {
    const identity = new Map([["100", "P1"], ["101", "P1"], ["102", "P1"], ["103", "P2"], ["104", "P3"]]);
    const score = scoreLabeller(result.queries, identity, ["101", "102", "103"]);
    expect(score).toMatchObject({ truePositives: 1, falsePositives: 0, falseNegatives: 1, precision: 1, recall: 0.5 });
  });

  it("errors when the query seller has no products", () => {
    expect(() => labelCandidates(products, rules, "ИНТЕРТРЕЙД")).toThrow(/ИНТЕРТРЕЙД/);
  });
});
