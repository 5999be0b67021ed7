/**
 * Image-folder archives: each `data/images_<name>/` travels as `images_<name>.zip`.
 * Zips are deterministic (sorted entries, fixed timestamps, stored without compression: the
 * images are already compressed), so an unchanged folder always gives the same bytes and hash.
 * Unpacking is atomic: into a temp folder, CRC-checked, then swapped in by rename.
 */
import { unzipSync, Zip, ZipPassThrough } from "fflate";
import { basename, dirname, join } from "node:path";
import { exists, writeJsonAtomic } from "../fs.ts";

/** Fixed entry timestamp, built from local-time fields so the DOS time is the same in any time zone. */
const FIXED_ENTRY_TIME = new Date(2000, 0, 1, 0, 0, 0);

/** Marker written inside an unpacked folder recording which zip it came from. */
const UNPACK_MARKER = ".unpacked-from.json";

/** Name pattern of image folders and their archives. */
export const IMAGE_FOLDER_PATTERN = /^images_[^/]+$/;

/** Files of a folder, recursively, as sorted forward-slash relative paths; dot-files are left out. */
export async function listFolderFiles(folder: string): Promise<string[]> {
  const found: string[] = [];
  async function walk(dir: string, prefix: string): Promise<void> {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.name.startsWith(".")) continue;
      const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.isDirectory) await walk(join(dir, entry.name), rel);
      else if (entry.isFile) found.push(rel);
    }
  }
  await walk(folder, "");
  return found.sort();
}

/**
 * Zips `folder` into `zipPath` deterministically and atomically (temp file + rename).
 * Returns the number of entries.
 */
