import { describe, it } from "node:test";
import { expect } from "expect";
import { tf } from "../lib/tf.ts";
import { AdamW, clipGradientsByGlobalNorm } from "../lib/train/adamw.ts";
import { ReduceLROnPlateau } from "../lib/train/plateau.ts";
import "@tensorflow/tfjs-backend-cpu";

const reference = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/train/optim_reference.json", import.meta.url)),
);

function expectClose(actual: ArrayLike<number>, expected: number[], tolerance: number): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (Math.abs(actual[i] - expected[i]) > tolerance * Math.max(1, Math.abs(expected[i]))) {
      throw new Error(`index ${i}: ${actual[i]} vs PyTorch ${expected[i]}`);
    }
  }
}

describe("AdamW against torch.optim.AdamW", () => {
  it("matches PyTorch's parameters after each of five steps, without leaking tensors", async () => {
    await tf.setBackend("cpu");
    const { config, shapes, init, grads, after } = reference.adamw;
    const variables = Object.keys(shapes).map((name) => tf.variable(tf.tensor(init[name], shapes[name]), true, name));
    const optimizer = new AdamW(config);
    const before = tf.memory().numTensors;
    for (let step = 0; step < grads.length; step++) {
      const gradients = Object.fromEntries(Object.keys(shapes).map((n) => [n, tf.tensor(grads[step][n], shapes[n])]));
      optimizer.applyGradients(variables, gradients);
      Object.values(gradients).forEach((g) => g.dispose());
      for (const variable of variables) expectClose(await variable.data(), after[step][variable.name], 1e-5);
      // Only the moments (2 per variable) are new after the first step.
      expect(tf.memory().numTensors).toBe(before + 2 * variables.length);
    }
    const saved = await optimizer.stateDict();
    const resumed = new AdamW(config);
    resumed.loadStateDict(saved, optimizer.step);
    expect(resumed.step).toBe(5);
    expect([...(await resumed.stateDict()).keys()].sort()).toEqual([...saved.keys()].sort());
    optimizer.dispose();
    resumed.dispose();
    variables.forEach((v) => v.dispose());
  });
});

describe("gradient clipping against clip_grad_norm_", () => {
  it("returns PyTorch's norm and clipped gradients", async () => {
    const { maxNorm, grads, shapes, norm, clipped } = reference.clip;
    const input = Object.fromEntries(Object.keys(shapes).map((n) => [n, tf.tensor(grads[n], shapes[n])]));
    const result = await clipGradientsByGlobalNorm(input, maxNorm);
    expect(result.norm).toBeCloseTo(norm, 5);
    for (const name of Object.keys(shapes)) expectClose(await result.gradients[name].data(), clipped[name], 1e-6);
    Object.values(result.gradients).forEach((g) => g.dispose());
  });
});

describe("ReduceLROnPlateau against PyTorch", () => {
  it("reduces the learning rate at the same epochs", () => {
    const { config, initialLearningRate, metrics, learningRates } = reference.plateau;
    const schedule = new ReduceLROnPlateau(config);
    let lr = initialLearningRate;
    const ours = metrics.map((m: number) => (lr = schedule.step(m, lr)));
    expectClose(ours, learningRates, 1e-12);
  });

  it("counts a NaN epoch as bad and skips reductions below eps, as PyTorch does", () => {
    for (const c of reference.plateau_degenerate) {
      const schedule = new ReduceLROnPlateau(c.config);
      let lr = c.initialLearningRate;
      const ours = c.metrics.map((m: number | null) => (lr = schedule.step(m ?? NaN, lr)));
      expectClose(ours, c.learningRates, 1e-15);
    }
  });
});
