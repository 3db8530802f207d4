// Attention without the quadratic tensor: softmax(q kᵀ · scale) v computed one tile of queries
// against one chunk of keys at a time, with the running max and sum of the online softmax
// (FlashAttention's recurrence). A task is a list of query tokens and the list of key tokens
// they see, so dense attention is one task per batch item and BNA one task per block or tile;
// masks never exist. Both products run on the gemm tile kernel.
//
// Two calls: attention_pack gathers each task's keys and values, per kv head, into the packed
// panels the gemm reads (once, however many query tiles read them); attention hands the work
// items (task, head, query tile) to the threads as they come free, through one shared counter
// (edge windows and partial tiles are smaller, so a fixed deal leaves a thread idle). Each output
// row is written by one item, in one fixed order of key chunks, so results do not depend on the
// thread count or on which thread took the item.
//
// Task record (8 i32): query-list pointer, query count, key-list pointer, key count, packed-keys
// pointer, packed-values pointer, 0, 0. Lists hold i32 token indices; the packed blocks hold one
// region per kv head, attention_pack_bytes apart.
import { exp4, shareLo } from "./common";
import { gemmBlock, packed_bytes } from "./gemm";

const QT: i32 = 64; // queries per tile
const KT: i32 = 128; // keys per chunk

@inline function roundUp8(n: i32): i32 {
  return (n + 7) & ~7;
}

/** Bytes of one kv head's packed keys (dh x nk) or values (nk x dv) for a task of nk keys. */
export function attention_pack_bytes(nk: i32, dh: i32, dv: i32, values: bool): usize {
  return values ? packed_bytes(dv, nk) : packed_bytes(nk, dh);
}

/** Per-thread scratch an attention call with head dims dh, dv needs. */
export function attention_scratch_bytes(dh: i32, dv: i32): usize {
  return (<usize>(QT * dh + QT * KT + QT * roundUp8(dv) + 2 * QT + 32)) << 2;
}

/**
 * Packs every task's keys and values for each kv head: items (task, kv head) shared out in
 * contiguous runs. Token t's kv head g key is the dh floats at k + t·ldk + g·dh·4, its value the
 * dv floats at v + t·ldv + g·dv·4.
 */
export function attention_pack(tid: i32, nt: i32, k: usize, ldk: usize, v: usize, ldv: usize, kvHeads: i32, dh: i32, dv: i32, tasks: usize, nTasks: i32): void {
  const items = nTasks * kvHeads;
  for (let it = shareLo(items, tid, nt), end = shareLo(items, tid + 1, nt); it < end; it++) {
    const t = it / kvHeads, g = it % kvHeads;
    const rec = tasks + (<usize>t << 5);
    const kList = <usize>load<i32>(rec, 8), nk = load<i32>(rec, 12);
    const kp = <usize>load<i32>(rec, 16) + <usize>g * attention_pack_bytes(nk, dh, dv, false);
    const vp = <usize>load<i32>(rec, 20) + <usize>g * attention_pack_bytes(nk, dh, dv, true);
    packKeys(nk, dh, k + (<usize>(g * dh) << 2), kList, ldk, kp);
    packValues(dv, nk, v + (<usize>(g * dv) << 2), kList, ldv, vp);
  }
}

/**
 * Thread `tid` of `nt`'s share. Token t's query head h is the dh floats at q + t·ldq + h·dh·4;
 * its output head h goes to out + t·ldo + h·dv·4. Query head h reads kv head floor(h·kvHeads/heads).
 * `counter`: an i32 the caller zeroed, the next unclaimed item.
 */
export function attention(
  tid: i32, nt: i32, q: usize, ldq: usize, out: usize, ldo: usize,
  heads: i32, kvHeads: i32, dh: i32, dv: i32, scale: f32, tasks: usize, nTasks: i32, scratch: usize, counter: usize,
): void {
  const dvp = roundUp8(dv);
  const qs = scratch + <usize>tid * attention_scratch_bytes(dh, dv); // QT x dh, the query tile
  const s = qs + (<usize>(QT * dh) << 2);                          // QT x KT scores, then probabilities
  const o = s + (<usize>(QT * KT) << 2);                           // QT x dvp running output
  const mx = o + (<usize>(QT * dvp) << 2);                         // running max per query
  const sum = mx + (<usize>QT << 2);                               // running sum per query
  const edge = sum + (<usize>QT << 2);
  const group = heads / kvHeads;
  const keyPanel = <usize>dh << 5;

  let item = 0, mine = atomic.add<i32>(counter, 1);
  for (let t = 0; t < nTasks; t++) {
    const rec = tasks + (<usize>t << 5);
    const qList = <usize>load<i32>(rec), qCount = load<i32>(rec, 4), nk = load<i32>(rec, 12);
    for (let h = 0; h < heads; h++) {
      const g = h / group;
      const kp = <usize>load<i32>(rec, 16) + <usize>g * attention_pack_bytes(nk, dh, dv, false);
      const vp = <usize>load<i32>(rec, 20) + <usize>g * attention_pack_bytes(nk, dh, dv, true);
      for (let q0 = 0; q0 < qCount; q0 += QT, item++) {
        if (item != mine) continue;
        mine = atomic.add<i32>(counter, 1);
        const qn = min(QT, qCount - q0);
        // the query tile, pre-scaled so the scores come out of the product ready for the softmax
        for (let i = 0; i < qn; i++) {
          const src = q + <usize>load<i32>(qList + (<usize>(q0 + i) << 2)) * ldq + (<usize>(h * dh) << 2);
          const dst = qs + (<usize>(i * dh) << 2);
          for (let d = 0; d < dh; d++) store<f32>(dst + (<usize>d << 2), load<f32>(src + (<usize>d << 2)) * scale);
          store<f32>(mx + (<usize>i << 2), -Infinity);
          store<f32>(sum + (<usize>i << 2), 0);
        }
        memory.fill(o, 0, <usize>(qn * dvp) << 2);
        for (let k0 = 0; k0 < nk; k0 += KT) {
          const kn = min(KT, nk - k0);
          // scores: S (qn x kn) = Q (qn x dh) · K chunk ᵀ; the chunk is panels k0/8 .. of the packed keys
          gemmBlock(qn, kn, dh, qs, <usize>dh << 2, 4, kp + <usize>(k0 >> 3) * keyPanel, keyPanel, s, <usize>KT << 2, 0, false, edge, true, 0, (qn + 3) >> 2, 0, (kn + 7) >> 3);
          softmaxChunk(s, qn, kn, mx, sum, o, dvp);
          // output: O (qn x dv) += P (qn x kn) · V chunk; the chunk is rows k0 .. of every value panel
          gemmBlock(qn, dv, kn, s, <usize>KT << 2, 4, vp + (<usize>k0 << 5), <usize>nk << 5, o, <usize>dvp << 2, 0, false, edge, false, 0, (qn + 3) >> 2, 0, (dv + 7) >> 3);
        }
        for (let i = 0; i < qn; i++) {
          const inv: f32 = 1 / load<f32>(sum + (<usize>i << 2));
          const dst = out + <usize>load<i32>(qList + (<usize>(q0 + i) << 2)) * ldo + (<usize>(h * dv) << 2);
          const row = o + (<usize>(i * dvp) << 2);
          for (let c = 0; c < dv; c++) store<f32>(dst + (<usize>c << 2), load<f32>(row + (<usize>c << 2)) * inv);
        }
      }
    }
  }
}

