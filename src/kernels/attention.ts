// Reference kernels for the model's attention family, written in their most evidently correct
// form so the lowered graphs that passes produce can be checked against them:
// every variant is softmax(q kᵀ · scale + mask) v per head, with BNA expressed as an explicit
// boolean mask over all token pairs rather than as the block loop a device runs.
import { conv2d } from "./conv.js";
import { gemmNT } from "./gemm.js";
import { layerNorm } from "./reduce.js";
import { transpose } from "./layout.js";
import { floatTensor, type FloatTensor } from "./tensor.js";

export interface HeadAttrs {
  heads: number;
  kvHeads: number;
  scale: number;
}

/** allowed(queryToken, keyToken); undefined means every key is visible. */
export type AttentionMask = (q: number, k: number) => boolean;

/**
 * q (B, Lq, H·dh), k (B, Lk, Hkv·dh), v (B, Lk, Hkv·dv), channels head-major.
 * Query head h reads kv head floor(h / (H / Hkv)) (GQA). Returns (B, Lq, H·dv).
 */
export function multiHeadAttention(q: FloatTensor, k: FloatTensor, v: FloatTensor, a: HeadAttrs, mask?: AttentionMask): FloatTensor {
  const [B, Lq, Cq] = q.shape as [number, number, number];
  const [, Lk, Ck] = k.shape as [number, number, number];
  const Cv = v.shape[2]!;
  const { heads: H, kvHeads: Hkv, scale } = a;
  const dh = Cq / H, dv = Cv / Hkv, group = H / Hkv;
  const out = new Float32Array(B * Lq * H * dv);
  const qh = new Float32Array(Lq * dh), kh = new Float32Array(Lk * dh);
  const s = new Float32Array(Lq * Lk);
  let visible: Uint8Array | undefined;
  if (mask) {
    visible = new Uint8Array(Lq * Lk);
    for (let i = 0; i < Lq; i++) for (let j = 0; j < Lk; j++) visible[i * Lk + j] = mask(i, j) ? 1 : 0;
  }
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / group);
      for (let i = 0; i < Lq; i++) for (let j = 0; j < dh; j++) qh[i * dh + j] = q.data[(b * Lq + i) * Cq + h * dh + j]!;
      for (let i = 0; i < Lk; i++) for (let j = 0; j < dh; j++) kh[i * dh + j] = k.data[(b * Lk + i) * Ck + g * dh + j]!;
      gemmNT(qh, 0, kh, 0, s, 0, Lq, Lk, dh);
      for (let i = 0; i < Lq; i++) {
        const row = i * Lk;
        let m = -Infinity;
        for (let j = 0; j < Lk; j++) {
          const x = !visible || visible[row + j] ? s[row + j]! * scale : -Infinity;
          s[row + j] = x;
          if (x > m) m = x;
        }
        let sum = 0;
        for (let j = 0; j < Lk; j++) {
          const e = s[row + j] === -Infinity ? 0 : Math.exp(s[row + j]! - m);
          s[row + j] = e;
          sum += e;
        }
        const o = (b * Lq + i) * H * dv + h * dv;
        for (let j = 0; j < Lk; j++) {
          const p = s[row + j]! / sum;
          if (p === 0) continue;
          const vb = (b * Lk + j) * Cv + g * dv;
          for (let c = 0; c < dv; c++) out[o + c] += p * v.data[vb + c]!;
        }
      }
    }
  return floatTensor([B, Lq, H * dv], out);
}

export type BnaPartition = "raster" | "tiles";
export type BnaEdge = "clamp" | "shift";

export interface BnaAttrs {
  grid: readonly [number, number];
  blocks: number;
  radius: number;
  partition: BnaPartition;
  edge: BnaEdge;
}

/** The inclusive range of blocks a query in block `b` of `n` sees, with radius r (docs/model.md step 5). */
export function bnaWindow(b: number, n: number, r: number, edge: BnaEdge): [number, number] {
  if (2 * r + 1 >= n) return [0, n - 1];
  if (edge === "clamp") return [Math.max(0, b - r), Math.min(n - 1, b + r)];
  const lo = Math.min(Math.max(0, b - r), n - (2 * r + 1));
  return [lo, lo + 2 * r];
}

/** Which block (raster) or tile (row, col) each token of the grid belongs to. */
export function bnaMask(a: BnaAttrs): AttentionMask {
  const [Hg, Wg] = a.grid;
  const L = Hg * Wg;
  if (a.partition === "raster") {
    const per = L / a.blocks;
    return (qi, ki) => {
      const [lo, hi] = bnaWindow(Math.floor(qi / per), a.blocks, a.radius, a.edge);
      const kb = Math.floor(ki / per);
      return kb >= lo && kb <= hi;
    };
  }
  const s = Math.round(Math.sqrt(a.blocks));
  const th = Hg / s, tw = Wg / s;
  const tileOf = (t: number): [number, number] => [Math.floor(Math.floor(t / Wg) / th), Math.floor((t % Wg) / tw)];
  return (qi, ki) => {
    const [qr, qc] = tileOf(qi), [kr, kc] = tileOf(ki);
    const [r0, r1] = bnaWindow(qr, s, a.radius, a.edge), [c0, c1] = bnaWindow(qc, s, a.radius, a.edge);
    return kr >= r0 && kr <= r1 && kc >= c0 && kc <= c1;
  };
}

