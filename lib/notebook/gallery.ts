/**
 * Product photos in notebooks and the report: rows of cards (a thumbnail, a title, a few lines, a green or
 * red frame for right or wrong), as self-contained HTML (thumbnails inlined as JPEG data URIs, made with
 * sharp) with a text rendering for `deno run` and text-only viewers. A product without a readable photo
 * gets a grey box that says so, never a broken image.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import sharp from "sharp";
import { displayBundle, escapeHtml, type MimeBundle } from "./display.ts";

/** One product in a gallery row. */
export interface GalleryCard {
  /** A JPEG data URI (`thumbnailUri`), or null: no photo. */
  image: string | null;
  title: string;
  /** Short lines under the title (price, score, rank). */
  lines: string[];
  /** Framed green (right) or red (wrong); none: grey. */
  mark?: "right" | "wrong";
}

/** A labelled row of cards ("query", "before", "after"). */
export interface GalleryRow {
  label: string;
  cards: GalleryCard[];
}

/** A heading and its rows: one query, one explained pair. */
export interface GalleryBlock {
  heading: string;
  /** A line under the heading (why the classifier decided, say). */
  note?: string;
  rows: GalleryRow[];
}

/** Side of the thumbnails in pixels. */
export const THUMBNAIL_SIZE = 96;

const thumbnails = new Map<string, Promise<string | null>>();

/**
 * The photo at `path` as a square JPEG thumbnail (letterboxed on white) in a data URI; null when there is
 * no path or the file cannot be read as an image. Each file is encoded once per process.
 */
export function thumbnailUri(path: string | null | undefined, size = THUMBNAIL_SIZE): Promise<string | null> {
  if (!path) return Promise.resolve(null);
  const key = `${size}:${path}`;
  let made = thumbnails.get(key);
  if (!made) {
    made = sharp(path)
      .resize(size, size, { fit: "contain", background: "#ffffff" })
      .flatten({ background: "#ffffff" })
      .jpeg({ quality: 72 })
      .toBuffer()
      .then((jpeg) => `data:image/jpeg;base64,${Buffer.from(jpeg).toString("base64")}`)
      .catch(() => null);
    thumbnails.set(key, made);
  }
  return made;
}

const FRAME = { right: "#2ca02c", wrong: "#d62728" } as const;

function cardHtml(card: GalleryCard, size: number): string {
  const frame = card.mark ? FRAME[card.mark] : "#cccccc";
  const mark = card.mark === "right" ? "✓ " : card.mark === "wrong" ? "✗ " : "";
  const photo = card.image
    ? `<img src="${card.image}" width="${size}" height="${size}" alt="${escapeHtml(card.title)}" style="display:block">`
    : `<div style="width:${size}px;height:${size}px;background:#eee;color:#888;display:flex;align-items:center;` +
      `justify-content:center;font-size:11px">no photo</div>`;
  const lines = card.lines.map((line) => `<br><span style="color:#555">${escapeHtml(line)}</span>`).join("");
  return `<figure style="margin:0;width:${size + 24}px;flex:none;border:3px solid ${frame};border-radius:4px;` +
    `padding:3px;background:#fff">${photo}<figcaption style="font-size:11px;line-height:1.25;overflow-wrap:anywhere">` +
    `<b style="color:${card.mark ? frame : "#222"}">${mark}</b>${escapeHtml(card.title)}${lines}</figcaption></figure>`;
}

/** The blocks as one self-contained HTML fragment. */
export function galleryHtml(blocks: readonly GalleryBlock[], size = THUMBNAIL_SIZE): string {
  const rows = (block: GalleryBlock) =>
    block.rows.map((row) =>
      `<div style="display:flex;gap:6px;align-items:flex-start;margin:4px 0;overflow-x:auto">` +
      `<div style="width:64px;flex:none;font-size:12px;font-weight:bold;padding-top:4px">${
        escapeHtml(row.label)
      }</div>` +
      row.cards.map((card) => cardHtml(card, size)).join("") + `</div>`
    ).join("");
  return `<div class="gallery" style="font-family:system-ui,sans-serif">` +
    blocks.map((b) =>
      `<div style="margin:10px 0"><div style="font-weight:bold;margin:4px 0">${escapeHtml(b.heading)}</div>` +
      (b.note ? `<div style="font-size:12px;color:#555;margin:2px 0">${escapeHtml(b.note)}</div>` : "") +
      `${rows(b)}</div>`
    ).join("") + `</div>`;
}

/** The blocks as text: one line per card. */
export function galleryText(blocks: readonly GalleryBlock[]): string {
  return blocks.map((b) =>
    [
      b.heading,
      ...(b.note ? [`  ${b.note}`] : []),
      ...b.rows.flatMap((row) => [
        `  ${row.label}:`,
        ...row.cards.map((c) =>
          `    ${c.mark === "right" ? "[right] " : c.mark === "wrong" ? "[wrong] " : ""}${c.title}` +
          (c.lines.length ? ` (${c.lines.join("; ")})` : "") + (c.image ? "" : " [no photo]")
        ),
      ]),
    ].join("\n")
  ).join("\n");
}

/** The gallery's MIME bundle: HTML for Jupyter and exported pages, text elsewhere. */
export function galleryBundle(blocks: readonly GalleryBlock[], size = THUMBNAIL_SIZE): MimeBundle {
  return { "text/html": galleryHtml(blocks, size), "text/plain": galleryText(blocks) };
}

/** Shows a gallery in the notebook. */
export function showGallery(blocks: readonly GalleryBlock[], size = THUMBNAIL_SIZE): Promise<void> {
  return displayBundle(galleryBundle(blocks, size));
}

/** A gallery as a report section (`NotebookResult.galleries`): none when it has no blocks. */
export function savedGalleries(title: string, blocks: readonly GalleryBlock[]): { title: string; html: string }[] {
  return blocks.length ? [{ title, html: galleryHtml(blocks) }] : [];
}
