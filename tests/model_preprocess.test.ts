import { describe, it } from "node:test";
import { expect } from "expect";
import { join } from "node:path";
import sharp from "sharp";
import { tf } from "../lib/tf.ts";
import "@tensorflow/tfjs-backend-cpu";
import { projectRoot } from "../lib/paths.ts";
import {
  imageBatchTensor,
  IMAGENET_MEAN,
  IMAGENET_STD,
  loadProductImage,
  resizeAndCrop,
  resizedSize,
} from "../lib/model/preprocess.ts";

await tf.setBackend("cpu");
const folder = join(projectRoot, "tests", "fixtures", "checkpoints", "preprocess");
const { references } = JSON.parse(await Deno.readTextFile(join(folder, "references.json"))) as {
  references: { image: string; size: number; file: string }[];
};

describe("image preprocessing matches torchvision Resize+CenterCrop+ToTensor+Normalize", () => {
  it("uses torchvision's output size rule", () => {
    expect(resizedSize(400, 300, 224)).toEqual([298, 224]);
    expect(resizedSize(90, 140, 64)).toEqual([64, 99]);
    expect(resizedSize(50, 40, 64)).toEqual([80, 64]);
  });

  for (const reference of references) {
    it(`${reference.image} at ${reference.size}px equals the torchvision uint8 crop byte for byte`, async () => {
      const want = await Deno.readFile(join(folder, reference.file));
      const got = await resizeAndCrop(join(folder, reference.image), reference.size);
      let maxDifference = 0;
      for (let i = 0; i < want.length; i++) maxDifference = Math.max(maxDifference, Math.abs(got[i] - want[i]));
      expect(got.length).toBe(want.length);
      expect(maxDifference).toBe(0);
    });
  }

  it("normalises with ImageNet mean/std to HWC float32 (max abs diff < 1e-6 vs the reference)", async () => {
    const reference = references.find((r) => r.size === 224)!;
    const want = await Deno.readFile(join(folder, reference.file));
    const bytes = await Deno.readFile(join(folder, reference.image));
    const result = await loadProductImage(bytes, { size: 224 });
    expect(result.status).toBe("ok");
    expect(result.pixels.length).toBe(224 * 224 * 3);
    let maxDifference = 0;
    for (let i = 0; i < want.length; i++) {
      const c = i % 3;
      const expected = Math.fround((Math.fround(want[i] / 255) - IMAGENET_MEAN[c]) / IMAGENET_STD[c]);
      maxDifference = Math.max(maxDifference, Math.abs(result.pixels[i] - expected));
    }
    expect(maxDifference).toBeLessThan(1e-6);
  });
});

describe("missing and corrupt images", () => {
  it("gives zeros and status 'missing' for null and for a file that does not exist", async () => {
    const none = await loadProductImage(null, { size: 8 });
    expect(none.status).toBe("missing");
    expect(none.pixels).toEqual(new Float32Array(8 * 8 * 3));
    const absent = await loadProductImage(join(folder, "no_such.jpg"), { size: 8 });
    expect(absent.status).toBe("missing");
    expect(absent.message).toMatch(/no_such\.jpg: no such image file/);
    expect(absent.pixels).toEqual(new Float32Array(8 * 8 * 3));
  });

  it("gives zeros, status 'corrupt' and a message naming the file for truncated or non-image data", async () => {
    const truncated = await loadProductImage(join(folder, "truncated.jpg"), { size: 8 });
    expect(truncated.status).toBe("corrupt");
    expect(truncated.message).toMatch(/truncated\.jpg: cannot decode image/);
    expect(truncated.pixels).toEqual(new Float32Array(8 * 8 * 3));
    const text = await loadProductImage(new TextEncoder().encode("not an image at all"), { size: 8 });
    expect(text.status).toBe("corrupt");
    expect(text.message).toMatch(/<19 bytes>: cannot decode image/);
  });

  it("converts CMYK JPEGs to RGB", async () => {
    const red = await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 255, g: 0, b: 0 } } })
      .toColourspace("cmyk").jpeg().toBuffer();
    expect((await sharp(red).metadata()).space).toBe("cmyk");
    const result = await loadProductImage(new Uint8Array(red), { size: 16, mean: [0, 0, 0], std: [1, 1, 1] });
    expect(result.status).toBe("ok");
    const [r, g, b] = result.pixels.subarray(8 * 16 * 3 + 8 * 3, 8 * 16 * 3 + 8 * 3 + 3);
    expect(r).toBeGreaterThan(0.8);
    expect(g).toBeLessThan(0.3);
    expect(b).toBeLessThan(0.3);
  });

  it("rejects a size that is not a positive integer", async () => {
    await expect(loadProductImage(null, { size: 0 })).rejects.toThrow(/size must be a positive integer, got 0/);
  });
});

describe("imageBatchTensor", () => {
  it("stacks images into an NHWC tensor in order and checks their size", async () => {
    const first = await loadProductImage(join(folder, "gray.png"), { size: 16 });
    const second = await loadProductImage(null, { size: 16 });
    const before = tf.memory().numTensors;
    const batch = imageBatchTensor([first, second.pixels], 16);
    expect(batch.shape).toEqual([2, 16, 16, 3]);
    const values = await batch.data();
    expect(values.subarray(0, first.pixels.length)).toEqual(first.pixels);
    expect(values.subarray(first.pixels.length).every((v) => v === 0)).toBe(true);
    batch.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(() => imageBatchTensor([first], 8)).toThrow(/image 0 has 768 values, expected 8x8x3 = 192/);
  });
});
