import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { zipSync } from "fflate";
import { projectRoot } from "../lib/paths.ts";
import {
  halfToFloat,
  readSafetensors,
  readSafetensorsFile,
  readSafetensorsIndex,
  writeSafetensors,
} from "../lib/model/safetensors.ts";
import { readTorchCheckpoint, readTorchCheckpointFile } from "../lib/model/torch_checkpoint.ts";
import type { StateDict } from "../lib/model/state_dict.ts";

const fixtures = join(projectRoot, "tests", "fixtures", "checkpoints");
const expected: Record<string, { dtype: string; shape: number[]; values: number[] }> = JSON.parse(
  await Deno.readTextFile(join(fixtures, "expected.json")),
);

function expectMatchesFixture(stateDict: StateDict): void {
  expect([...stateDict.keys()].sort()).toEqual(Object.keys(expected).sort());
  for (const [name, want] of Object.entries(expected)) {
    const got = stateDict.get(name)!;
    expect({ name, dtype: got.dtype, shape: got.shape }).toEqual({ name, dtype: want.dtype, shape: want.shape });
    expect(got.data).toBeInstanceOf(want.dtype === "float32" ? Float32Array : Int32Array);
    // Bit-exact: the JSON holds the float32 values printed as float64.
    expect(Array.from(got.data)).toEqual(want.values.map((v) => (want.dtype === "float32" ? Math.fround(v) : v)));
  }
}

function expectError(run: () => unknown, pattern: RegExp): void {
  expect(run).toThrow(pattern);
}

describe("torch.save zip checkpoints", () => {
  it("reads a state dict nested under 'state_dict' with its scalar extras", async () => {
    const contents = await readTorchCheckpointFile(join(fixtures, "nested.pt"));
    expect(contents.foundAt).toBe("state_dict");
    expect(contents.extras).toEqual({
      epoch: 3,
      best_f1: 0.8125,
      note: "fixture",
      frozen: false,
      scheduler: null,
      np_metric: 0.5,
    });
    expectMatchesFixture(contents.stateDict);
  });

  it("reads a plain OrderedDict (with _metadata), views, strides, offsets, f16/bf16/int64", async () => {
    const contents = await readTorchCheckpointFile(join(fixtures, "plain.pt"));
    expect(contents.foundAt).toBe("");
    expectMatchesFixture(contents.stateDict);
  });

  it("explains how to re-save a legacy (non-zip) checkpoint", async () => {
    await expect(readTorchCheckpointFile(join(fixtures, "legacy.pt"))).rejects.toThrow(
      /legacy\.pt: legacy .*_use_new_zipfile_serialization=True/,
    );
  });

  it("names the file when it is missing, empty, text, random bytes or truncated", async () => {
    await expect(readTorchCheckpointFile(join(fixtures, "absent.pt"))).rejects.toThrow(/absent\.pt: no such/);
    await expect(readTorchCheckpointFile(join(fixtures, "not_a_checkpoint.txt"))).rejects.toThrow(
      /not_a_checkpoint\.txt: not a PyTorch checkpoint/,
    );
    expectError(() => readTorchCheckpoint(new Uint8Array(0), "empty.pt"), /empty\.pt: empty file/);
    const random = new Uint8Array(256).map((_, i) => (i * 7919 + 13) % 251);
    expectError(() => readTorchCheckpoint(random, "random.bin"), /random\.bin: not a PyTorch checkpoint/);
    const whole = await Deno.readFile(join(fixtures, "nested.pt"));
    expectError(
      () => readTorchCheckpoint(whole.subarray(0, Math.floor(whole.length / 2)), "half.pt"),
      /half\.pt: .*(damaged or truncated|missing|truncated)/,
    );
  });

  it("refuses a pickle that calls an unknown global and names it", () => {
    // PROTO 2, GLOBAL os.system, SHORT_BINUNICODE-free: BINUNICODE "echo", TUPLE1, REDUCE, STOP
    const command = new TextEncoder().encode("echo");
    const pickle = new Uint8Array([
      0x80,
      0x02,
      0x63,
      ...new TextEncoder().encode("os\nsystem\n"),
      0x58,
      command.length,
      0,
      0,
      0,
      ...command,
      0x85,
      0x52,
      0x2e,
    ]);
    const archive = zipSync({ "evil/data.pkl": pickle, "evil/version": new TextEncoder().encode("3\n") }, { level: 0 });
    expectError(() => readTorchCheckpoint(archive, "evil.pt"), /evil\.pt: .*os\.system/);
  });

  it("says when a zip is not a torch.save archive", () => {
    const archive = zipSync({ "readme.txt": new TextEncoder().encode("hi") }, { level: 0 });
    expectError(() => readTorchCheckpoint(archive, "other.zip"), /other\.zip: zip archive without <prefix>\/data\.pkl/);
  });
});

