import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import "@tensorflow/tfjs-backend-cpu";
import { tf } from "../lib/tf.ts";
import { projectRoot } from "../lib/paths.ts";
import { saveCheckpoint } from "../lib/model/checkpoint.ts";
import { loadSiameseRuCLIP, loadTowerWeights, mapCheckpointNames } from "../lib/model/load.ts";
import { tinyPreset } from "../lib/model/presets.ts";
import { readSafetensorsFile, writeSafetensors } from "../lib/model/safetensors.ts";
import type { ProductBatch, SiameseRuCLIP } from "../lib/model/siamese.ts";
import type { HostTensor, StateDict } from "../lib/model/state_dict.ts";
import { startLocalHub } from "../lib/hub/local_hub.ts";

await tf.setBackend("cpu");
const MODEL_FIXTURES = join(projectRoot, "tests", "fixtures", "model");
const CHECKPOINT_FIXTURES = join(projectRoot, "tests", "fixtures", "checkpoints");
const reference = (await readSafetensorsFile(join(MODEL_FIXTURES, "tiny_siamese.safetensors"))).tensors;
const io = (await readSafetensorsFile(join(MODEL_FIXTURES, "tiny_io.safetensors"))).tensors;

function bytesOf(tensor: HostTensor): Uint8Array {
  return new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
}

/** Names whose weights in `model` equal `want` byte for byte (among the names of `want`). */
async function sameWeights(
  model: SiameseRuCLIP,
  want: StateDict,
  prefix = "",
): Promise<{ same: number; different: string[] }> {
  const got = await model.stateDict();
  const different: string[] = [];
  let same = 0;
  for (const [name, tensor] of want) {
    const mine = got.get(prefix + name);
    if (mine && bytesOf(mine).every((byte, i) => byte === bytesOf(tensor)[i])) same++;
    else different.push(name);
  }
  return { same, different };
}

function embed(model: SiameseRuCLIP): Float32Array {
  const t = (name: string): tf.Tensor => {
    const host = io.get(name)!;
    return tf.tensor(host.data, host.shape, host.dtype);
  };
  const batch = {
    images: t("images_nhwc"),
    nameIds: t("name_ids"),
    nameMask: t("name_mask"),
    descIds: t("desc_ids"),
    descMask: t("desc_mask"),
  } as ProductBatch;
  const out = model.embed(batch, false);
  const values = out.dataSync() as Float32Array;
  tf.dispose([out, batch.images, batch.nameIds, batch.nameMask, batch.descIds, batch.descMask]);
  return values;
}

function subset(sd: StateDict, prefix: string, rename: (name: string) => string): StateDict {
  return new Map([...sd].filter(([name]) => name.startsWith(prefix)).map(([name, t]) => [rename(name), t]));
}

