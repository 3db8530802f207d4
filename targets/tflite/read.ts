// The TFLite reader: a .tflite file into ditc's IR with the shared op table, so the
// reader-interpreter runs the same reference kernels on what the file says. Written from the
// builtin operators' definitions (schema.fbs and the LiteRT kernels' option semantics), not by
// inverting the emitter. Files are untrusted: the flatbuffer is bounds-checked (parse.ts), every
// tensor's declared size is compared with its buffer before anything is allocated, and each
// operator's declared output shapes must match what the op computes.
import { readSync } from "node:fs";
import { DitcError, fail } from "../../src/diagnostics.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import { BYTES_PER_ELEMENT, type DType } from "../../src/ir/dtype.js";
import { sameType, typeStr, type ConstValue, type Graph, type Value } from "../../src/ir/graph.js";
import { decodeF16 } from "../../src/kernels/fp16.js";
import { floatTensor, numel, type Tensor } from "../../src/kernels/tensor.js";
import { parseTflite } from "./parse.js";
import { OP_NAME, OPTIONS, PADDING, TENSOR_TYPE, type OpName, type OptionTableName, type OptionValues, type TflModel, type TflOperator, type TflTensor } from "./schema.js";

const DTYPE_OF_TFLITE: Record<number, DType> = { [TENSOR_TYPE.FLOAT32]: "f32", [TENSOR_TYPE.FLOAT16]: "f16", [TENSOR_TYPE.INT32]: "i32", [TENSOR_TYPE.UINT8]: "u8", [TENSOR_TYPE.INT8]: "i8", [TENSOR_TYPE.INT64]: "i64" };
const TYPE_NAME: Record<number, string> = Object.fromEntries(Object.entries(TENSOR_TYPE).map(([k, v]) => [v, k]));

export interface TfliteReadResult {
  graph: Graph;
  model: TflModel;
  close(): void;
}

class OpError extends Error {}
const need = (cond: unknown, problem: string): void => {
  if (!cond) throw new OpError(problem);
};

class Reader {
  readonly b = new GraphBuilder();
  private readonly values = new Map<number, Value>();
  private readonly consts = new Map<number, ConstValue>();
  constructor(readonly path: string, readonly model: TflModel, readonly tensors: TflTensor[], private readonly fd: number) {}

  bad(where: string, problem: string): Error {
    return fail("modelInvalid", { file: this.path, where, problem });
  }

  tensorInfo(i: number, where: string): TflTensor {
    const t = this.tensors[i];
    if (!t) throw this.bad(where, `refers to tensor ${i}; the subgraph has ${this.tensors.length}`);
    return t;
  }

