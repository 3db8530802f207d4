// The CoreML emitter: a table from IR op kind to MIL operations, and the .mlpackage writer
// (Manifest.json, Data/com.apple.CoreML/model.mlmodel, Data/com.apple.CoreML/weights/weight-*.bin).
// Layout and legality were settled by the coreml pipeline; this file maps and writes.
// Weights stream into content-named weight files one tensor at a time; palettized weights become
// constexpr_lut_to_dense in the iOS16/17 attribute form (docs/formats/coreml.md).
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tempPathFor, writeAll, writeFileAtomic } from "../../src/io/atomic.js";
import { fail } from "../../src/diagnostics.js";
import { tensorBytes } from "../../src/io/encode.js";
import type { DType } from "../../src/ir/dtype.js";
import { producers, type Graph, type Node, type Value } from "../../src/ir/graph.js";
import type { NodeOfKind } from "../../src/ir/rewrite.js";
import { numel, type Tensor } from "../../src/kernels/tensor.js";
import type { OpKind } from "../../src/ops/index.js";
import { BLOB_DTYPE, BlobFolderWriter } from "./blob.js";
import { ARRAY_DTYPE, DEPLOYMENT, MIL_DTYPE, encodeCoremlModel, type Deployment, type MilOperation, type MilTensorType, type MilValue } from "./proto.js";
import { DITC_VERSION } from "../../src/version.js";

const weightFile = (name: string) => `@model_path/weights/${name}`;
const MIL_OF: Partial<Record<DType, number>> = { f32: MIL_DTYPE.FLOAT32, f16: MIL_DTYPE.FLOAT16, i32: MIL_DTYPE.INT32, u8: MIL_DTYPE.UINT8, bool: MIL_DTYPE.BOOL };
const BLOB_OF: Partial<Record<DType, number>> = { f32: BLOB_DTYPE.Float32, f16: BLOB_DTYPE.Float16, u8: BLOB_DTYPE.UInt8 };
const CAST_NAME: Partial<Record<DType, string>> = { f32: "fp32", f16: "fp16", i32: "int32" };

export function tensorType(dtype: number, shape: readonly number[]): MilTensorType {
  return { dataType: dtype, rank: shape.length, dimensions: shape.map((size) => ({ constant: { size } })) };
}

/** MIL identifiers are [A-Za-z_][A-Za-z0-9_@]*. */
function sanitize(s: string): string {
  const t = s.replace(/[^A-Za-z0-9_@]+/g, "_");
  return /^[A-Za-z_]/.test(t) ? t : `v_${t}`;
}

type Param = { f32: number | number[] } | { f16: number | number[] } | { i32: number | number[] } | { bool: boolean | boolean[] } | { str: string } | { u32: number[] };

/** An immediate value of a small parameter. */
function immediate(p: Param): MilValue {
  const arr = <T,>(v: T | T[]) => (Array.isArray(v) ? v : [v]);
  const shapeOf = (v: unknown) => (Array.isArray(v) ? [v.length] : []);
  if ("str" in p) return { type: { tensorType: tensorType(MIL_DTYPE.STRING, []) }, immediateValue: { tensor: { strings: { values: [p.str] } } } };
  if ("bool" in p) return { type: { tensorType: tensorType(MIL_DTYPE.BOOL, shapeOf(p.bool)) }, immediateValue: { tensor: { bools: { values: arr(p.bool) } } } };
  if ("i32" in p) return { type: { tensorType: tensorType(MIL_DTYPE.INT32, shapeOf(p.i32)) }, immediateValue: { tensor: { ints: { values: arr(p.i32) } } } };
  if ("u32" in p) return { type: { tensorType: tensorType(MIL_DTYPE.UINT32, [p.u32.length]) }, immediateValue: { tensor: { bytes: { values: new Uint8Array(Uint32Array.from(p.u32).buffer) } } } };
  if ("f32" in p) return { type: { tensorType: tensorType(MIL_DTYPE.FLOAT32, shapeOf(p.f32)) }, immediateValue: { tensor: { floats: { values: arr(p.f32) } } } };
  const v = arr(p.f16);
  return { type: { tensorType: tensorType(MIL_DTYPE.FLOAT16, shapeOf(p.f16)) }, immediateValue: { tensor: { bytes: { values: tensorBytes({ dtype: "f16", shape: [v.length], data: Float32Array.from(v) }, "f16") } } } };
}

