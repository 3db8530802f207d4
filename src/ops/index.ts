// The closed op table. Every op kind the IR can hold is a key here, and nowhere else.
import { attentionOps } from "./attention.js";
import type { OpDef } from "./define.js";
import { layoutOps } from "./layout.js";
import { mathOps } from "./math.js";

export const OPS = { ...layoutOps, ...mathOps, ...attentionOps };

export type OpKind = keyof typeof OPS;
export type AttrsOf<K extends OpKind> = (typeof OPS)[K] extends OpDef<infer A> ? A : never;

export function isOpKind(s: string): s is OpKind {
  return Object.hasOwn(OPS, s);
}

export function opDef<K extends OpKind>(kind: K): OpDef<AttrsOf<K>> {
  return OPS[kind] as unknown as OpDef<AttrsOf<K>>;
}

/** Ops a model builder emits that passes must lower before a target can take the graph. */
export const HIGH_LEVEL_OPS: readonly OpKind[] = ["gqa_attention", "cross_attention", "bna_attention", "assa_attention", "rope_2d", "qk_norm"];