  typeOf(i: number, where: string): { dtype: DType; shape: number[] } {
    const t = this.tensorInfo(i, where);
    const dtype = DTYPE_OF_TFLITE[t.type];
    if (!dtype) throw this.bad(`tensor ${i} "${t.name}"`, `has type ${TYPE_NAME[t.type] ?? t.type}, which ditc does not read (FLOAT32, FLOAT16, INT32, UINT8, INT8, INT64)`);
    if (t.shape.length > 8 || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw this.bad(`tensor ${i} "${t.name}"`, `has invalid shape [${t.shape}]`);
    if (t.sparse) throw this.bad(`tensor ${i} "${t.name}"`, "is sparse, which ditc does not read");
    // quantization is read on INT8 weights (DEQUANTIZE's input); activations stay float
    if (t.quantization && dtype !== "i8") throw this.bad(`tensor ${i} "${t.name}"`, `is ${TYPE_NAME[t.type]} with quantization parameters; ditc reads quantized INT8 weights only`);
    if (dtype === "i8" && !t.quantization) throw this.bad(`tensor ${i} "${t.name}"`, "is INT8 without quantization parameters");
    return { dtype, shape: t.shape };
  }

  /** The IR value of a tensor: computed earlier, a graph input, or a constant read from its buffer. */
  value(i: number, where: string): Value {
    const known = this.values.get(i);
    if (known) return known;
    const t = this.tensorInfo(i, where);
    const buf = this.model.buffers[t.buffer];
    if (t.buffer === 0 || !buf || buf.kind === "empty") {
      if (!buf) throw this.bad(`tensor ${i} "${t.name}"`, `refers to buffer ${t.buffer}; the model has ${this.model.buffers.length}`);
      throw this.bad(where, `reads tensor ${i} "${t.name}", which no graph input, constant or earlier operator defines`);
    }
    const type = this.typeOf(i, where);
    const bytes = type.shape.reduce((s, d) => s * BigInt(d), BigInt(BYTES_PER_ELEMENT[type.dtype]));
    const have = buf.kind === "inline" ? buf.data.length : buf.size;
    if (BigInt(have) !== bytes) throw this.bad(`tensor ${i} "${t.name}"`, `declares ${bytes} bytes (${type.dtype}[${type.shape}]) but its buffer ${t.buffer} holds ${have}`);
    const n = numel(type.shape);
    const load = (): Tensor => {
      let raw: Uint8Array;
      if (buf.kind === "inline") raw = buf.data.byteOffset % 8 === 0 ? buf.data : buf.data.slice();
      else {
        raw = new Uint8Array(buf.size);
        for (let got = 0; got < buf.size;) {
          const r = readSync(this.fd, raw, got, buf.size - got, buf.offset + got);
          if (r === 0) throw this.bad(`buffer ${t.buffer}`, "ended early");
          got += r;
        }
      }
      const ab = raw.buffer, off = raw.byteOffset;
      switch (type.dtype) {
        case "f32": return floatTensor(type.shape, new Float32Array(ab, off, n).slice());
        case "f16": return floatTensor(type.shape, decodeF16(new Uint16Array(ab, off, n)), "f16");
        case "i32": return { dtype: "i32", shape: type.shape, data: new Int32Array(ab, off, n).slice() };
        case "i64": return { dtype: "i64", shape: type.shape, data: new BigInt64Array(ab, off, n).slice() };
        case "i8": return { dtype: "i8", shape: type.shape, data: new Int8Array(ab, off, n).slice() };
        default: return { dtype: type.dtype, shape: type.shape, data: new Uint8Array(ab, off, n).slice() };
      }
    };
    const c: ConstValue = { type, source: t.name || `tensor ${i}`, load };
    const v = this.b.constant(c);
    this.values.set(i, v);
    this.consts.set(i, c);
    return v;
  }

  /** The integer contents of a constant operand (shapes, axes, permutations). */
  ints(i: number, where: string): number[] {
    const v = this.value(i, where), c = this.consts.get(i);
    need(c !== undefined, `operand tensor ${i} must be a constant`);
    need(v.type.dtype === "i32" || v.type.dtype === "i64", `operand tensor ${i} must be an int32 constant`);
    need(numel(v.type.shape) <= 1 << 16, `operand tensor ${i} is too large for a shape or axis list`);
    return Array.from(c!.load().data as ArrayLike<number | bigint>, Number);
  }

  define(i: number, v: Value, where: string): void {
    if (this.values.has(i)) throw this.bad(where, `writes tensor ${i}, which is already defined`);
    const declared = this.typeOf(i, where);
    if (!sameType(declared, v.type)) throw this.bad(where, `declares output tensor ${i} as ${typeStr(declared)}, the operator computes ${typeStr(v.type)}`);
    this.values.set(i, v);
  }

  input(i: number, name: string): void {
    const type = this.typeOf(i, `input "${name}"`);
    if (type.dtype !== "f32" && type.dtype !== "f16") throw this.bad(`input "${name}"`, `must be FLOAT32 or FLOAT16, not ${type.dtype}`);
    if (type.shape.some((d) => d <= 0)) throw this.bad(`input "${name}"`, `must have a static positive shape, got [${type.shape}]`);
    this.values.set(i, this.b.input(name, type));
  }
}

interface OpContext {
  r: Reader;
  op: TflOperator;
  where: string;
  /** operand i as an IR value (-1 and missing operands are undefined) */
  in(i: number): Value;
  opt(i: number): Value | undefined;
  ints(i: number): number[];
  /** an option field, checked to come from the table the operator expects */
  o<T extends number | boolean | readonly number[]>(name: string): T;
}

type Handler = (c: OpContext) => Value[];
type Binary = "add" | "sub" | "mul" | "div" | "pow" | "maximum";
type Unary = "sigmoid" | "tanh" | "exp" | "sqrt" | "rsqrt" | "neg" | "sin" | "cos";

const noActivation = (c: OpContext) => need(c.o<number>("fused_activation_function") === 0, `fused activation ${c.o<number>("fused_activation_function")} is not supported (ditc reads NONE)`);
const bin = (kind: Binary, fused: boolean): Handler => (c) => {
  if (fused) noActivation(c);
  return [c.r.b.op(kind, [c.in(0), c.in(1)], {})];
};
const un = (kind: Unary): Handler => (c) => [c.r.b.op(kind, [c.in(0)], {})];
const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);
const reducer = (kind: "reduce_mean" | "reduce_sum" | "reduce_max"): Handler => (c) => {
  const x = c.in(0);
  return [c.r.b.op(kind, [x], { axes: c.ints(1).map((a) => norm(a, x.type.shape.length)), keepDims: c.o<boolean>("keep_dims") })];
};