const floatParam = (dtype: DType, x: number | number[]): Param => (dtype === "f16" ? { f16: x } : { f32: x });

class MilWriter {
  readonly ops: MilOperation[] = [];
  private readonly names = new Map<Value, string>();
  private readonly used = new Set<string>();
  private readonly emittedConsts = new Set<Value>();
  private readonly params = new Map<string, string>();
  constructor(private readonly prod: Map<Value, Node>, private readonly blobs: BlobFolderWriter) {}

  private claim(want: string): string {
    let n = sanitize(want);
    for (let k = 1; this.used.has(n); k++) n = `${sanitize(want)}_${k}`;
    this.used.add(n);
    return n;
  }

  nameOf(v: Value, hint?: string): string {
    let n = this.names.get(v);
    if (!n) this.names.set(v, (n = this.claim(hint ?? v.name ?? `v${v.id}`)));
    return n;
  }

  /** The MIL name of an operand; a constant is written (once) at its first use. */
  in(v: Value): string {
    const p = this.prod.get(v);
    if (p?.kind === "const" && !this.emittedConsts.has(v)) {
      this.emittedConsts.add(v);
      const c = p.attrs.value;
      this.constOp(this.nameOf(v, c.source), c.type.dtype, c.type.shape, c.load());
    }
    return this.nameOf(v);
  }

  /** A const op: blob for weights (>= 10 elements, as coremltools does), immediate otherwise. */
  constOp(name: string, dtype: DType, shape: readonly number[], t: Tensor): void {
    let val: MilValue;
    const type = { tensorType: tensorType(MIL_OF[dtype]!, shape) };
    if (BLOB_OF[dtype] !== undefined && numel(shape) >= 10) val = { type, blobFileValue: this.blobs.write(BLOB_OF[dtype]!, tensorBytes(t, dtype)) };
    else if (dtype === "i32") val = { type, immediateValue: { tensor: { ints: { values: Array.from(t.data as Int32Array) } } } };
    else if (dtype === "f32") val = { type, immediateValue: { tensor: { floats: { values: Array.from(t.data as Float32Array) } } } };
    else val = { type, immediateValue: { tensor: { bytes: { values: tensorBytes(t, dtype) } } } };
    this.ops.push({ type: "const", attributes: { name: immediate({ str: name }), val }, outputs: [{ name, type }] });
  }

  /**
   * A small constant parameter of an op, as a const op. Equal parameters (the same flag, shape,
   * axes, equation) are one const op that every op using them names, as for any constant; its
   * name is the parameter's (`axis`, `axis_1`, …), short because every op using it repeats it.
   */
  param(key: string, p: Param): string {
    const k = JSON.stringify(p);
    const seen = this.params.get(k);
    if (seen) return seen;
    const name = this.claim(key);
    const val = immediate(p);
    this.ops.push({ type: "const", attributes: { name: immediate({ str: name }), val }, outputs: [{ name, type: val.type! }] });
    this.params.set(k, name);
    return name;
  }

  op(type: string, name: string, inputs: Record<string, string | string[]>, outputs: readonly Value[]): void {
    const args = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, { arguments: (Array.isArray(v) ? v : [v]).map((n) => ({ name: n })) }]));
    this.ops.push({
      type,
      inputs: args,
      attributes: { name: immediate({ str: name }) },
      outputs: outputs.map((o, i) => ({ name: i === 0 ? name : this.nameOf(o), type: { tensorType: tensorType(MIL_OF[o.type.dtype]!, o.type.shape) } })),
    });
  }

  raw(op: MilOperation): void {
    this.ops.push(op);
  }
}

