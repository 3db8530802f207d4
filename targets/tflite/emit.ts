// The TFLite emitter: a table from IR op kind to TFLite operators, plus the writer. The graph it
// receives is legal for TFLite (targets/tflite/legality.ts): NHWC, DCR depth-to-space, int32
// gather indices, LayerNorm already decomposed; the emitter decides no layouts and rewrites
// nothing. Weights go inline in the flatbuffer, or (past the 2 GiB flatbuffer limit, or when
// asked) after it, addressed by Buffer.offset/size and streamed one tensor at a time.
import { storedBytes, type DType } from "../../src/ir/dtype.js";
import { readers, type ConstValue, type Graph, type Node, type Value } from "../../src/ir/graph.js";
import type { NodeOfKind } from "../../src/ir/rewrite.js";
import { batchedWriter, writeAll, writeFileAtomic } from "../../src/io/atomic.js";
import { tensorBytes } from "../../src/io/encode.js";
import { normAxis } from "../../src/kernels/tensor.js";
import type { OpKind } from "../../src/ops/index.js";
import { fail } from "../../src/diagnostics.js";
import { OP, PADDING, SCHEMA_VERSION, TENSOR_TYPE, type OpName, type OptionTableName, type OptionValues, type TflBuffer, type TflBufferToWrite, type TflModel, type TflOperator, type TflTensor } from "./schema.js";
import { operatorCounts } from "./parse.js";
import { serializeModel } from "./write.js";

export const TFLITE_TYPE_OF: Partial<Record<DType, number>> = { f32: TENSOR_TYPE.FLOAT32, f16: TENSOR_TYPE.FLOAT16, i32: TENSOR_TYPE.INT32, u8: TENSOR_TYPE.UINT8, i8: TENSOR_TYPE.INT8, i64: TENSOR_TYPE.INT64, bool: TENSOR_TYPE.BOOL };

/** Weights up to this size go inline; a flatbuffer cannot pass 2 GiB, and the builder holds it whole. */
const INLINE_LIMIT = 1 * 2 ** 30;
/** Appended weights start on this boundary (the schema's force_align for inline data). */
const ALIGN = 16;

export interface TfliteEmitOptions {
  /** "auto": weights after the flatbuffer when they would not fit inline; "always"/"never" force it */
  externalData: "auto" | "always" | "never";
  metadata?: Record<string, string>;
  onProgress?: (done: number, total: number) => void;
}

export interface TfliteEmitResult {
  path: string;
  bytes: number;
  /** true when weights were appended after the flatbuffer (Buffer.offset/size) */
  appended: boolean;
  operators: number;
  tensors: number;
  /** TRANSPOSE operators written, and those inside DiT blocks */
  transposes: { total: number; inBlocks: number };
}

class TfliteGraphWriter {
  readonly tensors: TflTensor[] = [];
  readonly buffers: TflBuffer[] = [{ kind: "empty" }];
  readonly operators: TflOperator[] = [];
  readonly codes: { builtinCode: number; version: number }[] = [];
  /** IR constants in buffer order, their data read when the file is written */
  readonly weights: { buffer: number; value: ConstValue }[] = [];
  private readonly codeIndex = new Map<string, number>();
  private readonly ids = new Map<Value, number>();
  private readonly constTensors = new Map<ConstValue, number>();
  private readonly smallConsts = new Map<string, number>();
  private readonly constByValue = new Map<Value, ConstValue>();
  private readonly folded = new Map<Value, ConstValue>();

  tensor(v: Value): number {
    const t = this.ids.get(v);
    if (t === undefined) throw new Error(`internal: %${v.id} has no TFLite tensor`);
    return t;
  }

  private addTensor(shape: readonly number[], dtype: DType, name: string, buffer = 0): number {
    const type = TFLITE_TYPE_OF[dtype];
    if (type === undefined) throw new Error(`internal: dtype ${dtype} reached the TFLite emitter`);
    this.tensors.push({ shape: [...shape], type, buffer, name });
    return this.tensors.length - 1;
  }

  /** The tensor for a value the graph computes (or a graph input). */
  define(v: Value, name: string): number {
    const t = this.addTensor(v.type.shape, v.type.dtype, name);
    this.ids.set(v, t);
    return t;
  }

