/**
 * Downloads files of a Hub repository into a local folder, resumably and atomically:
 * files whose size and Hub digest already match are skipped; each file is streamed to
 * `<file>.part`, verified (size + sha256/git-sha1), then renamed over the old one, so an
 * interrupted or failed download never replaces a good file with a partial one.
 * Transient failures (HTTP 5xx/429, dropped connections, corrupted transfers) are retried
 * with exponential backoff, resuming from the bytes already received.
 */
import pLimit from "p-limit";
import { dirname, join, resolve, sep } from "node:path";
import { exists } from "../fs.ts";
import { beginInterruptible, InterruptedError, takeInterrupt } from "../notebook/interrupt.ts";
import { shownPath } from "../paths.ts";
import { unpackImageArchives, type UnpackRecord } from "./archive.ts";
import { createHubHasher, hashFileInto, hubDigestOfFile } from "./hashing.ts";
import { listRemoteFiles, type RemoteFile } from "./listing.ts";
import { anyPatternMatcher } from "./patterns.ts";
import {
  explainStatus,
  type HubConnection,
  type HubConnectionOptions,
  HubError,
  resolveConnection,
  resolveUrl,
} from "./repo.ts";

/** Progress event for one file. */
export interface DownloadProgress {
  /** Repo path of the file. */
  path: string;
  /** What just happened. */
  status: "skipped" | "downloaded" | "failed" | "retrying";
  /** Files finished so far (skipped, downloaded or failed). */
  done: number;
  /** Files selected. */
  total: number;
  /** Reason, for "retrying" and "failed". */
  message?: string;
}

/** Options of {@link downloadRepoFiles}. */
export interface DownloadOptions extends HubConnectionOptions {
  /** Branch, tag or commit (default "main"). */
  revision?: string;
  /** Globs (or `re:` regexes) selecting files; empty or absent means the whole snapshot. */
  globs?: string[];
  /** Local folder the repo files are written into (repo paths are kept). */
  destination: string;
  /** Called after each file. */
  onProgress?: (event: DownloadProgress) => void;
  /** Attempts per file for transient failures (default 4). */
  attempts?: number;
  /** First retry delay in ms, doubled each retry (default 500). */
  retryDelayMs?: number;
  /** Files downloaded at once (default 4). */
  concurrency?: number;
  /** fetch to use (tests). */
  fetch?: typeof fetch;
}

/** Outcome for one file. */
export interface DownloadedFile {
  /** Repo path. */
  path: string;
  /** Size in bytes. */
  size: number;
  /** "downloaded", "skipped" (already up to date) or "failed". */
  status: "downloaded" | "skipped" | "failed";
  /** Why it failed. */
  error?: string;
}

/** What {@link downloadRepoFiles} did. */
export interface DownloadReport {
  /** Repo id. */
  repo: string;
  /** Hub base URL used. */
  endpoint: string;
  /** Revision downloaded. */
  revision: string;
  /** One record per selected file, sorted by path. */
  files: DownloadedFile[];
  /** Count of downloaded files. */
  downloaded: number;
  /** Count of skipped (already matching) files. */
  skipped: number;
  /** Count of failed files. */
  failed: number;
  /** Bytes written by downloads. */
  bytesDownloaded: number;
}

/** Thrown when some files could not be downloaded; carries the full report. */
export class HubDownloadError extends HubError {
  /** The report, with the failed files. */
  readonly report: DownloadReport;
  /** Creates the error from a report with failures. */
  constructor(report: DownloadReport) {
    const failed = report.files.filter((file) => file.status === "failed");
    super(
      `${failed.length} of ${report.files.length} file(s) of ${report.repo} could not be downloaded ` +
        `(earlier good copies were kept, nothing was left half-written):\n` +
        failed.map((file) => `  ${file.error}`).join("\n"),
      0,
    );
    this.report = report;
  }
}

class TransferError extends Error {
  constructor(message: string, readonly retryable: boolean) {
    super(message);
  }
}