type MilEmit<K extends OpKind> = (n: NodeOfKind<K>, w: MilWriter, name: string) => void;
type AnyMilEmit = (n: Node, w: MilWriter, name: string) => void;

const same = (type: string): AnyMilEmit => (n, w, name) => w.op(type, name, n.inputs.length === 1 ? { x: w.in(n.inputs[0]!) } : { x: w.in(n.inputs[0]!), y: w.in(n.inputs[1]!) }, n.outputs);
const dt = (n: Node) => n.outputs[0]!.type.dtype;

/** IR op -> MIL operations (parameter names as in coremltools' op definitions). */
export const EMIT_MIL: { [K in OpKind]?: MilEmit<K> } = {
  add: same("add"), sub: same("sub"), mul: same("mul"), div: same("real_div"), maximum: same("maximum"), pow: same("pow"),
  sigmoid: same("sigmoid"), tanh: same("tanh"), exp: same("exp"), sqrt: same("sqrt"), sin: same("sin"), cos: same("cos"), silu: same("silu"),
  gelu_tanh: (n, w, name) => w.op("gelu", name, { x: w.in(n.inputs[0]!), mode: w.param("mode", { str: "TANH_APPROXIMATION" }) }, n.outputs),
  rsqrt: (n, w, name) => w.op("rsqrt", name, { x: w.in(n.inputs[0]!), epsilon: w.param("epsilon", floatParam(dt(n), 0)) }, n.outputs),
  neg: (n, w, name) => w.op("mul", name, { x: w.in(n.inputs[0]!), y: w.param("minus_one", floatParam(dt(n), -1)) }, n.outputs),
  matmul: (n, w, name) => w.op("matmul", name, {
    x: w.in(n.inputs[0]!), y: w.in(n.inputs[1]!), transpose_x: w.param("transpose_x", { bool: n.attrs.transposeA }), transpose_y: w.param("transpose_y", { bool: n.attrs.transposeB }),
  }, n.outputs),
  linear: (n, w, name) => w.op("linear", name, { x: w.in(n.inputs[0]!), weight: w.in(n.inputs[1]!), ...(n.inputs[2] ? { bias: w.in(n.inputs[2]) } : {}) }, n.outputs),
  conv2d: (n, w, name) => {
    const [t, l, b, r] = n.attrs.pads;
    w.op("conv", name, {
      x: w.in(n.inputs[0]!), weight: w.in(n.inputs[1]!), ...(n.inputs[2] ? { bias: w.in(n.inputs[2]) } : {}),
      strides: w.param("strides", { i32: n.attrs.stride }), pad_type: w.param("pad_type", { str: "custom" }),
      pad: w.param("pad", { i32: [t, b, l, r] }), dilations: w.param("dilations", { i32: [1, 1] }), groups: w.param("groups", { i32: n.attrs.groups }),
    }, n.outputs);
  },
  softmax: (n, w, name) => w.op("softmax", name, { x: w.in(n.inputs[0]!), axis: w.param("axis", { i32: n.attrs.axis }) }, n.outputs),
  layer_norm: (n, w, name) => w.op("layer_norm", name, {
    x: w.in(n.inputs[0]!), axes: w.param("axes", { i32: [n.attrs.axis] }),
    ...(n.inputs[1] ? { gamma: w.in(n.inputs[1]), beta: w.in(n.inputs[2]!) } : {}), epsilon: w.param("epsilon", floatParam(dt(n), n.attrs.eps)),
  }, n.outputs),
  reduce_sum: (n, w, name) => w.op("reduce_sum", name, { x: w.in(n.inputs[0]!), axes: w.param("axes", { i32: n.attrs.axes }), keep_dims: w.param("keep_dims", { bool: n.attrs.keepDims }) }, n.outputs),
  reduce_mean: (n, w, name) => w.op("reduce_mean", name, { x: w.in(n.inputs[0]!), axes: w.param("axes", { i32: n.attrs.axes }), keep_dims: w.param("keep_dims", { bool: n.attrs.keepDims }) }, n.outputs),
  reduce_max: (n, w, name) => w.op("reduce_max", name, { x: w.in(n.inputs[0]!), axes: w.param("axes", { i32: n.attrs.axes }), keep_dims: w.param("keep_dims", { bool: n.attrs.keepDims }) }, n.outputs),
  reshape: (n, w, name) => w.op("reshape", name, { x: w.in(n.inputs[0]!), shape: w.param("shape", { i32: n.attrs.shape }) }, n.outputs),
  transpose: (n, w, name) => w.op("transpose", name, { x: w.in(n.inputs[0]!), perm: w.param("perm", { i32: n.attrs.perm }) }, n.outputs),
  slice: (n, w, name) => w.op("slice_by_index", name, {
    x: w.in(n.inputs[0]!), begin: w.param("begin", { i32: n.attrs.begin }), end: w.param("end", { i32: n.attrs.begin.map((b, i) => b + n.attrs.size[i]!) }),
  }, n.outputs),
  concat: (n, w, name) => w.op("concat", name, { values: n.inputs.map((v) => w.in(v)), axis: w.param("axis", { i32: n.attrs.axis }), interleave: w.param("interleave", { bool: false }) }, n.outputs),
  split: (n, w, name) => w.op("split", name, { x: w.in(n.inputs[0]!), split_sizes: w.param("split_sizes", { i32: n.attrs.sizes }), axis: w.param("axis", { i32: n.attrs.axis }) }, n.outputs),
  gather: (n, w, name) => w.op("gather", name, {
    x: w.in(n.inputs[0]!), indices: w.in(n.inputs[1]!), axis: w.param("axis", { i32: n.attrs.axis }),
    batch_dims: w.param("batch_dims", { i32: 0 }), validate_indices: w.param("validate_indices", { bool: false }),
  }, n.outputs),
  cast: (n, w, name) => w.op("cast", name, { x: w.in(n.inputs[0]!), dtype: w.param("dtype", { str: CAST_NAME[n.attrs.to]! }) }, n.outputs),
  einsum: (n, w, name) => w.op("einsum", name, { values: n.inputs.map((v) => w.in(v)), equation: w.param("equation", { str: n.attrs.equation }) }, n.outputs),
  pixel_shuffle: (n, w, name) => w.op("pixel_shuffle", name, { x: w.in(n.inputs[0]!), upscale_factor: w.param("upscale_factor", { i32: n.attrs.factor }) }, n.outputs),
};

