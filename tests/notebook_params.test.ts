import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import { projectRoot, shownPath } from "../lib/paths.ts";
import {
  choice,
  closest,
  integer,
  modelSource,
  notebookParams,
  number,
  ParameterError,
  path,
  presetEnvironment,
  resolveParams,
  suitePreset,
} from "../lib/notebook/params.ts";
import { dataset, splitRatios } from "../lib/notebook/suite_params.ts";
import { BEST_METRICS } from "../lib/train/config.ts";
import { TRAINING_LOSSES } from "../lib/model/losses.ts";
import { TRAINING_MODES } from "../lib/train/strategies.ts";

/** The training notebook's choices, as its parameters cell declares them. */
const TRAINING = {
  MODE: choice(TRAINING_MODES, "head"),
  LOSS: choice(TRAINING_LOSSES, "online-contrastive"),
  BEST_METRIC: choice(BEST_METRICS, "auc"),
  EPOCHS: integer(8, { min: 1 }),
  LR: number(1e-4, { min: 0, exclusive: true }),
  HARD_SOFT_RATIO: number(0.5, { min: 0, max: 1 }),
  SPLIT_RATIOS: splitRatios(),
  DATASET: dataset(),
};

async function errorOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected an error");
}

describe("notebook parameters", () => {
  it("coerces environment values to the declared types", async () => {
    const { values, params } = await resolveParams(
      { EPOCHS: integer(3, { min: 1 }), FLAG: true, NAME: "demo", LR: 0.001 },
      { env: { EPOCHS: "7", FLAG: "false", NAME: "real" } },
    );
    expect(values).toEqual({ EPOCHS: 7, FLAG: false, NAME: "real", LR: 0.001 });
    expect(params.map((p) => p.origin)).toEqual(["environment", "environment", "environment", "default"]);
  });

  it("stops typos with one line naming the parameter, the value, where it came from and what is allowed", async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [
        { MODE: "heda" },
        /^MODE="heda" \(from the environment\) is not allowed: use one of head, text, full \(did you mean "head"\?\)$/,
      ],
      [
        { LOSS: "contrastve" },
        /^LOSS="contrastve" .* one of contrastive, online-contrastive, query-ranking, contrastive\+query-ranking \(did you mean "contrastive"\?\)$/,
      ],
      [{ BEST_METRIC: "aucc" }, /^BEST_METRIC="aucc" .*one of f1, auc, loss \(did you mean "auc"\?\)$/],
      [{ EPOCHS: "0" }, /^EPOCHS="0" .* is out of range: use an integer >= 1$/],
      [{ EPOCHS: "2.5" }, /^EPOCHS="2.5" .* out of range: use an integer >= 1$/],
      [{ EPOCHS: "ten" }, /^EPOCHS="ten" .* is not a number/],
      [{ LR: "0" }, /^LR="0" .* use a number > 0$/],
      [{ HARD_SOFT_RATIO: "1.5" }, /^HARD_SOFT_RATIO="1.5" .* use a number >= 0 and <= 1$/],
      [{ SPLIT_RATIOS: "0.6,0.4" }, /^SPLIT_RATIOS="0.6,0.4" .* give 3 non-negative numbers/],
      [{ DATASET: "../etc" }, /^DATASET="..\/etc" .* letters, digits/],
    ];
    for (const [env, message] of cases) {
      const error = await errorOf(resolveParams(TRAINING, { env }));
      expect(error).toBeInstanceOf(ParameterError);
      expect(error.message).toMatch(message);
      expect(error.stack).toBe(`ParameterError: ${error.message}`); // one line in the notebook, no trace
    }
    expect(closest("zzzz", TRAINING_MODES)).toBeUndefined();
  });

  it("lets what the user set beat the preset, and says where each value came from", async () => {
    const user = { DATASET: "mine", HF_TOKEN: "hf_user" };
    const preset = presetEnvironment(
      { DATASET: "demo_geo", HF_ENDPOINT: "http://127.0.0.1:9", HF_TOKEN: "hf_demo" },
      user,
    );
    expect(preset).toEqual({ HF_ENDPOINT: "http://127.0.0.1:9", CLIP_SIAMESE_PRESET_KEYS: "HF_ENDPOINT" });
    const { values, params } = await resolveParams(
      { DATASET: dataset(), HF_ENDPOINT: "", RUN: "demo" },
      { env: { ...user, ...preset } },
    );
    expect(values).toEqual({ DATASET: "mine", HF_ENDPOINT: "http://127.0.0.1:9", RUN: "demo" });
    expect(Object.fromEntries(params.map((p) => [p.name, p.origin]))).toEqual({
      DATASET: "environment",
      HF_ENDPOINT: "preset",
      RUN: "default",
    });
    const error = await errorOf(
      resolveParams({ MODE: choice(TRAINING_MODES, "head") }, { env: { MODE: "x" }, presetKeys: ["MODE"] }),
    );
    expect(error.message).toMatch(/MODE="x" \(set by the .* preset\)/);
  });

  it("resolves relative paths from the project root and names the absolute path it tried", async () => {
    const { values } = await resolveParams(
      { RULES: path(""), UNSET: path("") },
      { env: { RULES: "data/shipped" } },
    );
    expect(values).toEqual({ RULES: join(projectRoot, "data", "shipped"), UNSET: "" });
    const error = await errorOf(
      resolveParams({ RESUME: path("") }, { env: { RESUME: "data/train_results/tmp/x/epoch-002" } }),
    );
    expect(error.message).toBe(
      `RESUME="data/train_results/tmp/x/epoch-002" (from the environment) does not exist: looked at ` +
        `${join(projectRoot, "data/train_results/tmp/x/epoch-002")} (relative paths resolve from the project root)`,
    );
  });

  it("never takes a missing path for a Hub id: the Hub form is hf-hub:owner/name", async () => {
    const error = await errorOf(resolveParams({ WEIGHTS: modelSource("") }, { env: { WEIGHTS: "demo/best" } }));
    expect(error.message).toContain(`looked at ${join(projectRoot, "demo", "best")}`);
    expect(error.message).toContain("a Hub repository is written hf-hub:owner/name[@revision]");
    expect(error.message).toContain("for the Hub repository write hf-hub:demo/best");
    const hub = await resolveParams({ WEIGHTS: modelSource("") }, { env: { WEIGHTS: "hf-hub:owner/model@v1" } });
    expect(hub.values.WEIGHTS).toBe("hf-hub:owner/model@v1");
    const local = await resolveParams({ WEIGHTS: modelSource("") }, { env: { WEIGHTS: "data/shipped" } });
    expect(local.values.WEIGHTS).toBe(join(projectRoot, "data", "shipped"));
  });

  it("warns about environment names one typo away from a parameter", async () => {
    const { warnings } = await resolveParams(TRAINING, { env: { EPOCH: "3", HOME: "/root" } });
    expect(warnings).toEqual(["EPOCH is set in the environment but is not a parameter here; did you mean EPOCHS?"]);
  });

  it("shows the parameter table outside Jupyter as text, tokens hidden", async () => {
    const lines: string[] = [];
    const log = console.log;
    console.log = (line: string) => lines.push(line);
    try {
      await notebookParams({ EPOCHS: integer(8, { min: 1 }) }, { env: { EPOCHS: "3" } });
    } finally {
      console.log = log;
    }
    expect(lines.join("\n")).toMatch(/EPOCHS\s+3\s+environment\s+an integer >= 1/);
  });

  it("shows paths relative to the project root", () => {
    expect(shownPath(join(projectRoot, "data", "train_results", "demo", "best"))).toBe("data/train_results/demo/best");
    expect(shownPath("random init, seed 42")).toBe("random init, seed 42");
  });

  it("rejects an unknown suite preset", () => {
    Deno.env.set("SUITE_PRESET", "huge");
    try {
      expect(() => suitePreset()).toThrow(/SUITE_PRESET="huge" is not allowed: use one of demo, real, test/);
    } finally {
      Deno.env.delete("SUITE_PRESET");
    }
  });
});
