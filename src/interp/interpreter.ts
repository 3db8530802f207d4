// The IR interpreter: runs a graph with the reference kernels, op by op in node order.
// Constants load at their first use and every buffer is dropped after its last use, so peak
// memory is the live set rather than the whole graph. The fast kernels leave their results in
// the engine's memory for the next op to read in place (a resident scope per run): the
// interpreter tells the scope which values hold a result and copies the graph's outputs out.
// In fp16 mode every value (inputs, constants, each op's results) is rounded to half precision,
// as a device computing in fp16 would store it; overflow becomes ±Infinity and is reported, not
// hidden.
import { allocationFailure, fail } from "../diagnostics.js";
import { lastUses, producers, sameType, typeStr, type ConstValue, type Graph, type Node, type Value } from "../ir/graph.js";
import { nodeLabel } from "../ir/verify.js";
import { openResidentScope, roundToF16, type ResidentScope } from "../kernels/fast.js";
import { roundToF16InPlace } from "../kernels/fp16.js";
import { isCompact, paletteTensor, type FloatTensor, type Tensor } from "../kernels/tensor.js";
import { opDef } from "../ops/index.js";

export type Precision = "fp32" | "fp16";

export interface RunOptions {
  precision?: Precision;
  /** called after each node with its index, for progress and profiling */
  onNode?: (node: Node, index: number) => void;
  /** called after loading a constant (at its first use), with the seconds it took: profiling */
  onConstant?: (node: Node, seconds: number) => void;
  /** sees every node's operand and result tensors (calibration probes), valid during the call only: copy what you keep */
  observe?: (node: Node, inputs: readonly Tensor[], outputs: readonly Tensor[]) => void;
  /**
   * Loaded constants kept across runs of the same graph (a sampler's steps): the caller owns the
   * map and decides whether the model's constants are small enough to keep.
   */
  constants?: Map<ConstValue, Tensor>;
}

export function runGraph(g: Graph, feeds: Record<string, Tensor>, opts: RunOptions = {}): Record<string, Tensor> {
  const scope = openResidentScope();
  try {
    return runInScope(g, feeds, opts, {
      ...scope,
      // the graph's outputs leave the run: copied out of the engine's memory
      export: (t) => (storage(t) && scope.holds(t.data) ? ({ ...t, data: t.data.slice() } as Tensor) : t),
    });
  } finally {
    scope.close();
  }
}

/** A tensor's elements as stored, or undefined for a palette (reading its `data` would widen it). */
function storage(t: Tensor): ArrayBufferView | undefined {
  return isCompact(t) ? undefined : t.data;
}

function runInScope(g: Graph, feeds: Record<string, Tensor>, opts: RunOptions, scope: ResidentScope & { export: (t: Tensor) => Tensor }): Record<string, Tensor> {
  const fp16 = opts.precision === "fp16";
  const live = new Map<Value, Tensor>();
  const prod = producers(g);
  const last = lastUses(g);
  const setLive = (v: Value, t: Tensor) => {
    live.set(v, t);
    const d = storage(t);
    if (d) scope.keep(d);
  };
  const dropLive = (v: Value) => {
    const t = live.get(v);
    if (!t) return;
    live.delete(v);
    const d = storage(t);
    if (d) scope.drop(d);
  };
  // f16-typed values always hold half-precision values; fp16 mode treats f32 values the same way.
  // A node's results (`node` given) are rounded where they lie (in the engine's memory, the next
  // kernel reads them there), unless they are an operand's own array (a reshape's), rounded
  // already; feeds and constants belong to the caller and are rounded as copies.
  const finish = (t: Tensor, dtype: string, node?: { values: readonly Value[]; tensors: readonly Tensor[] }): Tensor => {
    const palette = (t as FloatTensor).palette;
    if (palette) {
      // round the table, not the widened values: the weight stays compact
      if (!fp16 && dtype !== "f16") return t;
      return paletteTensor(t.shape, { ...palette, lut: roundToF16InPlace(palette.lut.slice()) }, t.dtype as "f32" | "f16");
    }
    if ((t as FloatTensor).half) return t; // half-precision values already
    if (!(fp16 || dtype === "f16") || !(t.data instanceof Float32Array)) return t;
    if (!node) return { ...t, data: roundToF16(t.data.slice()) };
    const d = t.data;
    if (node.values.some((v, j) => storage(node.tensors[j]!) === d && (fp16 || v.type.dtype === "f16"))) return t;
    return { ...t, data: roundToF16(d) };
  };
  for (const v of g.inputs) {
    const t = feeds[v.name ?? ""];
    if (!t) throw fail("inputTensor", { file: "inputs", tensor: v.name ?? `%${v.id}`, problem: `is missing; the model needs ${typeStr(v.type)}` });
    const floatOk = t.data instanceof Float32Array && (v.type.dtype === "f32" || v.type.dtype === "f16");
    if (!floatOk || !sameType({ dtype: v.type.dtype, shape: t.shape }, v.type))
      throw fail("inputTensor", { file: "inputs", tensor: v.name ?? `%${v.id}`, problem: `has ${t.dtype}[${t.shape.join(",")}], the model needs ${typeStr(v.type)}` });
    setLive(v, finish(t, v.type.dtype));
  }
  const read = (v: Value): Tensor => {
    const t = live.get(v);
    if (t) return t;
    const p = prod.get(v);
    if (p?.kind === "const") {
      const cache = opts.constants;
      let c = cache?.get(p.attrs.value);
      if (!c) {
        const t0 = opts.onConstant ? performance.now() : 0;
        // a constant outlives the run (the caller's cache): never a view of the engine's memory
        c = scope.export(finish(opDef("const").kernel([], p.attrs)[0]!, v.type.dtype));
        cache?.set(p.attrs.value, c);
        opts.onConstant?.(p, (performance.now() - t0) / 1000);
      }
      setLive(v, c);
      return c;
    }
    throw new Error(`internal: %${v.id} read before it was computed`);
  };
  g.nodes.forEach((n, i) => {
    if (n.kind === "const") return; // loaded at first use
    const since = scope.allocations();
    const ins = n.inputs.map(read);
    let outs: Tensor[];
    try {
      outs = opDef(n.kind).kernel(ins, n.attrs as never);
    } catch (e) {
      // a RangeError is a size: the machine's (out of memory) or the operands' (a shape no kernel takes)
      if (e instanceof RangeError) throw allocationFailure(e, nodeLabel(n)) ?? fail("opType", { node: nodeLabel(n), problem: e.message });
      throw e;
    }
    n.outputs.forEach((o, k) => setLive(o, finish(outs[k]!, o.type.dtype, { values: n.inputs, tensors: ins })));
    opts.observe?.(n, ins, n.outputs.map((o) => live.get(o)!));
    for (const v of n.inputs) if (last.get(v) === i) dropLive(v);
    for (const o of n.outputs) if (!last.has(o)) dropLive(o);
    // what this node's kernels (or an observer's) made and no value kept: scratch results
    scope.sweep(since);
    opts.onNode?.(n, i);
  });
  const result: Record<string, Tensor> = {};
  g.outputs.forEach((o, k) => (result[o.name ?? `output${k}`] = scope.export(read(o))));
  return result;
}
