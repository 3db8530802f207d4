// Serializes a TflModel with the flatbuffers runtime. Every option field is written explicitly
// (a reader that treats an absent SOFTMAX beta as 0 gets uniform output), and buffer payloads are
// 16-byte aligned as the schema's force_align demands (XNNPACK reads weights with SIMD loads).
import { Builder, type Offset } from "flatbuffers";
import { FILE_IDENTIFIER, OPTIONS, PLACEHOLDER_FOR_GREATER_OP_CODES, SLOT, type OptionValues, type OptionTableName, type TflBufferToWrite, type TflModel, type TflOperator, type TflTensor } from "./schema.js";

function ints(b: Builder, xs: readonly number[]): Offset {
  b.startVector(4, xs.length, 4);
  for (let i = xs.length - 1; i >= 0; i--) b.addInt32(xs[i]!);
  return b.endVector();
}

function floats(b: Builder, xs: readonly number[]): Offset {
  b.startVector(4, xs.length, 4);
  for (let i = xs.length - 1; i >= 0; i--) b.addFloat32(xs[i]!);
  return b.endVector();
}

function longs(b: Builder, xs: readonly number[]): Offset {
  b.startVector(8, xs.length, 8);
  for (let i = xs.length - 1; i >= 0; i--) b.addInt64(BigInt(xs[i]!));
  return b.endVector();
}

function tables(b: Builder, offsets: readonly Offset[]): Offset {
  b.startVector(4, offsets.length, 4);
  for (let i = offsets.length - 1; i >= 0; i--) b.addOffset(offsets[i]!);
  return b.endVector();
}

function optionsTable(b: Builder, name: OptionTableName, values: OptionValues): Offset {
  const fields = OPTIONS[name].fields as readonly (readonly [string, string, unknown?])[];
  for (const k of Object.keys(values)) if (!fields.some(([f]) => f === k)) throw new Error(`internal: ${name} has no field ${k}`);
  const vectors = new Map<string, Offset>();
  for (const [f, type] of fields) if (type === "i32[]" && values[f] !== undefined) vectors.set(f, ints(b, values[f] as number[]));
  b.startObject(fields.length);
  fields.forEach(([f, type, dflt], slot) => {
    // explicit values for every field; a field the emitter leaves out takes the schema default (or 0)
    const v = values[f] ?? (dflt as number | boolean | undefined) ?? 0;
    if (type === "i32[]") {
      if (vectors.has(f)) b.addFieldOffset(slot, vectors.get(f)!, 0);
    } else if (type === "f32") b.addFieldFloat32(slot, v as number, null);
    else if (type === "i32") b.addFieldInt32(slot, v as number, null);
    else b.addFieldInt8(slot, typeof v === "boolean" ? (v ? 1 : 0) : (v as number), null);
  });
  return b.endObject();
}

function tensor(b: Builder, t: TflTensor): Offset {
  const S = SLOT.Tensor;
  const shape = ints(b, t.shape), name = b.createString(t.name);
  let quant: Offset | undefined;
  if (t.quantization) {
    const q = t.quantization, Q = SLOT.QuantizationParameters;
    const scale = floats(b, q.scale), zp = longs(b, q.zeroPoint);
    b.startObject(7);
    b.addFieldOffset(Q.scale, scale, 0);
    b.addFieldOffset(Q.zero_point, zp, 0);
    b.addFieldInt32(Q.quantized_dimension, q.quantizedDimension, null);
    quant = b.endObject();
  }
  b.startObject(9);
  b.addFieldOffset(S.shape, shape, 0);
  b.addFieldInt8(S.type, t.type, null);
  b.addFieldInt32(S.buffer, t.buffer, null);
  b.addFieldOffset(S.name, name, 0);
  if (quant !== undefined) b.addFieldOffset(S.quantization, quant, 0);
  // a scalar needs has_rank, or readers take the empty shape for "rank unknown"
  if (t.shape.length === 0) b.addFieldInt8(S.has_rank, 1, null);
  return b.endObject();
}

function operator(b: Builder, op: TflOperator): Offset {
  const S = SLOT.Operator;
  const inputs = ints(b, op.inputs), outputs = ints(b, op.outputs);
  const opts = op.options ? optionsTable(b, op.options.table, op.options.values) : undefined;
  b.startObject(5);
  b.addFieldInt32(S.opcode_index, op.opcodeIndex, null);
  b.addFieldOffset(S.inputs, inputs, 0);
  b.addFieldOffset(S.outputs, outputs, 0);
  if (op.options) {
    b.addFieldInt8(S.builtin_options_type, OPTIONS[op.options.table].union, null);
    b.addFieldOffset(S.builtin_options, opts!, 0);
  }
  return b.endObject();
}

/** The builder's free space, which flatbuffers keeps private: a reserved vector is space taken without copying into it. */
type BuilderInternals = { space: number; bb: { setPosition(p: number): void } };

