/**
 * The frozen BERT text towers on onnxruntime-node, built from OUR weights, as the ConvNeXt image tower is
 * (lib/model/onnx_convnext.ts): a tower's PyTorch-layout weights are written as an ONNX graph of the same
 * network as lib/model/bert.ts plus the tower's pooling and projection, and run by onnxruntime's CPU
 * kernels. Inference only.
 *
 * Graph (inputs "input_ids" and "attention_mask", int32 [batch, tokens], as the product batches hold them;
 * output "features" [batch, out]):
 *   Gather word_embeddings + Slice position_embeddings[0:T] + token_type_embeddings[0] -> LayerNorm
 *   additive mask: (1 - mask) * -1e9, [batch, 1, 1, T]
 *   encoder.layer.N: q, k, v = MatMul + bias (q and its bias pre-scaled by 1/sqrt(head size)), split into
 *     heads; Softmax(q k^T + mask) v; attention.output.dense + residual -> LayerNorm; intermediate.dense ->
 *     GELU (erf) -> output.dense + residual -> LayerNorm
 *   pooling: the [CLS] state, or the attention-masked mean (sum(h * m) / max(sum(m), 1e-9))
 *   projection (the name tower's final_ln): MatMul + bias
 *
 * @module
 */
import * as ort from "onnxruntime-node";
import type { BertConfig } from "./bert.ts";
import type { NamePooling } from "./ruclip.ts";
import { attr, encodeOnnxModel } from "./onnx_proto.ts";
import { createCpuSession, GraphBuilder, runFeatures, transpose2d, WeightReader } from "./onnx_graph.ts";
import type { SiameseRuCLIP } from "./siamese.ts";
import type { StateDict } from "./state_dict.ts";

/** Which BERT, pooled how, projected by what: one text tower. */
export interface BertTowerSpec {
  /** Prefix of the BERT's weights, e.g. "ruclip.transformer." or "description_transformer.". */
  prefix: string;
  config: BertConfig;
  pooling: NamePooling;
  /** A Linear after the pooling (the name tower's final_ln): its weights' prefix and output size. */
  projection?: { prefix: string; outFeatures: number };
}

/** The two text towers of a SiameseRuCLIP. */
export type TextTower = "name" | "description";

/** The spec of a SiameseRuCLIP's name or description tower. */
export function textTowerSpec(model: SiameseRuCLIP, tower: TextTower): BertTowerSpec {
  if (tower === "name") {
    return {
      prefix: "ruclip.transformer.",
      config: model.config.nameBert,
      pooling: model.config.namePooling ?? "cls",
      projection: { prefix: "ruclip.final_ln.", outFeatures: model.config.projectionDim },
    };
  }
  if (tower === "description") {
    return { prefix: "description_transformer.", config: model.config.descriptionBert, pooling: "mean" };
  }
  throw new Error(`textTowerSpec: tower ${JSON.stringify(tower)}; expected "name" or "description"`);
}

/** Additive score of padding keys, as lib/model/bert.ts. */
const MASKED_SCORE = -1e9;

/**
 * Builds the ONNX graph (serialized ModelProto, opset 17) of a BERT text tower stored in `stateDict`
 * (PyTorch names and layouts). Throws, listing every missing or mis-shaped weight, when it is not there.
 */
