/** Seeds the local Hub stand-in with a dataset repo built from a data folder (used by the demo). */
import { dirname, join } from "node:path";
import { IMAGE_FOLDER_PATTERN, listFolderFiles, zipFolderDeterministic } from "./archive.ts";
import { DEFAULT_DATA_REPO } from "./repo.ts";

/** Options of {@link seedLocalHubFromData}. */
export interface SeedOptions {
  /** Root folder served by the stand-in (see local_hub.ts). */
  hubRoot: string;
  /** Data folder to publish (images_* folders and tables_* folders are taken). */
  dataDir: string;
  /** Repo id, default INDEEPA/clip-siamese. */
  repo?: string;
  /** Repo type, default "dataset". */
  repoType?: "dataset" | "model";
}

/**
 * Rebuilds `<hubRoot>/<type>s/<repo>/` from `dataDir` the way `hf_data_upload` would publish it:
 * each `images_*` folder as a deterministic `images_*.zip`, each `tables_*` folder copied file by
 * file. Returns the repo paths written, sorted.
 */
export async function seedLocalHubFromData(options: SeedOptions): Promise<string[]> {
  const repo = options.repo ?? DEFAULT_DATA_REPO;
  const repoDir = join(options.hubRoot, `${options.repoType ?? "dataset"}s`, ...repo.split("/"));
  await Deno.remove(repoDir, { recursive: true }).catch(() => {});
  await Deno.mkdir(repoDir, { recursive: true });
  const written: string[] = [];
  const folders: string[] = [];
  for await (const entry of Deno.readDir(options.dataDir)) {
    if (entry.isDirectory) folders.push(entry.name);
  }
  for (const folder of folders.sort()) {
    if (IMAGE_FOLDER_PATTERN.test(folder)) {
      await zipFolderDeterministic(join(options.dataDir, folder), join(repoDir, `${folder}.zip`));
      written.push(`${folder}.zip`);
    } else if (folder.startsWith("tables_")) {
      for (const rel of await listFolderFiles(join(options.dataDir, folder))) {
        const target = join(repoDir, folder, ...rel.split("/"));
        await Deno.mkdir(dirname(target), { recursive: true });
        await Deno.copyFile(join(options.dataDir, folder, ...rel.split("/")), target);
        written.push(`${folder}/${rel}`);
      }
    }
  }
  return written.sort();
}