/** Serializes buffer `buf`; a reserved one's payload position (from the end) goes to `holes`. */
function buffer(b: Builder, buf: TflBufferToWrite, index: number, holes: Map<number, number>): Offset {
  const S = SLOT.Buffer;
  let data: Offset | undefined;
  if (buf.kind === "inline") {
    b.prep(16, buf.data.length); // the payload (after the length word) lands 16-byte aligned
    data = b.createByteVector(buf.data);
  } else if (buf.kind === "reserved") {
    // what createByteVector does, without the copy: the builder's pages under the payload are never touched
    b.prep(16, buf.size);
    b.startVector(1, buf.size, 1);
    const raw = b as unknown as BuilderInternals;
    raw.bb.setPosition((raw.space -= buf.size));
    holes.set(index, b.offset());
    data = b.endVector();
  }
  b.startObject(3);
  if (data !== undefined) b.addFieldOffset(S.data, data, 0);
  if (buf.kind === "appended") {
    b.addFieldInt64(S.offset, BigInt(buf.offset), null);
    b.addFieldInt64(S.size, BigInt(buf.size), null);
  }
  return b.endObject();
}

/**
 * The flatbuffer bytes of a model; `sizeHint` pre-sizes the builder (inline weights included).
 * `holes` receives, per reserved buffer index, where its payload starts in the returned bytes
 * (left zero for the caller to fill or to write around).
 */
export function serializeModel(m: TflModel<TflBufferToWrite>, sizeHint = 1 << 16, holes = new Map<number, number>()): Uint8Array {
  const b = new Builder(Math.min(Math.max(sizeHint, 1024), 2 ** 31 - 1));
  const codes = m.operatorCodes.map((c) => {
    const S = SLOT.OperatorCode;
    b.startObject(4);
    b.addFieldInt8(S.deprecated_builtin_code, Math.min(c.builtinCode, PLACEHOLDER_FOR_GREATER_OP_CODES), null);
    b.addFieldInt32(S.version, c.version, null);
    b.addFieldInt32(S.builtin_code, c.builtinCode, null);
    return b.endObject();
  });
  const subgraphs = m.subgraphs.map((g) => {
    const S = SLOT.SubGraph;
    const ts = tables(b, g.tensors.map((t) => tensor(b, t)));
    const ins = ints(b, g.inputs), outs = ints(b, g.outputs);
    const ops = tables(b, g.operators.map((o) => operator(b, o)));
    const name = b.createString(g.name);
    b.startObject(5);
    b.addFieldOffset(S.tensors, ts, 0);
    b.addFieldOffset(S.inputs, ins, 0);
    b.addFieldOffset(S.outputs, outs, 0);
    b.addFieldOffset(S.operators, ops, 0);
    b.addFieldOffset(S.name, name, 0);
    return b.endObject();
  });
  // buffers last written = nearest the front; order does not matter to readers
  const fromEnd = new Map<number, number>();
  const buffers = m.buffers.map((x, i) => buffer(b, x, i, fromEnd));
  const metadata = m.metadata.map((x) => {
    const name = b.createString(x.name);
    b.startObject(2);
    b.addFieldOffset(SLOT.Metadata.name, name, 0);
    b.addFieldInt32(SLOT.Metadata.buffer, x.buffer, null);
    return b.endObject();
  });
  const signatures = m.signatures.map((s) => {
    const maps = (xs: { name: string; tensor: number }[]) =>
      tables(b, xs.map((x) => {
        const name = b.createString(x.name);
        b.startObject(2);
        b.addFieldOffset(SLOT.TensorMap.name, name, 0);
        b.addFieldInt32(SLOT.TensorMap.tensor_index, x.tensor, null);
        return b.endObject();
      }));
    const ins = maps(s.inputs), outs = maps(s.outputs), key = b.createString(s.key);
    const S = SLOT.SignatureDef;
    b.startObject(5);
    b.addFieldOffset(S.inputs, ins, 0);
    b.addFieldOffset(S.outputs, outs, 0);
    b.addFieldOffset(S.signature_key, key, 0);
    b.addFieldInt32(S.subgraph_index, 0, null);
    return b.endObject();
  });
  const S = SLOT.Model;
  const codesV = tables(b, codes), subgraphsV = tables(b, subgraphs), buffersV = tables(b, buffers);
  const metadataV = tables(b, metadata), signaturesV = tables(b, signatures), description = b.createString(m.description);
  b.startObject(8);
  b.addFieldInt32(S.version, m.version, null);
  b.addFieldOffset(S.operator_codes, codesV, 0);
  b.addFieldOffset(S.subgraphs, subgraphsV, 0);
  b.addFieldOffset(S.description, description, 0);
  b.addFieldOffset(S.buffers, buffersV, 0);
  b.addFieldOffset(S.metadata, metadataV, 0);
  b.addFieldOffset(S.signature_defs, signaturesV, 0);
  b.finish(b.endObject(), FILE_IDENTIFIER);
  const bytes = b.asUint8Array();
  for (const [i, f] of fromEnd) holes.set(i, bytes.length - f);
  return bytes;
}
