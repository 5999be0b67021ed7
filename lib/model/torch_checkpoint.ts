/**
 * Reads PyTorch `torch.save` files in the zip format (torch >= 1.6; `.pt`, `.pth`, `.bin`) into a
 * StateDict, without PyTorch: the zip holds `<prefix>/data.pkl` (a pickle) and one raw storage per
 * tensor in `<prefix>/data/<key>`. A small pickle machine runs the opcodes torch.save emits and
 * only the allow-listed globals below (OrderedDict, the tensor rebuild functions, storage types);
 * any other global stops with an error naming it, so a pickle never runs arbitrary code here.
 */
import { unzipSync } from "fflate";
import { BYTES_PER_ELEMENT, decodeTensorBytes, shapeSize } from "./safetensors.ts";
import type { HostTensor, StateDict } from "./state_dict.ts";

/** A `module.name` reference read by the GLOBAL opcode. */
class PickleGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get fullName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** A typed storage: its safetensors-style dtype and raw little-endian bytes. */
interface TorchStorage {
  kind: "storage";
  dtype: string;
  key: string;
  bytes: Uint8Array;
}

/** A tensor read from a checkpoint, tagged so it can be told apart from plain arrays. */
class PickledTensor {
  constructor(readonly tensor: HostTensor) {}
}

/** A numpy dtype seen in a pickle (used by numpy scalars stored next to a state dict). */
class NumpyDType {
  constructor(readonly code: string) {}
}

/** torch storage class -> safetensors dtype code of its elements. */
const STORAGE_DTYPES: Record<string, string> = {
  FloatStorage: "F32",
  DoubleStorage: "F64",
  HalfStorage: "F16",
  BFloat16Storage: "BF16",
  LongStorage: "I64",
  IntStorage: "I32",
  ShortStorage: "I16",
  CharStorage: "I8",
  ByteStorage: "U8",
  BoolStorage: "BOOL",
};

const NUMPY_DTYPES: Record<string, string> = {
  f8: "F64",
  f4: "F32",
  f2: "F16",
  i8: "I64",
  i4: "I32",
  i2: "I16",
  i1: "I8",
  u1: "U8",
  b1: "BOOL",
};

/** The legacy (pre-1.6) torch.save magic: pickled LONG1 0x1950a86a20f9469cfc6c under PROTO 2. */
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/** The object stack marker pushed by MARK. */
const MARK = Symbol("mark");

/**
 * Runs a pickle (protocols 2 to 5, the opcodes torch.save and plain state dicts use).
 * `persistentLoad` resolves persistent ids (torch storages). Dicts become `Map`s, tuples and
 * lists become arrays, tensors become `PickledTensor`s.
 */
