/**
 * Reads and writes the safetensors format (https://github.com/huggingface/safetensors):
 * 8 bytes little-endian header length N, N bytes of JSON header
 * (`{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`), then the raw data.
 *
 * Floating tensors (F32, F16, BF16, F64) become float32; integer and bool tensors become int32
 * (an I64/U32 value outside the int32 range is an error, never silently wrapped).
 */
import { dirname, join } from "node:path";
import type { HostTensor, StateDict } from "./state_dict.ts";

/** The decoded contents of one safetensors file. */
export interface SafetensorsContents {
  tensors: StateDict;
  metadata: Record<string, string>;
}

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** Bytes per element of each safetensors dtype code. */
export const BYTES_PER_ELEMENT: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  U16: 2,
  U32: 4,
  BOOL: 1,
};

/** Largest header we accept (the reference implementation's limit is 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

/** Converts IEEE half-precision bits to a float32 value. */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** Number of elements of a shape (1 for a scalar). */
export function shapeSize(shape: readonly number[]): number {
  let size = 1;
  for (const dim of shape) size *= dim;
  return size;
}

/** Little-endian bytes `[begin, end)` of `bytes` decoded into a host tensor. */
export function decodeTensorBytes(
  bytes: Uint8Array,
  dtype: string,
  shape: number[],
  where: string,
): HostTensor {
  const count = shapeSize(shape);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case "F32": {
      const data = new Float32Array(count);
      new Uint8Array(data.buffer).set(bytes.subarray(0, count * 4));
      return { dtype: "float32", shape, data };
    }
    case "F64": {
      const data = new Float32Array(count);
      for (let i = 0; i < count; i++) data[i] = view.getFloat64(i * 8, true);
      return { dtype: "float32", shape, data };
    }
    case "F16": {
      const data = new Float32Array(count);
      for (let i = 0; i < count; i++) data[i] = halfToFloat(view.getUint16(i * 2, true));
      return { dtype: "float32", shape, data };
    }
    case "BF16": {
      const bits = new Uint32Array(count);
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(i * 2, true) << 16;
      return { dtype: "float32", shape, data: new Float32Array(bits.buffer) };
    }
    case "I64": {
      const data = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const low = view.getInt32(i * 8, true);
        const high = view.getInt32(i * 8 + 4, true);
        if (high !== (low < 0 ? -1 : 0)) {
          const value = view.getBigInt64(i * 8, true);
          throw new Error(
            `${where}: int64 value ${value} at element ${i} does not fit in int32; ` +
              `this loader keeps integers as int32 (convert the tensor before saving)`,
          );
        }
        data[i] = low;
      }
      return { dtype: "int32", shape, data };
    }
    case "U32": {
      const data = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const value = view.getUint32(i * 4, true);
        if (value > 0x7fffffff) {
          throw new Error(`${where}: uint32 value ${value} at element ${i} does not fit in int32`);
        }
        data[i] = value;
      }
      return { dtype: "int32", shape, data };
    }
    case "I32": {
      const data = new Int32Array(count);
      new Uint8Array(data.buffer).set(bytes.subarray(0, count * 4));
      return { dtype: "int32", shape, data };
    }
    case "I16":
    case "U16": {
      const data = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        data[i] = dtype === "I16" ? view.getInt16(i * 2, true) : view.getUint16(i * 2, true);
      }
      return { dtype: "int32", shape, data };
    }
    case "I8":
    case "U8":
    case "BOOL": {
      const data = new Int32Array(count);
      for (let i = 0; i < count; i++) data[i] = dtype === "I8" ? view.getInt8(i) : view.getUint8(i);
      return { dtype: "int32", shape, data };
    }
    default:
      throw new Error(`${where}: unsupported dtype ${dtype} (supported: ${Object.keys(BYTES_PER_ELEMENT).join(", ")})`);
  }
}

/**
 * Decodes a safetensors file held in memory. `source` (a file name) prefixes every error.
 * Throws "<source>: not a safetensors file: ..." when the header is malformed or the data
 * region does not match the declared shapes and dtypes.
 */
