/** scripts/setup.ts: what each entry point needs, the one-line advice when it cannot be installed. */
import { describe, it } from "node:test";
import { expect } from "expect";
import {
  ensureRequirements,
  installAdvice,
  JUPYTER,
  type Requirement,
  REQUIREMENTS,
  setupTarget,
  VULKAN,
  XGBOOST,
} from "../scripts/setup.ts";

const absent = (what: string, apt: string[], pip?: string[]): Requirement => ({
  what,
  present: () => Promise.resolve(false),
  apt,
  pip,
});

describe("setup", () => {
  it("the tests need the notebooks' jupyter, XGBoost's library and the Vulkan software adapter", async () => {
    expect(REQUIREMENTS.notebooks).toEqual([JUPYTER, XGBOOST]);
    expect(REQUIREMENTS.tests).toEqual([JUPYTER, VULKAN, XGBOOST]);
    expect(VULKAN.apt).toEqual(["mesa-vulkan-drivers", "libvulkan1"]);
    expect(XGBOOST.apt).toEqual(["libxgboost0"]);
    expect(await XGBOOST.present()).toBe(true); // deno task test installed it
  });

  it("reads --for notebooks|tests and names what is allowed otherwise", () => {
    expect(setupTarget([])).toBe("notebooks");
    expect(setupTarget(["--for", "tests"])).toBe("tests");
    expect(setupTarget(["--for=notebooks"])).toBe("notebooks");
    expect(() => setupTarget(["--for", "test"])).toThrow(
      'setup: arguments "--for test" are not understood: use --for notebooks or --for tests',
    );
    expect(() => setupTarget(["tests"])).toThrow(/use --for notebooks or --for tests/);
  });

  it("says in one line which packages to install and how, pip only where every piece has a Python package", () => {
    const jupyter = absent("jupyter", ["jupyter-nbconvert"], ["nbconvert"]);
    const vulkan = absent("vulkan", ["mesa-vulkan-drivers", "libvulkan1"]);
    expect(installAdvice([jupyter])).toBe(
      "setup: missing jupyter, and it could not be installed here: install them (Debian/Ubuntu: " +
        "`sudo apt-get install jupyter-nbconvert`; elsewhere: `pip install nbconvert`) and run again",
    );
    const both = installAdvice([jupyter, vulkan]);
    expect(both).toContain("missing jupyter; vulkan");
    expect(both).toContain("`sudo apt-get install jupyter-nbconvert mesa-vulkan-drivers libvulkan1`");
    expect(both).not.toContain("pip");
    expect(both.includes("\n")).toBe(false);
  });

  it("does nothing when all is there, and stops with the advice when it may not install", async () => {
    await ensureRequirements([{ what: "x", present: () => Promise.resolve(true), apt: ["never-installed"] }], {
      install: false,
    });
    await expect(ensureRequirements([absent("vulkan", ["libvulkan1"])], { install: false })).rejects.toThrow(
      "setup: missing vulkan, and it could not be installed here: install them (Debian/Ubuntu: " +
        "`sudo apt-get install libvulkan1`) and run again",
    );
  });
});
