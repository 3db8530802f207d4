// The subset of onnx.proto that ditc writes and reads, declared for protobufjs. Field numbers and
// enum values are the facts of onnx/onnx.in.proto (digest: docs/formats/onnx.md);
// the declarations are ours. One protobuf runtime (protobufjs) serves both the ONNX and the
// CoreML backends; weights never pass through it (they go to external data or raw bytes).
import protobuf from "protobufjs";

const f = (type: string, id: number, rule?: "repeated") => (rule ? { type, id, rule } : { type, id });

const root = protobuf.Root.fromJSON({
  nested: {
    onnx: {
      nested: {
        ModelProto: {
          fields: {
            irVersion: f("int64", 1), opsetImport: f("OperatorSetIdProto", 8, "repeated"), producerName: f("string", 2),
            producerVersion: f("string", 3), domain: f("string", 4), modelVersion: f("int64", 5), docString: f("string", 6),
            graph: f("GraphProto", 7), metadataProps: f("StringStringEntryProto", 14, "repeated"),
          },
        },
        OperatorSetIdProto: { fields: { domain: f("string", 1), version: f("int64", 2) } },
        StringStringEntryProto: { fields: { key: f("string", 1), value: f("string", 2) } },
        GraphProto: {
          fields: {
            node: f("NodeProto", 1, "repeated"), name: f("string", 2), initializer: f("TensorProto", 5, "repeated"),
            docString: f("string", 10), input: f("ValueInfoProto", 11, "repeated"), output: f("ValueInfoProto", 12, "repeated"),
            valueInfo: f("ValueInfoProto", 13, "repeated"),
          },
        },
        NodeProto: {
          fields: {
            input: f("string", 1, "repeated"), output: f("string", 2, "repeated"), name: f("string", 3), opType: f("string", 4),
            attribute: f("AttributeProto", 5, "repeated"), docString: f("string", 6), domain: f("string", 7),
          },
        },
        AttributeProto: {
          fields: {
            name: f("string", 1), type: f("int32", 20), f: f("float", 2), i: f("int64", 3), s: f("bytes", 4), t: f("TensorProto", 5),
            floats: f("float", 7, "repeated"), ints: f("int64", 8, "repeated"), strings: f("bytes", 9, "repeated"),
          },
        },
        ValueInfoProto: { fields: { name: f("string", 1), type: f("TypeProto", 2), docString: f("string", 3) } },
        TypeProto: { fields: { tensorType: f("TypeProtoTensor", 1) } },
        TypeProtoTensor: { fields: { elemType: f("int32", 1), shape: f("TensorShapeProto", 2) } },
        TensorShapeProto: { fields: { dim: f("Dimension", 1, "repeated") } },
        Dimension: { fields: { dimValue: f("int64", 1), dimParam: f("string", 2) } },
        TensorProto: {
          fields: {
            dims: f("int64", 1, "repeated"), dataType: f("int32", 2), floatData: f("float", 4, "repeated"), int32Data: f("int32", 5, "repeated"),
            int64Data: f("int64", 7, "repeated"), name: f("string", 8), rawData: f("bytes", 9), doubleData: f("double", 10, "repeated"),
            externalData: f("StringStringEntryProto", 13, "repeated"), dataLocation: f("int32", 14),
          },
        },
      },
    },
  },
});

export const ModelProto = root.lookupType("onnx.ModelProto");

/** TensorProto.DataType values used here. */
export const ONNX_DTYPE = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10, UINT4: 21 } as const;
/** AttributeProto.AttributeType values used here. */
export const ATTR = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;
export const DATA_LOCATION_EXTERNAL = 1;

export const IR_VERSION = 10;
export const OPSET = 21;

// Plain-object shapes of the decoded messages (protobufjs with longs as numbers).
export interface OnnxTensor {
  dims?: number[];
  dataType?: number;
  name?: string;
  rawData?: Uint8Array;
  floatData?: number[];
  int32Data?: number[];
  int64Data?: number[];
  externalData?: { key?: string; value?: string }[];
  dataLocation?: number;
}
export interface OnnxAttribute {
  name?: string;
  type?: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: OnnxTensor;
  floats?: number[];
  ints?: number[];
}
export interface OnnxNode {
  input?: string[];
  output?: string[];
  name?: string;
  opType?: string;
  domain?: string;
  attribute?: OnnxAttribute[];
}
export interface OnnxValueInfo {
  name?: string;
  type?: { tensorType?: { elemType?: number; shape?: { dim?: { dimValue?: number; dimParam?: string }[] } } };
}
export interface OnnxGraph {
  node?: OnnxNode[];
  name?: string;
  initializer?: OnnxTensor[];
  input?: OnnxValueInfo[];
  output?: OnnxValueInfo[];
}
export interface OnnxModel {
  irVersion?: number;
  opsetImport?: { domain?: string; version?: number }[];
  producerName?: string;
  producerVersion?: string;
  graph?: OnnxGraph;
  metadataProps?: { key?: string; value?: string }[];
}

export function encodeModel(m: OnnxModel): Uint8Array {
  return ModelProto.encode(ModelProto.fromObject(m)).finish();
}

/** Decodes with int64 fields as JS numbers (shapes and offsets here stay far below 2^53). */
export function decodeModel(bytes: Uint8Array): OnnxModel {
  return ModelProto.toObject(ModelProto.decode(bytes), { longs: Number, defaults: false, arrays: true }) as OnnxModel;
}