  /** One tensor per constant, however many nodes load it; its data is written later. */
  defineConst(v: Value, c: ConstValue): void {
    let t = this.constTensors.get(c);
    if (t === undefined) {
      this.buffers.push({ kind: "empty" });
      t = this.addTensor(c.type.shape, c.type.dtype, c.source, this.buffers.length - 1);
      this.weights.push({ buffer: this.buffers.length - 1, value: c });
      this.constTensors.set(c, t);
    }
    this.ids.set(v, t);
    this.constByValue.set(v, c);
  }

  /** The constant behind a value, if it is one (folded scales included). */
  constantOf(v: Value): ConstValue | undefined {
    return this.folded.get(v) ?? this.constByValue.get(v);
  }

  /** A constant that becomes quantization parameters rather than a tensor of its own. */
  foldConst(v: Value, c: ConstValue): void {
    this.folded.set(v, c);
  }

  /** Marks a constant tensor as quantized: value = scale[c] · (q - zero_point) along `dimension`. */
  quantize(v: Value, scale: number[], dimension: number): void {
    this.tensors[this.tensor(v)]!.quantization = { scale, zeroPoint: scale.map(() => 0), quantizedDimension: dimension };
  }

  /** A small int32 constant the operator needs (shapes, axes, permutations), always inline. */
  int32(values: readonly number[], shape: readonly number[] = [values.length]): number {
    return this.small("i32", new Uint8Array(Int32Array.from(values).buffer), shape, `${values}`);
  }

  /** A float32 zero vector (the bias of a bias-free convolution), always inline. */
  zeros(n: number): number {
    return this.small("f32", new Uint8Array(4 * n), [n], "zeros");
  }

  private small(dtype: DType, data: Uint8Array, shape: readonly number[], key: string): number {
    const k = `${dtype}|${shape}|${key}`;
    let t = this.smallConsts.get(k);
    if (t === undefined) {
      this.buffers.push({ kind: "inline", data });
      t = this.addTensor(shape, dtype, `const_${dtype}_${this.smallConsts.size}`, this.buffers.length - 1);
      this.smallConsts.set(k, t);
    }
    return t;
  }

  /** An intermediate tensor the IR does not name (silu's sigmoid, say). */
  temp(like: Value, name: string): number {
    return this.addTensor(like.type.shape, like.type.dtype, name);
  }

  op(name: OpName, inputs: number[], outputs: number[], options?: { table: OptionTableName; values: OptionValues }, version = 1): void {
    const key = `${name}@${version}`;
    let opcodeIndex = this.codeIndex.get(key);
    if (opcodeIndex === undefined) {
      this.codes.push({ builtinCode: OP[name], version });
      this.codeIndex.set(key, (opcodeIndex = this.codes.length - 1));
    }
    this.operators.push({ opcodeIndex, inputs, outputs, ...(options ? { options } : {}) });
  }
}

type EmitFn<K extends OpKind> = (n: NodeOfKind<K>, w: TfliteGraphWriter) => void;
type AnyEmit = (n: Node, w: TfliteGraphWriter) => void;

const ins = (n: Node, w: TfliteGraphWriter) => n.inputs.map((v) => w.tensor(v));
const out = (n: Node, w: TfliteGraphWriter) => [w.tensor(n.outputs[0]!)];
const NO_ACT = { fused_activation_function: 0 };
/** An operator whose inputs and output are the node's, with its options table when it has one. */
const direct = (name: OpName, table?: OptionTableName, values: OptionValues = {}): AnyEmit => (n, w) => w.op(name, ins(n, w), out(n, w), table ? { table, values } : undefined);
const ADD_SUB = { ...NO_ACT, pot_scale_int16: true };
const reducer = (name: OpName): AnyEmit => (n, w) => {
  const a = (n as NodeOfKind<"reduce_mean">).attrs, rank = n.inputs[0]!.type.shape.length;
  w.op(name, [w.tensor(n.inputs[0]!), w.int32(a.axes.map((x) => normAxis(x, rank)))], out(n, w), { table: "ReducerOptions", values: { keep_dims: a.keepDims } });
};

/**
 * Operator versions as the converter sets them (LiteRT tools/versioning/op_version.cc): a runtime
 * too old for a feature refuses the model instead of running it wrongly.
 */
const FC_KEEP_NUM_DIMS = 5;
const DEQUANTIZE_FLOAT16 = 3;
const DEQUANTIZE_INT8_PER_CHANNEL = 5;