/**
 * constexpr_lut_to_dense. iOS16/17 form (CoreML7): parameters are attributes, indices a flat
 * packed uint8 array plus a uint32 shape. iOS18 form (CoreML8): parameters are input bindings,
 * indices a uint4/uint8 tensor shaped like the weight, the LUT [1, …, 1, K, 1] (docs/formats/coreml.md).
 */
function emitLut(n: NodeOfKind<"lut_to_dense">, w: MilWriter, name: string, prod: Map<Value, Node>, blobs: BlobFolderWriter, deployment: Deployment): void {
  const [iv, lv] = n.inputs as [Value, Value];
  const ic = prod.get(iv), lc = prod.get(lv);
  if (ic?.kind !== "const" || lc?.kind !== "const") throw new Error("internal: lut_to_dense operands must be constants for CoreML");
  const shape = n.outputs[0]!.type.shape;
  const packed = tensorBytes(ic.attrs.value.load(), iv.type.dtype); // u4: two per byte, low nibble first; u8: bytes
  const lut = lc.attrs.value.load();
  const lutDtype = lv.type.dtype;
  const outType = { tensorType: tensorType(MIL_OF[n.outputs[0]!.type.dtype]!, shape) };
  const groups = lv.type.shape.length === 2 ? lv.type.shape[0]! : 1;
  if (groups > 1 && deployment !== "iOS18") throw fail("usage", { detail: `${name}: per-grouped-channel LUTs need the iOS18 form; compile with --deployment iOS18 or without --lut-group-size.` });
  if (deployment === "iOS18") {
    const u4 = iv.type.dtype === "u4", count = numel(shape);
    const indices: MilValue = {
      type: { tensorType: tensorType(u4 ? MIL_DTYPE.UINT4 : MIL_DTYPE.UINT8, shape) },
      blobFileValue: blobs.write(u4 ? BLOB_DTYPE.UInt4 : BLOB_DTYPE.UInt8, packed, u4 ? (8 - ((count * 4) % 8)) % 8 : 0),
    };
    const lutShape = [...shape.map((_, a) => (a === 0 ? groups : 1)), lv.type.shape[lv.type.shape.length - 1]!, 1];
    const lutVal: MilValue = { type: { tensorType: tensorType(MIL_OF[lutDtype]!, lutShape) }, blobFileValue: blobs.write(BLOB_OF[lutDtype]!, tensorBytes(lut, lutDtype)) };
    w.raw({ type: "constexpr_lut_to_dense", inputs: { indices: { arguments: [{ value: indices }] }, lut: { arguments: [{ value: lutVal }] } }, attributes: { name: immediate({ str: name }) }, outputs: [{ name, type: outType }] });
    return;
  }
  const indices: MilValue = { type: { tensorType: tensorType(MIL_DTYPE.UINT8, [packed.length]) }, blobFileValue: blobs.write(BLOB_DTYPE.UInt8, packed) };
  const lutVal: MilValue = { type: { tensorType: tensorType(MIL_OF[lutDtype]!, [numel(lut.shape)]) }, blobFileValue: blobs.write(BLOB_OF[lutDtype]!, tensorBytes(lut, lutDtype)) };
  w.raw({
    type: "constexpr_lut_to_dense",
    attributes: { name: immediate({ str: name }), indices, lut: lutVal, shape: immediate({ u32: [...shape] }) },
    outputs: [{ name, type: outType }],
  });
}