export function bertTowerOnnxModel(stateDict: StateDict, spec: BertTowerSpec): Uint8Array {
  const c = spec.config;
  const h = c.hiddenSize, heads = c.numHeads, inner = c.intermediateSize;
  if (h % heads !== 0) throw new Error(`bertTowerOnnxModel: hiddenSize ${h} is not a multiple of numHeads ${heads}`);
  const headSize = h / heads;
  const weights = new WeightReader(stateDict, spec.prefix);
  const g = new GraphBuilder();
  const linear = (x: string, name: string, inF: number, outF: number, scale = 1): string => {
    const s = scale === 1 ? undefined : new Float32Array(outF).fill(scale);
    const w = transpose2d(weights.get(`${name}.weight`, [outF, inF]), outF, inF, s);
    const b = weights.get(`${name}.bias`, [outF]).map((v) => v * scale);
    return g.op("Add", [
      g.op("MatMul", [x, g.constant(`${name}.weight_t`, [inF, outF], w)]),
      g.constant(`${name}.bias_t`, [outF], b),
    ]);
  };
  const layerNorm = (x: string, name: string): string =>
    g.op("LayerNormalization", [
      x,
      g.constant(`${name}.weight`, [h], weights.get(`${name}.weight`, [h])),
      g.constant(`${name}.bias`, [h], weights.get(`${name}.bias`, [h])),
    ], [attr.int("axis", -1), attr.float("epsilon", c.layerNormEps)]);
  const one = g.constant("const.one", [], Float32Array.of(1));
  const half = g.constant("const.half", [], Float32Array.of(0.5));
  const sqrt2 = g.constant("const.sqrt2", [], Float32Array.of(Math.SQRT2));
  const gelu = (x: string) =>
    g.op("Mul", [g.op("Mul", [x, g.op("Add", [g.op("Erf", [g.op("Div", [x, sqrt2])]), one])]), half]);

  // Embeddings: words, positions 0..T-1, token type 0.
  const words = g.constant(
    "embeddings.word_embeddings.weight",
    [c.vocabSize, h],
    weights.get("embeddings.word_embeddings.weight", [c.vocabSize, h]),
  );
  const positions = g.constant(
    "embeddings.position_embeddings.weight",
    [c.maxPositions, h],
    weights.get("embeddings.position_embeddings.weight", [c.maxPositions, h]),
  );
  const tokenType0 = weights.get("embeddings.token_type_embeddings.weight", [c.typeVocabSize, h]).slice(0, h);
  const tokens = g.op("Shape", ["input_ids"], [attr.int("start", 1), attr.int("end", 2)]);
  const positionRows = g.op("Slice", [positions, g.ints("const.zero", [0]), tokens, g.ints("const.axis0", [0])]);
  let x = g.op("Add", [g.op("Gather", [words, "input_ids"], [attr.int("axis", 0)]), positionRows]);
  x = layerNorm(g.op("Add", [x, g.constant("embeddings.token_type_0", [h], tokenType0)]), "embeddings.LayerNorm");

  const mask = g.op("Cast", ["attention_mask"], [attr.int("to", 1)]);
  const additive = g.op("Unsqueeze", [
    g.op("Mul", [g.op("Sub", [one, mask]), g.constant("const.masked", [], Float32Array.of(MASKED_SCORE))]),
    g.ints("const.axes12", [1, 2]),
  ]);
  const splitShape = g.ints("const.split_heads", [0, 0, heads, headSize]);
  const mergeShape = g.ints("const.merge_heads", [0, 0, h]);
  const heads4 = (y: string, perm: number[]) =>
    g.op("Transpose", [g.op("Reshape", [y, splitShape])], [attr.ints("perm", perm)]);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `encoder.layer.${i}`;
    const q = heads4(linear(x, `${p}.attention.self.query`, h, h, 1 / Math.sqrt(headSize)), [0, 2, 1, 3]);
    const k = heads4(linear(x, `${p}.attention.self.key`, h, h), [0, 2, 3, 1]);
    const v = heads4(linear(x, `${p}.attention.self.value`, h, h), [0, 2, 1, 3]);
    const probs = g.op("Softmax", [g.op("Add", [g.op("MatMul", [q, k]), additive])], [attr.int("axis", -1)]);
    const context = g.op("Reshape", [
      g.op("Transpose", [g.op("MatMul", [probs, v])], [attr.ints("perm", [0, 2, 1, 3])]),
      mergeShape,
    ]);
    const attended = layerNorm(
      g.op("Add", [linear(context, `${p}.attention.output.dense`, h, h), x]),
      `${p}.attention.output.LayerNorm`,
    );
    const hidden = gelu(linear(attended, `${p}.intermediate.dense`, h, inner));
    x = layerNorm(g.op("Add", [linear(hidden, `${p}.output.dense`, inner, h), attended]), `${p}.output.LayerNorm`);
  }

  let pooled: string;
  if (spec.pooling === "cls") {
    pooled = g.op("Gather", [x, g.constant("const.cls", [], BigInt64Array.of(0n))], [attr.int("axis", 1)]);
  } else {
    const m = g.op("Unsqueeze", [mask, g.ints("const.axis2", [2])]);
    const axis1 = g.ints("const.axis1", [1]);
    const sum = g.op("ReduceSum", [g.op("Mul", [x, m]), axis1], [attr.int("keepdims", 0)]);
    const count = g.op("ReduceSum", [m, axis1], [attr.int("keepdims", 0)]);
    pooled = g.op("Div", [sum, g.op("Max", [count, g.constant("const.tiny", [], Float32Array.of(1e-9))])]);
  }
  let out = h;
  if (spec.projection) {
    const projection = new WeightReader(stateDict, spec.projection.prefix);
    out = spec.projection.outFeatures;
    const w = transpose2d(projection.get("weight", [out, h]), out, h);
    pooled = g.op("Add", [
      g.op("MatMul", [pooled, g.constant("projection.weight_t", [h, out], w)]),
      g.constant("projection.bias", [out], projection.get("bias", [out])),
    ]);
    weights.problems.push(...projection.problems);
  }
  g.output(pooled, "features");
  weights.check(
    `bertTowerOnnxModel: the state dict does not hold a BERT (${c.numLayers} layers, hidden ${h}) under prefix ` +
      `"${spec.prefix}"${spec.projection ? ` with a projection under "${spec.projection.prefix}"` : ""}`,
    "Pass the tower's prefixes (textTowerSpec gives a SiameseRuCLIP's) and a config that matches the checkpoint.",
  );
  return encodeOnnxModel({
    name: "bert_text_tower",
    nodes: g.nodes,
    initializers: g.initializers,
    inputs: [
      { name: "input_ids", elemType: "int32", shape: ["batch", "tokens"] },
      { name: "attention_mask", elemType: "int32", shape: ["batch", "tokens"] },
    ],
    outputs: [{ name: "features", elemType: "float32", shape: ["batch", out] }],
  });
}

