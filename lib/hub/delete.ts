/**
 * Deletes files of the Hub repo that match globs or regular expressions (`re:<regex>`).
 * Always lists the matches first; deletes only when the confirmation equals the expected word,
 * otherwise it is a dry run.
 */
import { deleteFiles } from "@huggingface/hub";
import { listRemoteFiles, type RemoteFile } from "./listing.ts";
import { compilePattern } from "./patterns.ts";
import { type HubConnectionOptions, repoDesignation, resolveConnection, toHubError } from "./repo.ts";

/** The word that must be typed to really delete. */
export const DEFAULT_CONFIRM_WORD = "DELETE";

/** A remote file matched for deletion, with the patterns that matched it. */
export interface DeleteMatch {
  /** Repo path. */
  path: string;
  /** Size in bytes. */
  size: number;
  /** The user's patterns that matched this path. */
  matchedBy: string[];
}

/** Options of {@link planDelete}. */
export interface DeletePlanOptions extends HubConnectionOptions {
  /** Globs, or regular expressions written `re:<regex>`. At least one. */
  patterns: readonly string[];
  /** Branch (default "main"). */
  branch?: string;
  /** fetch to use (tests). */
  fetch?: typeof fetch;
}

/** Options of {@link deleteRepoFiles}. */
export interface DeleteOptions extends DeletePlanOptions {
  /** Must equal {@link expectedWord} for anything to be deleted. */
  confirm?: string;
  /** The confirmation word (default "DELETE"). */
  expectedWord?: string;
}

/** What {@link deleteRepoFiles} did. */
export interface DeleteResult {
  /** Files that matched. */
  matches: DeleteMatch[];
  /** True when nothing was deleted because the confirmation did not match. */
  dryRun: boolean;
  /** Paths deleted. */
  deleted: string[];
  /** Commit id, when a commit was made. */
  commitOid?: string;
  /** A one-line explanation for the notebook. */
  message: string;
}

/** The remote files matching any pattern, each with the patterns that matched it. */
export function matchFiles(files: readonly RemoteFile[], patterns: readonly string[]): DeleteMatch[] {
  if (patterns.length === 0) throw new Error("no delete patterns given: set DELETE_PATTERNS (globs or re:<regex>)");
  const compiled = patterns.map(compilePattern);
  const matches: DeleteMatch[] = [];
  for (const file of files) {
    const matchedBy = compiled.filter((pattern) => pattern.test(file.path)).map((pattern) => pattern.source);
    if (matchedBy.length > 0) matches.push({ path: file.path, size: file.size, matchedBy });
  }
  return matches;
}

/** Lists the remote files the patterns would delete. */
export async function planDelete(options: DeletePlanOptions): Promise<DeleteMatch[]> {
  const connection = resolveConnection(options);
  return matchFiles(await listRemoteFiles(connection, options.branch || "main", options.fetch), options.patterns);
}

/**
 * Lists the matches and deletes them in one commit only when `confirm === expectedWord`;
 * otherwise deletes nothing (dry run) and says what to type.
 */
export async function deleteRepoFiles(options: DeleteOptions): Promise<DeleteResult> {
  const connection = resolveConnection(options);
  const branch = options.branch || "main";
  const expectedWord = options.expectedWord ?? DEFAULT_CONFIRM_WORD;
  const matches = await planDelete(options);
  if (matches.length === 0) {
    return { matches, dryRun: true, deleted: [], message: "no file matches the patterns: nothing to delete" };
  }
  if (options.confirm !== expectedWord) {
    const typed = options.confirm ? ` (got ${JSON.stringify(options.confirm)})` : "";
    return {
      matches,
      dryRun: true,
      deleted: [],
      message:
        `dry run: ${matches.length} file(s) would be deleted; set CONFIRM=${expectedWord} to delete them${typed}`,
    };
  }
  const paths = matches.map((match) => match.path);
  try {
    const output = await deleteFiles({
      repo: repoDesignation(connection),
      paths,
      branch,
      hubUrl: connection.endpoint,
      accessToken: connection.token as string,
      fetch: options.fetch,
      commitTitle: `Delete ${paths.length} file(s) matching ${options.patterns.join(", ")}`,
    });
    return {
      matches,
      dryRun: false,
      deleted: paths,
      commitOid: output?.commit.oid,
      message: `deleted ${paths.length} file(s) from ${connection.repo}`,
    };
  } catch (error) {
    throw toHubError(error, connection, `deleting ${paths.length} file(s)`, branch);
  }
}
