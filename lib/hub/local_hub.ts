/**
 * A local stand-in for the Hugging Face Hub: a loopback-only HTTP server that serves a folder
 * as Hub repositories, implementing exactly the part of the Hub API that @huggingface/hub and
 * this suite use:
 *
 * - `GET  /api/{models|datasets}/{owner}/{name}[/revision/{rev}]`      repo info
 * - `GET  /api/{type}s/{owner}/{name}/tree/{rev}[/{path}]?recursive=`  file listing (paginated, `Link: rel="next"`)
 * - `GET  /[datasets/]{owner}/{name}/resolve/{rev}/{path}`              file content, with `Range`
 * - `POST /api/{type}s/{owner}/{name}/preupload/{rev}`                  regular vs LFS upload mode
 * - `POST /[datasets/]{owner}/{name}.git/info/lfs/objects/batch`        LFS batch ("basic" transfer)
 * - `PUT  /__lfs/{sha256}`                                              LFS object upload
 * - `POST /api/{type}s/{owner}/{name}/commit/{rev}`                     NDJSON commit: add, LFS add, delete
 *
 * Layout on disk: `<root>/models/<owner>/<name>/...` and `<root>/datasets/<owner>/<name>/...`.
 * Only the "main" branch exists; its commit id is a hash of the tree, so it changes with content.
 * Files with binary extensions (zip, safetensors, images, ...) or of 10 MiB and more are
 * reported as LFS files (sha256 oid), others as git blobs (sha1 oid), as on the real Hub.
 *
 * For tests it records every request and can inject faults (an HTTP status, or a connection
 * dropped halfway through a response body). CLI: `deno run -A lib/hub/local_hub.ts --root <dir> [--port <p>]`.
 */
import { createHash } from "node:crypto";
import { dirname, join, relative, resolve, sep as SEPARATOR } from "node:path";
import { exists, writeFileAtomic } from "../fs.ts";
import { bothDigestsOfFile, gitSha1OfBytes, lfsPointer } from "./hashing.ts";

/** One request as the stand-in saw it. */
export interface HubRequestRecord {
  /** HTTP method. */
  method: string;
  /** Decoded URL path (no query). */
  path: string;
  /** The Range header, if any. */
  range: string | null;
  /** Status answered. */
  status: number;
}

/** A fault to inject into matching requests. */
export interface HubFault {
  /** Applies to requests whose decoded path contains this text. */
  pathIncludes: string;
  /** Only this method (default: any). */
  method?: string;
  /** Answer with this status (JSON error body) instead of serving the request. */
  status?: number;
  /** Serve the response but drop the connection after about half of the body. */
  dropMidBody?: boolean;
  /** Serve these bytes instead of the file content (e.g. a corrupt body of the right length). */
  replaceBody?: Uint8Array;
  /** How many matching requests it hits before it is used up (default 1; Infinity for all). */
  times?: number;
}

/** Options of {@link startLocalHub}. */
export interface LocalHubOptions {
  /** Folder holding `models/` and `datasets/`. Created if missing. */
  root: string;
  /** TCP port; 0 (default) picks a free one. */
  port?: number;
  /** When set, every request must carry `Authorization: Bearer <token>`, else 401. */
  requiredToken?: string;
  /** Entries per page of tree listings (default 1000, as the Hub). */
  pageSize?: number;
  /** Log each request to stderr. */
  verbose?: boolean;
}

/** A running stand-in. */
export interface LocalHub {
  /** Base URL, e.g. http://127.0.0.1:41234 — pass as `endpoint` / `HF_ENDPOINT`. */
  endpoint: string;
  /** The root folder served. */
  root: string;
  /** Every request answered so far (tests read and clear it). */
  requests: HubRequestRecord[];
  /** Adds a fault for the next matching request(s). */
  injectFault(fault: HubFault): void;
  /** Removes all pending faults. */
  clearFaults(): void;
  /** Stops the server. */
  close(): Promise<void>;
}

