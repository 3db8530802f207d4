// The ONNX emitter: a table from IR op kind to ONNX nodes (opset 21, IR 10), plus the writer.
// The graph it receives is legal for ONNX (targets/onnx/legality.ts); the emitter decides no
// layouts and rewrites nothing. Weights are written one tensor at a time: inline as raw_data, or
// into the side file `model.onnx.<hash>.data` (offsets aligned, paths relative) when the model would
// pass the protobuf limit, or when asked; the side file is named by its content, so replacing a
// model is atomic at the rename of model.onnx.
import { readdirSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { BYTES_PER_ELEMENT, storedBytes, type DType } from "../../src/ir/dtype.js";
import type { ConstValue, Graph, Node, Value } from "../../src/ir/graph.js";
import type { NodeOfKind } from "../../src/ir/rewrite.js";
import { batchedWriter, writeContentNamedFile, writeFileAtomic } from "../../src/io/atomic.js";
import { tensorBytes } from "../../src/io/encode.js";
import { numel } from "../../src/kernels/tensor.js";
import { inBlockScope } from "../../src/model/params.js";
import type { OpKind } from "../../src/ops/index.js";
import { ATTR, DATA_LOCATION_EXTERNAL, IR_VERSION, ONNX_DTYPE, OPSET, type OnnxAttribute, type OnnxNode, type OnnxTensor, type OnnxValueInfo, type StreamedTensor, writeModel } from "./proto.js";
import { DITC_VERSION } from "../../src/version.js";

export const ONNX_DTYPE_OF: Partial<Record<DType, number>> = { f32: ONNX_DTYPE.FLOAT, f16: ONNX_DTYPE.FLOAT16, i32: ONNX_DTYPE.INT32, i64: ONNX_DTYPE.INT64, u8: ONNX_DTYPE.UINT8, u4: ONNX_DTYPE.UINT4, i8: ONNX_DTYPE.INT8, bool: ONNX_DTYPE.BOOL };

/** Protobuf cannot hold 2 GiB; keep a margin for the graph itself. */
const INLINE_LIMIT = 1.5 * 2 ** 30;
const EXTERNAL_MIN_BYTES = 1024;

export interface OnnxEmitOptions {
  /** "auto": external data when the weights would pass the protobuf limit */
  externalData: "auto" | "always" | "never";
  metadata?: Record<string, string>;
  onProgress?: (done: number, total: number) => void;
}

export interface OnnxEmitResult {
  path: string;
  bytes: number;
  dataPath?: string;
  dataBytes: number;
  nodes: number;
  initializers: number;
  /** Transpose nodes written, and those inside DiT blocks (node names start with the scope) */
  transposes: { total: number; inBlocks: number };
}

type AttrValue = { int: number } | { float: number } | { ints: readonly number[] } | { str: string };

class OnnxGraphWriter {
  readonly nodes: OnnxNode[] = [];
  readonly smallInits: OnnxTensor[] = [];
  /** initializers the writer makes itself, by what they hold, so each is written once */
  readonly shared = new Map<string, string>();
  private tmpCount = 0;
  private readonly int64Consts = new Map<string, string>();
  constructor(private readonly names: Map<Value, string>) {}

  name(v: Value): string {
    const n = this.names.get(v);
    if (n === undefined) throw new Error(`internal: %${v.id} has no ONNX name`);
    return n;
  }

  tmp(hint: string): string {
    return `${hint}_t${this.tmpCount++}`;
  }

  node(opType: string, inputs: string[], outputs: string[], attrs: Record<string, AttrValue> = {}, name?: string): void {
    const attribute: OnnxAttribute[] = Object.entries(attrs).map(([k, a]) =>
      "int" in a ? { name: k, type: ATTR.INT, i: a.int }
        : "float" in a ? { name: k, type: ATTR.FLOAT, f: a.float }
          : "ints" in a ? { name: k, type: ATTR.INTS, ints: [...a.ints] }
            : { name: k, type: ATTR.STRING, s: new TextEncoder().encode(a.str) },
    );
    this.nodes.push({ input: inputs, output: outputs, name: name ?? `${opType}_${this.nodes.length}`, opType, attribute });
  }

  /** An inline int64 initializer (shapes, axes, slice bounds): never external (ORT needs them inline). */
  int64(values: readonly number[]): string {
    const key = values.join(",");
    let n = this.int64Consts.get(key);
    if (!n) {
      n = `i64_${this.int64Consts.size}`;
      this.int64Consts.set(key, n);
      const raw = new Uint8Array(BigInt64Array.from(values, (x) => BigInt(x)).buffer);
      this.smallInits.push({ name: n, dataType: ONNX_DTYPE.INT64, dims: [values.length], rawData: raw });
    }
    return n;
  }

  /** An inline float scalar of the graph's dtype, broadcastable against anything. */
  scalar(x: number, dtype: DType, hint: string): string {
    const n = this.tmp(hint);
    this.smallInits.push({ name: n, dataType: ONNX_DTYPE_OF[dtype]!, dims: [], rawData: tensorBytes({ dtype, shape: [], data: Float32Array.of(x) }, dtype) });
    return n;
  }
}

type EmitFn<K extends OpKind> = (n: NodeOfKind<K>, w: OnnxGraphWriter, label: string) => void;

type AnyEmit = (n: Node, w: OnnxGraphWriter, label: string) => void;
const unary = (opType: string): AnyEmit => (n, w, l) => w.node(opType, [w.name(n.inputs[0]!)], [w.name(n.outputs[0]!)], {}, l);
const binary = (opType: string): AnyEmit => (n, w, l) => w.node(opType, n.inputs.map((v) => w.name(v)), [w.name(n.outputs[0]!)], {}, l);
const swapLast = (rank: number) => {
  const p = Array.from({ length: rank }, (_, i) => i);
  [p[rank - 2], p[rank - 1]] = [p[rank - 1]!, p[rank - 2]!];
  return p;
};

/** IR op -> ONNX nodes. Every op the ONNX legality table admits has an entry. */
export const EMIT_ONNX: { [K in OpKind]?: EmitFn<K> } = {
  add: binary("Add"), sub: binary("Sub"), mul: binary("Mul"), div: binary("Div"), pow: binary("Pow"), maximum: binary("Max"),
  sigmoid: unary("Sigmoid"), tanh: unary("Tanh"), exp: unary("Exp"), sqrt: unary("Sqrt"), neg: unary("Neg"), sin: unary("Sin"), cos: unary("Cos"),
  gelu_tanh: (n, w, l) => w.node("Gelu", [w.name(n.inputs[0]!)], [w.name(n.outputs[0]!)], { approximate: { str: "tanh" } }, l),
  silu: (n, w, l) => {
    const s = w.tmp("silu");
    w.node("Sigmoid", [w.name(n.inputs[0]!)], [s], {}, `${l}_sigmoid`);
    w.node("Mul", [w.name(n.inputs[0]!), s], [w.name(n.outputs[0]!)], {}, l);
  },
  rsqrt: (n, w, l) => {
    const s = w.tmp("sqrt");
    w.node("Sqrt", [w.name(n.inputs[0]!)], [s], {}, `${l}_sqrt`);
    w.node("Reciprocal", [s], [w.name(n.outputs[0]!)], {}, l);
  },
  matmul: (n, w, l) => {
    const operand = (v: Value, t: boolean, tag: string) => {
      if (!t) return w.name(v);
      const o = w.tmp(tag);
      w.node("Transpose", [w.name(v)], [o], { perm: { ints: swapLast(v.type.shape.length) } }, `${l}_${tag}`);
      return o;
    };
    w.node("MatMul", [operand(n.inputs[0]!, n.attrs.transposeA, "aT"), operand(n.inputs[1]!, n.attrs.transposeB, "bT")], [w.name(n.outputs[0]!)], {}, l);
  },
  // y = x Wᵀ + b as Gemm(transB = 1) on the rows of x; MLAS reads Wᵀ in place, no weight copy
  linear: (n, w, l) => {
    const [x, wt, b] = n.inputs;
    const shape = x!.type.shape, K = shape[shape.length - 1]!, N = wt!.type.shape[0]!;
    const rows = numel(shape) / K;
    const ins = (xin: string) => (b ? [xin, w.name(wt!), w.name(b)] : [xin, w.name(wt!)]);
    if (shape.length === 2) return w.node("Gemm", ins(w.name(x!)), [w.name(n.outputs[0]!)], { transB: { int: 1 } }, l);
    const x2 = w.tmp("rows"), y2 = w.tmp("gemm");
    w.node("Reshape", [w.name(x!), w.int64([rows, K])], [x2], {}, `${l}_rows`);
    w.node("Gemm", ins(x2), [y2], { transB: { int: 1 } }, l);
    w.node("Reshape", [y2, w.int64([...shape.slice(0, -1), N])], [w.name(n.outputs[0]!)], {}, `${l}_unrows`);
  },
  softmax: (n, w, l) => w.node("Softmax", [w.name(n.inputs[0]!)], [w.name(n.outputs[0]!)], { axis: { int: n.attrs.axis } }, l),
  layer_norm: (n, w, l) => {
    const x = n.inputs[0]!;
    const C = x.type.shape[x.type.shape.length - 1]!;
    // ONNX's Scale is required; the design's LayerNorm has no affine, so it is ones
    const scale = n.inputs[1] ? w.name(n.inputs[1]) : onesInit(w, C, x.type.dtype);
    const ins = n.inputs[2] ? [w.name(x), scale, w.name(n.inputs[2])] : [w.name(x), scale];
    w.node("LayerNormalization", ins, [w.name(n.outputs[0]!)], { axis: { int: -1 }, epsilon: { float: n.attrs.eps } }, l);
  },
  reduce_sum: (n, w, l) => w.node("ReduceSum", [w.name(n.inputs[0]!), w.int64(n.attrs.axes)], [w.name(n.outputs[0]!)], { keepdims: { int: n.attrs.keepDims ? 1 : 0 } }, l),
  reduce_mean: (n, w, l) => w.node("ReduceMean", [w.name(n.inputs[0]!), w.int64(n.attrs.axes)], [w.name(n.outputs[0]!)], { keepdims: { int: n.attrs.keepDims ? 1 : 0 } }, l),
  reduce_max: (n, w, l) => w.node("ReduceMax", [w.name(n.inputs[0]!), w.int64(n.attrs.axes)], [w.name(n.outputs[0]!)], { keepdims: { int: n.attrs.keepDims ? 1 : 0 } }, l),
  reshape: (n, w, l) => w.node("Reshape", [w.name(n.inputs[0]!), w.int64(n.attrs.shape)], [w.name(n.outputs[0]!)], {}, l),
  transpose: (n, w, l) => w.node("Transpose", [w.name(n.inputs[0]!)], [w.name(n.outputs[0]!)], { perm: { ints: n.attrs.perm } }, l),
  slice: (n, w, l) => {
    const axes = n.attrs.begin.map((_, i) => i);
    const ends = n.attrs.begin.map((b, i) => b + n.attrs.size[i]!);
    w.node("Slice", [w.name(n.inputs[0]!), w.int64(n.attrs.begin), w.int64(ends), w.int64(axes)], [w.name(n.outputs[0]!)], {}, l);
  },
  concat: (n, w, l) => w.node("Concat", n.inputs.map((v) => w.name(v)), [w.name(n.outputs[0]!)], { axis: { int: n.attrs.axis } }, l),
  split: (n, w, l) => w.node("Split", [w.name(n.inputs[0]!), w.int64(n.attrs.sizes)], n.outputs.map((v) => w.name(v)), { axis: { int: n.attrs.axis } }, l),
  gather: (n, w, l) => w.node("Gather", [w.name(n.inputs[0]!), w.name(n.inputs[1]!)], [w.name(n.outputs[0]!)], { axis: { int: n.attrs.axis } }, l),
  cast: (n, w, l) => w.node("Cast", [w.name(n.inputs[0]!)], [w.name(n.outputs[0]!)], { to: { int: ONNX_DTYPE_OF[n.attrs.to]! } }, l),
  einsum: (n, w, l) => w.node("Einsum", n.inputs.map((v) => w.name(v)), [w.name(n.outputs[0]!)], { equation: { str: n.attrs.equation } }, l),
  conv2d: (n, w, l) => {
    const [, , kh, kw] = n.inputs[1]!.type.shape as [number, number, number, number];
    const [t, left, b, r] = n.attrs.pads;
    w.node("Conv", n.inputs.map((v) => w.name(v)), [w.name(n.outputs[0]!)], {
      kernel_shape: { ints: [kh, kw] }, strides: { ints: n.attrs.stride }, pads: { ints: [t, left, b, r] }, dilations: { ints: [1, 1] }, group: { int: n.attrs.groups },
    }, l);
  },
  // palettized weight: lut[indices] as Cast(indices -> int32) + Gather (ONNX has no LUT op; Gather needs int32/int64)
  lut_to_dense: (n, w, l) => {
    const idx = w.tmp("idx32");
    w.node("Cast", [w.name(n.inputs[0]!)], [idx], { to: { int: ONNX_DTYPE.INT32 } }, `${l}_cast`);
    w.node("Gather", [w.name(n.inputs[1]!), idx], [w.name(n.outputs[0]!)], { axis: { int: 0 } }, l);
  },
  // per-channel int8: DequantizeLinear along axis 0, zero point omitted (= 0)
  dequantize: (n, w, l) => w.node("DequantizeLinear", [w.name(n.inputs[0]!), w.name(n.inputs[1]!)], [w.name(n.outputs[0]!)], { axis: { int: 0 } }, l),
  // DepthToSpace's CRD mode reads channel c·r² + i·r + j, PyTorch's pixel-shuffle order
  pixel_shuffle: (n, w, l) => w.node("DepthToSpace", [w.name(n.inputs[0]!)], [w.name(n.outputs[0]!)], { blocksize: { int: n.attrs.factor }, mode: { str: "CRD" } }, l),
};

/** LayerNormalization's scale when there is no affine: one initializer of ones per width and dtype. */
function onesInit(w: OnnxGraphWriter, n: number, dtype: DType): string {
  const key = `ones ${dtype} ${n}`;
  const seen = w.shared.get(key);
  if (seen) return seen;
  const name = w.tmp("ones");
  w.smallInits.push({ name, dataType: ONNX_DTYPE_OF[dtype]!, dims: [n], rawData: tensorBytes({ dtype, shape: [n], data: new Float32Array(n).fill(1) }, dtype) });
  w.shared.set(key, name);
  return name;
}

function valueInfo(v: Value, name: string): OnnxValueInfo {
  return { name, type: { tensorType: { elemType: ONNX_DTYPE_OF[v.type.dtype]!, shape: { dim: v.type.shape.map((d) => ({ dimValue: d })) } } } };
}

/** Checkpoint names where they are plain and unique; the rest get a numbered name. */
function assignNames(g: Graph): Map<Value, string> {
  const names = new Map<Value, string>();
  const used = new Set<string>();
  const claim = (v: Value, want: string) => {
    let n = want;
    for (let k = 1; used.has(n); k++) n = `${want}_${k}`;
    used.add(n);
    names.set(v, n);
  };
  for (const v of g.inputs) claim(v, v.name!);
  for (const v of g.outputs) if (v.name && !names.has(v)) claim(v, v.name);
  const byConst = new Map<ConstValue, string>(); // one initializer per constant, however many nodes load it
  for (const n of g.nodes)
    for (const o of n.outputs) {
      if (names.has(o)) continue;
      if (n.kind === "const") {
        const same = byConst.get(n.attrs.value);
        if (same) names.set(o, same);
        else {
          claim(o, n.attrs.value.source.replace(/[^\w.]+/g, "_").replace(/^_+|_+$/g, "") || `const_${o.id}`);
          byConst.set(n.attrs.value, names.get(o)!);
        }
      } else claim(o, `v${o.id}`);
    }
  return names;
}

export function emitOnnx(g: Graph, path: string, opts: OnnxEmitOptions): OnnxEmitResult {
  const names = assignNames(g);
  const w = new OnnxGraphWriter(names);
  const seenConst = new Set<ConstValue>();
  const consts = g.nodes.filter((n): n is NodeOfKind<"const"> => n.kind === "const" && !seenConst.has(n.attrs.value) && !!seenConst.add(n.attrs.value));
  const constBytes = consts.reduce((s, n) => s + numel(n.outputs[0]!.type.shape) * BYTES_PER_ELEMENT[n.outputs[0]!.type.dtype], 0);
  const external = opts.externalData === "always" || (opts.externalData === "auto" && constBytes > INLINE_LIMIT);
  for (const n of g.nodes) {
    if (n.kind === "const") continue;
    const emit = EMIT_ONNX[n.kind] as AnyEmit | undefined;
    if (!emit) throw new Error(`internal: op ${n.kind} reached the ONNX emitter without a mapping (legality table out of date)`);
    emit(n as never, w, `${n.scope ?? "graph"}/${n.kind}_${n.outputs[0]!.id}`);
  }
  let dataPath: string | undefined;
  const initializers: OnnxTensor[] = [];
  const streamed: StreamedTensor[] = [];
  let dataBytes = 0;
  const tensorOf = (n: NodeOfKind<"const">): OnnxTensor => {
    const v = n.outputs[0]!;
    return { name: names.get(v)!, dataType: ONNX_DTYPE_OF[v.type.dtype]!, dims: [...v.type.shape] };
  };
  // weights and palette indices go external; int64 shape constants stay inline (ORT needs them there)
  const isWeight = (c: ConstValue) => ["f32", "f16", "u8", "u4", "i8"].includes(c.type.dtype) && numel(c.type.shape) * BYTES_PER_ELEMENT[c.type.dtype] >= EXTERNAL_MIN_BYTES;
  let written = 0;
  const tick = () => opts.onProgress?.(++written, consts.length);
  if (external) {
    // named by content (model.onnx.<hash>.data): the old model keeps its own data file until
    // model.onnx, written last, switches to the new one in one rename
    const locations: { value: string }[] = [];
    dataPath = writeContentNamedFile(dirname(path), (h) => `${basename(path)}.${h}.data`, (put) => {
      for (const n of consts) {
        tick();
        const c = n.attrs.value;
        const t = tensorOf(n);
        const bytes = tensorBytes(c.load(), c.type.dtype);
        if (!isWeight(c)) {
          initializers.push({ ...t, rawData: bytes.slice() });
          continue;
        }
        const align = bytes.length >= 65536 ? 4096 : 64;
        const pad = (align - (dataBytes % align)) % align;
        if (pad) put(new Uint8Array(pad));
        dataBytes += pad;
        put(bytes);
        const location = { key: "location", value: "" };
        locations.push(location);
        initializers.push({ ...t, dataLocation: DATA_LOCATION_EXTERNAL, externalData: [location, { key: "offset", value: String(dataBytes) }, { key: "length", value: String(bytes.length) }] });
        dataBytes += bytes.length;
      }
    });
    for (const l of locations) l.value = basename(dataPath);
  } else {
    // each weight is loaded as it is written
    for (const n of consts) {
      const c = n.attrs.value;
      streamed.push({ tensor: tensorOf(n), rawBytes: storedBytes(c.type), raw: () => (tick(), tensorBytes(c.load(), c.type.dtype)) });
    }
  }
  const model = {
    irVersion: IR_VERSION,
    opsetImport: [{ domain: "", version: OPSET }],
    producerName: "ditc",
    producerVersion: DITC_VERSION,
    graph: {
      name: "snapgen_dit",
      node: w.nodes,
      initializer: [...initializers, ...w.smallInits],
      input: g.inputs.map((v) => valueInfo(v, names.get(v)!)),
      output: g.outputs.map((v) => valueInfo(v, names.get(v)!)),
    },
    metadataProps: Object.entries(opts.metadata ?? {}).sort(([a], [b]) => (a < b ? -1 : 1)).map(([key, value]) => ({ key, value })),
  };
  let bytes = 0;
  writeFileAtomic(path, (fd) => {
    const out = batchedWriter(fd);
    bytes = writeModel(out.put, model, streamed);
    out.flush();
  });
  // data files of earlier versions of this model, now unreferenced
  for (const f of readdirSync(dirname(path))) if (f.startsWith(`${basename(path)}.`) && f.endsWith(".data") && f !== (dataPath && basename(dataPath))) rmSync(join(dirname(path), f), { force: true });
  const transposes = w.nodes.filter((n) => n.opType === "Transpose");
  return {
    path, bytes, ...(dataPath ? { dataPath } : {}), dataBytes, nodes: w.nodes.length, initializers: model.graph.initializer.length,
    transposes: { total: transposes.length, inBlocks: transposes.filter((n) => inBlockScope(n.name ?? "")).length },
  };
}
