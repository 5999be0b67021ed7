/**
 * A minimal ONNX model writer: the few protobuf messages of onnx/onnx.proto needed to describe an
 * inference graph with float32 / int64 initializers, encoded by hand in the protobuf wire format
 * (varints and length-delimited fields; proto2, repeated scalars unpacked as the .proto declares).
 *
 *   const bytes = encodeOnnxModel({ name: "g", nodes, initializers, inputs, outputs });
 *   const session = await ort.InferenceSession.create(bytes);
 *
 * Field numbers (onnx.proto): ModelProto ir_version 1, graph 7, opset_import 8, producer_name 2;
 * OperatorSetIdProto domain 1, version 2; GraphProto node 1, name 2, initializer 5, input 11, output 12;
 * NodeProto input 1, output 2, name 3, op_type 4, attribute 5; AttributeProto name 1, f 2, i 3, s 4,
 * ints 8, type 20; TensorProto dims 1, data_type 2, name 8, raw_data 9; ValueInfoProto name 1, type 2;
 * TypeProto tensor_type 1; TypeProto.Tensor elem_type 1, shape 2; TensorShapeProto dim 1;
 * TensorShapeProto.Dimension dim_value 1, dim_param 2.
 */

/** Element types this writer supports, with their TensorProto.DataType codes. */
export type OnnxElementType = "float32" | "int32" | "int64";

const DATA_TYPE: Record<OnnxElementType, number> = { float32: 1, int32: 6, int64: 7 };

/** AttributeProto.AttributeType codes. */
const ATTRIBUTE_TYPE = { FLOAT: 1, INT: 2, STRING: 3, INTS: 7 } as const;

/** A node attribute (AttributeProto) of one of the supported kinds. */
export type OnnxAttribute =
  | { name: string; type: "INT"; value: number }
  | { name: string; type: "INTS"; value: readonly number[] }
  | { name: string; type: "FLOAT"; value: number }
  | { name: string; type: "STRING"; value: string };

/** One operator call (NodeProto) of the default ONNX domain. */
export interface OnnxNode {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name?: string;
  attributes?: readonly OnnxAttribute[];
}

/** A constant tensor (TensorProto with raw_data), e.g. a weight. */
export interface OnnxTensor {
  name: string;
  dims: readonly number[];
  data: Float32Array | BigInt64Array;
}

/** A graph input or output (ValueInfoProto): a tensor type; a string dimension is symbolic (dim_param). */
export interface OnnxValueInfo {
  name: string;
  elemType: OnnxElementType;
  shape: readonly (number | string)[];
}

/** A graph (GraphProto). */
export interface OnnxGraph {
  name: string;
  nodes: readonly OnnxNode[];
  initializers: readonly OnnxTensor[];
  inputs: readonly OnnxValueInfo[];
  outputs: readonly OnnxValueInfo[];
}

/** Options of `encodeOnnxModel`. */
export interface OnnxModelOptions {
  /** IR version (default 8). */
  irVersion?: number;
  /** Opset of the default domain (default 17). */
  opsetVersion?: number;
  /** producer_name (default "clip-siamese-ts"). */
  producerName?: string;
}

const WIRE_VARINT = 0;
const WIRE_FIXED32 = 5;
const WIRE_LENGTH = 2;

/**
 * A protobuf message under construction: a list of byte chunks and their total length, so that
 * nested messages and large raw tensors are concatenated once, at the end.
 */
class ProtoMessage {
  private readonly chunks: Uint8Array[] = [];
  length = 0;

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }

  private tag(field: number, wire: number): void {
    this.varint(BigInt(field * 8 + wire));
  }

  private varint(value: bigint): void {
    // Negative int64 values are their 64-bit two's complement (10 bytes), as protobuf encodes them.
    let v = value < 0n ? value + (1n << 64n) : value;
    const out: number[] = [];
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v > 0n) byte |= 0x80;
      out.push(byte);
    } while (v > 0n);
    this.push(Uint8Array.from(out));
  }

  /** An int32/int64/enum field (varint). */
  int(field: number, value: number): this {
    if (!Number.isSafeInteger(value)) throw new Error(`ONNX writer: field ${field} needs an integer, got ${value}`);
    this.tag(field, WIRE_VARINT);
    this.varint(BigInt(value));
    return this;
  }

  /** A float field (fixed32, little-endian). */
  float(field: number, value: number): this {
    this.tag(field, WIRE_FIXED32);
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    this.push(bytes);
    return this;
  }

  /** A bytes field. */
  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WIRE_LENGTH);
    this.varint(BigInt(value.length));
    this.push(value);
    return this;
  }

  /** A string field (UTF-8). */
  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  /** An embedded message field. */
  message(field: number, value: ProtoMessage): this {
    this.tag(field, WIRE_LENGTH);
    this.varint(BigInt(value.length));
    for (const chunk of value.chunks) this.push(chunk);
    return this;
  }

  /** The encoded message. */
  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let offset = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }
}