/** Extensions the real Hub's default .gitattributes stores in LFS. */
const LFS_EXTENSIONS = new Set([
  "7z",
  "arrow",
  "bin",
  "bz2",
  "ckpt",
  "gif",
  "gz",
  "h5",
  "jpeg",
  "jpg",
  "model",
  "msgpack",
  "npy",
  "npz",
  "onnx",
  "parquet",
  "pkl",
  "png",
  "pt",
  "pth",
  "safetensors",
  "tar",
  "tgz",
  "webp",
  "xlsx",
  "zip",
  "zst",
]);
const LFS_MIN_SIZE = 10 * 1024 * 1024;

/** True when the stand-in (and the Hub's default rules) store this file in LFS. */
export function isLfsPath(path: string, size: number): boolean {
  const extension = path.includes(".") ? path.slice(path.lastIndexOf(".") + 1).toLowerCase() : "";
  return size >= LFS_MIN_SIZE || LFS_EXTENSIONS.has(extension);
}

interface FileDigest {
  size: number;
  mtimeMs: number;
  sha256: string;
  gitSha1: string;
}

interface RepoLocation {
  type: "model" | "dataset";
  owner: string;
  name: string;
  dir: string;
}

interface TreeEntry {
  type: "file" | "directory";
  oid: string;
  size: number;
  path: string;
  lfs?: { oid: string; size: number; pointerSize: number };
}

class HttpFailure extends Error {
  constructor(readonly status: number, message: string, readonly errorCode?: string) {
    super(message);
  }
}

