// The closed op table. Every op kind the IR can hold is a key here, and nowhere else.
import { attentionOps } from "./attention.js";
import type { OpDef } from "./define.js";
import { layoutOps } from "./layout.js";
import { mathOps } from "./math.js";

export const OPS = { ...layoutOps, ...mathOps, ...attentionOps };

export type OpKind = keyof typeof OPS;
export type AttrsOf<K extends OpKind> = (typeof OPS)[K] extends OpDef<infer A> ? A : never;

// looked up per node by builders and the verifier: a Map is several times faster than keyed
// reads of a 60-key object
const TABLE = new Map<string, OpDef<unknown>>(Object.entries(OPS) as [string, OpDef<unknown>][]);

export function opDef<K extends OpKind>(kind: K): OpDef<AttrsOf<K>> {
  return TABLE.get(kind) as unknown as OpDef<AttrsOf<K>>;
}

/** The op's definition, or undefined for a kind that is none (a malformed graph's). */
export function findOpDef(s: string): OpDef<unknown> | undefined {
  return TABLE.get(s);
}

/** Ops a model builder emits that passes must lower before a target can take the graph. */
export const HIGH_LEVEL_OPS: readonly OpKind[] = ["gqa_attention", "cross_attention", "bna_attention", "assa_attention", "rope_2d", "qk_norm"];
