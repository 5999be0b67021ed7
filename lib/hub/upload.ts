/**
 * Publishes the data folder to the Hub repo: each `images_*` folder is zipped (deterministically)
 * into `images_*.zip`, tables are uploaded file by file, loose image files never are. Only new
 * or changed files (by size and Hub digest) go into the commit.
 */
import { commit, type CommitOperation } from "@huggingface/hub";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { IMAGE_FOLDER_PATTERN, listFolderFiles, zipFolderDeterministic } from "./archive.ts";
import { hubDigestOfFile } from "./hashing.ts";
import { listRemoteFiles, type RemoteFile } from "./listing.ts";
import { anyPatternMatcher } from "./patterns.ts";
import { type HubConnectionOptions, repoDesignation, resolveConnection, toHubError } from "./repo.ts";

/** What gets uploaded by default: image archives and table folders. */
export const DEFAULT_UPLOAD_GLOBS: readonly string[] = ["images_*.zip", "tables_*/**"];

const IMAGE_EXTENSIONS = /\.(jpe?g|png|webp|gif|bmp|tiff?|avif|heic)$/i;

/** One local file considered for upload. */
export interface PlannedUpload {
  /** Repo path (same as the path under the data folder). */
  path: string;
  /** Absolute local path. */
  localPath: string;
  /** Size in bytes. */
  size: number;
  /** "new" (absent remotely), "changed" (differs) or "unchanged" (same size and digest: not uploaded). */
  action: "new" | "changed" | "unchanged";
}

/** The upload plan: what would be sent, and what was refused. */
export interface UploadPlan {
  /** Candidates, sorted by path. */
  files: PlannedUpload[];
  /** Image archives (re)built from `images_*` folders. */
  zipped: string[];
  /** Loose image files matched by the globs but never uploaded (they travel inside zips). */
  refusedImages: string[];
}

/**
 * Zips each `images_*` folder of `dataDir` into `images_*.zip` beside it, then compares the files
 * selected by `globs` (default {@link DEFAULT_UPLOAD_GLOBS}) with the remote listing.
 */
export async function planUpload(
  dataDir: string,
  remoteFiles: readonly RemoteFile[],
  globs: readonly string[] = DEFAULT_UPLOAD_GLOBS,
): Promise<UploadPlan> {
  const zipped: string[] = [];
  for await (const entry of Deno.readDir(dataDir)) {
    if (entry.isDirectory && IMAGE_FOLDER_PATTERN.test(entry.name)) {
      const folder = join(dataDir, entry.name);
      if ((await listFolderFiles(folder)).length === 0) continue;
      await zipFolderDeterministic(folder, join(dataDir, `${entry.name}.zip`));
      zipped.push(`${entry.name}.zip`);
    }
  }
  const selected = anyPatternMatcher([...globs]);
  const remoteByPath = new Map(remoteFiles.map((file) => [file.path, file]));
  const files: PlannedUpload[] = [];
  const refusedImages: string[] = [];
  for (const path of await listFolderFiles(dataDir)) {
    if (!selected(path) || path.endsWith(".part") || path.endsWith(".tmp")) continue;
    if (IMAGE_EXTENSIONS.test(path)) {
      refusedImages.push(path);
      continue;
    }
    const localPath = join(dataDir, ...path.split("/"));
    const { size } = await Deno.stat(localPath);
    const remote = remoteByPath.get(path);
    let action: PlannedUpload["action"] = "new";
    if (remote) {
      const same = remote.size === size && (await hubDigestOfFile(localPath, remote.digestKind)) === remote.digest;
      action = same ? "unchanged" : "changed";
    }
    files.push({ path, localPath, size, action });
  }
  return { files, zipped: zipped.sort(), refusedImages };
}

/** Options of {@link uploadDataRepo}. */
export interface UploadOptions extends HubConnectionOptions {
  /** The data folder to publish. */
  dataDir: string;
  /** Branch to commit to (default "main"). */
  branch?: string;
  /** Globs selecting what to upload (default {@link DEFAULT_UPLOAD_GLOBS}). */
  globs?: readonly string[];
  /** Only plan; upload nothing. */
  dryRun?: boolean;
  /** Commit title. */
  commitTitle?: string;
  /** fetch to use (tests). */
  fetch?: typeof fetch;
}

/** What {@link uploadDataRepo} did. */
export interface UploadResult {
  /** The plan (all candidates with their action). */
  plan: UploadPlan;
  /** Repo paths uploaded (empty on a dry run or when nothing changed). */
  uploaded: string[];
  /** Commit id, when a commit was made. */
  commitOid?: string;
}

/** Plans the upload and, unless `dryRun`, commits the new and changed files in one commit. */
export async function uploadDataRepo(options: UploadOptions): Promise<UploadResult> {
  const connection = resolveConnection(options);
  const branch = options.branch || "main";
  const remote = await listRemoteFiles(connection, branch, options.fetch);
  const plan = await planUpload(options.dataDir, remote, options.globs ?? DEFAULT_UPLOAD_GLOBS);
  const toSend = plan.files.filter((file) => file.action !== "unchanged");
  if (options.dryRun || toSend.length === 0) return { plan, uploaded: [] };
  if (!connection.token && !new URL(connection.endpoint).hostname.match(/^(127\.0\.0\.1|localhost)$/)) {
    throw new Error(`uploading to ${connection.repo} needs a token with write access: set HF_TOKEN`);
  }
  const operations: CommitOperation[] = toSend.map((file) => ({
    operation: "addOrUpdate",
    path: file.path,
    content: new URL(pathToFileURL(file.localPath).href),
  }));
  try {
    const output = await commit({
      repo: repoDesignation(connection),
      operations,
      title: options.commitTitle ?? `Upload ${toSend.length} data file(s)`,
      branch,
      hubUrl: connection.endpoint,
      accessToken: connection.token,
      fetch: options.fetch,
    });
    return { plan, uploaded: toSend.map((file) => file.path), commitOid: output?.commit.oid };
  } catch (error) {
    throw toHubError(error, connection, `committing ${toSend.length} file(s)`, branch);
  }
}