function jsonResponse(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

function errorResponse(status: number, message: string, errorCode?: string): Response {
  return jsonResponse({ error: message }, status, errorCode ? { "x-error-code": errorCode } : {});
}

/** Starts the stand-in on 127.0.0.1. */
export async function startLocalHub(options: LocalHubOptions): Promise<LocalHub> {
  const root = resolve(options.root);
  await Deno.mkdir(join(root, "models"), { recursive: true });
  await Deno.mkdir(join(root, "datasets"), { recursive: true });
  const lfsStaging = join(root, ".lfs-staging");
  const pageSize = options.pageSize ?? 1000;
  const requests: HubRequestRecord[] = [];
  let faults: Array<HubFault & { remaining: number }> = [];
  const digestCache = new Map<string, FileDigest>();
  let endpoint = "";

  async function digestOf(path: string): Promise<FileDigest> {
    const stat = await Deno.stat(path);
    const mtimeMs = stat.mtime?.getTime() ?? 0;
    const cached = digestCache.get(path);
    if (cached && cached.size === stat.size && cached.mtimeMs === mtimeMs) return cached;
    const { sha256, gitSha1 } = await bothDigestsOfFile(path);
    const digest = { size: stat.size, mtimeMs, sha256, gitSha1 };
    digestCache.set(path, digest);
    return digest;
  }

  function locate(type: string, owner: string, name: string): RepoLocation {
    const repoType = type === "models" || type === "model"
      ? "model"
      : type === "datasets" || type === "dataset"
      ? "dataset"
      : undefined;
    if (!repoType) throw new HttpFailure(400, `unsupported repo type ${type}`);
    for (const part of [owner, name]) {
      if (!part || part.startsWith(".") || part.includes("/") || part.includes("\\")) {
        throw new HttpFailure(400, `invalid repo id ${owner}/${name}`);
      }
    }
    return { type: repoType, owner, name, dir: join(root, `${repoType}s`, owner, name) };
  }

  async function requireRepo(repo: RepoLocation): Promise<void> {
    if (!(await exists(repo.dir))) {
      throw new HttpFailure(404, `Repository Not Found for ${repo.type} ${repo.owner}/${repo.name}`, "RepoNotFound");
    }
  }

  function safeFilePath(repo: RepoLocation, path: string): string {
    const parts = path.split("/");
    if (path === "" || parts.some((part) => part === "" || part === "." || part === "..")) {
      throw new HttpFailure(400, `invalid file path ${JSON.stringify(path)}`);
    }
    const full = resolve(repo.dir, ...parts);
    if (!full.startsWith(repo.dir + SEPARATOR)) throw new HttpFailure(400, `invalid file path ${path}`);
    return full;
  }

  async function listTree(repo: RepoLocation): Promise<TreeEntry[]> {
    const entries: TreeEntry[] = [];
    async function walk(dir: string): Promise<void> {
      for await (const item of Deno.readDir(dir)) {
        if (item.name.startsWith(".") && item.name !== ".gitattributes") continue;
        if (item.name.endsWith(".tmp")) continue;
        const full = join(dir, item.name);
        const path = relative(repo.dir, full).split(SEPARATOR).join("/");
        if (item.isDirectory) {
          entries.push({ type: "directory", oid: createHash("sha1").update(path).digest("hex"), size: 0, path });
          await walk(full);
        } else if (item.isFile) {
          const digest = await digestOf(full);
          if (isLfsPath(path, digest.size)) {
            const pointer = lfsPointer(digest.sha256, digest.size);
            entries.push({
              type: "file",
              oid: gitSha1OfBytes(new TextEncoder().encode(pointer)),
              size: digest.size,
              path,
              lfs: { oid: digest.sha256, size: digest.size, pointerSize: pointer.length },
            });
          } else {
            entries.push({ type: "file", oid: digest.gitSha1, size: digest.size, path });
          }
        }
      }
    }
    await walk(repo.dir);
    return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  function commitIdOf(tree: TreeEntry[]): string {
    const hash = createHash("sha1");
    for (const entry of tree) hash.update(`${entry.type} ${entry.path} ${entry.oid}\n`);
    return hash.digest("hex");
  }

  async function checkRevision(repo: RepoLocation, revision: string): Promise<TreeEntry[]> {
    await requireRepo(repo);
    const tree = await listTree(repo);
    if (revision !== "main" && revision !== commitIdOf(tree)) {
      throw new HttpFailure(
        404,
        `Revision Not Found for ${repo.type} ${repo.owner}/${repo.name}: "${revision}" (the stand-in has only "main")`,
        "RevisionNotFound",
      );
    }
    return tree;
  }

  async function handleInfo(repo: RepoLocation, revision: string): Promise<Response> {
    const tree = await checkRevision(repo, revision);
    return jsonResponse({
      id: `${repo.owner}/${repo.name}`,
      sha: commitIdOf(tree),
      private: false,
      siblings: tree.filter((entry) => entry.type === "file").map((entry) => ({ rfilename: entry.path })),
    });
  }

  async function handleTree(repo: RepoLocation, rest: string[], url: URL): Promise<Response> {
    const revision = rest[0] ?? "main";
    const prefix = rest.slice(1).join("/");
    const tree = await checkRevision(repo, revision);
    const recursive = url.searchParams.get("recursive") === "true";
    let selected = tree.filter((entry) => prefix === "" || entry.path.startsWith(prefix + "/"));
    if (prefix !== "" && selected.length === 0 && !tree.some((entry) => entry.path === prefix)) {
      throw new HttpFailure(404, `path ${prefix} not found at ${revision}`, "EntryNotFound");
    }
    if (!recursive) {
      const depth = prefix === "" ? 0 : prefix.split("/").length;
      selected = selected.filter((entry) => entry.path.split("/").length === depth + 1);
    }
    const start = Number(url.searchParams.get("cursor") ?? "0");
    const page = selected.slice(start, start + pageSize);
    const headers: Record<string, string> = {};
    if (start + pageSize < selected.length) {
      const next = new URL(url.pathname + url.search, endpoint);
      next.searchParams.set("cursor", String(start + pageSize));
      headers["link"] = `<${next.href}>; rel="next"`;
    }
    return jsonResponse(page, 200, headers);
  }

  async function handleResolve(
    repo: RepoLocation,
    revision: string,
    path: string,
    req: Request,
    fault?: HubFault,
  ): Promise<Response> {
    const tree = await checkRevision(repo, revision);
    const entry = tree.find((item) => item.path === path && item.type === "file");
    if (!entry) throw new HttpFailure(404, `Entry Not Found: ${path} in ${repo.owner}/${repo.name}`, "EntryNotFound");
    const full = safeFilePath(repo, path);
    const size = entry.size;
    const etag = `"${entry.lfs?.oid ?? entry.oid}"`;
    const headers: Record<string, string> = {
      "content-type": "application/octet-stream",
      "accept-ranges": "bytes",
      "etag": etag,
      "x-repo-commit": commitIdOf(tree),
    };
    if (entry.lfs) {
      headers["x-linked-etag"] = etag;
      headers["x-linked-size"] = String(size);
    }
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = req.headers.get("range");
    if (range) {
      const match = /^bytes=(\d+)-(\d*)$/.exec(range.trim());
      if (!match || Number(match[1]) >= Math.max(size, 1)) {
        return new Response(null, { status: 416, headers: { "content-range": `bytes */${size}` } });
      }
      start = Number(match[1]);
      end = match[2] ? Math.min(Number(match[2]), size - 1) : size - 1;
      status = 206;
      headers["content-range"] = `bytes ${start}-${end}/${size}`;
    }
    const length = Math.max(0, end - start + 1);
    headers["content-length"] = String(length);
    if (req.method === "HEAD") return new Response(null, { status, headers });
    let body: Uint8Array<ArrayBuffer> = new Uint8Array(fault?.replaceBody ?? await Deno.readFile(full));
    body = body.subarray(start, start + length);
    if (!fault?.dropMidBody) return new Response(body, { status, headers });
    const half = Math.max(1, Math.floor(body.length / 2));
    let sent = false;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (!sent) {
          sent = true;
          controller.enqueue(body.subarray(0, half));
          return;
        }
        controller.error(new Error("local hub: connection dropped on purpose (injected fault)"));
      },
    });
    return new Response(stream, { status, headers });
  }

  async function handlePreupload(repo: RepoLocation, req: Request): Promise<Response> {
    await requireRepo(repo);
    const payload = await req.json() as { files: Array<{ path: string; size: number }> };
    return jsonResponse({
      files: payload.files.map((file) => ({
        path: file.path,
        uploadMode: isLfsPath(file.path, file.size) ? "lfs" : "regular",
        shouldIgnore: false,
      })),
    });
  }

  async function handleLfsBatch(repo: RepoLocation, req: Request): Promise<Response> {
    await requireRepo(repo);
    const payload = await req.json() as { operation: string; objects: Array<{ oid: string; size: number }> };
    if (payload.operation !== "upload") throw new HttpFailure(400, `unsupported LFS operation ${payload.operation}`);
    const objects = [];
    for (const object of payload.objects) {
      if (!/^[0-9a-f]{64}$/.test(object.oid)) throw new HttpFailure(400, `invalid LFS oid ${object.oid}`);
      const staged = await exists(join(lfsStaging, object.oid));
      objects.push({
        oid: object.oid,
        size: object.size,
        authenticated: true,
        ...(staged ? {} : { actions: { upload: { href: `${endpoint}/__lfs/${object.oid}`, expires_in: 3600 } } }),
      });
    }
    return jsonResponse({ transfer: "basic", objects }, 200, { "content-type": "application/vnd.git-lfs+json" });
  }

  async function handleLfsUpload(oid: string, req: Request): Promise<Response> {
    if (!/^[0-9a-f]{64}$/.test(oid)) throw new HttpFailure(400, `invalid LFS oid ${oid}`);
    const bytes = new Uint8Array(await req.arrayBuffer());
    const actual = createHash("sha256").update(bytes).digest("hex");
    if (actual !== oid) throw new HttpFailure(400, `uploaded LFS object has sha256 ${actual}, expected ${oid}`);
    await writeFileAtomic(join(lfsStaging, oid), bytes);
    return new Response(null, { status: 200, headers: { etag: `"${oid}"` } });
  }

  async function handleCommit(repo: RepoLocation, revision: string, req: Request): Promise<Response> {
    await requireRepo(repo);
    if (revision !== "main") throw new HttpFailure(404, `Revision Not Found: ${revision}`, "RevisionNotFound");
    const lines = (await req.text()).split("\n").filter((line) => line.trim() !== "");
    type Operation =
      | { kind: "write"; path: string; bytes: Uint8Array }
      | { kind: "lfs"; path: string; oid: string }
      | { kind: "delete"; path: string }
      | { kind: "deleteFolder"; path: string };
    const operations: Operation[] = [];
    let summary = "";
    // Validate everything first, so that a bad commit changes nothing.
    for (const line of lines) {
      const { key, value } = JSON.parse(line) as { key: string; value: Record<string, unknown> };
      const path = String(value.path ?? "");
      if (key === "header") summary = String(value.summary ?? "");
      else if (key === "file") {
        safeFilePath(repo, path);
        const content = String(value.content ?? "");
        const bytes = value.encoding === "base64"
          ? Uint8Array.from(atob(content), (char) => char.charCodeAt(0))
          : new TextEncoder().encode(content);
        operations.push({ kind: "write", path, bytes });
      } else if (key === "lfsFile") {
        safeFilePath(repo, path);
        const oid = String(value.oid ?? "");
        if (!(await exists(join(lfsStaging, oid)))) {
          throw new HttpFailure(422, `LFS object ${oid} for ${path} was never uploaded`);
        }
        operations.push({ kind: "lfs", path, oid });
      } else if (key === "deletedFile") {
        const full = safeFilePath(repo, path);
        if (!(await exists(full))) throw new HttpFailure(404, `cannot delete ${path}: no such file`, "EntryNotFound");
        operations.push({ kind: "delete", path });
      } else if (key === "deletedFolder") {
        safeFilePath(repo, path.replace(/\/+$/, ""));
        operations.push({ kind: "deleteFolder", path: path.replace(/\/+$/, "") });
      } else {
        throw new HttpFailure(400, `unsupported commit operation ${key}`);
      }
    }
    for (const operation of operations) {
      const full = safeFilePath(repo, operation.path);
      if (operation.kind === "write") await writeFileAtomic(full, operation.bytes);
      else if (operation.kind === "lfs") {
        await Deno.mkdir(dirname(full), { recursive: true });
        const tmp = `${full}.${crypto.randomUUID().slice(0, 8)}.tmp`;
        await Deno.copyFile(join(lfsStaging, operation.oid), tmp);
        await Deno.rename(tmp, full);
      } else {
        await Deno.remove(full, { recursive: operation.kind === "deleteFolder" });
        await removeEmptyParents(dirname(full), repo.dir);
      }
    }
    const commitOid = commitIdOf(await listTree(repo));
    const prefix = repo.type === "model" ? "" : "datasets/";
    return jsonResponse({
      success: true,
      commitOid,
      commitUrl: `${endpoint}/${prefix}${repo.owner}/${repo.name}/commit/${commitOid}`,
      summary,
    });
  }

  function route(req: Request, url: URL, path: string, segments: string[], fault?: HubFault): Promise<Response> {
    if (segments[0] === "__lfs" && req.method === "PUT" && segments.length === 2) {
      return handleLfsUpload(segments[1], req);
    }
    if (segments[0] === "api") {
      const [, type, owner, name, action, ...rest] = segments;
      const repo = locate(type, owner, name);
      if (req.method === "GET" && action === undefined) return handleInfo(repo, "main");
      if (req.method === "GET" && action === "revision") return handleInfo(repo, rest.join("/") || "main");
      if (req.method === "GET" && action === "tree") return handleTree(repo, rest, url);
      if (req.method === "POST" && action === "preupload") return handlePreupload(repo, req);
      if (req.method === "POST" && action === "commit") return handleCommit(repo, rest.join("/") || "main", req);
      throw new HttpFailure(404, `the local hub does not implement ${req.method} ${path}`);
    }
    const isDataset = segments[0] === "datasets";
    const [owner, rawName, action, ...rest] = isDataset ? segments.slice(1) : segments;
    if (rawName?.endsWith(".git") && action === "info" && rest.join("/") === "lfs/objects/batch") {
      return handleLfsBatch(locate(isDataset ? "datasets" : "models", owner, rawName.slice(0, -4)), req);
    }
    if ((req.method === "GET" || req.method === "HEAD") && action === "resolve" && rest.length >= 2) {
      const repo = locate(isDataset ? "datasets" : "models", owner, rawName);
      return handleResolve(repo, rest[0], rest.slice(1).join("/"), req, fault);
    }
    throw new HttpFailure(404, `the local hub does not implement ${req.method} ${path}`);
  }

  async function handler(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const path = decodeURIComponent(url.pathname);
    const segments = path.split("/").filter((part) => part !== "");
    let response: Response;
    const faultIndex = faults.findIndex((item) =>
      path.includes(item.pathIncludes) && (!item.method || item.method === req.method)
    );
    const fault = faultIndex >= 0 ? faults[faultIndex] : undefined;
    if (fault && --fault.remaining <= 0) faults.splice(faultIndex, 1);
    try {
      if (options.requiredToken && req.headers.get("authorization") !== `Bearer ${options.requiredToken}`) {
        response = errorResponse(401, "Invalid credentials in Authorization header");
      } else if (fault?.status) {
        await req.body?.cancel();
        response = errorResponse(fault.status, `injected fault: HTTP ${fault.status}`);
      } else {
        response = await route(req, url, path, segments, fault);
      }
    } catch (error) {
      if (error instanceof HttpFailure) response = errorResponse(error.status, error.message, error.errorCode);
      else if (error instanceof SyntaxError) response = errorResponse(400, `bad request body: ${error.message}`);
      else response = errorResponse(500, `local hub error: ${(error as Error).message}`);
    }
    requests.push({ method: req.method, path, range: req.headers.get("range"), status: response.status });
    if (options.verbose) console.error(`[local hub] ${req.method} ${path} -> ${response.status}`);
    return response;
  }

  const abort = new AbortController();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: options.port ?? 0,
    signal: abort.signal,
    onListen: () => {},
    onError: (error) => errorResponse(500, `local hub error: ${(error as Error).message}`),
  }, handler);
  endpoint = `http://127.0.0.1:${server.addr.port}`;
  return {
    endpoint,
    root,
    requests,
    injectFault(fault: HubFault): void {
      faults.push({ ...fault, remaining: fault.times ?? 1 });
    },
    clearFaults(): void {
      faults = [];
    },
    async close(): Promise<void> {
      abort.abort();
      await server.finished;
    },
  };
}

async function removeEmptyParents(dir: string, stopAt: string): Promise<void> {
  let current = dir;
  while (current.startsWith(stopAt + SEPARATOR)) {
    const entries = [];
    for await (const entry of Deno.readDir(current)) entries.push(entry);
    if (entries.length > 0) return;
    await Deno.remove(current);
    current = dirname(current);
  }
}

if (import.meta.main) {
  const args = Deno.args;
  const value = (flag: string): string | undefined => {
    const index = args.indexOf(flag);
    return index >= 0 ? args[index + 1] : undefined;
  };
  const rootArg = value("--root");
  if (!rootArg) {
    console.error("usage: deno run -A lib/hub/local_hub.ts --root <dir> [--port <port>] [--verbose]");
    Deno.exit(2);
  }
  const hub = await startLocalHub({
    root: rootArg,
    port: Number(value("--port") ?? "0"),
    verbose: args.includes("--verbose"),
  });
  console.log(hub.endpoint);
  Deno.addSignalListener("SIGINT", () => hub.close().then(() => Deno.exit(0)));
  Deno.addSignalListener("SIGTERM", () => hub.close().then(() => Deno.exit(0)));
}