export interface CoremlEmitOptions {
  deployment: Deployment;
  metadata?: Record<string, string>;
  /** largest weight file; more files are started past it (tests lower it to exercise the split) */
  maxWeightFileBytes?: number;
  /** called per op written (weights are written at their first use) */
  onProgress?: (done: number, total: number) => void;
}

export interface CoremlEmitResult {
  path: string;
  bytes: number;
  weightBytes: number;
  operations: number;
}

/** A stable identifier for a manifest entry (reproducible builds: no random UUIDs). */
function stableId(seed: string): string {
  const h = createHash("sha1").update(seed).digest("hex").toUpperCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/**
 * Puts a finished package at `path` so that a reader, or a kill at any moment, sees the old
 * package or the new one whole. A new path is one rename. An existing package is updated in
 * place: the new weight files (content-named, so never an old file's name with other bytes) move
 * in first, then model.mlmodel, which names them, replaces the old one in one rename; the old
 * weight files go last. Anything else at `path` (not a package) is removed first.
 */
function commitPackage(tmp: string, path: string): void {
  const model = join("Data", "com.apple.CoreML", "model.mlmodel"), weights = join("Data", "com.apple.CoreML", "weights");
  if (existsSync(path) && !existsSync(join(path, model))) rmSync(path, { recursive: true, force: true });
  if (!existsSync(path)) {
    renameSync(tmp, path);
    return;
  }
  mkdirSync(join(path, weights), { recursive: true });
  const fresh = readdirSync(join(tmp, weights));
  for (const f of fresh) renameSync(join(tmp, weights, f), join(path, weights, f));
  renameSync(join(tmp, "Manifest.json"), join(path, "Manifest.json"));
  renameSync(join(tmp, model), join(path, model)); // the switch
  for (const f of readdirSync(join(path, weights))) if (!fresh.includes(f)) rmSync(join(path, weights, f), { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true });
}

export function emitCoreml(g: Graph, path: string, opts: CoremlEmitOptions): CoremlEmitResult {
  const tmp = tempPathFor(path);
  rmSync(tmp, { recursive: true, force: true });
  const dataDir = join(tmp, "Data", "com.apple.CoreML");
  mkdirSync(join(dataDir, "weights"), { recursive: true });
  let blobs: BlobFolderWriter | undefined;
  try {
    const prod = producers(g);
    let weightBytes = 0;
    const w = (() => {
      blobs = new BlobFolderWriter(join(dataDir, "weights"), weightFile, opts.maxWeightFileBytes);
      const writer = new MilWriter(prod, blobs);
      for (const v of g.inputs) writer.nameOf(v, v.name);
      for (const v of g.outputs) writer.nameOf(v, v.name);
      for (const [k, n] of g.nodes.entries()) {
        opts.onProgress?.(k + 1, g.nodes.length);
        if (n.kind === "const") continue; // written at first use
        // scope and value id (base 36): every name is written three times (the op's output, its
        // name attribute, each reader's binding), and the op's type already says what it is
        const name = writer.nameOf(n.outputs[0]!, g.outputs.includes(n.outputs[0]!) ? undefined : `${n.scope ?? "graph"}_${n.outputs[0]!.id.toString(36)}`);
        if (n.kind === "lut_to_dense") emitLut(n, writer, name, prod, blobs, opts.deployment);
        else {
          const emit = EMIT_MIL[n.kind] as AnyMilEmit | undefined;
          if (!emit) throw new Error(`internal: op ${n.kind} reached the CoreML emitter without a mapping (legality table out of date)`);
          emit(n, writer, name);
        }
      }
      weightBytes = blobs.close();
      return writer;
    })();
    const { spec, opset } = DEPLOYMENT[opts.deployment];
    const feature = (v: Value) => ({
      name: w.nameOf(v),
      type: { multiArrayType: { shape: v.type.shape.length ? [...v.type.shape] : [1], dataType: v.type.dtype === "f16" ? ARRAY_DTYPE.FLOAT16 : v.type.dtype === "i32" ? ARRAY_DTYPE.INT32 : ARRAY_DTYPE.FLOAT32 } },
    });
    const model = encodeCoremlModel({
      specificationVersion: spec,
      description: { input: g.inputs.map(feature), output: g.outputs.map(feature), metadata: { userDefined: { ...(opts.metadata ?? {}), "com.github.ditc.version": DITC_VERSION } } },
      mlProgram: {
        version: 1,
        functions: {
          main: {
            inputs: g.inputs.map((v) => ({ name: w.nameOf(v), type: { tensorType: tensorType(MIL_OF[v.type.dtype]!, v.type.shape) } })),
            opset,
            blockSpecializations: { [opset]: { outputs: g.outputs.map((v) => w.nameOf(v)), operations: w.ops } },
          },
        },
      },
    });
    writeFileAtomic(join(dataDir, "model.mlmodel"), (f) => writeAll(f, model));
    const weightsId = stableId("weights"), modelId = stableId("model.mlmodel");
    const manifest = {
      fileFormatVersion: "1.0.0",
      itemInfoEntries: {
        [weightsId]: { author: "com.apple.CoreML", description: "CoreML Model Weights", name: "weights", path: "com.apple.CoreML/weights" },
        [modelId]: { author: "com.apple.CoreML", description: "CoreML Model Specification", name: "model.mlmodel", path: "com.apple.CoreML/model.mlmodel" },
      },
      rootModelIdentifier: modelId,
    };
    writeFileAtomic(join(tmp, "Manifest.json"), (f) => writeAll(f, Buffer.from(JSON.stringify(manifest, null, 4) + "\n")));
    commitPackage(tmp, path);
    return { path, bytes: model.length + weightBytes, weightBytes, operations: w.ops.length };
  } catch (e) {
    // the weight file being written: its queued bytes (and their failure) dropped, its descriptor closed
    blobs?.abandon();
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