/**
 * One chunk of the online softmax on scaled scores: raises the running max, turns scores into
 * exp(s - max) in place and rescales the running sum and output rows by exp(old max - new max).
 */
function softmaxChunk(s: usize, qn: i32, kn: i32, mx: usize, sum: usize, o: usize, dvp: i32): void {
  const kv = kn & ~3;
  for (let i = 0; i < qn; i++) {
    const row = s + (<usize>(i * KT) << 2);
    let m = f32x4.splat(-Infinity);
    for (let j = 0; j < kv; j += 4) m = f32x4.pmax(m, v128.load(row + (<usize>j << 2)));
    let rowMax = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
    for (let j = kv; j < kn; j++) rowMax = max(rowMax, load<f32>(row + (<usize>j << 2)));
    const old = load<f32>(mx + (<usize>i << 2));
    const top = max(old, rowMax);
    store<f32>(mx + (<usize>i << 2), top);
    const t = f32x4.splat(top);
    let acc = f32x4.splat(0);
    for (let j = 0; j < kv; j += 4) {
      const e = exp4(f32x4.sub(v128.load(row + (<usize>j << 2)), t));
      v128.store(row + (<usize>j << 2), e);
      acc = f32x4.add(acc, e);
    }
    let total = (f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1)) + (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3));
    for (let j = kv; j < kn; j++) {
      const e = f32x4.extract_lane(exp4(f32x4.splat(load<f32>(row + (<usize>j << 2)) - top)), 0);
      store<f32>(row + (<usize>j << 2), e);
      total += e;
    }
    if (old == -Infinity) {
      store<f32>(sum + (<usize>i << 2), total);
    } else {
      const alpha = f32x4.extract_lane(exp4(f32x4.splat(old - top)), 0);
      store<f32>(sum + (<usize>i << 2), load<f32>(sum + (<usize>i << 2)) * alpha + total);
      const a = f32x4.splat(alpha);
      const orow = o + (<usize>(i * dvp) << 2);
      for (let c = 0; c < dvp; c += 4) v128.store(orow + (<usize>c << 2), f32x4.mul(v128.load(orow + (<usize>c << 2)), a));
    }
  }
}

/** Keys as the gemm's B (dh x nk): panels of 8 keys, each holding, per channel d, the 8 keys' d. */
function packKeys(nk: i32, dh: i32, src: usize, keys: usize, ld: usize, bp: usize): void {
  for (let p = 0, panels = (nk + 7) >> 3; p < panels; p++) {
    const j0 = p << 3, n = min(8, nk - j0);
    const dst = bp + ((<usize>p * <usize>dh) << 5);
    for (let j = 0; j < 8; j++) {
      const lane = dst + (<usize>j << 2);
      if (j < n) {
        const row = src + <usize>load<i32>(keys + (<usize>(j0 + j) << 2)) * ld;
        for (let d = 0; d < dh; d++) store<f32>(lane + (<usize>d << 5), load<f32>(row + (<usize>d << 2)));
      } else {
        for (let d = 0; d < dh; d++) store<f32>(lane + (<usize>d << 5), 0);
      }
    }
  }
}

/** Values as the gemm's B (nk x dv): panels of 8 channels, each holding the nk keys' 8 channels. */
function packValues(dv: i32, nk: i32, src: usize, keys: usize, ld: usize, bp: usize): void {
  for (let p = 0, panels = (dv + 7) >> 3; p < panels; p++) {
    const c0 = p << 3, cols = min(8, dv - c0);
    let dst = bp + ((<usize>p * <usize>nk) << 5);
    for (let j = 0; j < nk; j++, dst += 32) {
      const row = src + <usize>load<i32>(keys + (<usize>j << 2)) * ld + (<usize>c0 << 2);
      if (cols == 8) {
        v128.store(dst, v128.load(row)); v128.store(dst, v128.load(row, 16), 16);
      } else {
        for (let c = 0; c < 8; c++) store<f32>(dst + (<usize>c << 2), c < cols ? load<f32>(row + (<usize>c << 2)) : 0);
      }
    }
  }
}
