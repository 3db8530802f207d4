// The CoreML reader: parses an .mlpackage (Manifest.json, model.mlmodel, weight.bin) into
// ditc's IR with the shared op table, for the reader-interpreter. Written from MIL's op
// definitions (docs/formats/coreml.md), not by inverting the emitter. Packages are untrusted: item
// paths may not leave the package, blob offsets and sizes are checked against weight.bin.
import { existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import { join, sep } from "node:path";
import { DitcError, fail } from "../../src/diagnostics.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import type { DType } from "../../src/ir/dtype.js";
import type { Graph, Value } from "../../src/ir/graph.js";
import { decodeF16 } from "../../src/kernels/fp16.js";
import { unpackU4 } from "../../src/io/encode.js";
import { floatTensor, numel, type Tensor } from "../../src/kernels/tensor.js";
import { BLOB_DTYPE, BlobReader } from "./blob.js";
import { decodeCoremlModel, MIL_DTYPE, type CoremlModel, type MilOperation, type MilTensorType, type MilValue } from "./proto.js";

const MAX_MODEL_BYTES = 2 ** 31 - 1;
const DTYPE_OF_MIL: Record<number, DType> = { [MIL_DTYPE.FLOAT32]: "f32", [MIL_DTYPE.FLOAT16]: "f16", [MIL_DTYPE.INT32]: "i32", [MIL_DTYPE.UINT8]: "u8", [MIL_DTYPE.UINT4]: "u4", [MIL_DTYPE.BOOL]: "bool" };
const BLOB_FOR: Partial<Record<DType, number>> = { f32: BLOB_DTYPE.Float32, f16: BLOB_DTYPE.Float16, u8: BLOB_DTYPE.UInt8, u4: BLOB_DTYPE.UInt4 };

interface ConstInfo {
  dtype: number;
  shape: number[];
  load: () => Tensor;
  /** decoded eagerly for small immediates: parameters are read while building */
  immediate?: (number | boolean | string)[];
}

class Reader {
  readonly b = new GraphBuilder();
  readonly values = new Map<string, Value>();
  readonly consts = new Map<string, ConstInfo>();
  readonly blobs = new Map<string, BlobReader>();
  constructor(readonly path: string, readonly weightsDir: string | undefined) {}

  bad(where: string, problem: string): DitcError {
    return fail("modelInvalid", { file: this.path, where, problem });
  }

  /** The reader of one weight file; names are "@model_path/weights/weight[_N].bin" only. */
  blobReader(fileName: string | undefined, where: string): BlobReader {
    // coremltools writes weight.bin (weight_N.bin past 2 GiB); ditc names files by content (weight-<hex>.bin)
    const m = /^@model_path\/weights\/(weight(?:_\d+|-[0-9a-f]{16})?\.bin)$/.exec(fileName ?? "");
    if (!m) throw this.bad(where, `blob file ${JSON.stringify(fileName)} is not @model_path/weights/weight[_N|-HASH].bin`);
    let br = this.blobs.get(m[1]!);
    if (!br) {
      const file = this.weightsDir ? join(this.weightsDir, m[1]!) : undefined;
      if (!file || !existsSync(file)) throw this.bad(where, `references ${m[1]}, which the package does not contain`);
      br = new BlobReader(file, (p) => this.bad(`weights/${m[1]}`, p));
      this.blobs.set(m[1]!, br);
    }
    return br;
  }

  close(): void {
    for (const b of this.blobs.values()) b.close();
  }

  typeOf(t: MilTensorType | undefined, where: string): { dtype: number; shape: number[] } {
    const dims = (t?.dimensions ?? []).map((d) => Number(d.constant?.size));
    if (!t || dims.some((d) => !Number.isSafeInteger(d) || d < 0) || dims.length !== Number(t.rank ?? dims.length)) throw this.bad(where, "has a tensor type without static dimensions");
    return { dtype: t.dataType ?? 0, shape: dims };
  }

  constOf(v: MilValue | undefined, where: string): ConstInfo {
    const { dtype, shape } = this.typeOf(v?.type?.tensorType, where);
    const n = numel(shape);
    const irType = DTYPE_OF_MIL[dtype];
    if (v?.blobFileValue) {
      const br = this.blobReader(v.blobFileValue.fileName, where);
      const rec = br.record(Number(v.blobFileValue.offset ?? 0));
      const want = irType ? BLOB_FOR[irType] : undefined;
      if (want === undefined || rec.dtype !== want) throw this.bad(where, `blob dtype ${rec.dtype} does not match the value's type ${dtype}`);
      const need = irType === "u4" ? Math.ceil(n / 2) : n * (irType === "f32" ? 4 : irType === "f16" ? 2 : 1);
      if (rec.size !== need) throw this.bad(where, `blob holds ${rec.size} bytes, shape (${shape.join(", ")}) needs ${need}`);
      return { dtype, shape, load: () => decodeBytes(br.data(rec), irType!, shape) };
    }
    const t = v?.immediateValue?.tensor;
    if (!t) throw this.bad(where, "has neither an immediate nor a blob value");
    let vals: (number | boolean | string)[];
    if (t.floats) vals = t.floats.values ?? [];
    else if (t.ints) vals = t.ints.values ?? [];
    else if (t.bools) vals = t.bools.values ?? [];
    else if (t.strings) vals = t.strings.values ?? [];
    else if (t.longInts) vals = (t.longInts.values ?? []).map(Number);
    else if (t.bytes) {
      const raw = t.bytes.values ?? new Uint8Array();
      const bytes = new Uint8Array(raw); // copy: aligned for typed-array views
      if (dtype === MIL_DTYPE.FLOAT16) vals = Array.from(decodeF16(new Uint16Array(bytes.buffer, 0, bytes.length >> 1)));
      else if (dtype === MIL_DTYPE.UINT32) vals = Array.from(new Uint32Array(bytes.buffer, 0, bytes.length >> 2));
      else vals = Array.from(bytes);
    } else vals = [];
    if (vals.length !== Math.max(n, shape.length ? n : 1)) throw this.bad(where, `holds ${vals.length} values, its type (${shape.join(", ")}) needs ${n}`);
    const data = vals;
    return {
      dtype, shape, immediate: data,
      load: () =>
        irType === "f32" || irType === "f16" ? floatTensor(shape, Float32Array.from(data as number[]), irType)
          : irType === "i32" ? { dtype: "i32", shape, data: Int32Array.from(data as number[]) }
            : { dtype: irType ?? "u8", shape, data: Uint8Array.from(data as number[]) },
    };
  }

  value(name: string, where: string): Value {
    const v = this.values.get(name);
    if (v) return v;
    const c = this.consts.get(name);
    if (c) {
      const dt = DTYPE_OF_MIL[c.dtype];
      if (!dt) throw this.bad(where, `reads constant "${name}" of a type ditc cannot compute with (${c.dtype})`);
      const out = this.b.constant({ type: { dtype: dt, shape: c.shape }, source: name, load: c.load });
      this.values.set(name, out);
      return out;
    }
    throw this.bad(where, `reads "${name}", which no input, const or earlier operation defines`);
  }
}

function decodeBytes(bytes: Uint8Array, dtype: DType, shape: number[]): Tensor {
  const n = numel(shape);
  if (dtype === "u4") return { dtype, shape, data: unpackU4(bytes, n) };
  const buf = bytes.byteOffset % 4 === 0 ? bytes : new Uint8Array(bytes);
  if (dtype === "f32") return floatTensor(shape, new Float32Array(buf.buffer, buf.byteOffset, n).slice());
  if (dtype === "f16") return floatTensor(shape, decodeF16(new Uint16Array(buf.buffer, buf.byteOffset, n)), "f16");
  return { dtype, shape, data: buf.slice(0, n) };
}

type OpReader = (op: MilOperation, r: Reader, where: string) => Value[];

const arg = (op: MilOperation, key: string) => op.inputs?.[key]?.arguments?.map((a) => a.name ?? "") ?? [];
const input = (op: MilOperation, r: Reader, key: string, where: string): Value => {
  const names = arg(op, key);
  if (names.length !== 1) throw r.bad(where, `needs exactly one "${key}" input`);
  return r.value(names[0]!, where);
};
const optional = (op: MilOperation, r: Reader, key: string, where: string): Value | undefined => (arg(op, key).length ? input(op, r, key, where) : undefined);
/** The immediate contents of a constant parameter input. */
const param = (op: MilOperation, r: Reader, key: string, where: string): (number | boolean | string)[] | undefined => {
  const names = arg(op, key);
  if (!names.length) return undefined;
  const c = r.consts.get(names[0]!);
  if (!c?.immediate) throw r.bad(where, `parameter "${key}" must be an immediate constant`);
  return c.immediate;
};
const ints = (op: MilOperation, r: Reader, key: string, where: string, dflt?: number[]): number[] => {
  const p = param(op, r, key, where);
  if (p === undefined) {
    if (dflt === undefined) throw r.bad(where, `needs parameter "${key}"`);
    return dflt;
  }
  return p.map(Number);
};
const bool = (op: MilOperation, r: Reader, key: string, where: string) => Boolean(param(op, r, key, where)?.[0] ?? false);
const str = (op: MilOperation, r: Reader, key: string, where: string, dflt: string) => String(param(op, r, key, where)?.[0] ?? dflt);

const unary = (kind: "sigmoid" | "tanh" | "exp" | "sqrt" | "sin" | "cos" | "silu"): OpReader => (op, r, w) => [r.b.op(kind, [input(op, r, "x", w)], {})];
const binary = (kind: "add" | "sub" | "mul" | "div" | "maximum" | "pow"): OpReader => (op, r, w) => [r.b.op(kind, [input(op, r, "x", w), input(op, r, "y", w)], {})];

const READ_MIL: Record<string, OpReader> = {
  add: binary("add"), sub: binary("sub"), mul: binary("mul"), real_div: binary("div"), maximum: binary("maximum"), pow: binary("pow"),
  sigmoid: unary("sigmoid"), tanh: unary("tanh"), exp: unary("exp"), sqrt: unary("sqrt"), sin: unary("sin"), cos: unary("cos"), silu: unary("silu"),
  gelu: (op, r, w) => {
    const mode = str(op, r, "mode", w, "EXACT");
    if (mode !== "TANH_APPROXIMATION") throw r.bad(w, `gelu mode "${mode}" is not supported (ditc's kernels have TANH_APPROXIMATION)`);
    return [r.b.op("gelu_tanh", [input(op, r, "x", w)], {})];
  },
  rsqrt: (op, r, w) => {
    const x = input(op, r, "x", w), eps = Number(param(op, r, "epsilon", w)?.[0] ?? 1e-12);
    const shifted = eps ? r.b.op("add", [x, r.b.tensorConstant("epsilon", floatTensor([1], Float32Array.of(eps), x.type.dtype as "f32" | "f16"))], {}) : x;
    return [r.b.op("rsqrt", [shifted], {})];
  },
  matmul: (op, r, w) => [r.b.op("matmul", [input(op, r, "x", w), input(op, r, "y", w)], { transposeA: bool(op, r, "transpose_x", w), transposeB: bool(op, r, "transpose_y", w) })],
  linear: (op, r, w) => {
    const bias = optional(op, r, "bias", w);
    return [r.b.op("linear", bias ? [input(op, r, "x", w), input(op, r, "weight", w), bias] : [input(op, r, "x", w), input(op, r, "weight", w)], {})];
  },
  conv: (op, r, w) => {
    const padType = str(op, r, "pad_type", w, "valid");
    if (padType !== "custom" && padType !== "valid") throw r.bad(w, `conv pad_type "${padType}" is not supported (custom, valid)`);
    if (ints(op, r, "dilations", w, [1, 1]).some((d) => d !== 1)) throw r.bad(w, "dilated conv is not supported");
    const [t, b, l, rr] = padType === "custom" ? ints(op, r, "pad", w, [0, 0, 0, 0]) : [0, 0, 0, 0];
    const s = ints(op, r, "strides", w, [1, 1]);
    const bias = optional(op, r, "bias", w);
    const ins = [input(op, r, "x", w), input(op, r, "weight", w), ...(bias ? [bias] : [])];
    return [r.b.op("conv2d", ins, { stride: [s[0]!, s[1]!], pads: [t!, l!, b!, rr!], groups: ints(op, r, "groups", w, [1])[0]!, layout: "NCHW" })];
  },
  softmax: (op, r, w) => [r.b.op("softmax", [input(op, r, "x", w)], { axis: ints(op, r, "axis", w, [-1])[0]! })],
  layer_norm: (op, r, w) => {
    const x = input(op, r, "x", w);
    const axes = ints(op, r, "axes", w, x.type.shape.map((_, i) => i));
    if (axes.length !== 1) throw r.bad(w, `layer_norm over axes [${axes}] is not supported; ditc reads the one-axis form`);
    const gamma = optional(op, r, "gamma", w), beta = optional(op, r, "beta", w);
    const eps = Number(param(op, r, "epsilon", w)?.[0] ?? 1e-5);
    return [r.b.op("layer_norm", gamma && beta ? [x, gamma, beta] : [x], { axis: axes[0]!, eps })];
  },
  reduce_sum: (op, r, w) => [r.b.op("reduce_sum", [input(op, r, "x", w)], { axes: ints(op, r, "axes", w), keepDims: bool(op, r, "keep_dims", w) })],
  reduce_mean: (op, r, w) => [r.b.op("reduce_mean", [input(op, r, "x", w)], { axes: ints(op, r, "axes", w), keepDims: bool(op, r, "keep_dims", w) })],
  reduce_max: (op, r, w) => [r.b.op("reduce_max", [input(op, r, "x", w)], { axes: ints(op, r, "axes", w), keepDims: bool(op, r, "keep_dims", w) })],
  reshape: (op, r, w) => {
    const x = input(op, r, "x", w);
    const want = ints(op, r, "shape", w).map((d, i) => (d === 0 ? x.type.shape[i]! : d));
    const known = want.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
    return [r.b.op("reshape", [x], { shape: want.map((d) => (d === -1 ? numel(x.type.shape) / known : d)) })];
  },
  transpose: (op, r, w) => [r.b.op("transpose", [input(op, r, "x", w)], { perm: ints(op, r, "perm", w) })],
  slice_by_index: (op, r, w) => {
    const x = input(op, r, "x", w);
    for (const k of ["stride", "begin_mask", "end_mask", "squeeze_mask"]) {
      const p = param(op, r, k, w);
      if (p && p.some((v) => (k === "stride" ? Number(v) !== 1 : Boolean(v)))) throw r.bad(w, `slice_by_index with ${k} is not supported`);
    }
    const begin = ints(op, r, "begin", w), end = ints(op, r, "end", w);
    const norm = (q: number, d: number) => Math.min(Math.max(q < 0 ? q + d : q, 0), d);
    const b0 = begin.map((q, i) => norm(q, x.type.shape[i]!));
    return [r.b.op("slice", [x], { begin: b0, size: end.map((q, i) => Math.max(0, norm(q, x.type.shape[i]!) - b0[i]!)) })];
  },
  concat: (op, r, w) => {
    if (bool(op, r, "interleave", w)) throw r.bad(w, "interleaved concat is not supported");
    return [r.b.op("concat", arg(op, "values").map((n) => r.value(n, w)), { axis: ints(op, r, "axis", w)[0]! })];
  },
  split: (op, r, w) => {
    const x = input(op, r, "x", w);
    const axis = ints(op, r, "axis", w)[0]!;
    const d = x.type.shape[axis < 0 ? axis + x.type.shape.length : axis]!;
    const sizes = param(op, r, "split_sizes", w)?.map(Number) ?? Array.from({ length: ints(op, r, "num_splits", w)[0]! }, (_, __, ) => d / ints(op, r, "num_splits", w)[0]!);
    return r.b.add("split", [x], { axis, sizes });
  },
  gather: (op, r, w) => {
    if (ints(op, r, "batch_dims", w, [0])[0] !== 0) throw r.bad(w, "gather with batch_dims is not supported");
    return [r.b.op("gather", [input(op, r, "x", w), input(op, r, "indices", w)], { axis: ints(op, r, "axis", w, [0])[0]! })];
  },
  cast: (op, r, w) => {
    const to = ({ fp32: "f32", fp16: "f16", int32: "i32" } as const)[str(op, r, "dtype", w, "") as "fp32"];
    if (!to) throw r.bad(w, `cast to "${str(op, r, "dtype", w, "")}" is not supported (fp32, fp16, int32)`);
    return [r.b.op("cast", [input(op, r, "x", w)], { to })];
  },
  einsum: (op, r, w) => [r.b.op("einsum", arg(op, "values").map((n) => r.value(n, w)), { equation: str(op, r, "equation", w, "") })],
  pixel_shuffle: (op, r, w) => [r.b.op("pixel_shuffle", [input(op, r, "x", w)], { factor: ints(op, r, "upscale_factor", w)[0]!, layout: "NCHW", order: "CRD" })],
  constexpr_lut_to_dense: (op, r, w) => {
    if (op.inputs?.indices) return readLutIos18(op, r, w);
    const a = op.attributes ?? {};
    const shape = r.constOf(a.shape, `${w} shape`).immediate?.map(Number);
    if (!shape) throw r.bad(w, "needs an immediate shape");
    const lut = r.constOf(a.lut, `${w} lut`), idx = r.constOf(a.indices, `${w} indices`);
    const k = numel(lut.shape), bits = k === 16 ? 4 : k === 256 ? 8 : 0;
    if (!bits) throw r.bad(w, `has a ${k}-entry LUT; ditc reads 16 (4-bit) and 256 (8-bit) palettes`);
    const n = numel(shape);
    if (numel(idx.shape) !== Math.ceil((n * bits) / 8)) throw r.bad(w, `packs ${numel(idx.shape)} index bytes, shape (${shape.join(", ")}) at ${bits} bits needs ${Math.ceil((n * bits) / 8)}`);
    const dt = bits === 4 ? "u4" : "u8";
    const indices = r.b.constant({
      type: { dtype: dt, shape }, source: `${w} indices`,
      load: () => {
        const packed = idx.load().data as Uint8Array;
        return { dtype: dt, shape, data: bits === 8 ? packed : unpackU4(packed, n) };
      },
    });
    const lutDt = DTYPE_OF_MIL[lut.dtype];
    if (lutDt !== "f32" && lutDt !== "f16") throw r.bad(w, "has a LUT that is not fp16 or fp32");
    return [r.b.op("lut_to_dense", [indices, r.b.constant({ type: { dtype: lutDt, shape: lut.shape }, source: `${w} lut`, load: lut.load })], {})];
  },
};

/** The iOS18 form: typed indices shaped like the weight, a [1, …, 1, K, 1] per-tensor LUT, as input bindings. */
function readLutIos18(op: MilOperation, r: Reader, w: string): Value[] {
  const bound = (k: string) => {
    const b = op.inputs?.[k]?.arguments?.[0];
    if (!b?.value) throw r.bad(w, `input "${k}" must be bound to a value`);
    return r.constOf(b.value, `${w} ${k}`);
  };
  const idx = bound("indices"), lut = bound("lut");
  const dt = DTYPE_OF_MIL[idx.dtype];
  if (dt !== "u4" && dt !== "u8") throw r.bad(w, "needs uint4 or uint8 indices");
  const k = lut.shape[lut.shape.length - 2]!, groups = lut.shape[0]!;
  // per tensor [1, …, 1, K, 1], or grouped along axis 0: [G, 1, …, 1, K, 1]
  if (lut.shape.length !== idx.shape.length + 2 || lut.shape.slice(1, -2).some((g) => g !== 1) || idx.shape[0]! % groups !== 0 || lut.shape[lut.shape.length - 1] !== 1 || k !== (dt === "u4" ? 16 : 256))
    throw r.bad(w, `LUT shape (${lut.shape.join(", ")}) is not a scalar palette ditc reads ([G, 1, …, 1, ${dt === "u4" ? 16 : 256}, 1] with G dividing axis 0)`);
  const lutDt = DTYPE_OF_MIL[lut.dtype];
  if (lutDt !== "f32" && lutDt !== "f16") throw r.bad(w, "has a LUT that is not fp16 or fp32");
  const indices = r.b.constant({ type: { dtype: dt, shape: idx.shape }, source: `${w} indices`, load: idx.load });
  const lutShape = groups > 1 ? [groups, k] : [k];
  const table = r.b.constant({ type: { dtype: lutDt, shape: lutShape }, source: `${w} lut`, load: () => ({ ...lut.load(), shape: lutShape }) });
  return [r.b.op("lut_to_dense", [indices, table], {})];
}

export interface CoremlReadResult {
  graph: Graph;
  model: CoremlModel;
  close(): void;
}

/** Resolves a manifest item path, refusing anything that leaves the package. */
function itemPath(pkg: string, rel: unknown, bad: (p: string) => Error): string {
  if (typeof rel !== "string" || !rel || rel.startsWith("/") || rel.split(/[\\/]/).includes("..")) throw bad(`item path ${JSON.stringify(rel)} must be relative and stay inside the package`);
  const full = join(pkg, "Data", rel);
  if (existsSync(full) && !realpathSync(full).startsWith(realpathSync(pkg) + sep)) throw bad(`item path "${rel}" resolves outside the package (a symbolic link?)`);
  return full;
}

export function readCoreml(pkg: string): CoremlReadResult {
  const bad = (where: string, problem: string) => fail("modelInvalid", { file: pkg, where, problem });
  if (!existsSync(pkg) || !statSync(pkg).isDirectory()) throw fail("fileUnreadable", { file: pkg, problem: "an .mlpackage must be a folder" });
  let manifest: { itemInfoEntries?: Record<string, { name?: string; author?: string; path?: string }>; rootModelIdentifier?: string };
  try {
    manifest = JSON.parse(readFileSync(join(pkg, "Manifest.json"), "utf8"));
  } catch (e) {
    throw bad("Manifest.json", `is missing or not JSON (${(e as Error).message.split("\n")[0]})`);
  }
  const entries = manifest.itemInfoEntries ?? {};
  const root = entries[manifest.rootModelIdentifier ?? ""];
  if (!root) throw bad("Manifest.json", "has no itemInfoEntries entry for rootModelIdentifier");
  const modelPath = itemPath(pkg, root.path, (p) => bad("Manifest.json", p));
  const weightsItem = Object.values(entries).find((e) => e.name === "weights" && e.author === "com.apple.CoreML");
  const weightsDir = weightsItem ? itemPath(pkg, weightsItem.path, (p) => bad("Manifest.json", p)) : undefined;
  if (!existsSync(modelPath)) throw bad("Manifest.json", `names ${root.path}, which does not exist`);
  if (statSync(modelPath).size > MAX_MODEL_BYTES) throw bad("model.mlmodel", "is over 2 GiB, more than a protobuf can be");
  let model: CoremlModel;
  try {
    model = decodeCoremlModel(readFileSync(modelPath));
  } catch (e) {
    throw bad("model.mlmodel", `is not a valid CoreML protobuf (${(e as Error).message})`);
  }
  const r = new Reader(pkg, weightsDir);
  try {
    const fn = model.mlProgram?.functions?.main;
    if (!fn) throw bad("model.mlmodel", "has no ML Program with a \"main\" function");
    const block = fn.blockSpecializations?.[fn.opset ?? ""];
    if (!block) throw bad("main", `has no block for its opset "${fn.opset}"`);
    for (const i of fn.inputs ?? []) {
      const { dtype, shape } = r.typeOf(i.type?.tensorType, `input "${i.name}"`);
      const dt = DTYPE_OF_MIL[dtype];
      if (dt !== "f32" && dt !== "f16") throw bad(`input "${i.name}"`, "must be fp32 or fp16");
      r.values.set(i.name ?? "", r.b.input(i.name ?? "", { dtype: dt, shape }));
    }
    for (const [k, op] of (block.operations ?? []).entries()) {
      const name = String(op.attributes?.name?.immediateValue?.tensor?.strings?.values?.[0] ?? op.outputs?.[0]?.name ?? k);
      const where = `operation ${k} "${name}" (${op.type})`;
      if (op.type === "const") {
        const out = op.outputs?.[0]?.name;
        if (!out || r.consts.has(out) || r.values.has(out)) throw bad(where, "must define one new output name");
        r.consts.set(out, r.constOf(op.attributes?.val, where));
        continue;
      }
      const h = READ_MIL[op.type ?? ""];
      if (!h) throw bad(where, `op "${op.type}" is not supported (ditc reads ${Object.keys(READ_MIL).join(", ")})`);
      let outs: Value[];
      try {
        outs = h(op, r, where);
      } catch (e) {
        if (e instanceof DitcError && e.key === "opType") throw bad(where, e.message.replace(/^E\d+ /, ""));
        throw e;
      }
      const names = (op.outputs ?? []).map((o) => o.name ?? "");
      if (names.length !== outs.length) throw bad(where, `declares ${names.length} outputs, the op gives ${outs.length}`);
      names.forEach((n, i) => {
        if (r.values.has(n) || r.consts.has(n)) throw bad(where, `redefines "${n}"`);
        r.values.set(n, outs[i]!);
      });
    }
    const outputs = (block.outputs ?? []).map((n) => {
      const v = r.value(n, `block output "${n}"`);
      v.name = n;
      return v;
    });
    if (!outputs.length) throw bad("main", "has no outputs");
    return { graph: r.b.finish(outputs), model, close: () => r.close() };
  } catch (e) {
    r.close();
    throw e;
  }
}
