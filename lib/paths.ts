/** Where the suite keeps its files: the project root, `data/` and `reports/`. */
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
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

/**
 * A path as notebooks and reports show it: relative to the project root (`data/...`, `reports/...`)
 * or, when the data or reports folder lives elsewhere, `$CLIP_SIAMESE_DATA/...` or
 * `$CLIP_SIAMESE_REPORTS/...`; never the machine's absolute path when a relative form exists.
 * Text that is not an absolute path is returned as is.
 */
export function shownPath(path: string): string {
  if (!isAbsolute(path)) return path;
  const inside = (root: string) => {
    const rel = relative(root, path);
    return rel === "" ? "." : !rel.startsWith("..") && !isAbsolute(rel) ? rel : undefined;
  };
  const underRoot = inside(projectRoot);
  if (underRoot !== undefined) return underRoot;
  const underData = inside(dataDir());
  if (underData !== undefined) return `$CLIP_SIAMESE_DATA/${underData}`;
  const underReports = inside(reportsDir());
  return underReports !== undefined ? `$CLIP_SIAMESE_REPORTS/${underReports}` : path;
}
