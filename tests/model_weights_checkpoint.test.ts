import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { loadCheckpoint, saveCheckpoint, type TrainingState } from "../lib/model/checkpoint.ts";
import type { StateDict } from "../lib/model/state_dict.ts";

function fakeModel(seed: number): { stateDict(): StateDict } {
  const weights = new Float32Array(24).map((_, i) => Math.sin(seed * 31 + i) * 1e3 + 1e-30 * i);
  weights[5] = -0;
  const stateDict: StateDict = new Map([
    ["head.fc1.weight", { dtype: "float32", shape: [4, 6], data: weights }],
    ["head.fc1.bias", { dtype: "float32", shape: [4], data: new Float32Array([seed, 0.1, -0.2, 1 / 3]) }],
    ["bn.num_batches_tracked", { dtype: "int32", shape: [], data: new Int32Array([seed]) }],
  ]);
  return { stateDict: () => stateDict };
}

function bytesOf(data: Float32Array | Int32Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function expectSameStateDict(got: StateDict, want: StateDict): void {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [name, tensor] of want) {
    const other = got.get(name)!;
    expect({ name, shape: other.shape, dtype: other.dtype }).toEqual({
      name,
      shape: tensor.shape,
      dtype: tensor.dtype,
    });
    expect(bytesOf(other.data)).toEqual(bytesOf(tensor.data));
  }
}

describe("our checkpoint folders", () => {
  it("round-trips weights (bit-exact), config, training state and optimizer moments", async () => {
    const root = await Deno.makeTempDir();
    const dir = join(root, "best");
    const model = fakeModel(1);
    const trainingState: TrainingState = {
      epoch: 4,
      step: 1200,
      metrics: { f1: 0.81, threshold: 1.25 },
      optimizer: { name: "adamw", lr: 3e-5, weightDecay: 1e-2 },
    };
    const optimizerState: StateDict = new Map([
      ["head.fc1.bias.m", { dtype: "float32", shape: [4], data: new Float32Array([1e-8, 2, 3, 4]) }],
    ]);
    const config = { preset: "tiny", projectionDim: 8 };
    await saveCheckpoint(dir, { model, config, trainingState, optimizerState });
    const loaded = await loadCheckpoint(dir);
    expectSameStateDict(loaded.stateDict, model.stateDict());
    expectSameStateDict(loaded.optimizerState!, optimizerState);
    expect(loaded.config).toEqual(config);
    expect(loaded.trainingState).toEqual(trainingState);
    expect((await Array.fromAsync(Deno.readDir(root))).map((entry) => entry.name)).toEqual(["best"]);
    await Deno.remove(root, { recursive: true });
  });

  it("replaces an existing checkpoint and leaves no temporary folders", async () => {
    const root = await Deno.makeTempDir();
    const dir = join(root, "last");
    await saveCheckpoint(dir, { model: fakeModel(1), config: { version: 1 } });
    await saveCheckpoint(dir, { model: fakeModel(2), config: { version: 2 } });
    const loaded = await loadCheckpoint(dir);
    expect(loaded.config).toEqual({ version: 2 });
    expect(loaded.trainingState).toBeUndefined();
    expectSameStateDict(loaded.stateDict, fakeModel(2).stateDict());
    expect((await Array.fromAsync(Deno.readDir(root))).map((entry) => entry.name)).toEqual(["last"]);
    await Deno.remove(root, { recursive: true });
  });

  it("keeps the old checkpoint intact when writing the new one fails midway", async () => {
    const root = await Deno.makeTempDir();
    const dir = join(root, "best");
    await saveCheckpoint(dir, { model: fakeModel(1), config: { version: 1 }, trainingState: { epoch: 1, step: 10 } });
    const failing = saveCheckpoint(
      dir,
      { model: fakeModel(2), config: { version: 2 }, trainingState: { epoch: 2, step: 20 } },
      {
        onFileWritten: (file) => {
          if (file === "model.safetensors") throw new Error("disk full (simulated)");
        },
      },
    );
    await expect(failing).rejects.toThrow(/disk full/);
    const loaded = await loadCheckpoint(dir);
    expect(loaded.config).toEqual({ version: 1 });
    expect(loaded.trainingState).toEqual({ epoch: 1, step: 10 });
    expectSameStateDict(loaded.stateDict, fakeModel(1).stateDict());
    expect((await Array.fromAsync(Deno.readDir(root))).map((entry) => entry.name)).toEqual(["best"]);
    await Deno.remove(root, { recursive: true });
  });

  it("says which folder or file is missing", async () => {
    const root = await Deno.makeTempDir();
    await expect(loadCheckpoint(join(root, "nope"))).rejects.toThrow(/nope: no such checkpoint folder/);
    await Deno.mkdir(join(root, "empty"));
    await expect(loadCheckpoint(join(root, "empty"))).rejects.toThrow(
      /empty: not a checkpoint folder \(no model\.safetensors\)/,
    );
    await Deno.remove(root, { recursive: true });
  });
});
