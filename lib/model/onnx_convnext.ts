/**
 * The frozen ConvNeXt image tower on onnxruntime-node, built from OUR weights: the tfjs model's
 * PyTorch-layout state dict is written as an ONNX graph (lib/model/onnx_proto.ts) of the same
 * network as lib/model/convnext.ts, and run by onnxruntime's CPU kernels (about 10x tfjs-wasm on
 * the real convnext_tiny). Inference only: no gradients flow through it.
 *
 * Graph (input "images" NHWC [batch, H, W, 3], as ProductBatch.images; output "features" [batch, C]):
 *   stem.0 Conv 4x4/4 -> stem.1 LayerNorm over channels
 *   stages.N: (N > 0) downsample.0 LayerNorm over channels -> downsample.1 Conv 2x2/2
 *             blocks.M: depthwise Conv 7x7 pad 3 -> LayerNormalization(axis -1) -> MatMul fc1 + bias
 *                       -> GELU (Div sqrt2, Erf, Add 1, Mul x, Mul 0.5) -> MatMul fc2 + bias, scaled by gamma
 *                       -> residual Add
 *   ReduceMean over H, W -> head.norm LayerNormalization
 * Layer scale `gamma` is folded into fc2 (weight and bias times gamma), which is the same function.
 */
import * as ort from "onnxruntime-node";
import type { ConvNeXtConfig } from "./convnext.ts";
import { attr, encodeOnnxModel, type OnnxAttribute } from "./onnx_proto.ts";
import { createCpuSession, GraphBuilder, runFeatures, transpose2d, WeightReader } from "./onnx_graph.ts";
import type { SiameseRuCLIP } from "./siamese.ts";
import type { StateDict } from "./state_dict.ts";

/**
 * Where the trunk keeps its activations between ops: "nchw" (Conv-native; LayerNorms wrapped in
 * Transposes) or "nhwc" (channels-last as tfjs; Convs wrapped in Transposes).
 */
export type OnnxConvNeXtLayout = "nchw" | "nhwc";

/** Options of `convnextOnnxModel`. */
export interface ConvNeXtOnnxOptions {
  /** Activation layout of the trunk (default "nchw", the faster one under onnxruntime on CPU). */
  layout?: OnnxConvNeXtLayout;
}

const TO_NCHW = [0, 3, 1, 2];
const TO_NHWC = [0, 2, 3, 1];

/**
 * Builds the ONNX graph (serialized ModelProto, opset 17) of the ConvNeXt image tower stored under
 * `prefix` in `stateDict` (PyTorch names and layouts, as `SiameseRuCLIP.stateDict()` gives them).
 * Throws, listing every missing or mis-shaped weight, when the state dict does not hold the tower.
 */
