// The IR: a graph of SSA values produced by nodes, each node one op from the closed table in
// src/ops. Nodes are kept in a valid execution order; values are immutable once created.
import type { DType } from "./dtype.js";
import type { Tensor } from "../kernels/tensor.js";
import type { AttrsOf, OpKind } from "../ops/index.js";

export interface TensorType {
  readonly dtype: DType;
  readonly shape: readonly number[];
}

export interface Value {
  readonly id: number;
  readonly type: TensorType;
  /** graph inputs and outputs carry their interface name; constants their checkpoint name */
  name?: string;
}

export interface NodeOf<K extends OpKind> {
  /** the node's position when it was built; passes keep unchanged nodes, so not always its index now */
  readonly id: number;
  readonly kind: K;
  readonly inputs: readonly Value[];
  readonly attrs: AttrsOf<K>;
  readonly outputs: readonly Value[];
  /** where in the model this node comes from, e.g. "down.0.attn"; shown in dumps and errors */
  scope?: string;
}

/** The discriminated union of every node kind: `switch (node.kind)` narrows attrs. */
export type Node = { [K in OpKind]: NodeOf<K> }[OpKind];

// Nodes are made only here, every one with the same fields in the same order (scope too, when
// undefined): the passes' walks then meet one object shape, and V8 keeps their optimized code
// instead of throwing it away at each new shape ("wrong map") and compiling it again.

/** A node; `scope` undefined outside any scope. */
export function makeNode<K extends OpKind>(id: number, kind: K, inputs: readonly Value[], attrs: AttrsOf<K>, outputs: readonly Value[], scope: string | undefined): Node {
  return { id, kind, inputs, attrs, outputs, scope } as unknown as Node;
}

/** `n` reading other operands (its results, attrs and scope kept), numbered `id`. */
export function withOperands(n: Node, inputs: readonly Value[], id = n.id): Node {
  return makeNode(id, n.kind, inputs, n.attrs, n.outputs, n.scope);
}

/**
 * For each axis of a full-width tensor, the indices a narrower sub-network keeps, ascending, or
 * null when it keeps the whole axis (docs/model.md, elastic widths; the slice-width pass).
 */
export type KeptAxes = readonly (Int32Array | null)[];

/** A constant's data, loaded on demand so a graph of a 1.6B model costs no weight memory. */
/**
 * What a constant is, for the byte accounting of reports: a model parameter (dense), a palette's
 * indices or its LUT, a computed position table; anything else (shapes, axes, gather indices,
 * small scalars) has no role.
 */
export type ConstRole = "weight" | "palette" | "lut" | "table";

export interface ConstValue {
  readonly type: TensorType;
  /** checkpoint tensor (or derived table) this constant holds; shown in dumps */
  readonly source: string;
  readonly role?: ConstRole;
  /**
   * Computed for one weight alone (a palette's indices and LUT, a corrected bias): no other
   * constant holds its bytes, so deduplication never loads it (loading one runs its k-means).
   */
  readonly ownedByOneWeight?: boolean;
  /** The elements; a weight of an f16 checkpoint (or its width slice) as its fp16 patterns (a halfTensor, `half` read-only). */
  load(): Tensor;
  /**
   * Set on supernetwork constants that change with the width: the constant of the width-w
   * sub-network and, per axis, the full-width indices its entries stand for. Constants without
   * it are the same at every width.
   */
  readonly atWidth?: (w: number) => { value: ConstValue; kept: KeptAxes };
}

/** A constant computed from another (re-laid out, converted, gathered): it keeps that one's role and ownership. */
export function derivedConst(from: ConstValue, c: { type: TensorType; source: string; load(): Tensor }): ConstValue {
  return { ...c, ...(from.role ? { role: from.role } : {}), ...(from.ownedByOneWeight ? { ownedByOneWeight: true } : {}) };
}

export interface Graph {
  readonly inputs: readonly Value[];
  readonly nodes: readonly Node[];
  readonly outputs: readonly Value[];
}

export function typeStr(t: TensorType): string {
  return `${t.dtype}[${t.shape.join(",")}]`;
}

export function sameType(a: TensorType, b: TensorType): boolean {
  if (a.dtype !== b.dtype || a.shape.length !== b.shape.length) return false;
  for (let i = 0; i < a.shape.length; i++) if (a.shape[i] !== b.shape[i]) return false;
  return true;
}

/** Map from each value to the node producing it (graph inputs have none). */
export function producers(g: Graph): Map<Value, Node> {
  const m = new Map<Value, Node>();
  for (const n of g.nodes) for (const o of n.outputs) m.set(o, n);
  return m;
}

/** Map from each value to the nodes reading it, in graph order. */
export function readers(g: Graph): Map<Value, Node[]> {
  const m = new Map<Value, Node[]>();
  for (const n of g.nodes)
    for (const v of n.inputs) {
      const list = m.get(v);
      if (list) list.push(n);
      else m.set(v, [n]);
    }
  return m;
}

/** Whether a node lies in one of the named scopes (or below one). */
export function inScopes(scopes: readonly string[]): (n: Node) => boolean {
  return (n) => scopes.some((s) => n.scope === s || n.scope?.startsWith(`${s}.`) === true);
}

/** Index of the last node reading each value; graph outputs live to the end. */
export function lastUses(g: Graph): Map<Value, number> {
  const m = new Map<Value, number>();
  g.nodes.forEach((n, i) => n.inputs.forEach((v) => m.set(v, i)));
  for (const o of g.outputs) m.set(o, Infinity);
  return m;
}
