import { describe, it } from "node:test";
import { expect } from "expect";
import { tf } from "../lib/tf.ts";
import { BackendUnavailableError, parseBackendName, selectBackend } from "../lib/backend.ts";
import { checkBackendEquality } from "../lib/bench/backend_equality.ts";

describe("backend selection", () => {
  it("parses TFJS_BACKEND values and rejects unknown ones", () => {
    expect(parseBackendName("")).toBe("auto");
    expect(parseBackendName("WASM")).toBe("wasm");
    expect(() => parseBackendName("cuda")).toThrow(/not a known backend/);
  });

  it("an explicitly requested backend that is missing is an error, not a fallback", async () => {
    await expect(selectBackend("tensorflow", { quiet: true })).rejects.toThrow(BackendUnavailableError);
  });

  it("automatic selection picks an available backend and says why", async () => {
    const choice = await selectBackend("auto", { quiet: true });
    expect(["tensorflow", "webgpu", "wasm", "cpu"]).toContain(choice.backend);
    expect(choice.reason.length).toBeGreaterThan(0);
    expect(tf.getBackend()).toBe(choice.backend);
  });

  it("the same small graph gives the same numbers on cpu, wasm and webgpu (software adapter)", async () => {
    for (const name of ["wasm", "webgpu-software"] as const) {
      const equality = await checkBackendEquality(name, 1e-5);
      expect(equality.tensorGrowth).toBe(0);
      expect(equality.checks.length).toBe(15);
      for (const check of equality.checks) {
        if (!check.ok) {
          throw new Error(`${equality.backend}: ${check.name} differs from cpu by ${check.maxRelativeDifference}`);
        }
      }
    }
    await selectBackend("cpu", { quiet: true });
  });

  it("the gather gradient (UnsortedSegmentSum) equals its closed form on cpu and wasm", async () => {
    // d/dT sum(gather(T, ids)^2) = 2 * T[r] * (times r occurs in ids); rows never gathered get 0.
    const table = Array.from({ length: 6 * 2 }, (_, i) => (i % 5) - 2.5);
    const ids = [4, 1, 4, 4, 0];
    const expected = table.map((v, i) => 2 * v * ids.filter((id) => id === Math.floor(i / 2)).length + 0); // +0 turns -0 into 0
    for (const name of ["cpu", "wasm"] as const) {
      await selectBackend(name, { quiet: true });
      const grad = tf.tidy(() =>
        tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.gather(t, tf.tensor1d(ids, "int32")))))(
          tf.tensor2d(table, [6, 2]),
        )
      );
      expect(Array.from(await grad.data())).toEqual(expected);
      grad.dispose();
    }
    await selectBackend("cpu", { quiet: true });
  });
});
