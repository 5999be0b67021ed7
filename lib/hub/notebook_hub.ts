/**
 * Which Hub the remote-data notebooks talk to. With an explicit endpoint (HF_ENDPOINT, set by
 * the runner in the demo preset) that one is used; in the demo preset without one, a local
 * stand-in is started here, seeded from the data folder; otherwise the public Hub.
 */
import { join } from "node:path";
import { exists } from "../fs.ts";
import { type LocalHub, startLocalHub } from "./local_hub.ts";
import { describeEndpoint, isLoopbackEndpoint, PUBLIC_HUB_ENDPOINT } from "./repo.ts";
import { seedLocalHubFromData } from "./seed.ts";

/** The Hub a notebook uses. */
export interface NotebookHub {
  /** Base URL to pass as `endpoint`. */
  endpoint: string;
  /** True when it is a loopback stand-in, not huggingface.co. */
  isLocalStandIn: boolean;
  /** A sentence for the notebook output saying which Hub this is. */
  description: string;
  /** Stops the stand-in if this call started it. */
  close(): Promise<void>;
}

/**
 * Picks the Hub for a notebook: `endpoint` if given; in the "demo" preset otherwise a stand-in
 * served from `<dataDir>/local_hub` (seeded from `dataDir` when the repo is not there yet).
 */
export async function notebookHub(options: {
  endpoint?: string;
  preset: string;
  dataDir: string;
  repo: string;
  repoType?: "dataset" | "model";
}): Promise<NotebookHub> {
  let started: LocalHub | undefined;
  let endpoint = options.endpoint || Deno.env.get("HF_ENDPOINT") || "";
  if (!endpoint && options.preset === "demo") {
    const root = join(options.dataDir, "local_hub");
    const repoDir = join(root, `${options.repoType ?? "dataset"}s`, ...options.repo.split("/"));
    if (!(await exists(repoDir))) {
      await Deno.mkdir(options.dataDir, { recursive: true });
      await seedLocalHubFromData({ hubRoot: root, dataDir: options.dataDir, repo: options.repo });
    }
    started = await startLocalHub({ root });
    endpoint = started.endpoint;
  }
  endpoint ||= PUBLIC_HUB_ENDPOINT;
  return {
    endpoint,
    isLocalStandIn: isLoopbackEndpoint(endpoint),
    description: describeEndpoint(endpoint),
    close: async () => {
      await started?.close();
    },
  };
}