export function readSafetensors(bytes: Uint8Array, source = "<bytes>"): SafetensorsContents {
  const bad = (why: string): Error => new Error(`${source}: not a safetensors file: ${why}`);
  if (bytes.byteLength < 8) throw bad(`only ${bytes.byteLength} bytes (a header length needs 8)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength < 2 || headerLength > MAX_HEADER_BYTES || 8 + headerLength > bytes.byteLength) {
    throw bad(
      `header length ${headerLength} does not fit a ${bytes.byteLength}-byte file (truncated or another format?)`,
    );
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch (error) {
    throw bad(`header is not valid UTF-8 JSON (${(error as Error).message})`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) throw bad("header is not a JSON object");
  const data = bytes.subarray(8 + headerLength);
  const metadata: Record<string, string> = {};
  const tensors: StateDict = new Map();
  const entries: [string, HeaderEntry][] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === "__metadata__") {
      for (const [key, text] of Object.entries((value ?? {}) as Record<string, unknown>)) metadata[key] = String(text);
      continue;
    }
    const entry = value as HeaderEntry;
    if (
      !entry || typeof entry.dtype !== "string" || !Array.isArray(entry.shape) ||
      !Array.isArray(entry.data_offsets) || entry.data_offsets.length !== 2
    ) {
      throw bad(`entry "${name}" lacks dtype/shape/data_offsets`);
    }
    if (!entry.shape.every((dim) => Number.isInteger(dim) && dim >= 0)) {
      throw bad(`entry "${name}" has an invalid shape ${JSON.stringify(entry.shape)}`);
    }
    const width = BYTES_PER_ELEMENT[entry.dtype];
    if (width === undefined) {
      throw new Error(`${source}: tensor "${name}" has unsupported dtype ${entry.dtype}`);
    }
    const [begin, end] = entry.data_offsets;
    if (!Number.isInteger(begin) || !Number.isInteger(end) || begin < 0 || end < begin || end > data.byteLength) {
      throw bad(
        `tensor "${name}" data_offsets [${begin}, ${end}] fall outside the ${data.byteLength}-byte data region (truncated file?)`,
      );
    }
    const expected = shapeSize(entry.shape) * width;
    if (end - begin !== expected) {
      throw bad(
        `tensor "${name}" ${entry.dtype}${JSON.stringify(entry.shape)} needs ${expected} bytes but data_offsets give ${
          end - begin
        }`,
      );
    }
    entries.push([name, entry]);
  }
  for (const [name, entry] of entries) {
    const [begin, end] = entry.data_offsets;
    tensors.set(
      name,
      decodeTensorBytes(data.subarray(begin, end), entry.dtype, [...entry.shape], `${source}: "${name}"`),
    );
  }
  return { tensors, metadata };
}

/**
 * Encodes a state dict as safetensors: float32 tensors as F32, int32 as I32, in name order,
 * the header padded with spaces to a multiple of 8 bytes (as the reference writer does).
 */
export function writeSafetensors(stateDict: StateDict, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const names = [...stateDict.keys()].sort();
  let offset = 0;
  for (const name of names) {
    const tensor = stateDict.get(name)!;
    const expected = shapeSize(tensor.shape);
    if (tensor.data.length !== expected) {
      throw new Error(
        `writeSafetensors: tensor "${name}" has ${tensor.data.length} values but shape ${
          JSON.stringify(tensor.shape)
        } needs ${expected}`,
      );
    }
    const byteLength = tensor.data.byteLength;
    header[name] = {
      dtype: tensor.dtype === "float32" ? "F32" : "I32",
      shape: tensor.shape,
      data_offsets: [offset, offset + byteLength],
    };
    offset += byteLength;
  }
  let headerText = JSON.stringify(header);
  const headerBytesRaw = new TextEncoder().encode(headerText);
  const padding = (8 - (headerBytesRaw.byteLength % 8)) % 8;
  headerText += " ".repeat(padding);
  const headerBytes = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let position = 8 + headerBytes.byteLength;
  for (const name of names) {
    const data = stateDict.get(name)!.data;
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), position);
    position += data.byteLength;
  }
  return out;
}

/** Reads one safetensors file from disk; errors name the file. */
export async function readSafetensorsFile(path: string): Promise<SafetensorsContents> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new Error(`${path}: no such safetensors file`);
    throw error;
  }
  return readSafetensors(bytes, path);
}

/**
 * Reads a sharded checkpoint through its Hugging Face index (`model.safetensors.index.json`:
 * `{"metadata": {...}, "weight_map": {tensor name: shard file}}`). Every tensor the index
 * names must be in its shard; shards are read one at a time.
 */
export async function readSafetensorsIndex(indexPath: string): Promise<SafetensorsContents> {
  let index: { metadata?: Record<string, unknown>; weight_map?: Record<string, string> };
  try {
    index = JSON.parse(await Deno.readTextFile(indexPath));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new Error(`${indexPath}: no such safetensors index file`);
    throw new Error(`${indexPath}: not a safetensors index (${(error as Error).message})`);
  }
  if (!index.weight_map || typeof index.weight_map !== "object") {
    throw new Error(`${indexPath}: not a safetensors index: no "weight_map" object`);
  }
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(index.weight_map)) {
    byShard.set(shard, [...(byShard.get(shard) ?? []), name]);
  }
  const tensors: StateDict = new Map();
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(index.metadata ?? {})) metadata[key] = String(value);
  for (const [shard, names] of byShard) {
    const shardPath = join(dirname(indexPath), shard);
    const contents = await readSafetensorsFile(shardPath);
    for (const name of names) {
      const tensor = contents.tensors.get(name);
      if (!tensor) throw new Error(`${shardPath}: tensor "${name}" listed in ${indexPath} is not in this shard`);
      tensors.set(name, tensor);
    }
  }
  return { tensors, metadata };
}
