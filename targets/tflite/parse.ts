// Parses a .tflite file into the plain TflModel of schema.ts through the checked flatbuffer
// reader. Only the flatbuffer is read into memory (a prefix of the file, grown on demand); weights
// appended after it stay on disk and are read when a constant is loaded.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { fail } from "../../src/diagnostics.js";
import { inBlockScope } from "../../src/model/params.js";
import { FbReader, FbTable, FlatbufferError, NeedMoreBytes } from "./flatbuffer.js";
import { FILE_IDENTIFIER, OP_NAME, OPTION_TABLE_BY_UNION, OPTIONS, SLOT, type OptionTableName, type OptionValues, type TflBuffer, type TflModel, type TflOperator, type TflTensor } from "./schema.js";

/** A flatbuffer's offsets are 32-bit: it cannot be longer than this. */
const MAX_FLATBUFFER = 2 ** 31 - 1;
const FIRST_READ = 16 * 2 ** 20;

export interface ParsedTflite {
  model: TflModel;
  fileSize: number;
  /** file descriptor for appended buffers; close() releases it */
  fd: number;
  close(): void;
}

function readOptions(op: FbTable, where: string): Pick<TflOperator, "options" | "unknownOptions"> {
  const type = op.u8(SLOT.Operator.builtin_options_type, "builtin_options_type");
  if (type === 0) return {};
  const table = OPTION_TABLE_BY_UNION[type];
  // an options table ditc does not know belongs to an op it does not read either; the op check names it
  if (!table) return { unknownOptions: type };
  const t = op.table(SLOT.Operator.builtin_options, "builtin_options", `${where} ${table}`);
  const values: OptionValues = {};
  OPTIONS[table].fields.forEach((field, slot) => {
    const [name, type, dflt] = field as readonly [string, string, (number | boolean)?];
    if (!t) {
      if (dflt !== undefined) values[name] = dflt;
      return;
    }
    if (type === "i32[]") {
      const v = t.ints(slot, name);
      if (v) values[name] = v;
    } else if (type === "f32") values[name] = t.f32(slot, name, (dflt as number) ?? 0);
    else if (type === "i32") values[name] = t.i32(slot, name, (dflt as number) ?? 0);
    else if (type === "bool") values[name] = t.bool(slot, name, (dflt as boolean) ?? false);
    else values[name] = t.i8(slot, name, (dflt as number) ?? 0);
  });
  return { options: { table: table as OptionTableName, values } };
}

