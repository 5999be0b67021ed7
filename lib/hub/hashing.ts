/**
 * File digests as the Hub reports them: sha256 for LFS files (the LFS oid) and the git blob
 * sha1 (`sha1("blob <size>\0" + content)`) for files stored in git.
 */
import { createHash, type Hash } from "node:crypto";

/** Which digest identifies a file on the Hub. */
export type DigestKind = "sha256" | "git-sha1";

/** An incremental hasher of the Hub digest for a file of known size. */
export function createHubHasher(kind: DigestKind, size: number): Hash {
  if (kind === "sha256") return createHash("sha256");
  const hash = createHash("sha1");
  hash.update(`blob ${size}\0`);
  return hash;
}

/** Streams `path` through `hash` (used to hash files without loading them whole). */
export async function hashFileInto(path: string, hash: Hash): Promise<number> {
  let bytes = 0;
  const file = await Deno.open(path, { read: true }); // its readable closes it at the end
  for await (const chunk of file.readable) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return bytes;
}

/** The Hub digest (hex) of a file on disk. */
export async function hubDigestOfFile(path: string, kind: DigestKind): Promise<string> {
  const { size } = await Deno.stat(path);
  const hash = createHubHasher(kind, size);
  await hashFileInto(path, hash);
  return hash.digest("hex");
}

/** sha256 and git-sha1 of a file in one pass. */
export async function bothDigestsOfFile(path: string): Promise<{ size: number; sha256: string; gitSha1: string }> {
  const { size } = await Deno.stat(path);
  const sha256 = createHubHasher("sha256", size);
  const gitSha1 = createHubHasher("git-sha1", size);
  const file = await Deno.open(path, { read: true }); // its readable closes it at the end
  for await (const chunk of file.readable) {
    sha256.update(chunk);
    gitSha1.update(chunk);
  }
  return { size, sha256: sha256.digest("hex"), gitSha1: gitSha1.digest("hex") };
}

/** The git-LFS pointer text stored in git for an LFS file. */
export function lfsPointer(sha256: string, size: number): string {
  return `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${size}\n`;
}

/** git blob sha1 of in-memory bytes. */
export function gitSha1OfBytes(bytes: Uint8Array): string {
  const hash = createHubHasher("git-sha1", bytes.length);
  hash.update(bytes);
  return hash.digest("hex");
}