/** IR op -> TFLite operators. Every op the TFLite legality table admits has an entry. */
export const EMIT_TFLITE: { [K in OpKind]?: EmitFn<K> } = {
  add: direct("ADD", "AddOptions", ADD_SUB), sub: direct("SUB", "SubOptions", ADD_SUB), mul: direct("MUL", "MulOptions", NO_ACT), div: direct("DIV", "DivOptions", NO_ACT),
  pow: direct("POW", "PowOptions"), maximum: direct("MAXIMUM", "MaximumMinimumOptions"),
  sigmoid: direct("LOGISTIC"), tanh: direct("TANH"), exp: direct("EXP", "ExpOptions"), sqrt: direct("SQRT"), rsqrt: direct("RSQRT"),
  neg: direct("NEG", "NegOptions"), sin: direct("SIN"), cos: direct("COS", "CosOptions"),
  gelu_tanh: (n, w) => w.op("GELU", ins(n, w), out(n, w), { table: "GeluOptions", values: { approximate: true } }),
  // TFLite has no SiLU builtin: x * sigmoid(x)
  silu: (n, w) => {
    const s = w.temp(n.outputs[0]!, `${n.scope ?? "graph"}/silu_sigmoid_${n.outputs[0]!.id}`);
    w.op("LOGISTIC", ins(n, w), [s]);
    w.op("MUL", [w.tensor(n.inputs[0]!), s], out(n, w), { table: "MulOptions", values: NO_ACT });
  },
  matmul: (n, w) => w.op("BATCH_MATMUL", ins(n, w), out(n, w), { table: "BatchMatMulOptions", values: { adj_x: n.attrs.transposeA, adj_y: n.attrs.transposeB, asymmetric_quantize_inputs: false } }),
  // FULLY_CONNECTED takes the (out, in) weight as PyTorch stores it; keep_num_dims keeps (B, L, out)
  linear: (n, w) => {
    const [x, wt, b] = n.inputs;
    w.op("FULLY_CONNECTED", [w.tensor(x!), w.tensor(wt!), b ? w.tensor(b) : -1], out(n, w), {
      table: "FullyConnectedOptions", values: { ...NO_ACT, weights_format: 0, keep_num_dims: true, asymmetric_quantize_inputs: false },
    }, FC_KEEP_NUM_DIMS);
  },
  // beta is written even though it is 1: a missing SoftmaxOptions reads as beta = 0
  softmax: (n, w) => w.op("SOFTMAX", ins(n, w), out(n, w), { table: "SoftmaxOptions", values: { beta: 1 } }),
  reduce_mean: reducer("MEAN"), reduce_sum: reducer("SUM"), reduce_max: reducer("REDUCE_MAX"),
  reshape: (n, w) => w.op("RESHAPE", [w.tensor(n.inputs[0]!), w.int32(n.attrs.shape)], out(n, w), { table: "ReshapeOptions", values: { new_shape: n.attrs.shape } }),
  transpose: (n, w) => w.op("TRANSPOSE", [w.tensor(n.inputs[0]!), w.int32(n.attrs.perm)], out(n, w), { table: "TransposeOptions", values: {} }),
  slice: (n, w) => w.op("SLICE", [w.tensor(n.inputs[0]!), w.int32(n.attrs.begin), w.int32(n.attrs.size)], out(n, w), { table: "SliceOptions", values: {} }),
  concat: (n, w) => w.op("CONCATENATION", ins(n, w), out(n, w), { table: "ConcatenationOptions", values: { axis: normAxis(n.attrs.axis, n.inputs[0]!.type.shape.length), ...NO_ACT } }),
  // SPLIT cuts equal parts and takes the axis first; SPLIT_V takes sizes, and the axis last
  split: (n, w) => {
    const x = n.inputs[0]!, axis = normAxis(n.attrs.axis, x.type.shape.length), outs = n.outputs.map((v) => w.tensor(v));
    const k = n.attrs.sizes.length;
    if (n.attrs.sizes.every((s) => s === n.attrs.sizes[0])) w.op("SPLIT", [w.int32([axis], []), w.tensor(x)], outs, { table: "SplitOptions", values: { num_splits: k } });
    else w.op("SPLIT_V", [w.tensor(x), w.int32(n.attrs.sizes), w.int32([axis], [])], outs, { table: "SplitVOptions", values: { num_splits: k } });
  },
  gather: (n, w) => w.op("GATHER", ins(n, w), out(n, w), { table: "GatherOptions", values: { axis: normAxis(n.attrs.axis, n.inputs[0]!.type.shape.length), batch_dims: 0 } }),
  // f16 -> f32 is DEQUANTIZE (constant inputs are widened once, at load); u8 -> i32 is CAST
  cast: (n, w) => {
    if (n.inputs[0]!.type.dtype === "f16") return w.op("DEQUANTIZE", ins(n, w), out(n, w), { table: "DequantizeOptions", values: {} }, DEQUANTIZE_FLOAT16);
    w.op("CAST", ins(n, w), out(n, w), { table: "CastOptions", values: { in_data_type: TFLITE_TYPE_OF[n.inputs[0]!.type.dtype]!, out_data_type: TFLITE_TYPE_OF[n.attrs.to]! } });
  },
  // an INT8 tensor carrying its per-channel scales, widened once at load like a float16 weight
  dequantize: (n, w) => {
    const [q, s] = n.inputs;
    const scale = w.constantOf(s!);
    if (!w.constantOf(q!) || !scale) throw new Error("internal: TFLite dequantize needs constant int8 data and scales");
    w.quantize(q!, Array.from(scale.load().data as Float32Array), 0);
    w.op("DEQUANTIZE", [w.tensor(q!)], out(n, w), { table: "DequantizeOptions", values: {} }, DEQUANTIZE_INT8_PER_CHANNEL);
  },
  conv2d: (n, w) => {
    const [x, f, b] = n.inputs;
    w.op("CONV_2D", [w.tensor(x!), w.tensor(f!), b ? w.tensor(b) : zeroBias(w, f!.type.shape[0]!)], out(n, w), {
      table: "Conv2DOptions", values: { padding: PADDING.VALID, stride_w: n.attrs.stride[1], stride_h: n.attrs.stride[0], ...NO_ACT, dilation_w_factor: 1, dilation_h_factor: 1 },
    });
  },
  depthwise_conv2d: (n, w) => {
    const [x, f, b] = n.inputs;
    const C = x!.type.shape[3]!, CM = f!.type.shape[3]!;
    w.op("DEPTHWISE_CONV_2D", [w.tensor(x!), w.tensor(f!), b ? w.tensor(b) : zeroBias(w, CM)], out(n, w), {
      table: "DepthwiseConv2DOptions", values: { padding: PADDING.VALID, stride_w: n.attrs.stride[1], stride_h: n.attrs.stride[0], depth_multiplier: CM / C, ...NO_ACT, dilation_w_factor: 1, dilation_h_factor: 1 },
    });
  },
  pixel_shuffle: (n, w) => w.op("DEPTH_TO_SPACE", ins(n, w), out(n, w), { table: "DepthToSpaceOptions", values: { block_size: n.attrs.factor } }),
};

