// The model's attention family on the fast engine. Every variant becomes a list of tasks — a set
// of query tokens and the set of key tokens they see — run by the tiled online-softmax kernel, so
// no (L x L) score or mask tensor is ever made. The dense masked forms in ../attention.ts stay as
// the oracles these are tested against.
import { bnaWindow, type BnaAttrs, type HeadAttrs } from "../attention.js";
import { floatTensor, type FloatTensor } from "../tensor.js";
import { simdEngine } from "./engine.js";
import { PARALLEL_MIN_MACS } from "./gemm.js";

/** Token rows (into the q and k/v row arrays) a group of queries attends. */
export interface AttentionTask {
  queries: Int32Array;
  keys: Int32Array;
}

export interface AttentionShape {
  heads: number;
  kvHeads: number;
  /** query/key head dim and value head dim */
  dh: number;
  dv: number;
  scale: number;
}

/**
 * Row t of q (width ldq) holds token t's query heads, head-major; rows of k and v likewise; query
 * head h reads kv head floor(h / (heads / kvHeads)). Writes each task's query rows of `out`
 * (width heads·dv), rows no task names keep what they held.
 */
export function attentionTasks(q: Float32Array, ldq: number, k: Float32Array, ldk: number, v: Float32Array, ldv: number, s: AttentionShape, tasks: readonly AttentionTask[], out: Float32Array): void {
  const e = simdEngine();
  const ldo = s.heads * s.dv;
  let macs = 0;
  for (const t of tasks) macs += t.queries.length * t.keys.length * (s.dh + s.dv) * s.heads;
  const threads = macs >= PARALLEL_MIN_MACS ? e.info().threads : 1;
  const mark = e.mark();
  try {
    const qp = e.input(q), kp = e.input(k), vp = e.input(v);
    // in place when `out` lives in the memory; else only the task rows are copied out
    const inPlace = e.holds(out);
    const op = inPlace ? out.byteOffset : e.alloc(out.length * 4);
    const rec = e.alloc(32 * tasks.length);
    const K = e.kernels;
    tasks.forEach((t, i) => {
      const nq = t.queries.length, nk = t.keys.length;
      const ql = e.alloc(4 * nq);
      e.i32(ql, nq).set(t.queries);
      const kl = e.alloc(4 * nk);
      e.i32(kl, nk).set(t.keys);
      const keys = e.alloc(s.kvHeads * K.attention_pack_bytes(nk, s.dh, s.dv, 0));
      const values = e.alloc(s.kvHeads * K.attention_pack_bytes(nk, s.dh, s.dv, 1));
      e.i32(rec, 8 * tasks.length).set([ql, nq, kl, nk, keys, values, 0, 0], 8 * i);
    });
    e.parallel("attention_pack", [kp, ldk * 4, vp, ldv * 4, s.kvHeads, s.dh, s.dv, rec, tasks.length], threads);
    const scratch = e.alloc(K.attention_scratch_bytes(s.dh, s.dv) * threads);
    const counter = e.alloc(4);
    e.i32(counter, 1)[0] = 0;
    e.parallel("attention", [qp, ldq * 4, op, ldo * 4, s.heads, s.kvHeads, s.dh, s.dv, s.scale, rec, tasks.length, scratch, counter], threads);
    if (!inPlace) {
      const result = e.f32(op, out.length);
      for (const t of tasks) for (const row of t.queries) out.set(result.subarray(row * ldo, (row + 1) * ldo), row * ldo);
    }
  } finally {
    e.release(mark);
  }
}

function range(from: number, to: number): Int32Array {
  const r = new Int32Array(Math.max(0, to - from));
  for (let i = 0; i < r.length; i++) r[i] = from + i;
  return r;
}

function shapeOf(q: FloatTensor, k: FloatTensor, v: FloatTensor, a: HeadAttrs): AttentionShape {
  const dh = q.shape[2]! / a.heads;
  return { heads: a.heads, kvHeads: a.kvHeads, dh, dv: v.shape[2]! / a.kvHeads, scale: a.scale };
}

/** q (B, Lq, H·dh), k (B, Lk, Hkv·dh), v (B, Lk, Hkv·dv): every query sees every key of its batch item. */
export function multiHeadAttentionTiled(q: FloatTensor, k: FloatTensor, v: FloatTensor, a: HeadAttrs): FloatTensor {
  const [B, Lq] = q.shape as [number, number];
  const Lk = k.shape[1]!;
  const s = shapeOf(q, k, v, a);
  const tasks = Array.from({ length: B }, (_, b) => ({ queries: range(b * Lq, (b + 1) * Lq), keys: range(b * Lk, (b + 1) * Lk) }));
  const out = simdEngine().output(B * Lq * a.heads * s.dv); // every query row is a task's
  attentionTasks(q.data, q.shape[2]!, k.data, k.shape[2]!, v.data, v.shape[2]!, s, tasks, out);
  return floatTensor([B, Lq, a.heads * s.dv], out);
}

/** The BNA windows as tasks (docs/model.md step 5): one per block (raster) or tile, per batch item. */
export function bnaTasks(a: BnaAttrs, batch: number): AttentionTask[] {
  const [Hg, Wg] = a.grid;
  const L = Hg * Wg;
  const tasks: AttentionTask[] = [];
  for (let b = 0; b < batch; b++) {
    const o = b * L;
    if (a.partition === "raster") {
      const per = L / a.blocks;
      for (let i = 0; i < a.blocks; i++) {
        const [lo, hi] = bnaWindow(i, a.blocks, a.radius, a.edge);
        tasks.push({ queries: range(o + i * per, o + (i + 1) * per), keys: range(o + lo * per, o + (hi + 1) * per) });
      }
      continue;
    }
    const n = Math.round(Math.sqrt(a.blocks));
    const th = Hg / n, tw = Wg / n;
    const rect = (r0: number, r1: number, c0: number, c1: number) => {
      const out = new Int32Array((r1 - r0) * (c1 - c0));
      let i = 0;
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) out[i++] = o + r * Wg + c;
      return out;
    };
    for (let tr = 0; tr < n; tr++)
      for (let tc = 0; tc < n; tc++) {
        const [r0, r1] = bnaWindow(tr, n, a.radius, a.edge), [c0, c1] = bnaWindow(tc, n, a.radius, a.edge);
        tasks.push({ queries: rect(tr * th, (tr + 1) * th, tc * tw, (tc + 1) * tw), keys: rect(r0 * th, (r1 + 1) * th, c0 * tw, (c1 + 1) * tw) });
      }
  }
  return tasks;
}

/** Blockwise neighbourhood attention, window by window. */
export function bnaAttentionTiled(q: FloatTensor, k: FloatTensor, v: FloatTensor, a: HeadAttrs & BnaAttrs): FloatTensor {
  const [B, L] = q.shape as [number, number];
  const s = shapeOf(q, k, v, a);
  const out = simdEngine().output(B * L * a.heads * s.dv); // the windows' queries cover every token
  attentionTasks(q.data, q.shape[2]!, k.data, k.shape[2]!, v.data, v.shape[2]!, s, bnaTasks(a, B), out);
  return floatTensor([B, L, a.heads * s.dv], out);
}
