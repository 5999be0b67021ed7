/**
 * The image download step: fetch each product's image (http(s) or file URL) with bounded
 * concurrency, a timeout per attempt, retries with exponential backoff, and resume (a valid file
 * already on disk is kept); decode and validate each image with sharp; write it atomically.
 * Every failure becomes a row of the report; nothing here throws for a bad image.
 */
import pLimit from "p-limit";
import sharp from "sharp";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeFileAtomic } from "../fs.ts";

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

/** Anything with the Progress API (lib/notebook/progress.ts). */
export interface ProgressSink {
  tick(n?: number, metrics?: Record<string, number | string>): void;
  done(): void;
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

async function fetchOnce(url: string, timeoutMs: number): Promise<Uint8Array> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new PermanentError(`not a URL: ${url}`);
  }
  if (parsed.protocol === "file:") {
    try {
      return await Deno.readFile(fileURLToPath(parsed));
    } catch (error) {
      throw new PermanentError(`cannot read ${parsed.pathname}: ${(error as Error).message}`);
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
      const bytes = await fetchOnce(job.url, timeoutMs);
      let size: { width: number; height: number };
      try {
        size = await validateImage(bytes);
      } catch (error) {
        // A corrupt file on a file:// host will not change; over http a cut-off body might.
        const message = `not a valid image (${bytes.length} bytes): ${(error as Error).message}`;
        throw job.url.startsWith("file:") ? new PermanentError(message) : new Error(message);
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

/** Downloads all images with bounded concurrency; returns one result per job, in job order. */
export async function downloadImages(jobs: readonly ImageJob[], options: DownloadOptions): Promise<ImageResult[]> {
  await Deno.mkdir(options.imagesDir, { recursive: true });
  const limit = pLimit(Math.max(1, options.concurrency ?? 8));
  let failed = 0;
  const results = await Promise.all(jobs.map((job) =>
    limit(async () => {
      const result = await downloadImage(job, options);
      if (result.status === "failed") failed++;
      options.progress?.tick(1, { failed });
      return result;
    })
  ));
  options.progress?.done();
  return results;
}