/** Convolutions always get a bias tensor: older kernels require three inputs. */
const zeroBias = (w: TfliteGraphWriter, n: number) => w.zeros(n);

function describe(g: Graph, metadata: Record<string, string>): { w: TfliteGraphWriter; model: TflModel<TflBufferToWrite> } {
  const w = new TfliteGraphWriter();
  for (const v of g.inputs) w.define(v, v.name!);
  // int8 scales live in their weight's quantization parameters, not in a tensor
  const readersOf = readers(g);
  const onlyScale = (v: Value) => (readersOf.get(v) ?? []).every((r) => r.kind === "dequantize" && r.inputs[1] === v && r.inputs[0] !== v);
  for (const n of g.nodes) {
    if (n.kind === "const") {
      if (onlyScale(n.outputs[0]!) && !g.outputs.includes(n.outputs[0]!)) w.foldConst(n.outputs[0]!, n.attrs.value);
      else w.defineConst(n.outputs[0]!, n.attrs.value);
      continue;
    }
    const emit = EMIT_TFLITE[n.kind] as AnyEmit | undefined;
    if (!emit) throw new Error(`internal: op ${n.kind} reached the TFLite emitter without a mapping (legality table out of date)`);
    n.outputs.forEach((v, i) => w.define(v, v.name && g.outputs.includes(v) ? v.name : `${n.scope ?? "graph"}/${n.kind}_${n.outputs[0]!.id}${n.outputs.length > 1 ? `:${i}` : ""}`));
    emit(n as never, w);
  }
  const meta = Object.entries(metadata).sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, value]) => {
    w.buffers.push({ kind: "inline", data: new TextEncoder().encode(value) });
    return { name, buffer: w.buffers.length - 1 };
  });
  const io = (vs: readonly Value[]) => vs.map((v) => ({ name: v.name!, tensor: w.tensor(v) }));
  const model: TflModel<TflBufferToWrite> = {
    version: SCHEMA_VERSION,
    operatorCodes: w.codes,
    subgraphs: [{ tensors: w.tensors, inputs: g.inputs.map((v) => w.tensor(v)), outputs: g.outputs.map((v) => w.tensor(v)), operators: w.operators, name: "main" }],
    description: "ditc: SnapGen++ DiT",
    buffers: w.buffers,
    metadata: meta,
    signatures: [{ key: "serving_default", inputs: io(g.inputs), outputs: io(g.outputs) }],
  };
  return { w, model };
}