/** TensorFlow's SAME padding: as many outputs as strides fit, the extra pad at the end. */
function padsFor(padding: number, [H, W]: number[], [KH, KW]: number[], [sh, sw]: number[]): [number, number, number, number] {
  if (padding === PADDING.VALID) return [0, 0, 0, 0];
  need(padding === PADDING.SAME, `padding ${padding} is neither SAME nor VALID`);
  const total = (n: number, k: number, s: number) => Math.max((Math.ceil(n / s) - 1) * s + k - n, 0);
  const ph = total(H!, KH!, sh!), pw = total(W!, KW!, sw!);
  return [Math.floor(ph / 2), Math.floor(pw / 2), ph - Math.floor(ph / 2), pw - Math.floor(pw / 2)];
}

function convAttrs(c: OpContext, x: Value, w: Value, filterHW: [number, number]) {
  noActivation(c);
  need(c.o<number>("dilation_w_factor") === 1 && c.o<number>("dilation_h_factor") === 1, "dilated convolutions are not supported");
  const stride: [number, number] = [c.o<number>("stride_h"), c.o<number>("stride_w")];
  need(stride.every((s) => Number.isInteger(s) && s > 0), `stride [${stride}] must be positive`);
  need(w.type.shape.length === 4 && x.type.shape.length === 4, "convolutions take rank-4 input and filter");
  return { stride, pads: padsFor(c.o<number>("padding"), x.type.shape.slice(1, 3), filterHW, stride) };
}

/** Which options table each operator reads; ops without options take none. */
const TABLE_OF: Partial<Record<OpName, OptionTableName>> = {
  ADD: "AddOptions", SUB: "SubOptions", MUL: "MulOptions", DIV: "DivOptions", GELU: "GeluOptions", BATCH_MATMUL: "BatchMatMulOptions",
  FULLY_CONNECTED: "FullyConnectedOptions", SOFTMAX: "SoftmaxOptions", MEAN: "ReducerOptions", SUM: "ReducerOptions", REDUCE_MAX: "ReducerOptions",
  RESHAPE: "ReshapeOptions", CONCATENATION: "ConcatenationOptions", SPLIT: "SplitOptions", SPLIT_V: "SplitVOptions", GATHER: "GatherOptions",
  CAST: "CastOptions", CONV_2D: "Conv2DOptions", DEPTHWISE_CONV_2D: "DepthwiseConv2DOptions", DEPTH_TO_SPACE: "DepthToSpaceOptions",
  // tables with no fields, which converters write anyway
  TRANSPOSE: "TransposeOptions", SLICE: "SliceOptions", EXP: "ExpOptions", NEG: "NegOptions", POW: "PowOptions", MAXIMUM: "MaximumMinimumOptions", COS: "CosOptions", DEQUANTIZE: "DequantizeOptions",
};

