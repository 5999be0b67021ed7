/**
 * Where a Hub repository lives and how to talk to it: repo id, type, endpoint, token, and the
 * translation of Hub API failures into errors that say what to do.
 */
import { HubApiError } from "@huggingface/hub";

/** The kinds of Hub repository this suite reads and writes. */
export type RepoType = "model" | "dataset";

/** The suite's remote data repository (a dataset repo). */
export const DEFAULT_DATA_REPO = "INDEEPA/clip-siamese";

/** The public Hub, used when neither an endpoint nor `$HF_ENDPOINT` is given. */
export const PUBLIC_HUB_ENDPOINT = "https://huggingface.co";

/** Connection settings shared by download, upload and delete. */
export interface HubConnection {
  /** `owner/name` of the repository. */
  repo: string;
  /** Repository type; the data repo is a dataset. */
  repoType: RepoType;
  /** Base URL of the Hub (no trailing slash). */
  endpoint: string;
  /** Access token (`hf_...`), or undefined for anonymous access. */
  token?: string;
}

/** Options accepted by the public functions to build a {@link HubConnection}. */
export interface HubConnectionOptions {
  /** `owner/name`; default {@link DEFAULT_DATA_REPO}. */
  repo?: string;
  /** Default "dataset". */
  repoType?: RepoType;
  /** Default `$HF_ENDPOINT`, else https://huggingface.co. */
  endpoint?: string;
  /** Default `$HF_TOKEN`. */
  token?: string;
}

/** Fills in defaults (env HF_ENDPOINT / HF_TOKEN) and checks the repo id and token shape. */
export function resolveConnection(options: HubConnectionOptions): HubConnection {
  const repo = options.repo ?? DEFAULT_DATA_REPO;
  if (!/^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(repo) || repo.includes("..")) {
    throw new Error(`repo id ${JSON.stringify(repo)} is not of the form "owner/name" (e.g. ${DEFAULT_DATA_REPO})`);
  }
  const repoType = options.repoType ?? "dataset";
  if (repoType !== "model" && repoType !== "dataset") {
    throw new Error(`repoType ${JSON.stringify(repoType)} must be "model" or "dataset"`);
  }
  const endpoint = (options.endpoint || Deno.env.get("HF_ENDPOINT") || PUBLIC_HUB_ENDPOINT).replace(/\/+$/, "");
  try {
    new URL(endpoint);
  } catch {
    throw new Error(
      `Hub endpoint ${JSON.stringify(endpoint)} is not a URL: set HF_ENDPOINT to e.g. ${PUBLIC_HUB_ENDPOINT}`,
    );
  }
  const token = options.token ?? (Deno.env.get("HF_TOKEN") || undefined);
  if (token !== undefined && !token.startsWith("hf_")) {
    throw new Error(
      "the Hub token must start with 'hf_': check HF_TOKEN (create one at huggingface.co/settings/tokens)",
    );
  }
  return { repo, repoType, endpoint, token };
}

/** True when the endpoint is this machine (the local stand-in), not a remote Hub. */
export function isLoopbackEndpoint(endpoint: string): boolean {
  const host = new URL(endpoint).hostname;
  return host === "127.0.0.1" || host === "localhost" || host === "[::1]" || host === "::1";
}

/** One line saying which Hub is used, so notebook output makes clear a local stand-in was used. */
export function describeEndpoint(endpoint: string): string {
  return isLoopbackEndpoint(endpoint)
    ? `LOCAL STAND-IN Hub at ${endpoint} (loopback server seeded with demo data, not huggingface.co)`
    : `Hub at ${endpoint}`;
}

/** The `{ type, name }` designation @huggingface/hub expects. */
export function repoDesignation(connection: HubConnection): { type: RepoType; name: string } {
  return { type: connection.repoType, name: connection.repo };
}

/** URL of a file's content at a revision (`resolve` endpoint). */
export function resolveUrl(connection: HubConnection, revision: string, path: string): string {
  const prefix = connection.repoType === "model" ? "" : `${connection.repoType}s/`;
  const encodedPath = path.split("/").map(encodeURIComponent).join("/");
  return `${connection.endpoint}/${prefix}${connection.repo}/resolve/${encodeURIComponent(revision)}/${encodedPath}`;
}

/** Label like `dataset INDEEPA/clip-siamese`. */
export function repoLabel(connection: HubConnection): string {
  return `${connection.repoType} ${connection.repo}`;
}

/** Error raised for a Hub API failure, with an actionable message and the HTTP status. */
export class HubError extends Error {
  /** HTTP status, or 0 for a network failure. */
  readonly status: number;
  /** Creates the error. */
  constructor(message: string, status: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "HubError";
    this.status = status;
  }
}

/** Message for an HTTP failure status when `what` (e.g. "listing files") on a repo failed. */
export function explainStatus(
  status: number,
  connection: HubConnection,
  what: string,
  detail = "",
  revision?: string,
): string {
  const label = repoLabel(connection);
  const suffix = detail ? ` (server said: ${detail})` : "";
  if (status === 401) {
    return `authentication failed for ${label} while ${what}: set HF_TOKEN to a token with read access` +
      ` (write access for upload/delete)${suffix}`;
  }
  if (status === 403) {
    return `access denied to ${label} while ${what}: the token in HF_TOKEN lacks the needed permission${suffix}`;
  }
  if (status === 404) {
    return `not found while ${what}: ${label}${
      revision ? ` at revision "${revision}"` : ""
    } on ${connection.endpoint}` +
      ` — check the repo id, its type and the revision${suffix}`;
  }
  return `Hub returned HTTP ${status} for ${label} while ${what}${suffix}`;
}

/** Converts an error thrown by @huggingface/hub (or fetch) into a {@link HubError}. */
export function toHubError(error: unknown, connection: HubConnection, what: string, revision?: string): HubError {
  if (error instanceof HubError) return error;
  if (error instanceof HubApiError) {
    const detail = String(error.data?.error ?? error.data?.message ?? "").slice(0, 200);
    return new HubError(explainStatus(error.statusCode, connection, what, detail, revision), error.statusCode, {
      cause: error,
    });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new HubError(
    `could not reach ${connection.endpoint} while ${what} for ${repoLabel(connection)}: ${message}`,
    0,
    { cause: error },
  );
}
