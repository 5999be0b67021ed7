// Losses against PyTorch / sentence-transformers values (fixtures: scripts/fixtures/make_model_fixtures.py).
import { describe, it } from "node:test";
import { expect } from "expect";
import { mulberry32 } from "./helpers.ts";
import { join } from "node:path";
import "@tensorflow/tfjs-backend-cpu";
import { tf } from "../lib/tf.ts";
import { projectRoot } from "../lib/paths.ts";
import { readSafetensorsFile } from "../lib/model/safetensors.ts";
import {
  contrastiveLoss,
  multipleNegativesRankingLoss,
  onlineContrastiveLoss,
  pairLoss,
  pairwiseDistance,
  queryRankingLoss,
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

/**
 * The former implementation, which picked the hard pairs on the host (float64 means), with its
 * gradient in closed form: d/dd_i = 2 d_i for hard positives, -2 max(0, margin - d_i) for hard negatives.
 */
function hostOnlineContrastiveLoss(d: Float32Array, y: Float32Array, margin: number): { loss: number; grad: number[] } {
  const pos: number[] = [];
  const neg: number[] = [];
  for (let i = 0; i < d.length; i++) (y[i] === 1 ? pos : neg).push(d[i]);
  const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
  const negThreshold = pos.length > 1 ? Math.max(...pos) : mean(neg);
  const posThreshold = neg.length > 1 ? Math.min(...neg) : mean(pos);
  let loss = 0;
  const grad = Array.from(d, () => 0);
  for (let i = 0; i < d.length; i++) {
    if (y[i] === 1 && d[i] > posThreshold) {
      loss += d[i] ** 2;
      grad[i] = 2 * d[i];
    } else if (y[i] !== 1 && d[i] < negThreshold) {
      const gap = Math.max(0, margin - d[i]);
      loss += gap ** 2;
      grad[i] = -2 * gap;
    }
  }
  return { loss, grad };
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

  it("picks exact ties as PyTorch does: the fallback thresholds are float32 means", () => {
    // Expected values from PyTorch 1.13 (Debian's python3-torch), sentence-transformers'
    // OnlineContrastiveLoss.forward on these distances as float32 tensors, margin 2. A float64 mean
    // (the former host implementation) selects one more pair in each case: losses 3.25 and 3.2500005.
    const u = 2 ** -23; // one ulp of 1 in float32
    const cases = [
      // Fewer than 2 positives: negatives are hard below mean(1, 1+u), which is 1 in float32
      // (1 + (1+u) rounds to 2, ties to even) but 1 + u/2 in float64, where d = 1 would be hard.
      { d: [1, 1 + u, 1.5], y: [0, 0, 1], loss: 2.25, grad: [0, 0, 3] },
      // Fewer than 2 negatives: positives are hard above mean(1+u, 1+2u), 1+2u in float32 but
      // 1 + 1.5u in float64, where d = 1+2u would be hard.
      { d: [1 + u, 1 + 2 * u, 0.5], y: [1, 1, 0], loss: 2.25, grad: [0, 0, -3] },
    ];
    for (const c of cases) {
      const d = tf.tensor1d(c.d);
      const y = tf.tensor1d(c.y);
      const { value, grads } = tf.valueAndGrads((dist: tf.Tensor) => onlineContrastiveLoss(dist as tf.Tensor1D, y, 2))(
        [d],
      );
      expect(value.dataSync()[0]).toBe(c.loss);
      expect(Array.from(grads[0].dataSync())).toEqual(c.grad);
      tf.dispose([d, y, value, ...grads]);
    }
  });

  it("equals the former host-side selection (value and gradient) on random inputs", () => {
    const random = mulberry32(7);
    for (let trial = 0; trial < 40; trial++) {
      const n = 1 + Math.floor(random() * 12);
      // Some trials with at most one positive or one negative, to exercise the mean fallbacks.
      const pPositive = trial % 4 === 0 ? 0.05 : trial % 4 === 1 ? 0.95 : 0.5;
      const dValues = Float32Array.from({ length: n }, () => random() * 2);
      const yValues = Float32Array.from({ length: n }, () => (random() < pPositive ? 1 : 0));
      const margin = 0.5 + random();
      const d = tf.tensor1d(dValues);
      const y = tf.tensor1d(yValues);
      const { value, grads } = tf.valueAndGrads((dist: tf.Tensor) =>
        onlineContrastiveLoss(dist as tf.Tensor1D, y, margin)
      )([d]);
      const reference = hostOnlineContrastiveLoss(dValues, yValues, margin);
      expect(value.dataSync()[0]).toBeCloseTo(reference.loss, 5);
      const grad = grads[0].dataSync();
      reference.grad.forEach((g, i) => expect(grad[i]).toBeCloseTo(g, 5));
      tf.dispose([d, y, value, ...grads]);
    }
  });

  it("trains under tf.variableGrads without reading tensors synchronously", () => {
    const w = tf.variable(tf.tensor2d([[0.3, -0.2], [0.1, 0.4], [-0.5, 0.2], [0.2, 0.2]]));
    const y = tf.tensor1d([1, 0, 1, 0]);
    const before = tf.memory().numTensors;
    const sync = ["dataSync", "arraySync", "bufferSync"] as const;
    const saved = sync.map((name) => tf.Tensor.prototype[name]);
    for (const name of sync) {
      tf.Tensor.prototype[name] = () => {
        throw new Error(`${name} called`);
      };
    }
    let result: { value: tf.Scalar; grads: tf.NamedTensorMap };
    try {
      result = tf.variableGrads(() => {
        const a = tf.slice(w, [0, 0], [4, 1]).reshape([4]) as tf.Tensor1D;
        return onlineContrastiveLoss(tf.abs(a), y, 1);
      }, [w]);
    } finally {
      sync.forEach((name, i) => (tf.Tensor.prototype[name] = saved[i] as never));
    }
    // d = |w[:, 0]| = [0.3, 0.1, 0.5, 0.2]; hard: positive 0.3 and 0.5 (> min negative 0.1),
    // negatives 0.1 and 0.2 (< max positive 0.5). L = 0.09 + 0.25 + 0.81 + 0.64.
    expect(result.value.dataSync()[0]).toBeCloseTo(1.79, 5);
    const grad = Array.from(result.grads[w.name].dataSync());
    [0.6, -1.8, -1, -1.6].forEach((g, i) => expect(grad[2 * i]).toBeCloseTo(g, 5));
    expect(grad.filter((_, i) => i % 2 === 1)).toEqual([0, 0, 0, 0]);
    tf.dispose([result.value, ...Object.values(result.grads)]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([w, y]);
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

describe("queryRankingLoss", () => {
  it("matches PyTorch's cross-entropy of each positive against its query's negatives, with the gradient", () => {
    const d = tensorOf("loss/distances") as tf.Tensor1D;
    const y = tensorOf("loss/labels") as tf.Tensor1D;
    const groups = tf.tensor1d(losses.queryGroups, "int32");
    const { value, grads } = tf.valueAndGrads((x: tf.Tensor) =>
      queryRankingLoss(x as tf.Tensor1D, y, groups, losses.queryRankingScale)
    )([d]);
    expect(value.dataSync()[0]).toBeCloseTo(losses.queryRanking, 5);
    expectAllClose(grads[0], fixture("loss/query_ranking_grad"), 1e-5);
    tf.dispose([d, y, groups, value, ...grads]);
  });

  it("is 0 with no query holding both a positive and a negative, and ignores other queries' negatives", () => {
    const d = tf.tensor1d([0.5, 3, 1, 0.2]);
    const y = tf.tensor1d([1, 0, 1, 0]);
    const apart = tf.tensor1d([0, 1, 2, 3], "int32");
    const loss = queryRankingLoss(d, y, apart);
    expect(loss.dataSync()[0]).toBe(0);
    // Each query counts only its own negatives (the closed form below); pushing one away lowers the loss.
    const groups = tf.tensor1d([0, 0, 1, 1], "int32");
    const a = queryRankingLoss(d, y, groups, 4).dataSync()[0];
    const moved = tf.tensor1d([0.5, 3, 1, 9]);
    const b = queryRankingLoss(moved, y, groups, 4).dataSync()[0];
    expect(b).toBeLessThan(a);
    const term = (pos: number, neg: number) => Math.log(1 + Math.exp(-4 * neg + 4 * pos));
    expect(a).toBeCloseTo((term(0.5, 3) + term(1, 0.2)) / 2, 5);
    tf.dispose([d, y, apart, loss, groups, moved]);
  });

  it("as a registry loss, needs the pairs' query groups", () => {
    const d = tf.tensor1d([0.5, 3]);
    const y = tf.tensor1d([1, 0]);
    expect(pairLoss("query-ranking").grouped).toBe(true);
    expect(() => pairLoss("query-ranking").apply(d, y, 2)).toThrow(/query group/);
    expect(() => pairLoss("qery-ranking", "LOSS")).toThrow(/LOSS = "qery-ranking"; expected one of .*query-ranking/);
    tf.dispose([d, y]);
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
