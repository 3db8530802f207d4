// The ONNX reader: parses a .onnx (and its external data) into ditc's IR with the shared op
// table, so the reader-interpreter runs the same reference kernels on what the file says.
// Written from the ONNX operator definitions (opset 13-21 forms), not by inverting the emitter.
// Files are untrusted: every field is checked, external data may not leave the model's folder,
// and declared sizes are compared with actual ones before anything is allocated.
import { closeSync, fstatSync, openSync, readSync, realpathSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, normalize, sep } from "node:path";
import { DitcError, fail } from "../../src/diagnostics.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import { BYTES_PER_ELEMENT, type DType } from "../../src/ir/dtype.js";
import type { Graph, Value } from "../../src/ir/graph.js";
import { decodeBF16, decodeF16 } from "../../src/kernels/fp16.js";
import { unpackU4 } from "../../src/io/encode.js";
import { floatTensor, numel, type Tensor } from "../../src/kernels/tensor.js";
import { ATTR, DATA_LOCATION_EXTERNAL, decodeModel, ONNX_DTYPE, type OnnxAttribute, type OnnxModel, type OnnxNode, type OnnxTensor } from "./proto.js";

const MAX_MODEL_BYTES = 2 ** 31 - 1; // a protobuf cannot be larger
const DTYPE_OF_ONNX: Record<number, DType> = { [ONNX_DTYPE.FLOAT]: "f32", [ONNX_DTYPE.FLOAT16]: "f16", [ONNX_DTYPE.INT32]: "i32", [ONNX_DTYPE.INT64]: "i64", [ONNX_DTYPE.UINT8]: "u8", [ONNX_DTYPE.UINT4]: "u4", [ONNX_DTYPE.INT8]: "i8", [ONNX_DTYPE.BOOL]: "bool" };
const BFLOAT16 = 16;

export interface OnnxReadResult {
  graph: Graph;
  model: OnnxModel;
  close(): void;
}

class Reader {
  readonly b = new GraphBuilder();
  readonly values = new Map<string, Value>();
  readonly consts = new Map<string, OnnxTensor>();
  private readonly fds = new Map<string, { fd: number; size: number }>();
  constructor(readonly path: string) {}

  bad(where: string, problem: string): Error {
    return fail("modelInvalid", { file: this.path, where, problem });
  }

  value(name: string, node: string): Value {
    const v = this.values.get(name);
    if (!v) throw this.bad(node, `reads "${name}", which no graph input, initializer or earlier node defines`);
    return v;
  }

  /** The integer contents of a constant input (shapes, axes, slice bounds). */
  ints(name: string, node: string): number[] {
    const t = this.consts.get(name);
    if (!t) throw this.bad(node, `input "${name}" must be a constant initializer`);
    const data = this.load(t, node).data;
    return Array.from(data as ArrayLike<number | bigint>, Number);
  }

  /** Opens an external data file after checking its location stays inside the model's folder. */
  private external(location: string, where: string): { fd: number; size: number } {
    const cached = this.fds.get(location);
    if (cached) return cached;
    const dir = dirname(this.path);
    if (isAbsolute(location) || location.split(/[\\/]/).includes("..") || normalize(location).startsWith(`..${sep}`))
      throw this.bad(where, `external data location "${location}" leaves the model's folder; only relative paths inside it are allowed`);
    const full = join(dir, location);
    let real: string;
    try {
      real = realpathSync(full);
    } catch {
      throw this.bad(where, `external data file "${location}" does not exist next to the model`);
    }
    const realDir = realpathSync(dir);
    if (!real.startsWith(realDir + sep)) throw this.bad(where, `external data file "${location}" resolves outside the model's folder (a symbolic link?)`);
    if (!statSync(real).isFile()) throw this.bad(where, `external data "${location}" is not a regular file`);
    const fd = openSync(real, "r");
    const entry = { fd, size: fstatSync(fd).size };
    this.fds.set(location, entry);
    return entry;
  }

