// Parity of the tfjs SiameseRuCLIP with PyTorch: forward passes, pair distances and gradients of the
// contrastive loss, on the cpu and wasm backends. Fixtures: scripts/fixtures/make_model_fixtures.py.
import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { tf } from "../lib/tf.ts";
import { selectBackend } from "../lib/backend.ts";
import { projectRoot } from "../lib/paths.ts";
import { readSafetensorsFile } from "../lib/model/safetensors.ts";
import { maskedMeanPool } from "../lib/model/bert.ts";
import { contrastiveLoss } from "../lib/model/losses.ts";
import { tfToTorch } from "../lib/model/params.ts";
import { tinyPreset } from "../lib/model/presets.ts";
import { createSiameseRuCLIP, type ProductBatch, type SiameseRuCLIP } from "../lib/model/siamese.ts";
import type { HostTensor, StateDict } from "../lib/model/state_dict.ts";

const FIXTURES = join(projectRoot, "tests", "fixtures", "model");
const weights = (await readSafetensorsFile(join(FIXTURES, "tiny_siamese.safetensors"))).tensors;
const io = (await readSafetensorsFile(join(FIXTURES, "tiny_io.safetensors"))).tensors;
const expected = JSON.parse(await Deno.readTextFile(join(FIXTURES, "expected.json")));

function host(sd: StateDict, name: string): HostTensor {
  const t = sd.get(name);
  if (!t) throw new Error(`fixture tensor "${name}" is missing; re-run scripts/fixtures/make_model_fixtures.py`);
  return t;
}

/** max |actual - expected| <= tol * max |expected|, and same shape. */
function expectClose(actual: tf.Tensor | HostTensor, reference: HostTensor, tol = 1e-4): void {
  const shape = actual instanceof tf.Tensor ? actual.shape : actual.shape;
  const values = actual instanceof tf.Tensor ? actual.dataSync() : actual.data;
  expect(shape).toEqual(reference.shape);
  let maxRef = 0;
  let maxDiff = 0;
  for (let i = 0; i < reference.data.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(reference.data[i]));
    maxDiff = Math.max(maxDiff, Math.abs(values[i] - reference.data[i]));
  }
  expect(maxRef).toBeGreaterThan(0);
  expect(maxDiff / maxRef).toBeLessThanOrEqual(tol);
}

function toTensor(t: HostTensor): tf.Tensor {
  return tf.tensor(t.data, t.shape, t.dtype);
}

function productBatch(): ProductBatch {
  return {
    images: toTensor(host(io, "images_nhwc")) as tf.Tensor4D,
    nameIds: toTensor(host(io, "name_ids")) as tf.Tensor2D,
    nameMask: toTensor(host(io, "name_mask")) as tf.Tensor2D,
    descIds: toTensor(host(io, "desc_ids")) as tf.Tensor2D,
    descMask: toTensor(host(io, "desc_mask")) as tf.Tensor2D,
  };
}

function disposeBatch(batch: ProductBatch): void {
  tf.dispose([batch.images, batch.nameIds, batch.nameMask, batch.descIds, batch.descMask]);
}

async function useBackend(name: "cpu" | "wasm"): Promise<void> {
  // the suite's own set-up: wasm gets the bridged gradient kernels it lacks
  expect((await selectBackend(name, { quiet: true })).backend).toBe(name);
}

function loadedModel(): SiameseRuCLIP {
  const model = createSiameseRuCLIP(tinyPreset(expected.tinyConfig.nameBert.vocabSize), { init: "zeros" });
  const report = model.loadStateDict(weights);
  expect(report).toEqual({ missing: [], unexpected: [], mismatched: [] });
  return model;
}

describe("tiny preset matches the fixture's PyTorch config", () => {
  it("has the same sizes", () => {
    const preset = tinyPreset(expected.tinyConfig.nameBert.vocabSize);
    const { convnext, nameBert, descriptionBert, projectionDim, headDropout } = preset;
    expect({ convnext, nameBert, descriptionBert, projectionDim, headDropout }).toEqual(expected.tinyConfig);
  });
});

for (const backend of ["cpu", "wasm"] as const) {
  describe(`SiameseRuCLIP parity with PyTorch on ${backend}`, () => {
    it("matches every tower, the head and the pair distances", async () => {
      await useBackend(backend);
      const model = loadedModel();
      const batch = productBatch();
      tf.tidy(() => {
        expectClose(model.ruclip.encodeImage(batch.images), host(io, "visual_features"));
        expectClose(model.ruclip.transformer.apply(batch.nameIds, batch.nameMask, false), host(io, "name_last_hidden"));
        expectClose(model.ruclip.encodeName(batch.nameIds, batch.nameMask, false), host(io, "name_features"));
        const descHidden = model.descriptionTransformer.apply(batch.descIds, batch.descMask, false);
        expectClose(descHidden, host(io, "desc_last_hidden"));
        expectClose(maskedMeanPool(descHidden, batch.descMask), host(io, "desc_features"));
        expectClose(model.towerFeatures(batch, false), host(io, "tower_features"));
        expectClose(model.embed(batch, false), host(io, "embeddings"));
        expectClose(
          model.forwardPairs(batch, expected.pairs.left, expected.pairs.right, false),
          host(io, "pair_distances"),
        );
      });
      disposeBatch(batch);
      model.dispose();
    });

    it("matches the gradients of the contrastive loss over pairs", async () => {
      await useBackend(backend);
      const model = loadedModel();
      const batch = productBatch();
      const labels = tf.tensor1d(expected.pairs.labels);
      const byName = new Map(model.parameters().list().map((e) => [e.name, e]));
      const { value, grads } = tf.variableGrads(() => {
        const distances = model.forwardPairs(batch, expected.pairs.left, expected.pairs.right, false);
        return contrastiveLoss(distances, labels, expected.pairs.margin);
      }, model.trainableVariables());
      expect(Math.abs(value.dataSync()[0] - expected.pairs.contrastiveLoss)).toBeLessThan(
        1e-4 * expected.pairs.contrastiveLoss,
      );
      for (const name of expected.gradNames as string[]) {
        const entry = byName.get(name)!;
        const grad = grads[entry.variable.name];
        expect(grad).toBeDefined();
        expectClose(await tfToTorch(grad, entry.layout), host(io, `grad/${name}`), 2e-4);
      }
      tf.dispose([value, labels, ...Object.values(grads)]);
      disposeBatch(batch);
      model.dispose();
    });
  });
}