function readModel(r: FbReader, fileSize: number): TflModel {
  if (r.identifier() !== FILE_IDENTIFIER) throw new FlatbufferError("file identifier", `is "${r.identifier().replace(/[^\x20-\x7e]/g, "?")}", a TFLite model has "${FILE_IDENTIFIER}"`);
  const m = r.root("Model");
  const M = SLOT.Model;
  const operatorCodes = m.tables(M.operator_codes, "operator_codes", (i) => `operator_codes[${i}]`).map((c) => {
    const S = SLOT.OperatorCode;
    // the runtime reads max(builtin_code, deprecated_builtin_code) (the 127 rule)
    return { builtinCode: Math.max(c.i32(S.builtin_code, "builtin_code"), c.i8(S.deprecated_builtin_code, "deprecated_builtin_code")), version: c.i32(S.version, "version", 1), custom: c.has(S.custom_code) };
  });
  const buffers: TflBuffer[] = m.tables(M.buffers, "buffers", (i) => `buffers[${i}]`).map((b, i) => {
    const S = SLOT.Buffer;
    const offset = b.u64(S.offset, "offset"), size = b.u64(S.size, "size");
    if (offset > 1) {
      if (offset + size > fileSize) throw new FlatbufferError(`buffers[${i}]`, `points to bytes [${offset}, ${offset + size}) past the end of the file (${fileSize} bytes)`);
      return { kind: "appended", offset, size };
    }
    const v = b.vector(S.data, "data", 1);
    return v && v.length ? { kind: "inline", data: r.bytes.subarray(v.start, v.start + v.length) } : { kind: "empty" };
  });
  const subgraphs = m.tables(M.subgraphs, "subgraphs", (i) => `subgraphs[${i}]`).map((g, gi) => {
    const S = SLOT.SubGraph;
    const tensors: TflTensor[] = g.tables(S.tensors, "tensors", (i) => `subgraphs[${gi}].tensors[${i}]`).map((t) => {
      const T = SLOT.Tensor;
      const q = t.table(T.quantization, "quantization");
      const scale = q?.floats(SLOT.QuantizationParameters.scale, "scale") ?? [];
      return {
        shape: t.ints(T.shape, "shape") ?? [],
        type: t.i8(T.type, "type"),
        buffer: t.u32(T.buffer, "buffer"),
        name: t.str(T.name, "name") ?? "",
        ...(scale.length ? { quantization: { scale, zeroPoint: q!.longs(SLOT.QuantizationParameters.zero_point, "zero_point") ?? [], quantizedDimension: q!.i32(SLOT.QuantizationParameters.quantized_dimension, "quantized_dimension") } } : {}),
        ...(t.has(T.sparsity) ? { sparse: true } : {}),
      };
    });
    const operators = g.tables(S.operators, "operators", (i) => `subgraphs[${gi}].operators[${i}]`).map((op, i) => {
      const O = SLOT.Operator, where = `operator ${i}`;
      if (op.has(O.builtin_options_2_type) && op.u8(O.builtin_options_2_type, "builtin_options_2_type") !== 0) throw new FlatbufferError(where, "uses builtin_options_2 (StableHLO ops), which ditc does not read");
      return { opcodeIndex: op.u32(O.opcode_index, "opcode_index"), inputs: op.ints(O.inputs, "inputs") ?? [], outputs: op.ints(O.outputs, "outputs") ?? [], ...readOptions(op, where) };
    });
    return { tensors, inputs: g.ints(S.inputs, "inputs") ?? [], outputs: g.ints(S.outputs, "outputs") ?? [], operators, name: g.str(S.name, "name") ?? "" };
  });
  const signatures = m.tables(M.signature_defs, "signature_defs", (i) => `signature_defs[${i}]`).map((s) => {
    const S = SLOT.SignatureDef;
    const maps = (slot: number, name: string) =>
      s.tables(slot, name, (i) => `${s.what}.${name}[${i}]`).map((x) => ({ name: x.str(SLOT.TensorMap.name, "name") ?? "", tensor: x.u32(SLOT.TensorMap.tensor_index, "tensor_index") }));
    return { key: s.str(S.signature_key, "signature_key") ?? "", inputs: maps(S.inputs, "inputs"), outputs: maps(S.outputs, "outputs") };
  });
  const metadata = m.tables(M.metadata, "metadata", (i) => `metadata[${i}]`).map((x) => ({ name: x.str(SLOT.Metadata.name, "name") ?? "", buffer: x.u32(SLOT.Metadata.buffer, "buffer") }));
  return { version: m.u32(M.version, "version"), operatorCodes, subgraphs, description: m.str(M.description, "description") ?? "", buffers, metadata, signatures };
}

/** Reads and checks the flatbuffer of a .tflite file. */
export function parseTflite(path: string): ParsedTflite {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw fail("fileUnreadable", { file: path, problem: code === "ENOENT" ? "it does not exist" : code === "EISDIR" ? "it is a folder" : (e as Error).message });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw fail("fileUnreadable", { file: path, problem: "it is not a file" });
    const fileSize = st.size;
    const limit = Math.min(fileSize, MAX_FLATBUFFER);
    if (fileSize < 8) throw fail("modelInvalid", { file: path, where: "file", problem: `is ${fileSize} bytes, too short for a flatbuffer` });
    for (let want = Math.min(limit, FIRST_READ); ; ) {
      const bytes = Buffer.alloc(want);
      let got = 0;
      while (got < want) {
        const n = readSync(fd, bytes, got, want - got, got);
        if (n === 0) break;
        got += n;
      }
      try {
        const model = readModel(new FbReader(bytes.subarray(0, got), limit), fileSize);
        const f = fd;
        return { model, fileSize, fd: f, close: () => closeSync(f) };
      } catch (e) {
        if (e instanceof NeedMoreBytes && want < limit) {
          want = Math.min(limit, Math.max(e.atLeast, 2 * want));
          continue;
        }
        if (e instanceof FlatbufferError) throw fail("modelInvalid", { file: path, where: e.where, problem: e.problem });
        throw e;
      }
    }
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** Operator histogram of subgraph 0 and the TRANSPOSEs whose output lies inside a DiT block (by tensor name scope). */
export function operatorCounts(model: Pick<TflModel, "subgraphs" | "operatorCodes">): { ops: Record<string, number>; transposes: { total: number; inBlocks: number } } {
  const g = model.subgraphs[0];
  const ops: Record<string, number> = {};
  let total = 0, inBlocks = 0;
  for (const op of g?.operators ?? []) {
    const code = model.operatorCodes[op.opcodeIndex]?.builtinCode ?? -1;
    const name = OP_NAME[code] ?? `builtin_${code}`;
    ops[name] = (ops[name] ?? 0) + 1;
    if (name === "TRANSPOSE") {
      total++;
      if (inBlockScope(g!.tensors[op.outputs[0] ?? -1]?.name ?? "")) inBlocks++;
    }
  }
  return { ops, transposes: { total, inBlocks } };
}