  /** Checks a tensor's declaration now; returns a loader that reads its bytes when called. */
  tensorLoader(t: OnnxTensor, where: string): { dtype: DType; shape: number[]; load: () => Tensor } {
    const dtypeCode = t.dataType ?? 0;
    const dtype = dtypeCode === BFLOAT16 ? "f32" : DTYPE_OF_ONNX[dtypeCode];
    if (!dtype) throw this.bad(where, `has data_type ${dtypeCode}, which ditc does not read (FLOAT, FLOAT16, BFLOAT16, INT32, INT64, UINT8, BOOL)`);
    const shape = t.dims ?? [];
    if (shape.length > 8 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw this.bad(where, `has invalid dims [${shape}]`);
    const n = numel(shape);
    // UINT4 packs two per byte (low nibble first), so its size is rounded up, not multiplied
    const need = dtype === "u4" ? (shape.reduce((s, d) => s * BigInt(d), 1n) + 1n) / 2n : shape.reduce((s, d) => s * BigInt(d), BigInt(dtypeCode === BFLOAT16 ? 2 : BYTES_PER_ELEMENT[dtype]));
    const decode = (bytes: Uint8Array): Tensor => {
      const buf = bytes.byteOffset % 8 === 0 ? bytes : new Uint8Array(bytes); // a copy (Buffer.slice would be a view)
      const ab = buf.buffer, off = buf.byteOffset;
      switch (dtypeCode) {
        case ONNX_DTYPE.FLOAT: return floatTensor(shape, new Float32Array(ab, off, n).slice());
        case ONNX_DTYPE.FLOAT16: return floatTensor(shape, decodeF16(new Uint16Array(ab, off, n)), "f16");
        case BFLOAT16: return floatTensor(shape, decodeBF16(new Uint16Array(ab, off, n)));
        case ONNX_DTYPE.INT32: return { dtype: "i32", shape, data: new Int32Array(ab, off, n).slice() };
        case ONNX_DTYPE.INT64: return { dtype: "i64", shape, data: new BigInt64Array(ab, off, n).slice() };
        case ONNX_DTYPE.UINT4: return { dtype: "u4", shape, data: unpackU4(buf, n) };
        case ONNX_DTYPE.INT8: return { dtype: "i8", shape, data: new Int8Array(ab, off, n).slice() };
        default: return { dtype, shape, data: new Uint8Array(ab, off, n).slice() };
      }
    };
    if (t.dataLocation === DATA_LOCATION_EXTERNAL) {
      const kv = new Map((t.externalData ?? []).map((e) => [e.key ?? "", e.value ?? ""]));
      const location = kv.get("location");
      if (!location) throw this.bad(where, "is external but has no location");
      const offset = Number(kv.get("offset") ?? "0"), length = kv.has("length") ? Number(kv.get("length")) : Number(need);
      if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) throw this.bad(where, `has invalid external offset/length ${kv.get("offset")}/${kv.get("length")}`);
      if (BigInt(length) !== need) throw this.bad(where, `declares ${need} bytes (dims [${shape}]) but external length ${length}`);
      const file = this.external(location, where);
      if (offset + length > file.size) throw this.bad(where, `external data [${offset}, ${offset + length}) runs past the end of "${location}" (${file.size} bytes)`);
      return {
        dtype, shape,
        load: () => {
          const bytes = new Uint8Array(length);
          for (let got = 0; got < length;) {
            const r = readSync(file.fd, bytes, got, length - got, offset + got);
            if (r === 0) throw this.bad(where, `external data "${location}" ended early`);
            got += r;
          }
          return decode(bytes);
        },
      };
    }
    if (t.rawData && t.rawData.length) {
      if (BigInt(t.rawData.length) !== need) throw this.bad(where, `declares ${need} bytes (dims [${shape}]) but raw_data holds ${t.rawData.length}`);
      const raw = t.rawData;
      return { dtype, shape, load: () => decode(raw) };
    }
    const typed = t.floatData?.length ? t.floatData : t.int32Data?.length ? t.int32Data : t.int64Data?.length ? t.int64Data : undefined;
    if (typed === undefined && n !== 0) throw this.bad(where, `has no data (dims [${shape}])`);
    if (typed && typed.length !== n) throw this.bad(where, `holds ${typed.length} values, dims [${shape}] need ${n}`);
    return {
      dtype, shape,
      load: () =>
        dtype === "f32" || dtype === "f16" ? floatTensor(shape, Float32Array.from(typed ?? []), dtype)
          : dtype === "i64" ? { dtype, shape, data: BigInt64Array.from(typed ?? [], (x) => BigInt(x)) }
            : { dtype: "i32", shape, data: Int32Array.from(typed ?? []) },
    };
  }

