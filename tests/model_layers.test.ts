// GELU as one tape node (lib/model/layers.ts): the same values and gradients as the composite formula,
// with fewer bytes alive during the backward pass.
import { describe, it } from "node:test";
import { expect } from "expect";
import { tf } from "../lib/tf.ts";
import { selectBackend } from "../lib/backend.ts";
import { gelu } from "../lib/model/layers.ts";

const composite = (x: tf.Tensor): tf.Tensor =>
  tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)));

async function maxAbs(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const d = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))));
  const value = (await d.data())[0];
  d.dispose();
  return value;
}

describe("gelu", () => {
  for (const backend of ["cpu", "wasm"] as const) {
    it(`equals the composite formula, value and gradient, on ${backend}`, async () => {
      await selectBackend(backend, { quiet: true });
      const x = tf.randomNormal([3, 7, 9], 0, 2.5, "float32", 7);
      const w = tf.randomNormal([3, 7, 9], 0, 1, "float32", 8);
      const before = tf.memory().numTensors;
      const [mine, reference] = [gelu(x), composite(x)];
      const gradMine = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(gelu(t), w)))(x);
      const gradReference = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(composite(t), w)))(x);
      expect(await maxAbs(mine, reference)).toBeLessThanOrEqual(1e-6);
      expect(await maxAbs(gradMine, gradReference)).toBeLessThanOrEqual(2e-6);
      tf.dispose([mine, reference, gradMine, gradReference]);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([x, w]);
    });
  }

  it("keeps fewer bytes alive through the backward pass than the composite formula", async () => {
    await selectBackend("cpu", { quiet: true });
    const x = tf.randomNormal([64, 384], 0, 1, "float32", 9);
    const peak = async (f: (t: tf.Tensor) => tf.Tensor): Promise<number> =>
      (await tf.profile(() => {
        const g = tf.grad((t: tf.Tensor) => tf.sum(f(t)))(x);
        g.dispose();
      })).peakBytes;
    const mine = await peak(gelu);
    const reference = await peak(composite);
    expect(mine).toBeLessThan(reference);
    x.dispose();
  });
});
