// How an op is declared: one object holding its operands, attribute defaults, type inference
// (which is also its verifier: it throws OpTypeError naming what is wrong) and reference kernel.
import type { TensorType } from "../ir/graph.js";
import type { Tensor } from "../kernels/tensor.js";

export class OpTypeError extends Error {}

/**
 * Throws an OpTypeError with `reason` unless `cond` holds. A reason built from the operands is
 * given as a function: type inference runs for every node a pass builds, and building each
 * message eagerly was a fifth of lowering's allocations.
 */
export function check(cond: unknown, reason: string | (() => string)): asserts cond {
  if (!cond) throw new OpTypeError(typeof reason === "string" ? reason : reason());
}

export interface OpDef<A> {
  /** Operand names in order; "name?" is optional (may be absent at the end), "...name" variadic. */
  readonly operands: readonly string[];
  /** How many operands the op takes, from `operands` (kept with the op: builders and the verifier ask per node). */
  readonly arity: readonly [min: number, max: number];
  /** Shape and dtype inference, and every check types cannot express. */
  infer(inputs: readonly TensorType[], attrs: A): TensorType[];
  /** Float32 reference implementation. */
  kernel(inputs: readonly Tensor[], attrs: A): Tensor[];
  /** One line for the IR dump's attribute list; defaults to JSON of attrs. */
  printAttrs?(attrs: A): string;
}

export function defineOp<A>(def: Omit<OpDef<A>, "arity">): OpDef<A> {
  return { ...def, arity: arityRange(def.operands) };
}

/** How many operands an op with these declared operands takes. */
function arityRange(operands: readonly string[]): readonly [number, number] {
  return operands.some((o) => o.startsWith("...")) ? [operands.filter((o) => !o.startsWith("...")).length + 1, Infinity] : [operands.filter((o) => !o.endsWith("?")).length, operands.length];
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function requireFloat(t: TensorType, what: string): void {
  check(t.dtype === "f32" || t.dtype === "f16", () => `${what} must be f32 or f16, got ${t.dtype}`);
}

export function requireRank(t: TensorType, rank: number, what: string): void {
  check(t.shape.length === rank, () => `${what} must have rank ${rank}, got shape (${t.shape.join(", ")})`);
}

export function isPositiveInt(n: number): boolean {
  return Number.isInteger(n) && n > 0;
}