  load(t: OnnxTensor, where: string): Tensor {
    return this.tensorLoader(t, where).load();
  }

  close(): void {
    for (const { fd } of this.fds.values()) closeSync(fd);
  }
}

type AttrMap = Map<string, OnnxAttribute>;
class AttrError extends Error {}
type Handler = (ins: string[], a: AttrMap, r: Reader, where: string, n: OnnxNode) => Value[];

const attrInt = (a: AttrMap, k: string, dflt?: number): number => {
  const x = a.get(k);
  if (x === undefined) {
    if (dflt === undefined) throw new AttrError(`attribute ${k} is required`);
    return dflt;
  }
  if (x.type !== ATTR.INT) throw new AttrError(`attribute ${k} must be an INT`);
  return Number(x.i ?? 0);
};
const attrInts = (a: AttrMap, k: string, dflt?: number[]): number[] => {
  const x = a.get(k);
  if (x === undefined) {
    if (dflt === undefined) throw new AttrError(`attribute ${k} is required`);
    return dflt;
  }
  if (x.type !== ATTR.INTS) throw new AttrError(`attribute ${k} must be INTS`);
  return (x.ints ?? []).map(Number);
};
const attrFloat = (a: AttrMap, k: string, dflt: number): number => (a.has(k) ? Number(a.get(k)!.f ?? 0) : dflt);
const attrStr = (a: AttrMap, k: string, dflt: string): string => (a.has(k) ? new TextDecoder().decode(a.get(k)!.s ?? new Uint8Array()) : dflt);

const v = (r: Reader, name: string, where: string) => r.value(name, where);
const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

const un = (kind: "sigmoid" | "tanh" | "exp" | "sqrt" | "neg" | "sin" | "cos"): Handler => ([x], _a, r, w) => [r.b.op(kind, [v(r, x!, w)], {})];
const bin = (kind: "add" | "sub" | "mul" | "div" | "pow" | "maximum"): Handler => ([x, y], _a, r, w) => [r.b.op(kind, [v(r, x!, w), v(r, y!, w)], {})];