export function convnextOnnxModel(
  stateDict: StateDict,
  prefix = "ruclip.visual.",
  config: ConvNeXtConfig,
  options: ConvNeXtOnnxOptions = {},
): Uint8Array {
  const { depths, dims } = config;
  if (depths.length !== dims.length || depths.length === 0) {
    throw new Error(`convnextOnnxModel: depths (${depths.length}) and dims (${dims.length}) must be equally long`);
  }
  const layout = options.layout ?? "nchw";
  const eps = config.layerNormEps ?? 1e-6;
  const inChannels = config.inChannels ?? 3;
  const weights = new WeightReader(stateDict, prefix);
  const g = new GraphBuilder();

  const layerNormLastAxis = (x: string, name: string, channels: number): string =>
    g.op("LayerNormalization", [
      x,
      g.constant(`${name}.weight`, [channels], weights.get(`${name}.weight`, [channels])),
      g.constant(`${name}.bias`, [channels], weights.get(`${name}.bias`, [channels])),
    ], [attr.int("axis", -1), attr.float("epsilon", eps)]);
  /** LayerNorm over the channels of a trunk activation (in the trunk's layout). */
  const layerNormChannels = (x: string, name: string, channels: number): string =>
    layout === "nhwc"
      ? layerNormLastAxis(x, name, channels)
      : g.op("Transpose", [layerNormLastAxis(g.op("Transpose", [x], [attr.ints("perm", TO_NHWC)]), name, channels)], [
        attr.ints("perm", TO_NCHW),
      ]);
  /** A Conv with bias on a trunk activation (NCHW inside; Transposes around it for the nhwc layout). */
  const conv = (x: string, name: string, weightShape: number[], extra: OnnxAttribute[]): string => {
    const input = layout === "nhwc" ? g.op("Transpose", [x], [attr.ints("perm", TO_NCHW)]) : x;
    const y = g.op("Conv", [
      input,
      g.constant(`${name}.weight`, weightShape, weights.get(`${name}.weight`, weightShape)),
      g.constant(`${name}.bias`, [weightShape[0]], weights.get(`${name}.bias`, [weightShape[0]])),
    ], [attr.ints("kernel_shape", weightShape.slice(2)), ...extra]);
    return layout === "nhwc" ? g.op("Transpose", [y], [attr.ints("perm", TO_NHWC)]) : y;
  };
  const patchConv = (x: string, name: string, inCh: number, outCh: number, size: number): string =>
    conv(x, name, [outCh, inCh, size, size], [attr.ints("strides", [size, size])]);
  const sqrt2 = g.constant("const.sqrt2", [], Float32Array.of(Math.SQRT2));
  const one = g.constant("const.one", [], Float32Array.of(1));
  const half = g.constant("const.half", [], Float32Array.of(0.5));

  const block = (x: string, name: string, dim: number): string => {
    let y = conv(x, `${name}.conv_dw`, [dim, 1, 7, 7], [attr.int("group", dim), attr.ints("pads", [3, 3, 3, 3])]);
    if (layout === "nchw") y = g.op("Transpose", [y], [attr.ints("perm", TO_NHWC)]);
    y = layerNormLastAxis(y, `${name}.norm`, dim);
    const hidden = 4 * dim;
    const fc1 = transpose2d(weights.get(`${name}.mlp.fc1.weight`, [hidden, dim]), hidden, dim);
    y = g.op("MatMul", [y, g.constant(`${name}.mlp.fc1.weight_t`, [dim, hidden], fc1)]);
    y = g.op("Add", [y, g.constant(`${name}.mlp.fc1.bias`, [hidden], weights.get(`${name}.mlp.fc1.bias`, [hidden]))]);
    const erf = g.op("Erf", [g.op("Div", [y, sqrt2])]);
    y = g.op("Mul", [g.op("Mul", [y, g.op("Add", [erf, one])]), half]);
    const gamma = weights.get(`${name}.gamma`, [dim]);
    const fc2 = transpose2d(weights.get(`${name}.mlp.fc2.weight`, [dim, hidden]), dim, hidden, gamma);
    const fc2Bias = weights.get(`${name}.mlp.fc2.bias`, [dim]).map((b, i) => b * gamma[i]);
    y = g.op("MatMul", [y, g.constant(`${name}.mlp.fc2.weight_t_scaled`, [hidden, dim], fc2)]);
    y = g.op("Add", [y, g.constant(`${name}.mlp.fc2.bias_scaled`, [dim], fc2Bias)]);
    if (layout === "nchw") y = g.op("Transpose", [y], [attr.ints("perm", TO_NCHW)]);
    return g.op("Add", [x, y]);
  };

  let x = layout === "nchw" ? g.op("Transpose", ["images"], [attr.ints("perm", TO_NCHW)]) : "images";
  x = layerNormChannels(patchConv(x, "stem.0", inChannels, dims[0], 4), "stem.1", dims[0]);
  for (let i = 0; i < depths.length; i++) {
    if (i > 0) {
      x = layerNormChannels(x, `stages.${i}.downsample.0`, dims[i - 1]);
      x = patchConv(x, `stages.${i}.downsample.1`, dims[i - 1], dims[i], 2);
    }
    for (let j = 0; j < depths[i]; j++) x = block(x, `stages.${i}.blocks.${j}`, dims[i]);
  }
  const numFeatures = dims[dims.length - 1];
  const pooled = g.op("ReduceMean", [x], [
    attr.ints("axes", layout === "nchw" ? [2, 3] : [1, 2]),
    attr.int("keepdims", 0),
  ]);
  const features = layerNormLastAxis(pooled, "head.norm", numFeatures);
  g.output(features, "features");
  weights.check(
    `convnextOnnxModel: the state dict does not hold a ConvNeXt (depths [${depths}], dims [${dims}]) under ` +
      `prefix "${prefix}"`,
    `Pass the prefix the image tower's weights are stored under ("ruclip.visual." for SiameseRuCLIP) and a ` +
      "config that matches the checkpoint.",
  );
  return encodeOnnxModel({
    name: "convnext_image_tower",
    nodes: g.nodes,
    initializers: g.initializers,
    inputs: [{ name: "images", elemType: "float32", shape: ["batch", "height", "width", inChannels] }],
    outputs: [{ name: "features", elemType: "float32", shape: ["batch", numFeatures] }],
  });
}

/** Options of `OnnxImageTower.create`. */
export interface OnnxImageTowerOptions extends ConvNeXtOnnxOptions {
  /** onnxruntime intra-op threads (default: every core). */
  threads?: number;
}

/**
 * The image tower of a SiameseRuCLIP as an onnxruntime session, from the model's current weights
 * (a snapshot: rebuild after the image tower's weights change). Call `dispose()` when done.
 */
export class OnnxImageTower {
  private constructor(
    private readonly session: ort.InferenceSession,
    /** Size of each feature vector. */
    readonly numFeatures: number,
  ) {}

  /** Builds the tower of `model` (weights under "ruclip.visual."). */
  static async create(model: SiameseRuCLIP, options: OnnxImageTowerOptions = {}): Promise<OnnxImageTower> {
    const stateDict = new Map([...(await model.stateDict())].filter(([name]) => name.startsWith("ruclip.visual.")));
    return OnnxImageTower.fromStateDict(stateDict, model.config.convnext, { ...options, prefix: "ruclip.visual." });
  }

  /** Builds a tower from a state dict holding a ConvNeXt under `prefix` (default "ruclip.visual."). */
  static async fromStateDict(
    stateDict: StateDict,
    config: ConvNeXtConfig,
    options: OnnxImageTowerOptions & { prefix?: string } = {},
  ): Promise<OnnxImageTower> {
    const bytes = convnextOnnxModel(stateDict, options.prefix ?? "ruclip.visual.", config, options);
    const session = await createCpuSession(bytes, options.threads);
    return new OnnxImageTower(session, config.dims[config.dims.length - 1]);
  }

  /**
   * Features [n, numFeatures] (row-major) of `n` images given as NHWC float32 [n, size, size, 3],
   * normalised as ProductBatch.images.
   */
  async run(images: Float32Array, n: number, size: number): Promise<Float32Array> {
    if (!Number.isInteger(n) || n < 0 || images.length !== n * size * size * 3) {
      throw new Error(
        `OnnxImageTower.run: images hold ${images.length} values, expected n=${n} x ${size} x ${size} x 3 (NHWC)`,
      );
    }
    if (n === 0) return new Float32Array(0);
    const feeds = { images: new ort.Tensor("float32", images, [n, size, size, 3]) };
    return await runFeatures(this.session, feeds);
  }

  /** Releases the onnxruntime session. */
  async dispose(): Promise<void> {
    await this.session.release();
  }
}
