import { describe, it } from "node:test";
import { expect } from "expect";
import { anySizeMatches, parseSize, parseSizes, sizeWithinMargin } from "../lib/data/sizes.ts";

const cases: [string, [number, number][]][] = [
  ["Карта мира 100x70 см", [[100, 70]]],
  ["Карта 1000×700 мм", [[100, 70]]],
  ["размер 70 на 100", [[100, 70]]],
  ["0,7 x 1 м", [[100, 70]]],
  ["100х70см (кириллическая х)", [[100, 70]]],
  ["100Х70", [[100, 70]]],
  ["70X100 cm", [[100, 70]]],
  ["1.2*0.8м", [[120, 80]]],
  ["150 см x 100 см", [[150, 100]]],
  ["1500 мм на 1000 мм", [[150, 100]]],
  ["0,42 x 0,30 м", [[42, 30]]],
  ["коробка 60x90x3", [[90, 60]]],
  ["мира 100 x 70 мира", [[100, 70]]],
  ["100x70 и 70x100 и 120x80", [[100, 70], [120, 80]]],
  ["набор 2 x карта", []],
  ["формат A4, 2 шт", []],
  ["", []],
  ["0x70", []],
  ["158x107", [[158, 107]]],
];

describe("parseSizes", () => {
  for (const [text, expected] of cases) {
    it(`parses ${JSON.stringify(text)}`, () => {
      expect(parseSizes(text).map((s) => [s.long, s.short])).toEqual(expected);
    });
  }

  it("is order-insensitive", () => {
    expect(parseSizes("60x100")).toEqual(parseSizes("100x60"));
  });

  it("parseSize rejects text that is not exactly one size", () => {
    expect(() => parseSize("большая карта")).toThrow(/not one size/);
    expect(parseSize("1000×700 мм")).toEqual({ long: 100, short: 70 });
  });
});

describe("size margin", () => {
  it("accepts both sides within 20% and rejects one side outside", () => {
    expect(sizeWithinMargin({ long: 120, short: 80 }, { long: 100, short: 70 }, 0.2)).toBe(true);
    expect(sizeWithinMargin({ long: 150, short: 100 }, { long: 100, short: 70 }, 0.2)).toBe(false);
    expect(sizeWithinMargin({ long: 100, short: 90 }, { long: 100, short: 70 }, 0.2)).toBe(false);
  });

  it("anySizeMatches is false when the candidate has no size", () => {
    expect(anySizeMatches([], [{ long: 100, short: 70 }], 0.2)).toBe(false);
  });
});