export function bnaAttention(q: FloatTensor, k: FloatTensor, v: FloatTensor, a: HeadAttrs & BnaAttrs): FloatTensor {
  return multiHeadAttention(q, k, v, a, bnaMask(a));
}

/** (B, L, C) tokens of an Hg x Wg grid -> feature map (B, C, Hg, Wg). */
export function tokensToMap(x: FloatTensor, grid: readonly [number, number]): FloatTensor {
  const [B, , C] = x.shape as [number, number, number];
  const t = transpose(x, [0, 2, 1]);
  return floatTensor([B, C, grid[0], grid[1]], t.data);
}

/** (B, C, h, w) feature map -> (B, h·w, C) raster-order tokens. */
export function mapToTokens(x: FloatTensor): FloatTensor {
  const [B, C, h, w] = x.shape as [number, number, number, number];
  return transpose(floatTensor([B, C, h * w], x.data), [0, 2, 1]);
}

export interface AssaWeights {
  kCompressW: FloatTensor; kCompressB: FloatTensor;
  vCompressW: FloatTensor; vCompressB: FloatTensor;
  /** sigmoid(gate(xm)), (B, L, H) */
  gate: FloatTensor;
}

/** ASSA (docs/model.md step 5): per head, g · global + (1 − g) · local. Output before the out projection. */
export function assaAttention(q: FloatTensor, k: FloatTensor, v: FloatTensor, w: AssaWeights, a: HeadAttrs & BnaAttrs): FloatTensor {
  const compress = (x: FloatTensor, cw: FloatTensor, cb: FloatTensor) => {
    const groups = x.shape[2]! / cw.shape[1]!;
    return mapToTokens(conv2d(tokensToMap(x, a.grid), cw, cb, { stride: [2, 2], pads: [0, 0, 0, 0], groups }));
  };
  const global = multiHeadAttention(q, compress(k, w.kCompressW, w.kCompressB), compress(v, w.vCompressW, w.vCompressB), a);
  const local = bnaAttention(q, k, v, a);
  const [B, L, C] = global.shape as [number, number, number];
  const H = a.heads, dv = C / H;
  const out = new Float32Array(global.data.length);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < L; t++)
      for (let h = 0; h < H; h++) {
        const g = w.gate.data[(b * L + t) * H + h]!;
        const base = (b * L + t) * C + h * dv;
        for (let c = 0; c < dv; c++) out[base + c] = g * global.data[base + c]! + (1 - g) * local.data[base + c]!;
      }
  return floatTensor([B, L, C], out);
}

/**
 * Axial 2-D RoPE (docs/model.md step 4) on x (B, L, n·dh) for tokens of an Hg x Wg grid: the first dh/2
 * channels of each head rotate with the token's row, the last dh/2 with its column.
 */
export function rope2d(x: FloatTensor, heads: number, grid: readonly [number, number]): FloatTensor {
  const [B, L, C] = x.shape as [number, number, number];
  const dh = C / heads, half = dh / 2, pairs = dh / 4;
  const Wg = grid[1];
  const out = new Float32Array(x.data.length);
  const freq = Array.from({ length: pairs }, (_, i) => 10000 ** (-(2 * i) / half));
  for (let b = 0; b < B; b++)
    for (let t = 0; t < L; t++) {
      const pos = [Math.floor(t / Wg), t % Wg];
      for (let h = 0; h < heads; h++)
        for (let part = 0; part < 2; part++)
          for (let i = 0; i < pairs; i++) {
            const theta = pos[part]! * freq[i]!;
            const c = Math.cos(theta), s = Math.sin(theta);
            const at = (b * L + t) * C + h * dh + part * half + 2 * i;
            const x0 = x.data[at]!, x1 = x.data[at + 1]!;
            out[at] = x0 * c - x1 * s;
            out[at + 1] = x0 * s + x1 * c;
          }
    }
  return floatTensor(x.shape, out);
}

/** LayerNorm over each head's dh channels with a shared affine (dh), docs/model.md step 4. */
export function qkNorm(x: FloatTensor, weight: FloatTensor, bias: FloatTensor, heads: number, eps: number): FloatTensor {
  const C = x.shape[x.shape.length - 1]!;
  const dh = C / heads;
  const y = layerNorm(floatTensor([x.data.length / dh, dh], x.data), 1, eps, weight.data, bias.data);
  return floatTensor(x.shape, y.data);
}
