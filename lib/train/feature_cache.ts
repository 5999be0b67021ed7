/**
 * On-disk cache of tower features for head-mode training: the towers are frozen, so each
 * product's features are computed once and reused across epochs and runs. The key is a hash of
 * the tower weights and of the preprocessed inputs (images, tokens, sizes, normalisation), plus the
 * runtime the towers ran on (tfjs or onnxruntime, whose features differ within 1e-4), so a change to any
 * recomputes; a corrupt cache file is recomputed, not trusted.
 */
import { join } from "node:path";
import type { SiameseRuCLIP } from "../model/siamese.ts";
import { readSafetensors, writeSafetensors } from "../model/safetensors.ts";
import { exists, sha256Hex, writeFileAtomic } from "../fs.ts";
import { dataDir } from "../paths.ts";
import type { ProductInputs } from "./product_inputs.ts";
import { computeTowerFeatures, type TowerFeatureOptions } from "./embed.ts";
import { resolveTowerRuntime, type TowerRuntime } from "./tower_runtime.ts";

/** SHA-256 (hex, 16 chars) of the weights of every non-head parameter. */
export async function towerWeightsHash(model: SiameseRuCLIP): Promise<string> {
  const chunks: Uint8Array[] = [];
  for (const [name, tensor] of await model.stateDict()) {
    if (name.startsWith("head.")) continue;
    chunks.push(new TextEncoder().encode(`${name}:${tensor.shape.join("x")};`));
    chunks.push(new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength));
  }
  return sha256Hex(chunks);
}

export interface CachedFeatures {
  /** [products, featureDim] row-major, rows in `inputs.skus` order. */
  features: Float32Array;
  featureDim: number;
  /** True when read from disk, false when computed now. */
  reused: boolean;
  path: string;
  key: string;
  /** Where the towers ran (or ran when the cached file was written). */
  runtime: TowerRuntime;
}

/** Tower features of all prepared products, from `cacheDir` when present, else computed and stored. */
export async function cachedTowerFeatures(
  model: SiameseRuCLIP,
  inputs: ProductInputs,
  options: TowerFeatureOptions & { cacheDir?: string } = {},
): Promise<CachedFeatures> {
  const { runtime } = await resolveTowerRuntime(options.towerRuntime ?? "auto");
  const key = `${await towerWeightsHash(model)}-${await inputs.fingerprint()}-${runtime}`;
  const dir = options.cacheDir ?? join(dataDir(), "feature_cache");
  const path = join(dir, `tower-features-${key}.safetensors`);
  if (await exists(path)) {
    try {
      const { tensors } = readSafetensors(await Deno.readFile(path));
      const stored = tensors.get("features");
      if (stored && stored.shape[0] === inputs.size && stored.shape[1] === model.featureDim) {
        return {
          features: stored.data as Float32Array,
          featureDim: model.featureDim,
          reused: true,
          path,
          key,
          runtime,
        };
      }
      console.warn(`feature cache ${path} has the wrong shape; recomputing`);
    } catch (error) {
      console.warn(`feature cache ${path} is unreadable (${(error as Error).message}); recomputing`);
    }
  }
  const features = await computeTowerFeatures(model, inputs, undefined, { ...options, towerRuntime: runtime });
  await writeFileAtomic(
    path,
    writeSafetensors(
      new Map([["features", { dtype: "float32", shape: [inputs.size, model.featureDim], data: features }]]),
      {
        skus: JSON.stringify(inputs.skus.length > 50_000 ? [] : inputs.skus),
        runtime,
      },
    ),
  );
  return { features, featureDim: model.featureDim, reused: false, path, key, runtime };
}
