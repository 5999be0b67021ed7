/**
 * Product pictures for the demo marketplace, drawn as SVG and encoded to JPEG with sharp.
 *
 * The picture of a product is fixed by its family (continent shapes, palette) and its own
 * attributes (aspect ratio from the size, gloss when laminated, two sheets for a set of 2, a glow
 * for a backlit globe), so a product's hard negatives look similar but not identical. Each
 * listing then varies it the way sellers' photos vary: scale, offset (crop), rotation, background,
 * a watermark, JPEG quality.
 */
import sharp from "sharp";
import type { DemoProduct } from "./demo_catalog.ts";
import { SeededRandom } from "./random.ts";

/** Side of the square demo images in pixels. */
export const DEMO_IMAGE_SIZE = 160;

function hashText(text: string): number {
  let hash = 2166136261;
  for (const ch of text) hash = Math.imul(hash ^ ch.charCodeAt(0), 16777619);
  return hash >>> 0;
}

function hsl(h: number, s: number, l: number): string {
  return `hsl(${Math.round(((h % 360) + 360) % 360)},${Math.round(s)}%,${Math.round(l)}%)`;
}

/** A closed blob (continent) around (cx, cy) as an SVG path. */
function blob(random: SeededRandom, cx: number, cy: number, radius: number, points = 9): string {
  const coordinates: string[] = [];
  for (let i = 0; i < points; i++) {
    const angle = (i / points) * Math.PI * 2;
    const r = radius * (0.55 + 0.6 * random.next());
    coordinates.push(`${(cx + Math.cos(angle) * r).toFixed(1)},${(cy + Math.sin(angle) * r * 0.8).toFixed(1)}`);
  }
  return `M${coordinates.join("L")}Z`;
}

/** The map content (continents) in a 100×100 box, drawn for a product's family and theme. */
function mapContent(product: DemoProduct): string {
  const random = new SeededRandom(hashText(`${product.subject}|${product.familyId}`));
  const palette = new SeededRandom(hashText(product.publisher));
  const baseHue = palette.int(0, 359);
  if (product.subject === "stars") {
    const dots: string[] = [`<rect width="100" height="100" fill="${hsl(230, 60, 15)}"/>`];
    for (let i = 0; i < 40; i++) {
      dots.push(
        `<circle cx="${random.int(2, 98)}" cy="${random.int(2, 98)}" r="${
          (0.5 + random.next() * 1.6).toFixed(1)
        }" fill="#fff8c0"/>`,
      );
    }
    return dots.join("");
  }
  const count = product.subject === "world" || product.subject === "hemispheres"
    ? 6
    : product.subject === "russia"
    ? 2
    : 4;
  const scratch = product.kind === "scratch_map";
  const contour = product.kind === "contour_map";
  const sea = scratch
    ? "#1b1b1b"
    : contour
    ? "#ffffff"
    : product.theme === "physical"
    ? hsl(205, 65, 45)
    : hsl(200, 70, 78);
  const parts: string[] = [`<rect width="100" height="100" fill="${sea}"/>`];
  for (let i = 0; i < count; i++) {
    const cx = product.subject === "russia" ? 50 + (i - 0.5) * 30 : random.int(15, 85);
    const cy = product.subject === "russia" ? 45 : random.int(20, 80);
    const radius = product.subject === "russia" ? 30 : random.int(10, 20);
    const path = blob(random, cx, cy, radius);
    let fill: string;
    if (scratch) fill = product.finish === "gold" ? "#d4af37" : "#c0c0c0";
    else if (contour) fill = "none";
    else if (product.theme === "physical") fill = hsl(90 + random.int(-30, 40), 45, 40 + random.int(-8, 8));
    else if (product.theme === "administrative") fill = hsl(baseHue + i * 40, 40, 80);
    else fill = hsl(baseHue + i * 67, 70, 60);
    parts.push(
      `<path d="${path}" fill="${fill}" stroke="${contour ? "#333" : "#444"}" stroke-width="${contour ? 1.2 : 0.4}"/>`,
    );
    if (product.theme === "physical" && !scratch && !contour) {
      parts.push(`<path d="${blob(random, cx, cy, radius * 0.45, 7)}" fill="${hsl(30, 50, 38)}"/>`);
    }
  }
  return parts.join("");
}