/** Options of `OnnxTextTower.create`. */
export interface OnnxTextTowerOptions {
  /** onnxruntime intra-op threads (default: every core). */
  threads?: number;
}

/**
 * A text tower of a SiameseRuCLIP as an onnxruntime session, from the model's current weights (a snapshot:
 * rebuild after the tower's weights change). Call `dispose()` when done.
 */
export class OnnxTextTower {
  private constructor(
    private readonly session: ort.InferenceSession,
    /** Size of each feature vector. */
    readonly numFeatures: number,
    readonly maxTokens: number,
  ) {}

  /** Builds the name or description tower of `model`. */
  static async create(
    model: SiameseRuCLIP,
    tower: TextTower,
    options: OnnxTextTowerOptions = {},
  ): Promise<OnnxTextTower> {
    const spec = textTowerSpec(model, tower);
    const prefixes = [spec.prefix, ...(spec.projection ? [spec.projection.prefix] : [])];
    const stateDict = new Map(
      [...(await model.stateDict())].filter(([name]) => prefixes.some((p) => name.startsWith(p))),
    );
    return OnnxTextTower.fromStateDict(stateDict, spec, options);
  }

  /** Builds a tower from a state dict holding it as `spec` says. */
  static async fromStateDict(
    stateDict: StateDict,
    spec: BertTowerSpec,
    options: OnnxTextTowerOptions = {},
  ): Promise<OnnxTextTower> {
    const bytes = bertTowerOnnxModel(stateDict, spec);
    const session = await createCpuSession(bytes, options.threads);
    return new OnnxTextTower(session, spec.projection?.outFeatures ?? spec.config.hiddenSize, spec.config.maxPositions);
  }

  /** Features [n, numFeatures] (row-major) of `n` texts given as token ids and masks, int32 [n, tokens]. */
  async run(ids: Int32Array, mask: Int32Array, n: number, tokens: number): Promise<Float32Array> {
    if (!Number.isInteger(n) || n < 0 || ids.length !== n * tokens || mask.length !== ids.length) {
      throw new Error(
        `OnnxTextTower.run: ${ids.length} ids and ${mask.length} mask values, expected n=${n} x ${tokens} tokens each`,
      );
    }
    if (tokens > this.maxTokens) {
      throw new Error(
        `OnnxTextTower.run: ${tokens} tokens but the model has ${this.maxTokens} positions; truncate the text`,
      );
    }
    if (n === 0) return new Float32Array(0);
    const feeds = {
      input_ids: new ort.Tensor("int32", ids, [n, tokens]),
      attention_mask: new ort.Tensor("int32", mask, [n, tokens]),
    };
    return await runFeatures(this.session, feeds);
  }

  /** Releases the onnxruntime session. */
  async dispose(): Promise<void> {
    await this.session.release();
  }
}
