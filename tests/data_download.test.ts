import { after, before, describe, it } from "node:test";
import { expect } from "expect";
import sharp from "sharp";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { downloadImages, type ImageResult } from "../lib/data/download.ts";
import { configureStopHandler, InterruptedError, stopPressed } from "../lib/notebook/interrupt.ts";

const jpeg: Uint8Array<ArrayBuffer> = new Uint8Array(
  await sharp({ create: { width: 32, height: 24, channels: 3, background: "#3a7" } }).jpeg().toBuffer(),
);
let flakyCalls = 0;
let server: Deno.HttpServer<Deno.NetAddr>;
let base = "";
let dir = "";

function handler(request: Request): Response | Promise<Response> {
  const path = new URL(request.url).pathname;
  const image = (bytes: Uint8Array<ArrayBuffer>) => new Response(bytes, { headers: { "content-type": "image/jpeg" } });
  switch (path) {
    case "/ok.jpg":
      return image(jpeg);
    case "/redirect.jpg":
      return Response.redirect(`${base}/ok.jpg`, 302);
    case "/missing.jpg":
      return new Response("not found", { status: 404 });
    case "/text.jpg":
      return new Response("<html>not an image</html>", { headers: { "content-type": "text/html" } });
    case "/truncated.jpg":
      return image(jpeg.slice(0, Math.floor(jpeg.length / 2)));
    case "/flaky.jpg":
      return ++flakyCalls === 1 ? new Response("busy", { status: 503 }) : image(jpeg);
    case "/slow.jpg":
      return new Promise((resolve) => setTimeout(() => resolve(image(jpeg)), 600));
    default:
      return new Response("?", { status: 400 });
  }
}

before(async () => {
  dir = await Deno.makeTempDir({ prefix: "data_download_" });
  server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  base = `http://127.0.0.1:${server.addr.port}`;
  await Deno.writeFile(join(dir, "local.jpg"), jpeg);
});
after(async () => {
  await server.shutdown();
  await Deno.remove(dir, { recursive: true });
});

const names = ["ok", "redirect", "missing", "text", "truncated", "flaky", "slow"];

describe("downloadImages against a loopback server", () => {
  let results: ImageResult[] = [];
  const byName = (name: string) => results.find((r) => r.image_name === `${name}.jpg`)!;

  it("downloads good images, follows redirects, retries transient errors, reports the rest", async () => {
    const jobs = names.map((name) => ({ sku: name, url: `${base}/${name}.jpg`, imageName: `${name}.jpg` }));
    jobs.push({ sku: "local", url: pathToFileURL(join(dir, "local.jpg")).href, imageName: "local_copy.jpg" });
    jobs.push({ sku: "gone", url: pathToFileURL(join(dir, "gone.jpg")).href, imageName: "gone.jpg" });
    const ticks: number[] = [];
    results = await downloadImages(jobs, {
      imagesDir: join(dir, "images"),
      concurrency: 3,
      retries: 1,
      timeoutMs: 200,
      backoffMs: 5,
      progress: { tick: (n = 1) => ticks.push(n), done: () => ticks.push(-1) },
    });
    expect(results.map((r) => r.sku)).toEqual(jobs.map((j) => j.sku));
    expect(byName("ok")).toMatchObject({ status: "downloaded", width: 32, height: 24, attempts: 1 });
    expect(byName("redirect").status).toBe("downloaded");
    expect(byName("flaky")).toMatchObject({ status: "downloaded", attempts: 2 });
    expect(byName("missing")).toMatchObject({ status: "failed", attempts: 1 });
    expect(byName("missing").error).toMatch(/404/);
    expect(byName("text").error).toMatch(/not a valid image/);
    expect(byName("truncated").error).toMatch(/not a valid image/);
    expect(byName("slow")).toMatchObject({ status: "failed", attempts: 2 });
    expect(byName("slow").error).toMatch(/timed out/);
    expect(byName("local_copy").status).toBe("downloaded");
    expect(byName("gone").error).toMatch(/cannot read/);
    expect(ticks.filter((t) => t === 1).length).toBe(jobs.length);
    expect(ticks.at(-1)).toBe(-1);
    const written = [...Deno.readDirSync(join(dir, "images"))].map((e) => e.name).sort();
    expect(written).toEqual(["flaky.jpg", "local_copy.jpg", "ok.jpg", "redirect.jpg"]);
  });

  it("resumes: a valid file already on disk is not fetched again, a corrupt one is", async () => {
    await Deno.writeFile(join(dir, "images", "redirect.jpg"), new TextEncoder().encode("garbage"));
    const again = await downloadImages(
      [
        { sku: "ok", url: `${base}/missing.jpg`, imageName: "ok.jpg" },
        { sku: "redirect", url: `${base}/redirect.jpg`, imageName: "redirect.jpg" },
      ],
      { imagesDir: join(dir, "images"), retries: 0, timeoutMs: 500 },
    );
    expect(again.map((r) => r.status)).toEqual(["cached", "downloaded"]);
  });

  it("Stop lets the downloads under way finish whole and starts no more", async () => {
    configureStopHandler({ notify: () => {}, exit: () => {} });
    const imagesDir = join(dir, "stopped");
    const jobs = ["a", "b", "c", "d", "e"].map((name) => ({
      sku: name,
      url: `${base}/ok.jpg`,
      imageName: `${name}.jpg`,
    }));
    const stops: unknown[] = [];
    let ticks = 0;
    const error = await downloadImages(jobs, {
      imagesDir,
      concurrency: 1,
      progress: {
        tick: () => ++ticks === 2 && stopPressed(), // Stop pressed after the second image
        done: () => {},
        stop: (reason) => stops.push(reason),
      },
    }).catch((e) => e);
    expect(error).toBeInstanceOf(InterruptedError);
    expect(error.message).toBe(
      `image download stopped at 2/5 images (Stop). Kept: the 2 images fetched, each written whole in ${imagesDir}. ` +
        "Resume: run it again: the images on disk are checked and skipped.",
    );
    expect(stops[0]).toBe("interrupted at 2/5");
    expect([...Deno.readDirSync(imagesDir)].map((e) => e.name).sort()).toEqual(["a.jpg", "b.jpg"]);
    const resumed = await downloadImages(jobs, { imagesDir });
    expect(resumed.map((r) => r.status)).toEqual(["cached", "cached", "downloaded", "downloaded", "downloaded"]);
  });
});