describe("safetensors", () => {
  it("reads the F32/F16/BF16/I64/I32 fixture to the same state dict as the .pt files", async () => {
    const contents = await readSafetensorsFile(join(fixtures, "tensors.safetensors"));
    expect(contents.metadata).toEqual({ format: "pt", source: "make_checkpoint_fixtures.py" });
    expectMatchesFixture(contents.tensors);
  });

  it("reads a sharded checkpoint through model.safetensors.index.json", async () => {
    const contents = await readSafetensorsIndex(join(fixtures, "sharded", "model.safetensors.index.json"));
    expectMatchesFixture(contents.tensors);
  });

  it("round-trips a state dict bit-exactly with an 8-byte aligned header", () => {
    const stateDict: StateDict = new Map([
      ["b.weight", { dtype: "float32", shape: [2, 3], data: new Float32Array([1.5, -0, NaN, Infinity, 1e-40, 3]) }],
      ["a.ids", { dtype: "int32", shape: [3], data: new Int32Array([-2147483648, 0, 2147483647]) }],
      ["scalar", { dtype: "float32", shape: [], data: new Float32Array([0.1]) }],
      ["empty", { dtype: "float32", shape: [0, 4], data: new Float32Array(0) }],
    ]);
    const bytes = writeSafetensors(stateDict, { format: "pt" });
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLength % 8).toBe(0);
    const back = readSafetensors(bytes, "roundtrip");
    expect(back.metadata).toEqual({ format: "pt" });
    for (const [name, tensor] of stateDict) {
      const got = back.tensors.get(name)!;
      expect(got.shape).toEqual(tensor.shape);
      expect(got.dtype).toBe(tensor.dtype);
      expect(new Uint8Array(got.data.buffer, got.data.byteOffset, got.data.byteLength)).toEqual(
        new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength),
      );
    }
  });

  it("refuses a tensor whose data does not match its shape", () => {
    const bad: StateDict = new Map([["x", { dtype: "float32", shape: [2, 2], data: new Float32Array(3) }]]);
    expectError(() => writeSafetensors(bad), /"x" has 3 values but shape \[2,2\] needs 4/);
  });

  it("gives clear errors for truncated, malformed and out-of-range files", async () => {
    const whole = await Deno.readFile(join(fixtures, "tensors.safetensors"));
    expectError(
      () => readSafetensors(whole.subarray(0, whole.length - 10), "cut.safetensors"),
      /cut\.safetensors: not a safetensors file: .*outside/,
    );
    expectError(
      () => readSafetensors(whole.subarray(0, 5), "tiny.safetensors"),
      /tiny\.safetensors: not a safetensors file/,
    );
    expectError(
      () => readSafetensors(new TextEncoder().encode("this is a text file, not tensors"), "text.safetensors"),
      /text\.safetensors: not a safetensors file: header length/,
    );
    const make = (header: unknown, dataBytes: number): Uint8Array => {
      const text = new TextEncoder().encode(JSON.stringify(header));
      const out = new Uint8Array(8 + text.length + dataBytes);
      new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
      out.set(text, 8);
      return out;
    };
    expectError(
      () => readSafetensors(make({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, 8), "size.safetensors"),
      /size\.safetensors: not a safetensors file: tensor "w" F32\[3\] needs 12 bytes but data_offsets give 8/,
    );
    expectError(
      () => readSafetensors(make({ w: { dtype: "C64", shape: [1], data_offsets: [0, 8] } }, 8), "c.safetensors"),
      /c\.safetensors: tensor "w" has unsupported dtype C64/,
    );
    const big = make({ n: { dtype: "I64", shape: [1], data_offsets: [0, 8] } }, 8);
    new DataView(big.buffer).setBigInt64(big.length - 8, 2n ** 40n, true);
    expectError(
      () => readSafetensors(big, "big.safetensors"),
      /"n": int64 value 1099511627776 .* does not fit in int32/,
    );
    await expect(readSafetensorsFile(join(fixtures, "absent.safetensors"))).rejects.toThrow(
      /absent\.safetensors: no such/,
    );
  });

  it("converts half-precision bit patterns exactly", () => {
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0xc000)).toBe(-2);
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
    expect(halfToFloat(0x7bff)).toBe(65504);
    expect(halfToFloat(0x7c00)).toBe(Infinity);
    expect(halfToFloat(0x7e00)).toBeNaN();
  });
});
