import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { selectBackend } from "../lib/backend.ts";
import { DEMO_IMAGE_TOWER, DEMO_TEXT_TOWER, demoPreset, setupModel } from "../lib/train/session.ts";
import { readSafetensorsFile } from "../lib/model/safetensors.ts";

await selectBackend("cpu", { quiet: true });

describe("model set-up for the notebooks", () => {
  it("starts the demo preset from the shipped towers: SimCLR image tower and the pretrained text tower", async () => {
    const { model, summary } = await setupModel({ preset: "demo", seed: 1 });
    const state = await model.stateDict();
    const image = (await readSafetensorsFile(join(DEMO_IMAGE_TOWER, "model.safetensors"))).tensors;
    const text = (await readSafetensorsFile(join(DEMO_TEXT_TOWER, "model.safetensors"))).tensors;
    expect(state.get("ruclip.visual.stem.0.weight")!.data).toEqual(image.get("stem.0.weight")!.data);
    const word = text.get("embeddings.word_embeddings.weight")!.data;
    expect(state.get("ruclip.transformer.embeddings.word_embeddings.weight")!.data).toEqual(word);
    expect(state.get("description_transformer.embeddings.word_embeddings.weight")!.data).toEqual(word);
    expect(summary).toMatch(/image tower from .*convnext-demo.*text towers from .*text-tower-demo/);
    expect(model.config.nameBert.hiddenSize).toBe((await demoPreset()).nameBert.hiddenSize);
    model.dispose();
  });

  it("loads a description tower from an HF BertModel folder, and rejects one that does not fit", async () => {
    const { model, summary } = await setupModel({ preset: "demo", seed: 1, descriptionWeights: DEMO_TEXT_TOWER });
    expect(summary).toContain("description tower from");
    model.dispose();
    await expect(setupModel({ preset: "tiny", seed: 1, descriptionWeights: DEMO_TEXT_TOWER })).rejects.toThrow(
      /does not fit the description tower/,
    );
  });

  it("names the valid presets when given an unknown one", async () => {
    await expect(setupModel({ preset: "huge" as never })).rejects.toThrow(
      /unknown model preset "huge"; use demo, real or tiny/,
    );
  });
});
