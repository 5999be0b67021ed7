import { describe, it } from "node:test";
import { expect } from "expect";
import {
  approximateRecall,
  buildApproximateIndex,
  embeddingMatrix,
  exactTopK,
  exactTopKForVectors,
  type Neighbours,
} from "../lib/eval/retrieval.ts";
import { seededRandom } from "../lib/eval/bench.ts";

function randomCatalog(rows: number, dim: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length: rows * dim }, () => random() * 2 - 1);
}

/** Brute force: all distances, sorted, the reference the heap-based search must equal. */
function bruteForce(data: Float32Array, dim: number, query: number, k: number, cosine = false): number[] {
  const rows = data.length / dim;
  const q = data.subarray(query * dim, (query + 1) * dim);
  const scored: [number, number][] = [];
  for (let r = 0; r < rows; r++) {
    if (r === query) continue;
    const c = data.subarray(r * dim, (r + 1) * dim);
    let dot = 0, nq = 0, nc = 0, sq = 0;
    for (let j = 0; j < dim; j++) {
      dot += q[j] * c[j];
      nq += q[j] * q[j];
      nc += c[j] * c[j];
      sq += (q[j] - c[j]) ** 2;
    }
    scored.push([cosine ? 1 - dot / Math.sqrt(nq * nc) : Math.sqrt(sq), r]);
  }
  scored.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return scored.slice(0, k).map((s) => s[1]);
}

describe("exact top-k", () => {
  it("hand example: points on a line, query excluded, ties broken by lower row", () => {
    // rows at x = 0, 1, 3, -1 (2-d, y = 0). Query row 0: row 1 and row 3 both at distance 1, then row 2 at 3.
    const catalog = embeddingMatrix(Float32Array.from([0, 0, 1, 0, 3, 0, -1, 0]), 2);
    const [result] = exactTopK(catalog, [0], { k: 3 });
    expect(result.query).toBe(0);
    expect(Array.from(result.indices)).toEqual([1, 3, 2]);
    expect(Array.from(result.distances)).toEqual([1, 1, 3]);
  });

  it("equals brute force for Euclidean and cosine, across batch sizes", () => {
    const dim = 12;
    const data = randomCatalog(300, dim, 3);
    const catalog = embeddingMatrix(data, dim);
    const queries = [0, 17, 150, 299, 42];
    for (const metric of ["euclidean", "cosine"] as const) {
      for (const batchSize of [1, 2, 64]) {
        const results = exactTopK(catalog, queries, { k: 7, metric, batchSize });
        results.forEach((result, p) => {
          expect(Array.from(result.indices)).toEqual(bruteForce(data, dim, queries[p], 7, metric === "cosine"));
        });
      }
    }
  });

  it("candidate mask restricts rows; fewer than k come back when fewer are allowed", () => {
    const dim = 4;
    const catalog = embeddingMatrix(randomCatalog(50, dim, 5), dim);
    const allowed = new Uint8Array(50);
    allowed[10] = allowed[20] = allowed[30] = 1;
    const [result] = exactTopK(catalog, [10], { k: 5, candidateMask: () => allowed });
    expect(Array.from(result.indices).sort((a, b) => a - b)).toEqual([20, 30]);
    expect(() => exactTopK(catalog, [0], { k: 5, candidateMask: () => new Uint8Array(3) })).toThrow(/length 3/);
  });

  it("external query vectors are not excluded from their own results", () => {
    const catalog = embeddingMatrix(Float32Array.from([0, 0, 5, 5]), 2);
    const [result] = exactTopKForVectors(catalog, embeddingMatrix(Float32Array.from([0, 0]), 2), { k: 1 });
    expect(Array.from(result.indices)).toEqual([0]);
    expect(result.distances[0]).toBe(0);
  });

  it("rejects bad k, bad query rows and bad shapes", () => {
    const catalog = embeddingMatrix(new Float32Array(8), 2);
    expect(() => exactTopK(catalog, [0], { k: 0 })).toThrow(/k = 0/);
    expect(() => exactTopK(catalog, [9], { k: 1 })).toThrow(/queryRows\[0\] = 9/);
    expect(() => embeddingMatrix(new Float32Array(7), 2)).toThrow(/dim 2/);
  });
});

describe("approximate index (usearch)", () => {
  it("approximateRecall counts the exact neighbours found", () => {
    const exact: Neighbours[] = [{ query: 0, indices: Int32Array.from([1, 2, 3, 4]), distances: new Float64Array(4) }];
    const approx: Neighbours[] = [{ query: 0, indices: Int32Array.from([2, 1, 9, 8]), distances: new Float64Array(4) }];
    expect(approximateRecall(exact, approx).recall).toBe(0.5);
    expect(() => approximateRecall(exact, [{ ...approx[0], query: 5 }])).toThrow(/query 0 .* 5/);
  });

  it("loads under Deno and finds nearly all exact neighbours, self excluded, masks honoured", async () => {
    const dim = 16;
    const data = randomCatalog(600, dim, 9);
    const catalog = embeddingMatrix(data, dim);
    const index = await buildApproximateIndex(catalog, { connectivity: 16, expansionAdd: 128, expansionSearch: 128 });
    expect(index.kind).toBe("usearch");
    const queries = Array.from({ length: 40 }, (_, i) => i * 15);
    const approx = index.searchRows(queries, { k: 10 });
    const exact = exactTopK(catalog, queries, { k: 10 });
    approx.forEach((result, p) => {
      expect(result.query).toBe(queries[p]);
      expect(Array.from(result.indices)).not.toContain(queries[p]);
    });
    expect(approximateRecall(exact, approx).recall).toBeGreaterThan(0.9);
    // distances are Euclidean (sqrt of usearch's l2sq)
    const firstExact = exact[0].distances[0];
    const firstApprox = approx[0].distances[Array.from(approx[0].indices).indexOf(exact[0].indices[0])];
    expect(Math.abs(firstApprox - firstExact)).toBeLessThan(1e-4);
    // a mask that allows only 3 far rows forces re-fetching until they are found
    const allowed = new Uint8Array(600);
    allowed[1] = allowed[300] = allowed[599] = 1;
    const [masked] = index.searchRows([0], { k: 5, candidateMask: () => allowed });
    expect(Array.from(masked.indices).sort((a, b) => a - b)).toEqual([1, 300, 599]);
  });

  it("falls back to exact search with a message when usearch fails to load", async () => {
    const catalog = embeddingMatrix(randomCatalog(30, 4, 1), 4);
    const warn = console.warn;
    const warnings: string[] = [];
    console.warn = (message: string) => warnings.push(message);
    try {
      const index = await buildApproximateIndex(catalog, {
        loadUsearch: () => Promise.reject(new Error("no prebuilt binary")),
      });
      expect(index.kind).toBe("exact-fallback");
      expect(index.message).toMatch(/no prebuilt binary/);
      expect(warnings.join("\n")).toMatch(/falling back to exact search/);
      expect(index.searchRows([3], { k: 4 })).toEqual(exactTopK(catalog, [3], { k: 4 }));
    } finally {
      console.warn = warn;
    }
  });
});
