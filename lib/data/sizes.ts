/**
 * The size parser of the regex labeller: finds "W×H" sizes in product text and normalises them
 * to integer centimetres with the longer side first, so "100x70 см", "1000×700 мм", "70 на 100"
 * and "0,7 x 1 м" are all 100×70.
 *
 * Separators: x, х (Cyrillic), Х, ×, *, "на". Units: мм, см, м (also mm, cm, m); a unit written
 * on one side applies to both; no unit means centimetres. A third dimension ("60x90x3") is ignored.
 */

/** A size in whole centimetres, `long >= short`. */
export interface ProductSize {
  long: number;
  short: number;
}

const NUMBER = String.raw`(\d+(?:[.,]\d+)?)`;
const UNIT = String.raw`(мм|см|м|mm|cm|m)(?![a-zа-яё])`;
const SEPARATOR = String.raw`(?:[xхХX×*]|на)`;
const SIZE_PATTERN = new RegExp(
  String.raw`(?<![\d.,])${NUMBER}\s*(?:${UNIT}\.?)?\s*${SEPARATOR}\s*${NUMBER}\s*(?:${UNIT}\.?)?`,
  "giu",
);

const UNIT_TO_CM: Record<string, number> = { мм: 0.1, mm: 0.1, см: 1, cm: 1, м: 100, m: 100 };

function toNumber(text: string): number {
  return Number(text.replace(",", "."));
}

/** Every W×H size in `text`, normalised to cm (long side first), duplicates removed, in text order. */
export function parseSizes(text: string): ProductSize[] {
  const found: ProductSize[] = [];
  const seen = new Set<string>();
  for (const match of (text ?? "").matchAll(SIZE_PATTERN)) {
    const [, firstText, firstUnit, secondText, secondUnit] = match;
    const unit = (secondUnit ?? firstUnit ?? "см").toLowerCase();
    const factorFirst = UNIT_TO_CM[(firstUnit ?? unit).toLowerCase()];
    const factorSecond = UNIT_TO_CM[unit];
    const a = Math.round(toNumber(firstText) * factorFirst);
    const b = Math.round(toNumber(secondText) * factorSecond);
    if (!(a > 0 && b > 0)) continue;
    const size = { long: Math.max(a, b), short: Math.min(a, b) };
    const key = `${size.long}x${size.short}`;
    if (!seen.has(key)) {
      seen.add(key);
      found.push(size);
    }
  }
  return found;
}

/** Parses one size written as "100x70" (any supported form); throws naming the text when it is not a size. */
export function parseSize(text: string): ProductSize {
  const sizes = parseSizes(text);
  if (sizes.length !== 1) throw new Error(`"${text}" is not one size such as "100x70" or "1000×700 мм"`);
  return sizes[0];
}

/** True when both sides of `candidate` lie within `margin` (a fraction, 0.2 = 20%) of `reference`'s sides. */
export function sizeWithinMargin(candidate: ProductSize, reference: ProductSize, margin: number): boolean {
  return Math.abs(candidate.long - reference.long) <= margin * reference.long + 1e-9 &&
    Math.abs(candidate.short - reference.short) <= margin * reference.short + 1e-9;
}

/** True when any of the candidate's sizes matches any of the reference sizes within `margin`. */
export function anySizeMatches(candidate: ProductSize[], references: ProductSize[], margin: number): boolean {
  return candidate.some((c) => references.some((r) => sizeWithinMargin(c, r, margin)));
}

/** "100x70" for display. */
export function formatSize(size: ProductSize): string {
  return `${size.long}x${size.short}`;
}