/** The product drawn on a 100×100 canvas (no background). */
function productDrawing(product: DemoProduct): string {
  const frame = hsl(new SeededRandom(hashText(product.publisher)).int(0, 359), 35, 35);
  const content = mapContent(product);
  const id = product.productId;
  if (product.kind === "globe") {
    const glow = product.backlight ? `<circle cx="50" cy="42" r="40" fill="#fff3a0" opacity="0.6"/>` : "";
    const r = 24 + (product.diameterCm ?? 32) / 4;
    return `${glow}<defs><clipPath id="g${id}"><circle cx="50" cy="42" r="${r / 1.3}"/></clipPath></defs>` +
      `<g clip-path="url(#g${id})"><g transform="translate(${50 - r / 1.3},${42 - r / 1.3}) scale(${
        (2 * r / 1.3) / 100
      })">${content}</g></g>` +
      `<circle cx="50" cy="42" r="${r / 1.3}" fill="none" stroke="${frame}" stroke-width="2"/>` +
      `<path d="M${50 - r / 1.1},42 A${r / 1.1},${r / 1.1} 0 0,0 ${
        50 + r / 1.1
      },42" fill="none" stroke="${frame}" stroke-width="2.5"/>` +
      `<rect x="46" y="${42 + r / 1.3}" width="8" height="10" fill="${frame}"/><rect x="32" y="${
        52 + r / 1.3
      }" width="36" height="5" rx="2" fill="${frame}"/>`;
  }
  if (product.kind === "atlas") {
    return `<rect x="22" y="8" width="56" height="84" rx="3" fill="${frame}"/>` +
      `<g transform="translate(28,30) scale(0.44)">${content}</g>` +
      `<rect x="28" y="14" width="44" height="10" fill="#ffffffcc"/>` +
      `<text x="50" y="85" font-size="12" font-family="sans-serif" text-anchor="middle" fill="#fff">${product.grade}</text>`;
  }
  const width = product.size ? product.size.width : 100;
  const height = product.size ? product.size.height : 70;
  const w = 86;
  const h = Math.min(86, (w * height) / width);
  const sheet = (dx: number, dy: number) =>
    `<g transform="translate(${7 + dx},${50 - h / 2 + dy})"><rect x="-2" y="-2" width="${w + 4}" height="${
      h + 4
    }" fill="${frame}"/>` +
    `<g transform="scale(${w / 100},${h / 100})">${content}</g>` +
    (product.laminated
      ? `<path d="M0,${h} L${w * 0.35},0 L${w * 0.55},0 L${w * 0.2},${h}Z" fill="#ffffff" opacity="0.35"/>`
      : "") +
    `</g>`;
  return product.setOf > 1 ? `<g transform="scale(0.8)">${sheet(18, 14)}${sheet(0, -6)}</g>` : sheet(0, 0);
}

/** Renders one listing's JPEG: the product drawing with this listing's variation. */
export async function renderListingImage(
  product: DemoProduct,
  variation: { seed: number; seller: string },
  size: number = DEMO_IMAGE_SIZE,
): Promise<Uint8Array> {
  const random = new SeededRandom(variation.seed);
  const background = random.pick(["#ffffff", "#ffffff", "#f2f2f2", "#f5efe0", hsl(random.int(0, 359), 30, 92)]);
  const scale = 0.78 + 0.3 * random.next();
  const dx = (random.next() - 0.5) * 16;
  const dy = (random.next() - 0.5) * 16;
  const angle = (random.next() - 0.5) * 8;
  const watermark = random.chance(0.35)
    ? `<text x="50" y="95" font-size="7" font-family="sans-serif" text-anchor="middle" fill="#000" opacity="0.35">${
      escapeXml(variation.seller)
    }</text>`
    : "";
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 100 100">` +
    `<rect width="100" height="100" fill="${background}"/>` +
    `<g transform="translate(${50 + dx},${50 + dy}) rotate(${angle.toFixed(1)}) scale(${
      scale.toFixed(3)
    }) translate(-50,-50)">` +
    productDrawing(product) + `</g>${watermark}</svg>`;
  const quality = random.int(55, 92);
  const buffer = await sharp(new TextEncoder().encode(svg)).jpeg({ quality }).toBuffer();
  return new Uint8Array(buffer);
}

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
