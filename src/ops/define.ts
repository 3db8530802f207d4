// How an op is declared: one object holding its operands, attribute defaults, type inference
// (which is also its verifier: it throws OpTypeError naming what is wrong) and reference kernel.
import type { TensorType } from "../ir/graph.js";
import type { Tensor } from "../kernels/tensor.js";

export class OpTypeError extends Error {}

/** Throws an OpTypeError with `reason` unless `cond` holds. */
export function check(cond: unknown, reason: string): asserts cond {
  if (!cond) throw new OpTypeError(reason);
}

export interface OpDef<A> {
  /** Operand names in order; "name?" is optional (may be absent at the end), "...name" variadic. */
  readonly operands: readonly string[];
  /** Shape and dtype inference, and every check types cannot express. */
  infer(inputs: readonly TensorType[], attrs: A): TensorType[];
  /** Float32 reference implementation. */
  kernel(inputs: readonly Tensor[], attrs: A): Tensor[];
  /** One line for the IR dump's attribute list; defaults to JSON of attrs. */
  printAttrs?(attrs: A): string;
}

export function defineOp<A>(def: OpDef<A>): OpDef<A> {
  return def;
}

const arities = new WeakMap<readonly string[], readonly [number, number]>();

/** How many operands an op with these declared operands takes (remembered: builders and the verifier ask per node). */
export function arityRange(operands: readonly string[]): readonly [number, number] {
  let r = arities.get(operands);
  if (!r) {
    r = operands.some((o) => o.startsWith("...")) ? [operands.filter((o) => !o.startsWith("...")).length + 1, Infinity] : [operands.filter((o) => !o.endsWith("?")).length, operands.length];
    arities.set(operands, r);
  }
  return r;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function requireFloat(t: TensorType, what: string): void {
  check(t.dtype === "f32" || t.dtype === "f16", `${what} must be f32 or f16, got ${t.dtype}`);
}

export function requireRank(t: TensorType, rank: number, what: string): void {
  check(t.shape.length === rank, `${what} must have rank ${rank}, got shape (${t.shape.join(", ")})`);
}

export function isPositiveInt(n: number): boolean {
  return Number.isInteger(n) && n > 0;
}
