/**
 * Stop in a live kernel (lib/notebook/interrupt.ts): a SIGINT leaves a request that long jobs read at their
 * next step instead of ending the process; a second one within a few seconds ends it as before.
 */
import { describe, it } from "node:test";
import { expect } from "expect";
import {
  beginInterruptible,
  configureStopHandler,
  DOUBLE_STOP_SECONDS,
  InterruptedError,
  interruptRequested,
  stopPressed,
  throwIfInterrupted,
} from "../lib/notebook/interrupt.ts";

let clock = 0;
const exits: number[] = [];
const notices: string[] = [];
configureStopHandler({ now: () => clock, exit: (code) => exits.push(code), notify: (m) => notices.push(m) });

describe("Stop", () => {
  it("leaves a request that the running job reads, and says a second Stop ends the kernel", () => {
    clock = 10_000;
    beginInterruptible();
    expect(interruptRequested()).toBe(false);
    stopPressed();
    expect(interruptRequested()).toBe(true);
    expect(exits).toEqual([]);
    expect(notices.at(-1)).toContain(`Press Stop again within ${DOUBLE_STOP_SECONDS} s to end the kernel`);
    let thrown: unknown;
    try {
      throwIfInterrupted(() => "embedding stopped at row 40/100", "the 40 rows done.", "run the cell again.");
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InterruptedError);
    expect((thrown as Error).name).toBe("Interrupted");
    expect((thrown as Error).message).toBe(
      "embedding stopped at row 40/100 (Stop). Kept: the 40 rows done. Resume: run the cell again.",
    );
    // Handled: the next check passes.
    expect(interruptRequested()).toBe(false);
    expect(() => throwIfInterrupted(() => "x", "", "")).not.toThrow();
  });

  it("ends the process on a second Stop within the window, not after it", () => {
    clock = 100_000;
    stopPressed();
    clock += DOUBLE_STOP_SECONDS * 1000 + 1;
    stopPressed();
    expect(exits).toEqual([]);
    clock += 500;
    stopPressed();
    expect(exits).toEqual([130]);
    expect(notices.at(-1)).toMatch(/Stop pressed twice: ending the kernel/);
  });

  it("forgets a Stop pressed before a job began (an idle kernel)", () => {
    clock = 200_000;
    stopPressed();
    expect(interruptRequested()).toBe(true);
    beginInterruptible();
    expect(interruptRequested()).toBe(false);
  });

  it("keeps a process alive on a real SIGINT once installed, and a second one ends it", async () => {
    if (Deno.build.os === "windows") return;
    // Its own process: the test runner stops on a SIGINT it receives.
    const module = new URL("../lib/notebook/interrupt.ts", import.meta.url).href;
    const script = `
      import * as stop from "${module}";
      stop.beginInterruptible();
      console.log("installed", stop.installStopHandler({ notify: (m) => console.log("notice:", m) }));
      Deno.kill(Deno.pid, "SIGINT");
      while (!stop.interruptRequested()) await new Promise((r) => setTimeout(r, 10));
      console.log("alive after one Stop");
      Deno.kill(Deno.pid, "SIGINT");
      await new Promise((r) => setTimeout(r, 5000));
      console.log("still alive after two");
    `;
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=ts", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(output.stdout);
    expect(text).toContain("installed true");
    expect(text).toContain("alive after one Stop");
    expect(text).toContain("Stop pressed twice: ending the kernel");
    expect(text).not.toContain("still alive after two");
    expect(output.code).toBe(130);
  });
});