/** ONNX op type -> IR ops. */
const READ_ONNX: Record<string, Handler> = {
  Add: bin("add"), Sub: bin("sub"), Mul: bin("mul"), Div: bin("div"), Pow: bin("pow"), Max: bin("maximum"),
  Sigmoid: un("sigmoid"), Tanh: un("tanh"), Exp: un("exp"), Sqrt: un("sqrt"), Neg: un("neg"), Sin: un("sin"), Cos: un("cos"),
  Reciprocal: ([x], _a, r, w) => {
    const xv = v(r, x!, w);
    return [r.b.op("div", [r.b.tensorConstant("one", floatTensor([1], Float32Array.of(1), xv.type.dtype as "f32" | "f16")), xv], {})];
  },
  Gelu: ([x], a, r, w) => {
    const mode = attrStr(a, "approximate", "none");
    if (mode !== "tanh") throw r.bad(w, `Gelu approximate="${mode}" is not supported (ditc's kernels have the tanh form)`);
    return [r.b.op("gelu_tanh", [v(r, x!, w)], {})];
  },
  MatMul: ([x, y], _a, r, w) => [r.b.op("matmul", [v(r, x!, w), v(r, y!, w)], { transposeA: false, transposeB: false })],
  Gemm: ([A, B, C], a, r, w) => {
    const transA = attrInt(a, "transA", 0) === 1, transB = attrInt(a, "transB", 0) === 1;
    const alpha = attrFloat(a, "alpha", 1), beta = attrFloat(a, "beta", 1);
    const b = r.b;
    if (!transA && transB && alpha === 1 && beta === 1) return [b.op("linear", C ? [v(r, A!, w), v(r, B!, w), v(r, C, w)] : [v(r, A!, w), v(r, B!, w)], {})];
    let y = b.op("matmul", [v(r, A!, w), v(r, B!, w)], { transposeA: transA, transposeB: transB });
    const dt = y.type.dtype as "f32" | "f16";
    if (alpha !== 1) y = b.op("mul", [y, b.tensorConstant("alpha", floatTensor([1], Float32Array.of(alpha), dt))], {});
    if (C) y = b.op("add", [y, beta === 1 ? v(r, C, w) : b.op("mul", [v(r, C, w), b.tensorConstant("beta", floatTensor([1], Float32Array.of(beta), dt))], {})], {});
    return [y];
  },
  Softmax: ([x], a, r, w) => [r.b.op("softmax", [v(r, x!, w)], { axis: attrInt(a, "axis", -1) })],
  LayerNormalization: ([x, scale, bias], a, r, w) => {
    const xv = v(r, x!, w);
    const axis = norm(attrInt(a, "axis", -1), xv.type.shape.length);
    if (axis !== xv.type.shape.length - 1) throw r.bad(w, `LayerNormalization over axes ${axis}.. is not supported; ditc reads the last-axis form`);
    const C = xv.type.shape[axis]!;
    const bv = bias ? v(r, bias, w) : r.b.tensorConstant("zeros", floatTensor([C], new Float32Array(C), xv.type.dtype as "f32" | "f16"));
    return [r.b.op("layer_norm", [xv, v(r, scale!, w), bv], { axis: -1, eps: attrFloat(a, "epsilon", 1e-5) })];
  },
  ReduceSum: ([x, axes], a, r, w) => [r.b.op("reduce_sum", [v(r, x!, w)], { axes: r.ints(axes!, w), keepDims: attrInt(a, "keepdims", 1) === 1 })],
  ReduceMean: ([x, axes], a, r, w) => [r.b.op("reduce_mean", [v(r, x!, w)], { axes: r.ints(axes!, w), keepDims: attrInt(a, "keepdims", 1) === 1 })],
  ReduceMax: ([x, axes], a, r, w) => [r.b.op("reduce_max", [v(r, x!, w)], { axes: r.ints(axes!, w), keepDims: attrInt(a, "keepdims", 1) === 1 })],
  Reshape: ([x, shape], a, r, w) => {
    const xv = v(r, x!, w);
    if (attrInt(a, "allowzero", 0) !== 0) throw r.bad(w, "Reshape allowzero=1 is not supported");
    const want = r.ints(shape!, w).map((d, i) => (d === 0 ? xv.type.shape[i]! : d));
    const known = want.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
    if (want.filter((d) => d === -1).length > 1 || want.some((d) => d < -1)) throw r.bad(w, `Reshape target [${want}] is invalid`);
    const total = numel(xv.type.shape);
    return [r.b.op("reshape", [xv], { shape: want.map((d) => (d === -1 ? (known ? total / known : 0) : d)) })];
  },
  Transpose: ([x], a, r, w) => {
    const xv = v(r, x!, w);
    return [r.b.op("transpose", [xv], { perm: attrInts(a, "perm", xv.type.shape.map((_, i) => xv.type.shape.length - 1 - i)) })];
  },
  Slice: ([x, starts, ends, axes, steps], _a, r, w) => {
    const xv = v(r, x!, w), shape = xv.type.shape;
    const st = r.ints(starts!, w), en = r.ints(ends!, w);
    const ax = axes ? r.ints(axes, w).map((q) => norm(q, shape.length)) : st.map((_, i) => i);
    if (steps && r.ints(steps, w).some((s) => s !== 1)) throw r.bad(w, "Slice steps other than 1 are not supported");
    const begin = shape.map(() => 0), size = [...shape];
    ax.forEach((axis, i) => {
      const d = shape[axis]!;
      const clamp = (q: number) => Math.min(Math.max(q < 0 ? q + d : q, 0), d);
      begin[axis] = clamp(st[i]!);
      size[axis] = Math.max(0, clamp(en[i]!) - begin[axis]!);
    });
    return [r.b.op("slice", [xv], { begin, size })];
  },
  Concat: (ins, a, r, w) => [r.b.op("concat", ins.map((x) => v(r, x, w)), { axis: attrInt(a, "axis") })],
  Split: ([x, split], a, r, w, n) => {
    const xv = v(r, x!, w);
    const axis = norm(attrInt(a, "axis", 0), xv.type.shape.length);
    const outs = n.output?.length ?? 1;
    const sizes = split ? r.ints(split, w) : Array.from({ length: outs }, () => xv.type.shape[axis]! / outs);
    return r.b.add("split", [xv], { axis, sizes });
  },
  // ditc reads the symmetric int8 forms: per tensor, or per channel along axis 0
  DequantizeLinear: ([x, scale, zp], a, r, w) => {
    const xv = v(r, x!, w), sv = v(r, scale!, w);
    if (xv.type.dtype !== "i8") throw r.bad(w, `DequantizeLinear of ${xv.type.dtype} is not supported (ditc reads INT8)`);
    if (zp && r.ints(zp, w).some((z) => z !== 0)) throw r.bad(w, "DequantizeLinear with a non-zero zero point is not supported");
    const rows = xv.type.shape[0] ?? 1, axis = norm(attrInt(a, "axis", 1), xv.type.shape.length);
    const count = numel(sv.type.shape);
    if (count !== 1 && !(axis === 0 && count === rows)) throw r.bad(w, `DequantizeLinear scales (${sv.type.shape}) on axis ${axis} are neither per tensor nor per row`);
    const perRow = count === 1 ? r.b.op("mul", [r.b.tensorConstant("ones", floatTensor([rows], new Float32Array(rows).fill(1))), r.b.op("reshape", [sv], { shape: [1] })], {}) : r.b.op("reshape", [sv], { shape: [rows] });
    return [r.b.op("dequantize", [xv, perRow], {})];
  },
  Gather: ([x, idx], a, r, w) => [r.b.op("gather", [v(r, x!, w), v(r, idx!, w)], { axis: attrInt(a, "axis", 0) })],
  Cast: ([x], a, r, w) => {
    const to = DTYPE_OF_ONNX[attrInt(a, "to")];
    if (to !== "f32" && to !== "f16" && to !== "i32") throw r.bad(w, `Cast to data_type ${attrInt(a, "to")} is not supported (FLOAT, FLOAT16, INT32)`);
    return [r.b.op("cast", [v(r, x!, w)], { to })];
  },
  Einsum: (ins, a, r, w) => [r.b.op("einsum", ins.map((x) => v(r, x, w)), { equation: attrStr(a, "equation", "") })],
  Conv: ([x, wt, bias], a, r, w) => {
    const wv = v(r, wt!, w);
    if (attrStr(a, "auto_pad", "NOTSET") !== "NOTSET") throw r.bad(w, "Conv auto_pad is not supported; write explicit pads");
    if (attrInts(a, "dilations", [1, 1]).some((d) => d !== 1)) throw r.bad(w, "dilated Conv is not supported");
    const [t, l, b, rr] = attrInts(a, "pads", [0, 0, 0, 0]);
    const stride = attrInts(a, "strides", [1, 1]);
    const ins = bias ? [v(r, x!, w), wv, v(r, bias, w)] : [v(r, x!, w), wv];
    return [r.b.op("conv2d", ins, { stride: [stride[0]!, stride[1]!], pads: [t!, l!, b!, rr!], groups: attrInt(a, "group", 1), layout: "NCHW" })];
  },
  DepthToSpace: ([x], a, r, w) => {
    const mode = attrStr(a, "mode", "DCR");
    if (mode !== "CRD") throw r.bad(w, `DepthToSpace mode "${mode}" is not supported (CRD, PyTorch's pixel-shuffle order, is)`);
    return [r.b.op("pixel_shuffle", [v(r, x!, w)], { factor: attrInt(a, "blocksize"), layout: "NCHW", order: "CRD" })];
  },
};

