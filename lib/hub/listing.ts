/** Lists the files of a Hub repository with the digests needed to compare them with local files. */
import { listFiles } from "@huggingface/hub";
import type { DigestKind } from "./hashing.ts";
import { type HubConnection, repoDesignation, toHubError } from "./repo.ts";

/** A file in the remote repository. */
export interface RemoteFile {
  /** Repo-relative path with forward slashes. */
  path: string;
  /** Size in bytes (of the real content, also for LFS files). */
  size: number;
  /** Hex digest: the LFS sha256 oid, or the git blob sha1. */
  digest: string;
  /** Which digest {@link digest} is. */
  digestKind: DigestKind;
  /** True when stored in LFS (or Xet). */
  lfs: boolean;
}

/** Lists every file of the repo at `revision` (recursive; directories left out). */
export async function listRemoteFiles(
  connection: HubConnection,
  revision = "main",
  fetchImpl?: typeof fetch,
): Promise<RemoteFile[]> {
  const files: RemoteFile[] = [];
  try {
    for await (
      const entry of listFiles({
        repo: repoDesignation(connection),
        recursive: true,
        revision,
        hubUrl: connection.endpoint,
        accessToken: connection.token,
        fetch: fetchImpl,
      })
    ) {
      if (entry.type !== "file") continue;
      if (entry.lfs) {
        files.push({ path: entry.path, size: entry.size, digest: entry.lfs.oid, digestKind: "sha256", lfs: true });
      } else if (entry.oid) {
        files.push({ path: entry.path, size: entry.size, digest: entry.oid, digestKind: "git-sha1", lfs: false });
      }
    }
  } catch (error) {
    throw toHubError(error, connection, "listing files", revision);
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