export function emitTflite(g: Graph, path: string, opts: TfliteEmitOptions): TfliteEmitResult {
  const { w, model } = describe(g, opts.metadata ?? {});
  const sizes = w.weights.map(({ value }) => storedBytes(value.type));
  const weightBytes = sizes.reduce((a, b) => a + b, 0);
  const appended = opts.externalData === "always" || (opts.externalData === "auto" && weightBytes > INLINE_LIMIT);
  if (!appended && weightBytes > 2 ** 31 - 2 ** 24)
    throw fail("usage", { detail: `${path}: ${weightBytes} bytes of weights cannot sit inside a flatbuffer (2 GiB limit); use --external-data auto or always to append them after it.` });
  let written = 0;
  const load = (value: ConstValue) => {
    opts.onProgress?.(++written, w.weights.length);
    return tensorBytes(value.load(), value.type.dtype);
  };
  let bytes = 0;
  if (!appended) {
    // the weights' space is reserved in the flatbuffer and each weight written into the file as
    // it is loaded: no weight is copied into the builder, and one is in memory at a time
    w.weights.forEach(({ buffer }, i) => (model.buffers[buffer] = { kind: "reserved", size: sizes[i]! }));
    const holes = new Map<number, number>();
    // generous: untouched pages of the builder cost nothing, and a builder that grows copies itself
    const fb = serializeModel(model, weightBytes + 16 * w.weights.length + 512 * (model.subgraphs[0]!.tensors.length + model.subgraphs[0]!.operators.length) + (2 << 20), holes);
    const order = w.weights.map(({ buffer, value }, i) => ({ at: holes.get(buffer)!, value, size: sizes[i]! })).sort((a, b) => a.at - b.at);
    writeFileAtomic(path, (fd) => {
      const out = batchedWriter(fd);
      let pos = 0;
      for (const { at, value, size } of order) {
        out.put(fb.subarray(pos, at));
        const data = load(value);
        if (data.length !== size) throw new Error(`internal: TFLite weight ${value.source} has ${data.length} bytes, its type needs ${size}`);
        out.put(data);
        pos = at + size;
      }
      out.put(fb.subarray(pos));
      out.flush();
    });
    bytes = fb.length;
  } else {
    // offsets are u64 fields of fixed width: lay the file out with placeholders, then for real
    w.weights.forEach(({ buffer }, i) => (model.buffers[buffer] = { kind: "appended", offset: 2, size: sizes[i]! }));
    const fbSize = serializeModel(model).length;
    let at = align(fbSize);
    w.weights.forEach(({ buffer }, i) => {
      model.buffers[buffer] = { kind: "appended", offset: at, size: sizes[i]! };
      at = align(at + sizes[i]!);
    });
    const fb = serializeModel(model);
    if (fb.length !== fbSize) throw new Error("internal: the TFLite flatbuffer changed size when its buffer offsets were filled in");
    writeFileAtomic(path, (fd) => {
      writeAll(fd, fb);
      let pos = fb.length;
      for (const { buffer, value } of w.weights) {
        const b = model.buffers[buffer] as Extract<TflBuffer, { kind: "appended" }>;
        if (b.offset > pos) writeAll(fd, new Uint8Array(b.offset - pos));
        const data = load(value);
        writeAll(fd, data);
        pos = b.offset + data.length;
      }
      // XNNPACK may read up to 16 bytes past a weight's end
      writeAll(fd, new Uint8Array(align(pos) - pos + 16));
      bytes = align(pos) + 16;
    });
  }
  return { path, bytes, appended, operators: w.operators.length, tensors: w.tensors.length, transposes: operatorCounts(model).transposes };
}

const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;
