// Losses against PyTorch / sentence-transformers values (fixtures: scripts/fixtures/make_model_fixtures.py).
import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import "@tensorflow/tfjs-backend-cpu";
import { tf } from "../lib/tf.ts";
import { projectRoot } from "../lib/paths.ts";
import { readSafetensorsFile } from "../lib/model/safetensors.ts";
import {
  contrastiveLoss,
  multipleNegativesRankingLoss,
  onlineContrastiveLoss,
  pairwiseDistance,
} from "../lib/model/losses.ts";
import type { HostTensor } from "../lib/model/state_dict.ts";

await tf.setBackend("cpu");
const FIXTURES = join(projectRoot, "tests", "fixtures", "model");
const io = (await readSafetensorsFile(join(FIXTURES, "tiny_io.safetensors"))).tensors;
const expected = JSON.parse(await Deno.readTextFile(join(FIXTURES, "expected.json")));
const losses = expected.losses;

function fixture(name: string): HostTensor {
  const t = io.get(name);
  if (!t) throw new Error(`fixture tensor "${name}" is missing`);
  return t;
}

function tensorOf(name: string): tf.Tensor {
  const t = fixture(name);
  return tf.tensor(t.data, t.shape, "float32");
}

function expectAllClose(actual: tf.Tensor, reference: HostTensor, tol = 1e-5): void {
  expect(actual.shape).toEqual(reference.shape);
  const values = actual.dataSync();
  reference.data.forEach((v, i) => expect(Math.abs(values[i] - v)).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(v))));
}

describe("contrastiveLoss", () => {
  it("equals mean(y d^2 + (1-y) max(0, m-d)^2) and its gradient, label 1 = same product", () => {
    const d = tensorOf("loss/distances") as tf.Tensor1D;
    const y = tensorOf("loss/labels") as tf.Tensor1D;
    const { value, grads } = tf.valueAndGrads((dist: tf.Tensor) =>
      contrastiveLoss(dist as tf.Tensor1D, y, losses.margin)
    )(
      [d],
    );
    expect(value.dataSync()[0]).toBeCloseTo(losses.contrastive, 5);
    expectAllClose(grads[0], fixture("loss/contrastive_grad"));
    tf.dispose([d, y, value, ...grads]);
  });

  it("rejects distances and labels of different lengths", () => {
    const d = tf.tensor1d([1, 2]);
    const y = tf.tensor1d([1]);
    expect(() => contrastiveLoss(d, y, 1)).toThrow(/equal length/);
    tf.dispose([d, y]);
  });
});

describe("onlineContrastiveLoss", () => {
  it("matches sentence-transformers' OnlineContrastiveLoss value and gradient", () => {
    const d = tensorOf("loss/distances") as tf.Tensor1D;
    const y = tensorOf("loss/labels") as tf.Tensor1D;
    const { value, grads } = tf.valueAndGrads((dist: tf.Tensor) =>
      onlineContrastiveLoss(dist as tf.Tensor1D, y, losses.margin)
    )([d]);
    expect(value.dataSync()[0]).toBeCloseTo(losses.onlineContrastive, 5);
    expectAllClose(grads[0], fixture("loss/online_grad"));
    tf.dispose([d, y, value, ...grads]);
  });

  it("is zero when every positive is closer than every negative and negatives are beyond the margin", () => {
    const d = tf.tensor1d([0.1, 0.2, 3, 4]);
    const y = tf.tensor1d([1, 1, 0, 0]);
    const loss = onlineContrastiveLoss(d, y, 1.5);
    expect(loss.dataSync()[0]).toBe(0);
    tf.dispose([d, y, loss]);
  });
});

describe("multipleNegativesRankingLoss", () => {
  it("matches cross-entropy over scale * cosine similarities with extra hard negatives", () => {
    const anchors = tensorOf("loss/anchors") as tf.Tensor2D;
    const candidates = tensorOf("loss/candidates") as tf.Tensor2D;
    const { value, grads } = tf.valueAndGrads((a: tf.Tensor) =>
      multipleNegativesRankingLoss(a as tf.Tensor2D, candidates, losses.mnrlScale)
    )([anchors]);
    expect(value.dataSync()[0]).toBeCloseTo(losses.multipleNegativesRanking, 4);
    expectAllClose(grads[0], fixture("loss/mnrl_grad_anchors"), 1e-4);
    tf.dispose([anchors, candidates, value, ...grads]);
  });

  it("rejects fewer candidates than anchors", () => {
    const a = tf.zeros([3, 4]) as tf.Tensor2D;
    const c = tf.zeros([2, 4]) as tf.Tensor2D;
    expect(() => multipleNegativesRankingLoss(a, c)).toThrow(/at least as many rows/);
    tf.dispose([a, c]);
  });
});

describe("pairwiseDistance", () => {
  it("is ||a - b + 1e-6|| with a finite gradient for identical rows", () => {
    const a = tf.tensor2d([[1, 2, 3], [0, 0, 0]]);
    const b = tf.tensor2d([[1, 2, 3], [3, 4, 0]]);
    const d = pairwiseDistance(a, b);
    const values = d.dataSync();
    expect(values[0]).toBeCloseTo(Math.sqrt(3) * 1e-6, 10);
    expect(values[1]).toBeCloseTo(5, 5);
    const grads = tf.grads((x: tf.Tensor) => tf.sum(pairwiseDistance(x as tf.Tensor2D, b)))([a]);
    expect(Array.from(grads[0].dataSync()).every(Number.isFinite)).toBe(true);
    tf.dispose([a, b, d, ...grads]);
  });
});