/** True when the local file has the remote file's size and digest. */
export async function localFileMatches(localPath: string, remote: RemoteFile): Promise<boolean> {
  try {
    const stat = await Deno.stat(localPath);
    if (!stat.isFile || stat.size !== remote.size) return false;
  } catch {
    return false;
  }
  return (await hubDigestOfFile(localPath, remote.digestKind)) === remote.digest;
}

function localPathFor(destination: string, repoPath: string): string {
  const root = resolve(destination);
  const full = resolve(root, ...repoPath.split("/"));
  if (!full.startsWith(root + sep) || repoPath.split("/").includes("..")) {
    throw new HubError(`refusing to write repo file ${JSON.stringify(repoPath)} outside ${root}`, 0);
  }
  return full;
}

async function transferToPart(
  connection: HubConnection,
  revision: string,
  file: RemoteFile,
  part: string,
  fetchImpl: typeof fetch,
): Promise<{ size: number; digest: string }> {
  let offset = 0;
  try {
    offset = (await Deno.stat(part)).size;
  } catch { /* no partial file yet */ }
  if (offset > file.size) {
    await Deno.remove(part);
    offset = 0;
  }
  let hasher = createHubHasher(file.digestKind, file.size);
  if (offset > 0) await hashFileInto(part, hasher);
  if (offset === file.size) return { size: offset, digest: hasher.digest("hex") };
  const headers: Record<string, string> = {};
  if (connection.token) headers["authorization"] = `Bearer ${connection.token}`;
  if (offset > 0) headers["range"] = `bytes=${offset}-`;
  let response: Response;
  try {
    response = await fetchImpl(resolveUrl(connection, revision, file.path), { headers });
  } catch (error) {
    throw new TransferError(`${file.path}: connection failed (${(error as Error).message})`, true);
  }
  if (!response.ok) {
    const detail = (await response.text().catch(() => "")).slice(0, 200);
    const retryable = response.status >= 500 || response.status === 429 || response.status === 408;
    throw new TransferError(
      `${file.path}: ${explainStatus(response.status, connection, `downloading ${file.path}`, detail, revision)}`,
      retryable,
    );
  }
  if (offset > 0 && response.status !== 206) {
    offset = 0; // the server ignored the range: start over
    hasher = createHubHasher(file.digestKind, file.size);
  }
  const out = await Deno.open(part, { write: true, create: true, append: offset > 0, truncate: offset === 0 });
  let size = offset;
  try {
    for await (const chunk of response.body ?? new ReadableStream<Uint8Array>()) {
      hasher.update(chunk);
      let written = 0;
      while (written < chunk.length) written += await out.write(chunk.subarray(written));
      size += chunk.length;
    }
  } catch (error) {
    throw new TransferError(
      `${file.path}: connection dropped after ${size} of ${file.size} bytes (${(error as Error).message})`,
      true,
    );
  } finally {
    out.close();
  }
  return { size, digest: hasher.digest("hex") };
}

async function downloadOne(
  connection: HubConnection,
  revision: string,
  file: RemoteFile,
  destination: string,
  options: { attempts: number; retryDelayMs: number; fetch: typeof fetch; onRetry: (message: string) => void },
): Promise<DownloadedFile> {
  const local = localPathFor(destination, file.path);
  if (await localFileMatches(local, file)) return { path: file.path, size: file.size, status: "skipped" };
  await Deno.mkdir(dirname(local), { recursive: true });
  const part = `${local}.part`;
  let lastError = "";
  for (let attempt = 1; attempt <= options.attempts; attempt++) {
    try {
      const result = await transferToPart(connection, revision, file, part, options.fetch);
      if (result.size !== file.size || result.digest !== file.digest) {
        await Deno.remove(part).catch(() => {});
        throw new TransferError(
          `${file.path}: received ${result.size} bytes with ${file.digestKind} ${result.digest.slice(0, 12)}…, ` +
            `expected ${file.size} bytes with ${file.digest.slice(0, 12)}…`,
          true,
        );
      }
      await Deno.rename(part, local);
      return { path: file.path, size: file.size, status: "downloaded" };
    } catch (error) {
      const transfer = error instanceof TransferError ? error : new TransferError(`${file.path}: ${error}`, false);
      lastError = transfer.message;
      if (!transfer.retryable) break;
      if (attempt < options.attempts) {
        options.onRetry(`${lastError}; retry ${attempt} of ${options.attempts - 1}`);
        await new Promise((done) => setTimeout(done, options.retryDelayMs * 2 ** (attempt - 1)));
      } else {
        lastError += ` (gave up after ${options.attempts} attempts)`;
      }
    }
  }
  await Deno.remove(part).catch(() => {});
  return { path: file.path, size: file.size, status: "failed", error: lastError };
}

