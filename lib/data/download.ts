/**
 * The image download step: fetch each product's image (http(s) or file URL) with bounded
 * concurrency, a timeout per attempt, retries with exponential backoff, and resume (a valid file
 * already on disk is kept); decode and validate each image with sharp; write it atomically.
 * Every failure becomes a row of the report; nothing here throws for a bad image.
 */
import pLimit from "p-limit";
import sharp from "sharp";
import { isAbsolute, join, normalize } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { writeFileAtomic } from "../fs.ts";
import { beginInterruptible, InterruptedError, takeInterrupt } from "../notebook/interrupt.ts";
import { dataDir, shownPath } from "../paths.ts";

/**
 * An image reference as an export holds it: an http(s) or file URL, or a path without a URL scheme,
 * relative to the data folder (the demo's exports use these, so a data folder can be moved or
 * uploaded with its images). Returns the URL to fetch, or null for a reference that is neither
 * (or that leaves the data folder).
 */
export function resolveImageReference(reference: string, dataRoot: string = dataDir()): URL | null {
  const text = reference.trim();
  if (/^[a-z][a-z0-9+.-]*:/i.test(text)) {
    try {
      return new URL(text);
    } catch {
      return null;
    }
  }
  const relativePath = normalize(text);
  if (text === "" || isAbsolute(relativePath) || relativePath.split(/[\\/]/)[0] === "..") return null;
  return pathToFileURL(join(dataRoot, relativePath));
}

/** One image to fetch. */
export interface ImageJob {
  sku: string;
  url: string;
  imageName: string;
}

/** What happened to one image. */
export interface ImageResult {
  sku: string;
  url: string;
  image_name: string;
  /** "downloaded", "cached" (valid file already there) or "failed". */
  status: "downloaded" | "cached" | "failed";
  attempts: number;
  bytes: number;
  width: number | null;
  height: number | null;
  error: string;
}

/**
 * Anything with the Progress API (lib/notebook/progress.ts). What `tick`, `done` and `stop` return
 * is awaited (a Progress returns a promise that settles once the bar was drawn); `stop` is called
 * instead of `done` when the work fails, when the sink has it.
 */
export interface ProgressSink {
  tick(n?: number, metrics?: Record<string, number | string>): unknown;
  done(): unknown;
  stop?(reason: unknown): unknown;
}

/** Ends `sink` as `done()` when `error` is undefined, else `stop(error)` (or `done()` when it has no stop). */
export async function finishProgress(sink: ProgressSink | undefined, error?: unknown): Promise<void> {
  if (!sink) return;
  if (error !== undefined && sink.stop) await sink.stop(error);
  else await sink.done();
}

/** Download options. */
export interface DownloadOptions {
  /** Folder the images are written to. */
  imagesDir: string;
  /** Simultaneous downloads (default 8). */
  concurrency?: number;
  /** Retries after the first attempt (default 3). */
  retries?: number;
  /** Per-attempt timeout in ms (default 15000). */
  timeoutMs?: number;
  /** First backoff in ms, doubled each retry (default 500). */
  backoffMs?: number;
  /** Re-download even when a valid file exists (default false: resume). */
  force?: boolean;
  /** The data folder that scheme-less image references are relative to (default `dataDir()`). */
  dataRoot?: string;
  /** Progress bar to tick once per image. */
  progress?: ProgressSink;
}

/** An error that retrying cannot fix (404, not an image, bad URL). */
class PermanentError extends Error {}

/** Decodes the whole image (strict: truncated data fails) and returns its size. */
export async function validateImage(bytes: Uint8Array): Promise<{ width: number; height: number }> {
  const { info } = await sharp(bytes, { failOn: "truncated" }).raw().toBuffer({ resolveWithObject: true });
  if (!(info.width > 0 && info.height > 0)) throw new Error("image has no pixels");
  return { width: info.width, height: info.height };
}