function encodeAttribute(attribute: OnnxAttribute): ProtoMessage {
  const m = new ProtoMessage().string(1, attribute.name);
  switch (attribute.type) {
    case "FLOAT":
      m.float(2, attribute.value);
      break;
    case "INT":
      m.int(3, attribute.value);
      break;
    case "STRING":
      m.string(4, attribute.value);
      break;
    case "INTS":
      for (const v of attribute.value) m.int(8, v);
      break;
  }
  return m.int(20, ATTRIBUTE_TYPE[attribute.type]);
}

function encodeNode(node: OnnxNode): ProtoMessage {
  const m = new ProtoMessage();
  for (const input of node.inputs) m.string(1, input);
  for (const output of node.outputs) m.string(2, output);
  if (node.name) m.string(3, node.name);
  m.string(4, node.opType);
  for (const attribute of node.attributes ?? []) m.message(5, encodeAttribute(attribute));
  return m;
}

function encodeTensor(tensor: OnnxTensor): ProtoMessage {
  const count = tensor.dims.reduce((a, b) => a * b, 1);
  if (count !== tensor.data.length) {
    throw new Error(
      `ONNX writer: initializer "${tensor.name}" has dims [${tensor.dims}] (${count} values) but holds ${tensor.data.length}`,
    );
  }
  const m = new ProtoMessage();
  for (const d of tensor.dims) m.int(1, d);
  m.int(2, tensor.data instanceof Float32Array ? DATA_TYPE.float32 : DATA_TYPE.int64);
  m.string(8, tensor.name);
  // Typed arrays are little-endian on every platform Deno runs on, as raw_data requires.
  return m.bytes(9, new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength));
}

function encodeValueInfo(info: OnnxValueInfo): ProtoMessage {
  const shape = new ProtoMessage();
  for (const d of info.shape) {
    shape.message(1, typeof d === "string" ? new ProtoMessage().string(2, d) : new ProtoMessage().int(1, d));
  }
  const tensorType = new ProtoMessage().int(1, DATA_TYPE[info.elemType]).message(2, shape);
  return new ProtoMessage().string(1, info.name).message(2, new ProtoMessage().message(1, tensorType));
}

function encodeGraph(graph: OnnxGraph): ProtoMessage {
  const m = new ProtoMessage();
  for (const node of graph.nodes) m.message(1, encodeNode(node));
  m.string(2, graph.name);
  for (const tensor of graph.initializers) m.message(5, encodeTensor(tensor));
  for (const input of graph.inputs) m.message(11, encodeValueInfo(input));
  for (const output of graph.outputs) m.message(12, encodeValueInfo(output));
  return m;
}

/** Encodes a graph as a serialized ONNX ModelProto (the bytes of a .onnx file). */
export function encodeOnnxModel(graph: OnnxGraph, options: OnnxModelOptions = {}): Uint8Array {
  const opset = new ProtoMessage().string(1, "").int(2, options.opsetVersion ?? 17);
  return new ProtoMessage()
    .int(1, options.irVersion ?? 8)
    .string(2, options.producerName ?? "clip-siamese-ts")
    .message(7, encodeGraph(graph))
    .message(8, opset)
    .finish();
}

/** Shorthands for node attributes. */
export const attr = {
  int: (name: string, value: number): OnnxAttribute => ({ name, type: "INT", value }),
  ints: (name: string, value: readonly number[]): OnnxAttribute => ({ name, type: "INTS", value }),
  float: (name: string, value: number): OnnxAttribute => ({ name, type: "FLOAT", value }),
  string: (name: string, value: string): OnnxAttribute => ({ name, type: "STRING", value }),
};
