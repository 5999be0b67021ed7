/** Where the suite keeps its files: the project root, `data/` and `reports/`. */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (the folder holding deno.json). */
export const projectRoot: string = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** `data/`, or `$CLIP_SIAMESE_DATA` when set (tests point it at a temp folder). */
export function dataDir(): string {
  return resolve(Deno.env.get("CLIP_SIAMESE_DATA") ?? join(projectRoot, "data"));
}

/** `reports/`, or `$CLIP_SIAMESE_REPORTS` when set. */
export function reportsDir(): string {
  return resolve(Deno.env.get("CLIP_SIAMESE_REPORTS") ?? join(projectRoot, "reports"));
}

/** Files shipped with the repo (tiny demo tokenizer and models). */
export const shippedDir: string = join(projectRoot, "data", "shipped");
