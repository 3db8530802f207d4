// 2-D convolution, NCHW activations and OIHW weights, zero padding, any stride and groups.
// Dense groups go through im2col + gemm; depthwise (one input channel per group) runs direct.
import { gemmNT } from "./gemm.js";
import { floatTensor, type FloatTensor } from "./tensor.js";

export interface Conv2dAttrs {
  stride: readonly [number, number];
  pads: readonly [number, number, number, number]; // top, left, bottom, right
  groups: number;
}

export function convOutSize(inSize: number, k: number, stride: number, padA: number, padB: number): number {
  return Math.floor((inSize + padA + padB - k) / stride) + 1;
}

export function conv2d(x: FloatTensor, w: FloatTensor, bias: FloatTensor | undefined, a: Conv2dAttrs): FloatTensor {
  const [B, Cin, H, W] = x.shape as [number, number, number, number];
  const [Cout, CinG, KH, KW] = w.shape as [number, number, number, number];
  const [sh, sw] = a.stride;
  const [pt, pl, pb, pr] = a.pads;
  const Ho = convOutSize(H, KH, sh, pt, pb), Wo = convOutSize(W, KW, sw, pl, pr);
  const G = a.groups, CoutG = Cout / G;
  const out = new Float32Array(B * Cout * Ho * Wo);
  const X = x.data, Wt = w.data, P = Ho * Wo, Kc = CinG * KH * KW;
  const col = new Float32Array(P * Kc); // rows = output pixels, cols = (ci, kh, kw)
  const tmp = new Float32Array(CoutG * P);
  for (let b = 0; b < B; b++)
    for (let g = 0; g < G; g++) {
      for (let oh = 0; oh < Ho; oh++)
        for (let ow = 0; ow < Wo; ow++) {
          const row = (oh * Wo + ow) * Kc;
          for (let ci = 0; ci < CinG; ci++) {
            const plane = (b * Cin + g * CinG + ci) * H * W;
            for (let kh = 0; kh < KH; kh++) {
              const ih = oh * sh - pt + kh;
              for (let kw = 0; kw < KW; kw++) {
                const iw = ow * sw - pl + kw;
                col[row + (ci * KH + kh) * KW + kw] = ih >= 0 && ih < H && iw >= 0 && iw < W ? X[plane + ih * W + iw]! : 0;
              }
            }
          }
        }
      // tmp (CoutG, P) = W_g (CoutG, Kc) · colᵀ
      gemmNT(Wt, g * CoutG * Kc, col, 0, tmp, 0, CoutG, P, Kc);
      for (let co = 0; co < CoutG; co++) {
        const oc = g * CoutG + co;
        const bv = bias ? bias.data[oc]! : 0;
        const dst = (b * Cout + oc) * P;
        for (let p = 0; p < P; p++) out[dst + p] = tmp[co * P + p]! + bv;
      }
    }
  return floatTensor([B, Cout, Ho, Wo], out);
}