async function fetchOnce(url: string, timeoutMs: number, dataRoot?: string): Promise<Uint8Array> {
  const parsed = resolveImageReference(url, dataRoot);
  if (!parsed) throw new PermanentError(`not a URL nor a path inside the data folder: ${url}`);
  if (parsed.protocol === "file:") {
    try {
      return await Deno.readFile(fileURLToPath(parsed));
    } catch (error) {
      throw new PermanentError(
        `cannot read ${shownPath(fileURLToPath(parsed))}: ${(error as Error).message.split(":")[0]}`,
      );
    }
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new PermanentError(`unsupported URL scheme ${parsed.protocol} (use http, https or file)`);
  }
  const signal = AbortSignal.timeout(timeoutMs);
  let response: Response;
  try {
    response = await fetch(url, { signal, redirect: "follow" });
  } catch (error) {
    throw new Error(signal.aborted ? `timed out after ${timeoutMs} ms` : `network error: ${(error as Error).message}`);
  }
  if (!response.ok) {
    await response.body?.cancel();
    const message = `HTTP ${response.status} ${response.statusText}`.trim();
    if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429) {
      throw new PermanentError(message);
    }
    throw new Error(message);
  }
  let body: Uint8Array;
  try {
    body = new Uint8Array(await response.arrayBuffer());
  } catch (error) {
    throw new Error(signal.aborted ? `timed out after ${timeoutMs} ms` : `body cut off: ${(error as Error).message}`);
  }
  const expected = Number(response.headers.get("content-length") ?? NaN);
  if (Number.isFinite(expected) && body.length !== expected) {
    throw new Error(`body cut off: ${body.length} of ${expected} bytes`);
  }
  return body;
}

async function validFileOnDisk(path: string): Promise<{ bytes: number; width: number; height: number } | null> {
  try {
    const bytes = await Deno.readFile(path);
    return { bytes: bytes.length, ...(await validateImage(bytes)) };
  } catch {
    return null;
  }
}

/** Fetches, validates and stores one image; never throws. */
export async function downloadImage(job: ImageJob, options: DownloadOptions): Promise<ImageResult> {
  const retries = options.retries ?? 3;
  const timeoutMs = options.timeoutMs ?? 15000;
  const backoffMs = options.backoffMs ?? 500;
  const target = join(options.imagesDir, job.imageName);
  const result: ImageResult = {
    sku: job.sku,
    url: job.url,
    image_name: job.imageName,
    status: "failed",
    attempts: 0,
    bytes: 0,
    width: null,
    height: null,
    error: "",
  };
  if (!options.force) {
    const existing = await validFileOnDisk(target);
    if (existing) {
      return { ...result, status: "cached", bytes: existing.bytes, width: existing.width, height: existing.height };
    }
  }
  for (let attempt = 0; attempt <= retries; attempt++) {
    result.attempts = attempt + 1;
    try {
      const bytes = await fetchOnce(job.url, timeoutMs, options.dataRoot);
      let size: { width: number; height: number };
      try {
        size = await validateImage(bytes);
      } catch (error) {
        // A corrupt file on a file:// host will not change; over http a cut-off body might.
        const message = `not a valid image (${bytes.length} bytes): ${(error as Error).message}`;
        const local = resolveImageReference(job.url, options.dataRoot)?.protocol === "file:";
        throw local ? new PermanentError(message) : new Error(message);
      }
      await writeFileAtomic(target, bytes);
      return {
        ...result,
        status: "downloaded",
        bytes: bytes.length,
        width: size.width,
        height: size.height,
        error: "",
      };
    } catch (error) {
      result.error = (error as Error).message;
      if (error instanceof PermanentError || attempt === retries) break;
      await new Promise((resolve) => setTimeout(resolve, backoffMs * 2 ** attempt));
    }
  }
  return result;
}

/**
 * Downloads all images with bounded concurrency; returns one result per job, in job order. Stop
 * (lib/notebook/interrupt.ts) lets the downloads under way finish (each file is written whole or not at
 * all) and starts no more; it then throws an `InterruptedError` (a rerun skips what is on disk).
 */
export async function downloadImages(jobs: readonly ImageJob[], options: DownloadOptions): Promise<ImageResult[]> {
  const limit = pLimit(Math.max(1, options.concurrency ?? 8));
  let failed = 0;
  let finished = 0;
  let stopped = false;
  beginInterruptible();
  try {
    await Deno.mkdir(options.imagesDir, { recursive: true });
    const results = await Promise.all(jobs.map((job) =>
      limit(async () => {
        if (stopped || takeInterrupt()) {
          stopped = true;
          return null;
        }
        const result = await downloadImage(job, options);
        if (result.status === "failed") failed++;
        finished++;
        await options.progress?.tick(1, { failed });
        return result;
      })
    ));
    if (stopped) {
      await options.progress?.stop?.(`interrupted at ${finished}/${jobs.length}`);
      throw new InterruptedError(
        `image download stopped at ${finished}/${jobs.length} images`,
        `the ${finished - failed} images fetched, each written whole in ${shownPath(options.imagesDir)}.`,
        "run it again: the images on disk are checked and skipped.",
        options.imagesDir,
      );
    }
    await finishProgress(options.progress);
    return results as ImageResult[];
  } catch (error) {
    await finishProgress(options.progress, error);
    throw error;
  }
}