export function unpickle(
  bytes: Uint8Array,
  persistentLoad: (pid: unknown) => unknown,
  source: string,
): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder();
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let position = 0;
  const fail = (why: string): Error => new Error(`${source}: cannot read the checkpoint's pickle: ${why}`);
  const need = (count: number): void => {
    if (position + count > bytes.byteLength) throw fail(`unexpected end of data at byte ${position} (truncated?)`);
  };
  const readLine = (): string => {
    const end = bytes.indexOf(0x0a, position);
    if (end < 0) throw fail(`unterminated line at byte ${position}`);
    const line = decoder.decode(bytes.subarray(position, end));
    position = end + 1;
    return line;
  };
  const readBytes = (count: number): Uint8Array => {
    need(count);
    const out = bytes.subarray(position, position + count);
    position += count;
    return out;
  };
  const u8 = (): number => {
    need(1);
    return bytes[position++];
  };
  const u16 = (): number => {
    need(2);
    position += 2;
    return view.getUint16(position - 2, true);
  };
  const u32 = (): number => {
    need(4);
    position += 4;
    return view.getUint32(position - 4, true);
  };
  const u64 = (): number => {
    need(8);
    position += 8;
    return Number(view.getBigUint64(position - 8, true));
  };
  const pop = (): unknown => {
    if (stack.length === 0) throw fail(`stack underflow at byte ${position}`);
    return stack.pop();
  };
  const popMark = (): unknown[] => {
    const index = stack.lastIndexOf(MARK);
    if (index < 0) throw fail(`no MARK on the stack at byte ${position}`);
    const items = stack.slice(index + 1);
    stack.length = index;
    return items;
  };
  const top = (): unknown => stack[stack.length - 1];
  const setItems = (target: unknown, items: unknown[]): void => {
    if (!(target instanceof Map)) throw fail(`SETITEM(S) on a ${typeof target}, not a dict`);
    for (let i = 0; i + 1 < items.length; i += 2) target.set(items[i], items[i + 1]);
  };
  const longFromBytes = (raw: Uint8Array): number => {
    if (raw.byteLength === 0) return 0;
    let value = 0n;
    for (let i = raw.byteLength - 1; i >= 0; i--) value = (value << 8n) | BigInt(raw[i]);
    if (raw[raw.byteLength - 1] & 0x80) value -= 1n << BigInt(raw.byteLength * 8);
    return Number(value);
  };

  while (true) {
    const opcode = u8();
    switch (opcode) {
      case 0x80: // PROTO
        u8();
        break;
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: // STOP
        return pop();
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        need(4);
        position += 4;
        stack.push(view.getInt32(position - 4, true));
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(longFromBytes(readBytes(u8())));
        break;
      case 0x8b: // LONG4
        stack.push(longFromBytes(readBytes(u32())));
        break;
      case 0x49: { // INT (text)
        const line = readLine();
        stack.push(line === "01" ? true : line === "00" ? false : Number.parseInt(line, 10));
        break;
      }
      case 0x4c: // LONG (text)
        stack.push(Number.parseInt(readLine().replace(/L$/, ""), 10));
        break;
      case 0x47: // BINFLOAT (big-endian float64)
        need(8);
        position += 8;
        stack.push(view.getFloat64(position - 8, false));
        break;
      case 0x46: // FLOAT (text)
        stack.push(Number.parseFloat(readLine()));
        break;
      case 0x58: // BINUNICODE
        stack.push(decoder.decode(readBytes(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(decoder.decode(readBytes(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(decoder.decode(readBytes(u64())));
        break;
      case 0x54: // BINSTRING
        stack.push(decoder.decode(readBytes(u32())));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(decoder.decode(readBytes(u8())));
        break;
      case 0x42: // BINBYTES
        stack.push(readBytes(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(readBytes(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
        stack.push(readBytes(u64()).slice());
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: { // LONG_BINGET
        const index = opcode === 0x68 ? u8() : u32();
        if (!memo.has(index)) throw fail(`memo entry ${index} is missing`);
        stack.push(memo.get(index));
        break;
      }
      case 0x74: // TUPLE
        stack.push(popMark());
        break;
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: { // TUPLE2
        const b = pop();
        const a = pop();
        stack.push([a, b]);
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push([a, b, c]);
        break;
      }
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x64: { // DICT
        const items = popMark();
        const dict = new Map();
        setItems(dict, items);
        stack.push(dict);
        break;
      }
      case 0x61: { // APPEND
        const value = pop();
        (top() as unknown[]).push(value);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        (top() as unknown[]).push(...items);
        break;
      }
      case 0x73: { // SETITEM
        const value = pop();
        const key = pop();
        setItems(top(), [key, value]);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x90: { // ADDITEMS
        const items = popMark();
        for (const item of items) (top() as Set<unknown>).add(item);
        break;
      }
      case 0x63: { // GLOBAL
        const module = readLine();
        const name = readLine();
        stack.push(resolveGlobal(module, name, source));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop() as string;
        const module = pop() as string;
        stack.push(resolveGlobal(module, name, source));
        break;
      }
      case 0x51: // BINPERSID
        stack.push(persistentLoad(pop()));
        break;
      case 0x52: { // REDUCE
        const args = pop() as unknown[];
        const callable = pop();
        stack.push(callGlobal(callable, args, source));
        break;
      }
      case 0x81: { // NEWOBJ
        const args = pop() as unknown[];
        const cls = pop();
        stack.push(callGlobal(cls, args, source));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const target = top();
        // OrderedDict state is its attribute dict (`_metadata` of a state_dict): not needed.
        if (target instanceof NumpyDType && Array.isArray(state) && state[1] === ">") {
          throw fail("big-endian numpy values are not supported");
        }
        break;
      }
      default:
        throw fail(`unsupported pickle opcode 0x${opcode.toString(16)} at byte ${position - 1}`);
    }
  }
}

const ALLOWED_GLOBALS = new Set([
  "collections.OrderedDict",
  "builtins.dict",
  "builtins.list",
  "builtins.set",
  "builtins.tuple",
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_parameter",
  "torch.Size",
  "_codecs.encode",
  "numpy.core.multiarray.scalar",
  "numpy._core.multiarray.scalar",
  "numpy.dtype",
  ...Object.keys(STORAGE_DTYPES).map((name) => `torch.${name}`),
]);

function resolveGlobal(module: string, name: string, source: string): PickleGlobal {
  const global = new PickleGlobal(module, name);
  if (!ALLOWED_GLOBALS.has(global.fullName)) {
    throw new Error(
      `${source}: the checkpoint refers to ${global.fullName}, which this loader does not run; ` +
        `save a plain state dict instead (torch.save(model.state_dict(), path))`,
    );
  }
  return global;
}

function callGlobal(callable: unknown, args: unknown[], source: string): unknown {
  if (!(callable instanceof PickleGlobal)) {
    throw new Error(`${source}: cannot read the checkpoint's pickle: REDUCE on a non-callable`);
  }
  switch (callable.fullName) {
    case "collections.OrderedDict":
    case "builtins.dict":
      return new Map(args.length > 0 && Array.isArray(args[0]) ? (args[0] as [unknown, unknown][]) : []);
    case "builtins.list":
    case "builtins.tuple":
    case "torch.Size":
      return args.length > 0 ? [...(args[0] as unknown[])] : [];
    case "builtins.set":
      return new Set(args.length > 0 ? (args[0] as unknown[]) : []);
    case "torch._utils._rebuild_tensor_v2": {
      const [storage, offset, size, stride] = args as [TorchStorage, number, number[], number[]];
      return new PickledTensor(rebuildTensor(storage, offset, size, stride, source));
    }
    case "torch._utils._rebuild_parameter":
      return args[0];
    case "_codecs.encode": {
      const text = String(args[0]);
      const out = new Uint8Array(text.length);
      for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 0xff;
      return out;
    }
    case "numpy.dtype":
      return new NumpyDType(String(args[0]));
    case "numpy.core.multiarray.scalar":
    case "numpy._core.multiarray.scalar": {
      const [dtype, raw] = args as [NumpyDType, Uint8Array];
      const code = NUMPY_DTYPES[dtype.code];
      if (!code) throw new Error(`${source}: numpy scalar of dtype ${dtype.code} is not supported`);
      const tensor = decodeTensorBytes(raw, code, [], `${source}: numpy scalar`);
      return tensor.data[0];
    }
    default:
      throw new Error(`${source}: the checkpoint calls ${callable.fullName}, which this loader does not run`);
  }
}

/** Gathers a strided view of a storage into a contiguous host tensor (PyTorch shape). */
function rebuildTensor(
  storage: TorchStorage,
  offset: number,
  size: number[],
  stride: number[],
  source: string,
): HostTensor {
  if (!storage || storage.kind !== "storage") {
    throw new Error(`${source}: a tensor's storage is missing (unexpected pickle layout)`);
  }
  const width = BYTES_PER_ELEMENT[storage.dtype];
  const count = shapeSize(size);
  const contiguous = size.every((_, axis) => {
    let expected = 1;
    for (let j = axis + 1; j < size.length; j++) expected *= size[j];
    return size[axis] <= 1 || stride[axis] === expected;
  });
  let span: Uint8Array;
  if (count === 0) {
    span = new Uint8Array(0);
  } else if (contiguous) {
    const begin = offset * width;
    const end = begin + count * width;
    if (end > storage.bytes.byteLength) {
      throw new Error(`${source}: tensor data for storage ${storage.key} is shorter than its shape needs (truncated?)`);
    }
    span = storage.bytes.subarray(begin, end);
  } else {
    span = new Uint8Array(count * width);
    const index = new Array<number>(size.length).fill(0);
    for (let flat = 0; flat < count; flat++) {
      let element = offset;
      for (let axis = 0; axis < size.length; axis++) element += index[axis] * stride[axis];
      const from = element * width;
      if (from + width > storage.bytes.byteLength) {
        throw new Error(`${source}: tensor view reaches past storage ${storage.key} (truncated?)`);
      }
      span.set(storage.bytes.subarray(from, from + width), flat * width);
      for (let axis = size.length - 1; axis >= 0; axis--) {
        if (++index[axis] < size[axis]) break;
        index[axis] = 0;
      }
    }
  }
  return decodeTensorBytes(span, storage.dtype, [...size], `${source}: storage ${storage.key}`);
}

/** Everything read from a torch.save file: the chosen state dict and the top-level object. */
export interface TorchCheckpointContents {
  /** The tensors, under their checkpoint names. */
  stateDict: StateDict;
  /** Where in the file the state dict was found ("" for the top level, else the key, e.g. "state_dict"). */
  foundAt: string;
  /** Top-level scalar entries kept beside the state dict (epoch, metrics ...). */
  extras: Record<string, unknown>;
}

const STATE_DICT_KEYS = ["state_dict", "model_state_dict", "model", "module", "net", "weights"];

function tensorsOf(value: unknown): StateDict | null {
  if (!(value instanceof Map)) return null;
  const out: StateDict = new Map();
  for (const [key, item] of value) {
    if (item instanceof PickledTensor) out.set(String(key), item.tensor);
  }
  return out.size > 0 ? out : null;
}

/**
 * Decodes a torch.save zip checkpoint held in memory. The state dict is the top-level dict
 * when it holds tensors, else the first of "state_dict", "model_state_dict", "model", "module",
 * "net", "weights" that does, else the only nested dict of tensors.
 */
export function readTorchCheckpoint(bytes: Uint8Array, source = "<bytes>"): TorchCheckpointContents {
  if (bytes.byteLength === 0) throw new Error(`${source}: empty file, not a PyTorch checkpoint`);
  if (LEGACY_MAGIC.every((byte, i) => bytes[i] === byte)) {
    throw new Error(
      `${source}: legacy (pre-1.6) PyTorch serialization is not supported; re-save it with torch>=1.6: ` +
        `torch.save(torch.load(path), new_path, _use_new_zipfile_serialization=True)`,
    );
  }
  if (!(bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04)) {
    throw new Error(`${source}: not a PyTorch checkpoint (expected a torch.save zip archive starting with "PK")`);
  }
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes);
  } catch (error) {
    throw new Error(`${source}: PyTorch checkpoint zip is damaged or truncated (${(error as Error).message})`);
  }
  const pickleName = Object.keys(files).find((name) => /^[^/]+\/data\.pkl$/.test(name));
  if (!pickleName) {
    const isScript = Object.keys(files).some((name) => name.endsWith("/constants.pkl"));
    throw new Error(
      isScript
        ? `${source}: this is a TorchScript archive (torch.jit.save); save a state dict with torch.save(model.state_dict(), path)`
        : `${source}: zip archive without <prefix>/data.pkl, not a torch.save checkpoint`,
    );
  }
  const prefix = pickleName.slice(0, -"data.pkl".length);
  const persistentLoad = (pid: unknown): TorchStorage => {
    if (!Array.isArray(pid) || pid[0] !== "storage") {
      throw new Error(`${source}: unsupported persistent id ${JSON.stringify(pid)}`);
    }
    const [, storageType, key] = pid as [string, PickleGlobal, string];
    const dtype = STORAGE_DTYPES[storageType.name];
    if (!dtype) throw new Error(`${source}: unsupported storage type ${storageType.fullName}`);
    const data = files[`${prefix}data/${key}`];
    if (!data) throw new Error(`${source}: storage ${prefix}data/${key} is missing from the archive (truncated?)`);
    return { kind: "storage", dtype, key: String(key), bytes: data };
  };
  const root = unpickle(files[pickleName], persistentLoad, source);
  const extras: Record<string, unknown> = {};
  if (root instanceof Map) {
    for (const [key, value] of root) {
      if (value === null || ["number", "string", "boolean"].includes(typeof value)) extras[String(key)] = value;
    }
  }
  const direct = tensorsOf(root);
  if (direct) return { stateDict: direct, foundAt: "", extras };
  if (root instanceof Map) {
    for (const key of STATE_DICT_KEYS) {
      const nested = tensorsOf(root.get(key));
      if (nested) return { stateDict: nested, foundAt: key, extras };
    }
    const candidates = [...root].filter(([, value]) => tensorsOf(value));
    if (candidates.length === 1) {
      return { stateDict: tensorsOf(candidates[0][1])!, foundAt: String(candidates[0][0]), extras };
    }
    throw new Error(
      `${source}: no state dict found; top-level keys: ${[...root.keys()].map(String).join(", ") || "(none)"}`,
    );
  }
  throw new Error(`${source}: the checkpoint holds a ${typeof root}, not a dict of tensors`);
}

/** Reads a torch.save zip checkpoint from disk; errors name the file. */
export async function readTorchCheckpointFile(path: string): Promise<TorchCheckpointContents> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new Error(`${path}: no such checkpoint file`);
    throw error;
  }
  return readTorchCheckpoint(bytes, path);
}