describe("loadSiameseRuCLIP", () => {
  it("random-initialises when no weights are given", async () => {
    const { model, report } = await loadSiameseRuCLIP({ preset: "tiny" });
    expect(report.kind).toBe("random");
    expect(report.summary).toMatch(/random initialisation \(preset "tiny"\)/);
    expect(model.parameterCount()).toBe(135009);
    model.dispose();
  });

  it("loads the PyTorch .pt and the safetensors of the tiny Siamese model to the same weights and outputs", async () => {
    const fromPt = await loadSiameseRuCLIP({ preset: "tiny", weights: join(MODEL_FIXTURES, "tiny_siamese.pt") });
    const fromSt = await loadSiameseRuCLIP({
      preset: "tiny",
      weights: join(MODEL_FIXTURES, "tiny_siamese.safetensors"),
    });
    expect(fromPt.report.kind).toBe("torch");
    expect(fromSt.report.kind).toBe("safetensors");
    for (const { report } of [fromPt, fromSt]) {
      expect([report.missing, report.unexpected, report.mismatched, report.layout]).toEqual([[], [], [], "siamese"]);
    }
    expect(await sameWeights(fromPt.model, reference)).toEqual({ same: reference.size, different: [] });
    expect(await sameWeights(fromSt.model, reference)).toEqual({ same: reference.size, different: [] });
    const a = embed(fromPt.model);
    const b = embed(fromSt.model);
    expect(a.length).toBeGreaterThan(0);
    expect(Array.from(a)).toEqual(Array.from(b));
    fromPt.model.dispose();
    fromSt.model.dispose();
  });

  it("loads our checkpoint folder with its own config (not the preset's) bit-exactly", async () => {
    const root = await Deno.makeTempDir();
    const source = await loadSiameseRuCLIP({
      preset: "tiny",
      weights: join(MODEL_FIXTURES, "tiny_siamese.safetensors"),
    });
    const dir = join(root, "best");
    await saveCheckpoint(dir, {
      model: source.model,
      config: source.model.config,
      trainingState: { epoch: 1, step: 5 },
    });
    const { model, report } = await loadSiameseRuCLIP({ preset: "real", weights: dir });
    expect(report.kind).toBe("checkpoint-folder");
    expect(report.configSource).toMatch(/config\.json/);
    expect(model.config).toEqual(source.model.config);
    expect(await sameWeights(model, reference)).toEqual({ same: reference.size, different: [] });
    source.model.dispose();
    model.dispose();
    await Deno.remove(root, { recursive: true });
  });

  it("loads a RuCLIP-tiny preload (.pt with visual./transformer./final_ln./logit_scale) under 'ruclip.'", async () => {
    const { model, report } = await loadSiameseRuCLIP({
      preset: "tiny",
      weights: join(CHECKPOINT_FIXTURES, "tiny_ruclip.pt"),
    });
    expect(report.layout).toBe("ruclip");
    expect(report.mapping).toEqual(['add "ruclip."']);
    expect([report.missing, report.unexpected, report.mismatched]).toEqual([[], [], []]);
    const ruclip = subset(reference, "ruclip.", (name) => name);
    expect(await sameWeights(model, ruclip)).toEqual({ same: ruclip.size, different: [] });
    const head = subset(reference, "head.", (name) => name);
    expect((await sameWeights(model, head)).same).toBe(0);
    model.dispose();
  });

  it("strips DataParallel's 'module.' prefix", async () => {
    const root = await Deno.makeTempDir();
    const wrapped = new Map([...reference].map(([name, t]) => [`module.${name}`, t]));
    const path = join(root, "dp.safetensors");
    await Deno.writeFile(path, writeSafetensors(wrapped));
    expect(mapCheckpointNames(wrapped).mapping).toEqual(['strip "module."']);
    const { model, report } = await loadSiameseRuCLIP({ preset: "tiny", weights: path });
    expect(report.summary).toMatch(/strip "module\."/);
    expect((await sameWeights(model, reference)).different).toEqual([]);
    model.dispose();
    await Deno.remove(root, { recursive: true });
  });

  it("refuses wrong shapes in strict mode naming the file; loads what fits otherwise", async () => {
    const other = { ...tinyPreset(), projectionDim: 48, name: "tiny-48" };
    const weights = join(MODEL_FIXTURES, "tiny_siamese.safetensors");
    await expect(loadSiameseRuCLIP({ preset: other, weights })).rejects.toThrow(
      /tiny_siamese\.safetensors: .*shape mismatch .*ruclip\.final_ln\.weight: expected \[48, 32\], got \[64, 32\]/s,
    );
    const { model, report } = await loadSiameseRuCLIP({ preset: other, weights, strict: false });
    expect(report.mismatched).toContain("ruclip.final_ln.weight: expected [48, 32], got [64, 32]");
    expect(report.summary).toMatch(/wrong shape, skipped \(\d+\)/);
    expect((await sameWeights(model, subset(reference, "description_transformer.", (n) => n))).different).toEqual([]);
    model.dispose();
  });

  it("says what is wrong with a path that is neither a file, a folder nor a Hub id", async () => {
    await expect(loadSiameseRuCLIP({ preset: "tiny", weights: "./no/such/file.pt" })).rejects.toThrow(
      /weights "\.\/no\/such\/file\.pt": no such file or folder \/.*\/no\/such\/file\.pt \(a Hub repository is written hf-hub:/,
    );
    await expect(loadSiameseRuCLIP({ preset: "tiny", weights: join(CHECKPOINT_FIXTURES, "legacy.pt") })).rejects
      .toThrow(/legacy\.pt: legacy/);
    const cacheDir = await Deno.makeTempDir();
    await expect(loadSiameseRuCLIP({ preset: "tiny", weights: "hf-hub:someone/model", cacheDir, offline: true }))
      .rejects.toThrow(/someone\/model: not in the cache .* offline mode/);
    // A bare owner/name that is not on disk is a missing path, never a Hub request.
    await expect(loadSiameseRuCLIP({ preset: "tiny", weights: "demo/best", cacheDir, offline: true })).rejects
      .toThrow(/no such file or folder .*\/demo\/best .*write hf-hub:demo\/best/);
    await Deno.remove(cacheDir, { recursive: true });
  });

  it("downloads a Hub model repo into the cache, then loads it offline from the cache", async () => {
    const base = await Deno.makeTempDir();
    const repoDir = join(base, "hub", "models", "indeepa", "tiny-siamese");
    await Deno.mkdir(repoDir, { recursive: true });
    await Deno.copyFile(join(MODEL_FIXTURES, "tiny_siamese.safetensors"), join(repoDir, "model.safetensors"));
    await Deno.writeTextFile(join(repoDir, "config.json"), JSON.stringify(tinyPreset()));
    await Deno.writeTextFile(join(repoDir, "README.md"), "not downloaded\n");
    const hub = await startLocalHub({ root: join(base, "hub") });
    const cacheDir = join(base, "cache");
    try {
      const online = await loadSiameseRuCLIP({
        preset: "real",
        weights: "hf-hub:indeepa/tiny-siamese",
        cacheDir,
        endpoint: hub.endpoint,
      });
      expect(online.report.kind).toBe("hub:indeepa/tiny-siamese checkpoint-folder");
      expect((await sameWeights(online.model, reference)).different).toEqual([]);
      online.model.dispose();
      const cached = join(cacheDir, "indeepa", "tiny-siamese", "main");
      expect((await Array.fromAsync(Deno.readDir(cached))).map((e) => e.name).sort()).toEqual([
        "config.json",
        "model.safetensors",
      ]);
    } finally {
      await hub.close();
    }
    const offline = await loadSiameseRuCLIP({
      preset: "real",
      weights: "hf-hub:indeepa/tiny-siamese",
      cacheDir,
      offline: true,
    });
    expect((await sameWeights(offline.model, reference)).different).toEqual([]);
    offline.model.dispose();
    await Deno.remove(base, { recursive: true });
  });
});

describe("loadTowerWeights", () => {
  it("loads a timm convnext safetensors into the image tower, dropping the classifier", async () => {
    const root = await Deno.makeTempDir();
    const timm = subset(reference, "ruclip.visual.", (name) => name.slice("ruclip.visual.".length));
    timm.set("head.fc.weight", { dtype: "float32", shape: [10, 64], data: new Float32Array(640) });
    timm.set("head.fc.bias", { dtype: "float32", shape: [10], data: new Float32Array(10) });
    const path = join(root, "convnext.safetensors");
    await Deno.writeFile(path, writeSafetensors(timm));
    const { model } = await loadSiameseRuCLIP({ preset: "tiny" });
    const report = await loadTowerWeights(model, "image", path);
    expect(report.ignored.sort()).toEqual(["head.fc.bias", "head.fc.weight"]);
    expect([report.missing, report.unexpected, report.mismatched]).toEqual([[], [], []]);
    expect((await sameWeights(model, subset(reference, "ruclip.visual.", (n) => n))).different).toEqual([]);
    model.dispose();
    await Deno.remove(root, { recursive: true });
  });

  it("loads an HF BertModel folder (names with 'bert.', MLM head dropped) into the name or description tower", async () => {
    const root = await Deno.makeTempDir();
    const bert = subset(reference, "ruclip.transformer.", (name) => `bert.${name.slice("ruclip.transformer.".length)}`);
    bert.set("cls.predictions.bias", { dtype: "float32", shape: [96], data: new Float32Array(96) });
    await Deno.writeFile(join(root, "model.safetensors"), writeSafetensors(bert));
    await Deno.writeTextFile(join(root, "config.json"), JSON.stringify({ model_type: "bert", hidden_size: 32 }));
    const { model } = await loadSiameseRuCLIP({ preset: "tiny" });
    const nameReport = await loadTowerWeights(model, "name", root);
    expect(nameReport.mapping).toEqual(['strip "bert."', 'add "ruclip.transformer."']);
    expect(nameReport.ignored).toEqual(["cls.predictions.bias"]);
    expect((await sameWeights(model, subset(reference, "ruclip.transformer.", (n) => n))).different).toEqual([]);
    await loadTowerWeights(model, "description", root);
    const asDescription = subset(reference, "ruclip.transformer.", (n) => n.slice("ruclip.transformer.".length));
    expect((await sameWeights(model, asDescription, "description_transformer.")).different).toEqual([]);
    await expect(loadTowerWeights(model, "image", root)).rejects.toThrow(/image tower: state dict does not fit/);
    model.dispose();
    await Deno.remove(root, { recursive: true });
  });
});