export function readOnnx(path: string): OnnxReadResult {
  const r = new Reader(path);
  let bytes: Buffer;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw fail("fileUnreadable", { file: path, problem: "it is not a file" });
    if (st.size > MAX_MODEL_BYTES) throw r.bad("file", `is ${st.size} bytes; an ONNX protobuf is at most 2 GiB (weights belong in external data)`);
    const fd = openSync(path, "r");
    try {
      bytes = Buffer.alloc(st.size);
      readSync(fd, bytes, 0, st.size, 0);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw fail("fileUnreadable", { file: path, problem: "it does not exist" });
    throw e;
  }
  let model: OnnxModel;
  try {
    model = decodeModel(bytes);
  } catch (e) {
    throw r.bad("file", `is not a valid ONNX protobuf (${(e as Error).message})`);
  }
  try {
    const opset = (model.opsetImport ?? []).find((o) => (o.domain ?? "") === "" || o.domain === "ai.onnx")?.version;
    if (opset === undefined || opset < 13 || opset > 26) throw r.bad("opset_import", `ai.onnx opset ${opset ?? "(missing)"} is not supported (13 to 26)`);
    if ((model.irVersion ?? 0) < 7 || (model.irVersion ?? 0) > 13) throw r.bad("ir_version", `IR version ${model.irVersion ?? "(missing)"} is not supported (7 to 13)`);
    const g = model.graph;
    if (!g) throw r.bad("graph", "the model has no graph");
    for (const t of g.initializer ?? []) {
      const where = `initializer "${t.name ?? ""}"`;
      if (!t.name) throw r.bad("initializer", "an initializer has no name");
      if (r.values.has(t.name)) throw r.bad(where, "is defined twice");
      const l = r.tensorLoader(t, where);
      r.consts.set(t.name, t);
      const val = r.b.constant({ type: { dtype: l.dtype, shape: l.shape }, source: t.name, load: l.load });
      r.values.set(t.name, val);
    }
    for (const i of g.input ?? []) {
      if (!i.name || r.values.has(i.name)) continue; // an initializer listed as input
      const tt = i.type?.tensorType;
      const dtype = DTYPE_OF_ONNX[tt?.elemType ?? 0];
      const dims = tt?.shape?.dim ?? [];
      if ((dtype !== "f32" && dtype !== "f16") || dims.some((d) => !(Number(d.dimValue) > 0)))
        throw r.bad(`input "${i.name}"`, "must be a FLOAT or FLOAT16 tensor with static, positive dims");
      r.values.set(i.name, r.b.input(i.name, { dtype, shape: dims.map((d) => Number(d.dimValue)) }));
    }
    for (const [k, n] of (g.node ?? []).entries()) {
      const where = `node ${k} "${n.name ?? ""}" (${n.opType ?? "?"})`;
      if ((n.domain ?? "") !== "" && n.domain !== "ai.onnx") throw r.bad(where, `uses domain "${n.domain}", which ditc does not read`);
      const h = READ_ONNX[n.opType ?? ""];
      if (!h) throw r.bad(where, `op type "${n.opType}" is not supported (ditc reads ${Object.keys(READ_ONNX).join(", ")})`);
      const attrs: AttrMap = new Map((n.attribute ?? []).map((a) => [a.name ?? "", a]));
      let outs: Value[];
      try {
        outs = h((n.input ?? []).filter((x) => x !== ""), attrs, r, where, n);
      } catch (e) {
        if (e instanceof AttrError) throw r.bad(where, e.message);
        // the IR builder's type check names the op; the reader adds the ONNX node it came from
        if (e instanceof DitcError && e.key === "opType") throw r.bad(where, e.message.replace(/^E\d+ /, ""));
        throw e;
      }
      const names = n.output ?? [];
      if (names.length !== outs.length) throw r.bad(where, `declares ${names.length} outputs, the op gives ${outs.length}`);
      names.forEach((name, i) => {
        if (r.values.has(name)) throw r.bad(where, `redefines "${name}"`);
        r.values.set(name, outs[i]!);
      });
    }
    const outputs = (g.output ?? []).map((o) => {
      const val = r.value(o.name ?? "", `output "${o.name ?? ""}"`);
      val.name = o.name!;
      return val;
    });
    if (!outputs.length) throw r.bad("graph", "declares no outputs");
    return { graph: r.b.finish(outputs), model, close: () => r.close() };
  } catch (e) {
    r.close();
    throw e;
  }
}
