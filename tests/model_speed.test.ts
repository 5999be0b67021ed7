// Speed note (printed, never asserted): one forward pass at batch 2 on the wasm backend.
// The tiny preset always runs; the real preset (convnext_tiny + 2x rubert-tiny, 224 px, 77 tokens)
// only with MODEL_SPEED_REAL=1, as it takes seconds:  MODEL_SPEED_REAL=1 deno test -A tests/model_speed.test.ts
import { describe, it } from "node:test";
import { expect } from "expect";
import { tf } from "../lib/tf.ts";
import { selectBackend } from "../lib/backend.ts";
import { presetByName, type SiameseRuCLIPConfig, tinyPreset } from "../lib/model/presets.ts";
import { createSiameseRuCLIP, type ProductBatch } from "../lib/model/siamese.ts";

function batchFor(config: SiameseRuCLIPConfig, n: number): ProductBatch {
  const t = config.maxTokens;
  return tf.tidy(() => ({
    images: tf.randomNormal([n, config.imageSize, config.imageSize, 3], 0, 1, "float32", 1) as tf.Tensor4D,
    nameIds: tf.randomUniform([n, t], 1, config.nameBert.vocabSize, "int32", 2) as tf.Tensor2D,
    nameMask: tf.ones([n, t], "int32") as tf.Tensor2D,
    descIds: tf.randomUniform([n, t], 1, config.descriptionBert.vocabSize, "int32", 3) as tf.Tensor2D,
    descMask: tf.ones([n, t], "int32") as tf.Tensor2D,
  }));
}

async function timeForward(config: SiameseRuCLIPConfig): Promise<void> {
  expect((await selectBackend("wasm", { quiet: true })).backend).toBe("wasm");
  const model = createSiameseRuCLIP(config, { seed: 0 });
  const batch = batchFor(config, 2);
  const run = async (): Promise<number> => {
    const start = performance.now();
    const out = model.embed(batch, false);
    await out.data();
    expect(out.shape).toEqual([2, model.embeddingDim]);
    out.dispose();
    return performance.now() - start;
  };
  const first = await run();
  const second = await run();
  console.log(
    `[speed] ${config.name} preset, wasm, batch 2 (${config.imageSize} px, ${config.maxTokens} tokens): ` +
      `first forward ${first.toFixed(0)} ms, second ${second.toFixed(0)} ms`,
  );
  tf.dispose([batch.images, batch.nameIds, batch.nameMask, batch.descIds, batch.descMask]);
  model.dispose();
}

describe("forward speed on wasm (printed only)", () => {
  it("tiny preset", async () => {
    await timeForward(tinyPreset());
  });

  if (Deno.env.get("MODEL_SPEED_REAL") === "1") {
    it("real preset", async () => {
      await timeForward(presetByName("real"));
    });
  }
});
