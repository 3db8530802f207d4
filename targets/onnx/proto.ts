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

/** Encoded as they are, without `fromObject`'s copy, as in targets/coreml/proto.ts (same bytes). */
export function encodeModel(m: OnnxModel): Uint8Array {
  return ModelProto.encode(m).finish();
}

const GraphProto = root.lookupType("onnx.GraphProto");
const TensorProto = root.lookupType("onnx.TensorProto");

/** An initializer whose raw_data is produced only when it is written, so weights stream to the file one at a time. */
export interface StreamedTensor {
  /** every field but rawData */
  tensor: OnnxTensor;
  rawBytes: number;
  raw: () => Uint8Array;
}

/** A length-delimited field's key and length (protobuf wire type 2). */
function delimited(field: number, length: number): Uint8Array {
  const out: number[] = [(field << 3) | 2];
  for (let v = length; ; v = Math.floor(v / 128)) {
    if (v < 128) {
      out.push(v);
      break;
    }
    out.push((v % 128) | 128);
  }
  return Uint8Array.from(out);
}

/**
 * Writes a model whose `streamed` initializers come before the graph's own, passing each `raw()`
 * to the file as it is produced instead of copying every weight into one encoded buffer (half a
 * gigabyte or more, and a second copy while protobufjs builds it). Protobuf readers take fields
 * in any order, so the graph goes after the model's other fields and each raw_data after its
 * tensor's other fields; the lengths come from `rawBytes`. Returns the bytes written.
 */
export function writeModel(write: (chunk: Uint8Array) => void, m: OnnxModel, streamed: readonly StreamedTensor[]): number {
  const { graph = {}, ...rest } = m;
  const { initializer = [], ...graphRest } = graph;
  const head = ModelProto.encode(rest).finish();
  const graphHead = GraphProto.encode(graphRest).finish();
  const INITIALIZER = 5, RAW_DATA = 9, GRAPH = 7;
  const parts = streamed.map((t) => {
    const fields = TensorProto.encode(t.tensor).finish();
    const rawKey = delimited(RAW_DATA, t.rawBytes);
    return { key: delimited(INITIALIZER, fields.length + rawKey.length + t.rawBytes), fields, rawKey, t };
  });
  const plain = initializer.map((t) => {
    const bytes = TensorProto.encode(t).finish();
    return [delimited(INITIALIZER, bytes.length), bytes];
  });
  let graphBytes = graphHead.length;
  for (const p of parts) graphBytes += p.key.length + p.fields.length + p.rawKey.length + p.t.rawBytes;
  for (const [k, b] of plain) graphBytes += k!.length + b!.length;
  let total = 0;
  const put = (b: Uint8Array) => {
    write(b);
    total += b.length;
  };
  put(head);
  put(delimited(GRAPH, graphBytes));
  put(graphHead);
  for (const p of parts) {
    put(p.key);
    put(p.fields);
    put(p.rawKey);
    const raw = p.t.raw();
    if (raw.length !== p.t.rawBytes) throw new Error(`internal: initializer ${p.t.tensor.name} produced ${raw.length} bytes, its type needs ${p.t.rawBytes}`);
    put(raw);
  }
  for (const [k, b] of plain) (put(k!), put(b!));
  return total;
}

/** Decodes with int64 fields as JS numbers (shapes and offsets here stay far below 2^53). */
export function decodeModel(bytes: Uint8Array): OnnxModel {
  return ModelProto.toObject(ModelProto.decode(bytes), { longs: Number, defaults: false, arrays: true }) as OnnxModel;
}