/** TFLite builtin operator -> IR ops. */
const READ_TFLITE: Partial<Record<OpName, Handler>> = {
  ADD: bin("add", true), SUB: bin("sub", true), MUL: bin("mul", true), DIV: bin("div", true), POW: bin("pow", false), MAXIMUM: bin("maximum", false),
  LOGISTIC: un("sigmoid"), TANH: un("tanh"), EXP: un("exp"), SQRT: un("sqrt"), RSQRT: un("rsqrt"), NEG: un("neg"), SIN: un("sin"), COS: un("cos"),
  GELU: (c) => {
    need(c.o<boolean>("approximate"), "GELU with approximate=false (the erf form) is not supported; ditc's kernels have the tanh form");
    return [c.r.b.op("gelu_tanh", [c.in(0)], {})];
  },
  BATCH_MATMUL: (c) => [c.r.b.op("matmul", [c.in(0), c.in(1)], { transposeA: c.o<boolean>("adj_x"), transposeB: c.o<boolean>("adj_y") })],
  FULLY_CONNECTED: (c) => {
    noActivation(c);
    need(c.o<number>("weights_format") === 0, "shuffled FULLY_CONNECTED weights are not supported");
    let x = c.in(0);
    const w = c.in(1), bias = c.opt(2);
    need(w.type.shape.length === 2, `weights must be (out, in), got [${w.type.shape}]`);
    const inF = w.type.shape[1]!;
    // without keep_num_dims the input is flattened to rows of inF features
    if (!c.o<boolean>("keep_num_dims") && x.type.shape.length !== 2) {
      need(inF > 0 && numel(x.type.shape) % inF === 0, `input [${x.type.shape}] does not split into rows of ${inF}`);
      x = c.r.b.op("reshape", [x], { shape: [numel(x.type.shape) / inF, inF] });
    }
    return [c.r.b.op("linear", bias ? [x, w, bias] : [x, w], {})];
  },
  SOFTMAX: (c) => {
    let x = c.in(0);
    const beta = c.o<number>("beta");
    if (beta !== 1) x = c.r.b.op("mul", [x, c.r.b.tensorConstant("softmax beta", floatTensor([1], Float32Array.of(beta), x.type.dtype as "f32" | "f16"))], {});
    return [c.r.b.op("softmax", [x], { axis: -1 })];
  },
  MEAN: reducer("reduce_mean"), SUM: reducer("reduce_sum"), REDUCE_MAX: reducer("reduce_max"),
  RESHAPE: (c) => {
    const x = c.in(0);
    const target = c.op.inputs.length > 1 && c.op.inputs[1]! >= 0 ? c.ints(1) : [...c.o<readonly number[]>("new_shape")];
    need(target.filter((d) => d === -1).length <= 1 && target.every((d) => d >= -1), `RESHAPE target [${target}] is invalid`);
    const known = target.filter((d) => d !== -1).reduce((p, d) => p * d, 1), total = numel(x.type.shape);
    need(known > 0 && total % known === 0, `RESHAPE target [${target}] does not fit ${total} elements`);
    return [c.r.b.op("reshape", [x], { shape: target.map((d) => (d === -1 ? total / known : d)) })];
  },
  TRANSPOSE: (c) => [c.r.b.op("transpose", [c.in(0)], { perm: c.ints(1) })],
  SLICE: (c) => {
    const x = c.in(0), begin = c.ints(1), size = c.ints(2);
    return [c.r.b.op("slice", [x], { begin, size: size.map((s, i) => (s === -1 ? (x.type.shape[i] ?? 0) - (begin[i] ?? 0) : s)) })];
  },
  CONCATENATION: (c) => {
    noActivation(c);
    return [c.r.b.op("concat", c.op.inputs.map((_, i) => c.in(i)), { axis: c.o<number>("axis") })];
  },
  SPLIT: (c) => {
    const [axis] = c.ints(0), x = c.in(1), k = c.o<number>("num_splits");
    need(axis !== undefined && k > 0 && k === c.op.outputs.length, `num_splits ${k} must equal the ${c.op.outputs.length} outputs`);
    const a = norm(axis!, x.type.shape.length), d = x.type.shape[a] ?? 0;
    need(d % k === 0, `axis ${a} (${d}) does not split into ${k} equal parts`);
    return c.r.b.add("split", [x], { axis: a, sizes: Array<number>(k).fill(d / k) });
  },
  SPLIT_V: (c) => {
    const x = c.in(0), sizes = c.ints(1), [axis] = c.ints(2);
    need(axis !== undefined && sizes.length === c.op.outputs.length, `${sizes.length} sizes for ${c.op.outputs.length} outputs`);
    const a = norm(axis!, x.type.shape.length), rest = (x.type.shape[a] ?? 0) - sizes.filter((s) => s !== -1).reduce((p, s) => p + s, 0);
    return c.r.b.add("split", [x], { axis: a, sizes: sizes.map((s) => (s === -1 ? rest : s)) });
  },
  GATHER: (c) => {
    need(c.o<number>("batch_dims") === 0, "GATHER with batch_dims is not supported");
    return [c.r.b.op("gather", [c.in(0), c.in(1)], { axis: c.o<number>("axis") })];
  },
  CAST: (c) => {
    const to = c.r.typeOf(c.op.outputs[0]!, c.where).dtype;
    need(to === "f32" || to === "f16" || to === "i32", `CAST to ${to} is not supported (FLOAT32, FLOAT16, INT32)`);
    return [c.r.b.op("cast", [c.in(0)], { to })];
  },
  DEQUANTIZE: (c) => {
    const x = c.in(0);
    if (x.type.dtype === "i8") {
      // value = scale[c] · (q - zero_point[c]) along quantized_dimension; ditc reads symmetric (zero point 0) forms
      const q = c.r.tensorInfo(c.op.inputs[0]!, c.where).quantization!, rows = x.type.shape[0] ?? 1;
      need(q.zeroPoint.every((z) => z === 0), "asymmetric int8 (a non-zero zero point) is not supported");
      need(q.scale.length === 1 || (q.quantizedDimension === 0 && q.scale.length === rows), `${q.scale.length} scales on dimension ${q.quantizedDimension} do not fit a per-tensor or axis-0 (${rows} rows) quantization`);
      need(q.scale.every((s) => Number.isFinite(s) && s > 0), "scales must be finite and positive");
      const scale = Float32Array.from({ length: rows }, (_, k) => q.scale[q.scale.length === 1 ? 0 : k]!);
      return [c.r.b.op("dequantize", [x, c.r.b.tensorConstant(`tensor ${c.op.inputs[0]} scales`, floatTensor([rows], scale))], {})];
    }
    need(x.type.dtype === "f16", `DEQUANTIZE of ${x.type.dtype} is not supported (ditc reads FLOAT16 and INT8)`);
    return [c.r.b.op("cast", [x], { to: "f32" })];
  },
  CONV_2D: (c) => {
    const x = c.in(0), w = c.in(1), bias = c.opt(2);
    const a = convAttrs(c, x, w, [w.type.shape[1]!, w.type.shape[2]!]);
    const I = w.type.shape[3]!, C = x.type.shape[3]!;
    need(I > 0 && C % I === 0, `filter takes ${I} channels per group, the input has ${C}`);
    return [c.r.b.op("conv2d", bias ? [x, w, bias] : [x, w], { ...a, groups: C / I, layout: "NHWC" })];
  },
  DEPTHWISE_CONV_2D: (c) => {
    const x = c.in(0), w = c.in(1), bias = c.opt(2);
    const a = convAttrs(c, x, w, [w.type.shape[1]!, w.type.shape[2]!]);
    const C = x.type.shape[3]!, M = c.o<number>("depth_multiplier");
    need(M === 0 || w.type.shape[3] === C * M, `depth_multiplier ${M} disagrees with the filter's ${w.type.shape[3]} channels for ${C} inputs`);
    return [c.r.b.op("depthwise_conv2d", bias ? [x, w, bias] : [x, w], a)];
  },
  DEPTH_TO_SPACE: (c) => [c.r.b.op("pixel_shuffle", [c.in(0)], { factor: c.o<number>("block_size"), layout: "NHWC", order: "DCR" })],
};