export async function zipFolderDeterministic(folder: string, zipPath: string): Promise<number> {
  const files = await listFolderFiles(folder);
  await Deno.mkdir(dirname(zipPath), { recursive: true });
  const tmp = `${zipPath}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  const out = await Deno.open(tmp, { write: true, create: true, truncate: true });
  const pending: Uint8Array[] = [];
  let zipError: Error | null = null;
  const zip = new Zip((error, chunk) => {
    if (error) zipError = error;
    else pending.push(chunk);
  });
  const flush = async (): Promise<void> => {
    if (zipError) throw zipError;
    while (pending.length > 0) {
      const chunk = pending.shift()!;
      let written = 0;
      while (written < chunk.length) written += await out.write(chunk.subarray(written));
    }
  };
  try {
    for (const rel of files) {
      const entry = new ZipPassThrough(rel);
      entry.mtime = FIXED_ENTRY_TIME;
      zip.add(entry);
      entry.push(await Deno.readFile(join(folder, rel)), true);
      await flush();
    }
    zip.end();
    await flush();
    out.close();
    await Deno.rename(tmp, zipPath);
  } catch (error) {
    try {
      out.close();
    } catch { /* already closed */ }
    await Deno.remove(tmp).catch(() => {});
    throw new Error(`could not zip ${folder} into ${zipPath}: ${(error as Error).message}`, { cause: error });
  }
  return files.length;
}

const CRC_TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (the zip checksum) of bytes. */
export function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** Reads the CRC-32 of each entry from the zip's central directory (zip64 archives are not handled). */
function centralDirectoryCrcs(data: Uint8Array): Map<string, number> {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let end = data.length - 22;
  while (end >= 0 && view.getUint32(end, true) !== 0x06054b50) end--;
  if (end < 0) throw new Error("no end-of-central-directory record (truncated or not a zip)");
  const count = view.getUint16(end + 10, true);
  let offset = view.getUint32(end + 16, true);
  const decoder = new TextDecoder();
  const crcs = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    if (offset + 46 > data.length || view.getUint32(offset, true) !== 0x02014b50) {
      throw new Error(`central directory entry ${i} is damaged`);
    }
    const crc = view.getUint32(offset + 16, true);
    const nameLength = view.getUint16(offset + 28, true);
    const extraLength = view.getUint16(offset + 30, true);
    const commentLength = view.getUint16(offset + 32, true);
    const name = decoder.decode(data.subarray(offset + 46, offset + 46 + nameLength));
    crcs.set(name, crc);
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return crcs;
}

function isSafeEntryName(name: string): boolean {
  return name !== "" && !name.startsWith("/") && !name.includes("\\") && !/^[A-Za-z]:/.test(name) &&
    !name.split("/").includes("..");
}

/**
 * Unpacks `zipPath` into `destination` atomically: entries are CRC-checked and written to a
 * temp folder beside it, which then replaces `destination`. On any error (corrupt zip, unsafe
 * entry name) the existing `destination` is left exactly as it was.
 */
export async function unpackZipAtomic(zipPath: string, destination: string): Promise<number> {
  const data = await Deno.readFile(zipPath);
  let entries: Record<string, Uint8Array>;
  let crcs: Map<string, number>;
  try {
    crcs = centralDirectoryCrcs(data);
    entries = unzipSync(data);
    for (const [name, bytes] of Object.entries(entries)) {
      if (!isSafeEntryName(name)) throw new Error(`entry ${JSON.stringify(name)} would be written outside the folder`);
      if (name.endsWith("/")) continue;
      const expected = crcs.get(name);
      if (expected === undefined) throw new Error(`entry ${name} is missing from the central directory`);
      if (crc32(bytes) !== expected) throw new Error(`entry ${name} fails its CRC check`);
    }
  } catch (error) {
    throw new Error(
      `corrupt zip ${zipPath}: ${(error as Error).message}. ${basename(destination)}/ was left untouched; ` +
        `delete the zip and download it again`,
      { cause: error },
    );
  }
  const tmp = `${destination}.unpack-${crypto.randomUUID().slice(0, 8)}`;
  let count = 0;
  try {
    for (const [name, bytes] of Object.entries(entries)) {
      if (name.endsWith("/")) continue;
      const target = join(tmp, name);
      await Deno.mkdir(dirname(target), { recursive: true });
      await Deno.writeFile(target, bytes);
      count++;
    }
    await Deno.mkdir(tmp, { recursive: true });
    const { size, mtime } = await Deno.stat(zipPath);
    await writeJsonAtomic(join(tmp, UNPACK_MARKER), { zip: basename(zipPath), size, mtimeMs: mtime?.getTime() ?? 0 });
    const old = `${destination}.old-${crypto.randomUUID().slice(0, 8)}`;
    const hadOld = await exists(destination);
    if (hadOld) await Deno.rename(destination, old);
    try {
      await Deno.rename(tmp, destination);
    } catch (error) {
      if (hadOld) await Deno.rename(old, destination);
      throw error;
    }
    if (hadOld) await Deno.remove(old, { recursive: true });
  } catch (error) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw error;
  }
  return count;
}

/** What happened to one archive in {@link unpackImageArchives}. */
export interface UnpackRecord {
  /** Archive file name, e.g. `images_demo.zip`. */
  zip: string;
  /** Folder it unpacks into, e.g. `images_demo`. */
  folder: string;
  /** "unpacked", "up-to-date" (already unpacked from this very zip) or "failed". */
  status: "unpacked" | "up-to-date" | "failed";
  /** Number of files unpacked (0 when up to date or failed). */
  files: number;
  /** Why it failed. */
  error?: string;
}

async function isUpToDate(zipPath: string, folder: string): Promise<boolean> {
  try {
    const marker = JSON.parse(await Deno.readTextFile(join(folder, UNPACK_MARKER)));
    const { size, mtime } = await Deno.stat(zipPath);
    return marker.size === size && marker.mtimeMs === (mtime?.getTime() ?? 0);
  } catch {
    return false;
  }
}

/**
 * Unpacks every `images_*.zip` at the top of `dataDir` into `images_*` (skipping those already
 * unpacked from the same file). All archives are tried; if any is corrupt, throws after the
 * others are done, naming each failed zip, with their folders untouched.
 */
export async function unpackImageArchives(dataDir: string, options: { force?: boolean } = {}): Promise<UnpackRecord[]> {
  const zips: string[] = [];
  for await (const entry of Deno.readDir(dataDir)) {
    if (entry.isFile && entry.name.endsWith(".zip") && IMAGE_FOLDER_PATTERN.test(entry.name.slice(0, -4))) {
      zips.push(entry.name);
    }
  }
  const records: UnpackRecord[] = [];
  for (const zip of zips.sort()) {
    const folder = zip.slice(0, -4);
    const zipPath = join(dataDir, zip);
    const destination = join(dataDir, folder);
    if (!options.force && await isUpToDate(zipPath, destination)) {
      records.push({ zip, folder, status: "up-to-date", files: 0 });
      continue;
    }
    try {
      records.push({ zip, folder, status: "unpacked", files: await unpackZipAtomic(zipPath, destination) });
    } catch (error) {
      records.push({ zip, folder, status: "failed", files: 0, error: (error as Error).message });
    }
  }
  const failed = records.filter((record) => record.status === "failed");
  if (failed.length > 0) {
    throw new Error(`could not unpack ${failed.length} archive(s):\n` + failed.map((r) => `  ${r.error}`).join("\n"));
  }
  return records;
}