/**
 * Downloads the repo snapshot (or the files matching `globs`) into `destination`.
 * Throws {@link HubError} with an actionable message when the repo cannot be listed
 * (401/403/404/network), and {@link HubDownloadError} (carrying the report) when some
 * files failed after retries.
 */
export async function downloadRepoFiles(options: DownloadOptions): Promise<DownloadReport> {
  const connection = resolveConnection(options);
  const revision = options.revision || "main";
  const fetchImpl = options.fetch ?? fetch;
  const matches = anyPatternMatcher(options.globs);
  const selected = (await listRemoteFiles(connection, revision, fetchImpl)).filter((file) => matches(file.path));
  const limit = pLimit(Math.max(1, options.concurrency ?? 4));
  let done = 0;
  let stopped = false;
  beginInterruptible();
  const downloaded = await Promise.all(selected.map((file) =>
    limit(async () => {
      if (stopped || takeInterrupt()) {
        stopped = true;
        return null;
      }
      const record = await downloadOne(connection, revision, file, options.destination, {
        attempts: Math.max(1, options.attempts ?? 4),
        retryDelayMs: options.retryDelayMs ?? 500,
        fetch: fetchImpl,
        onRetry: (message) =>
          options.onProgress?.({ path: file.path, status: "retrying", done, total: selected.length, message }),
      });
      done++;
      options.onProgress?.({
        path: file.path,
        status: record.status,
        done,
        total: selected.length,
        message: record.error,
      });
      return record;
    })
  ));
  if (stopped) {
    throw new InterruptedError(
      `Hub download stopped at ${done}/${selected.length} files`,
      `the ${done} files finished, each verified and renamed into ${shownPath(options.destination)} whole ` +
        "(a file cut short stays a .part file, never under its own name).",
      "run it again: the files on disk that match the Hub are skipped.",
      options.destination,
    );
  }
  const files = downloaded as DownloadedFile[];
  const report: DownloadReport = {
    repo: connection.repo,
    endpoint: connection.endpoint,
    revision,
    files,
    downloaded: files.filter((file) => file.status === "downloaded").length,
    skipped: files.filter((file) => file.status === "skipped").length,
    failed: files.filter((file) => file.status === "failed").length,
    bytesDownloaded: files.filter((file) => file.status === "downloaded").reduce((sum, file) => sum + file.size, 0),
  };
  if (report.failed > 0) throw new HubDownloadError(report);
  return report;
}

/** Result of {@link downloadDataRepo}. */
export interface DataRepoDownload {
  /** The file download report. */
  report: DownloadReport;
  /** What happened to each `images_*.zip`. */
  unpacked: UnpackRecord[];
}

/**
 * The data-repo download used by the `hf_data_download` notebook: downloads into the data
 * folder, then unpacks each `images_*.zip` into `images_*`.
 */
export async function downloadDataRepo(options: DownloadOptions): Promise<DataRepoDownload> {
  const report = await downloadRepoFiles(options);
  const unpacked = (await exists(options.destination)) ? await unpackImageArchives(options.destination) : [];
  return { report, unpacked };
}

/** The local path a repo file is downloaded to. */
export function downloadedPath(destination: string, repoPath: string): string {
  return join(resolve(destination), ...repoPath.split("/"));
}