function opName(model: TflModel, op: TflOperator, where: string, r: Reader): OpName {
  const code = model.operatorCodes[op.opcodeIndex];
  if (!code) throw r.bad(where, `has opcode_index ${op.opcodeIndex}; the model lists ${model.operatorCodes.length} operator codes`);
  if (code.custom) throw r.bad(where, "is a custom operator, which ditc does not read");
  const name = OP_NAME[code.builtinCode];
  if (!name || !READ_TFLITE[name]) throw r.bad(where, `has builtin code ${code.builtinCode}${name ? ` (${name})` : ""}, which ditc does not read (it reads ${Object.keys(READ_TFLITE).join(", ")})`);
  return name;
}

export function readTflite(path: string): TfliteReadResult {
  const parsed = parseTflite(path);
  try {
    const { model } = parsed;
    const g = model.subgraphs[0];
    if (model.version !== 3) throw fail("modelInvalid", { file: path, where: "Model.version", problem: `is ${model.version}; ditc reads schema version 3` });
    if (!g) throw fail("modelInvalid", { file: path, where: "Model.subgraphs", problem: "is empty" });
    const r = new Reader(path, model, g.tensors, parsed.fd);
    const sig = model.signatures.find((s) => s.key === "serving_default") ?? model.signatures[0];
    const nameOf = (t: number, list: { name: string; tensor: number }[] | undefined) => list?.find((m) => m.tensor === t)?.name ?? r.tensorInfo(t, "subgraph").name;
    for (const t of g.inputs) r.input(t, nameOf(t, sig?.inputs));
    g.operators.forEach((op, k) => {
      const where = `operator ${k}`;
      const name = opName(model, op, where, r);
      const here = `operator ${k} (${name})`;
      if (op.unknownOptions !== undefined) throw r.bad(here, `has options of union type ${op.unknownOptions}, not the ${TABLE_OF[name] ?? "none"} it takes`);
      const table = TABLE_OF[name];
      if (op.options && op.options.table !== table) throw r.bad(here, `carries ${op.options.table}; ${name} takes ${table ?? "no options"}`);
      const values: OptionValues = op.options?.values ?? defaults(table);
      const ctx: OpContext = {
        r, op, where: here,
        in: (i) => {
          const t = op.inputs[i];
          need(t !== undefined && t >= 0, `operand ${i} is missing`);
          return r.value(t!, here);
        },
        opt: (i) => (op.inputs[i] === undefined || op.inputs[i]! < 0 ? undefined : r.value(op.inputs[i]!, here)),
        ints: (i) => {
          const t = op.inputs[i];
          need(t !== undefined && t >= 0, `operand ${i} is missing`);
          return r.ints(t!, here);
        },
        o: <T,>(f: string) => values[f] as T,
      };
      let outs: Value[];
      try {
        outs = READ_TFLITE[name]!(ctx);
      } catch (e) {
        if (e instanceof OpError) throw r.bad(here, e.message);
        // the IR builder's type check names the op; the reader adds the operator it came from
        if (e instanceof DitcError && e.key === "opType") throw r.bad(here, e.message.replace(/^E\d+ /, ""));
        throw e;
      }
      if (op.outputs.length !== outs.length) throw r.bad(here, `declares ${op.outputs.length} outputs, the operator gives ${outs.length}`);
      op.outputs.forEach((t, i) => r.define(t, outs[i]!, here));
    });
    const outputs = g.outputs.map((t) => {
      const v = r.value(t, "subgraph outputs");
      v.name = nameOf(t, sig?.outputs);
      return v;
    });
    if (!outputs.length) throw fail("modelInvalid", { file: path, where: "subgraph", problem: "declares no outputs" });
    return { graph: r.b.finish(outputs), model, close: () => parsed.close() };
  } catch (e) {
    parsed.close();
    throw e;
  }
}

function defaults(table: OptionTableName | undefined): OptionValues {
  const v: OptionValues = {};
  if (!table) return v;
  for (const f of OPTIONS[table].fields) {
    const [name, type, dflt] = f as readonly [string, string, (number | boolean)?];
    v[name] = dflt ?? (type === "bool" ? false : type === "i32[]" ? [] : 0);
  }
  return v;
}

