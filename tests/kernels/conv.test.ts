import fc from "fast-check";
import { expect, test } from "vitest";
import { conv2d, convOutSize } from "../../src/kernels/conv.js";
import { at, randomTensor, relErr } from "../helpers.js";

function naiveConv(x: Float32Array, xs: number[], w: Float32Array, ws: number[], b: Float32Array, stride: number, pad: number, groups: number) {
  const [B, C, H, W] = xs as [number, number, number, number];
  const [O, I, KH, KW] = ws as [number, number, number, number];
  const Ho = convOutSize(H, KH, stride, pad, pad), Wo = convOutSize(W, KW, stride, pad, pad);
  const out = new Float32Array(B * O * Ho * Wo);
  const og = O / groups;
  for (let n = 0; n < B; n++)
    for (let o = 0; o < O; o++)
      for (let y = 0; y < Ho; y++)
        for (let xw = 0; xw < Wo; xw++) {
          let s = b[o]!;
          const g = Math.floor(o / og);
          for (let i = 0; i < I; i++)
            for (let kh = 0; kh < KH; kh++)
              for (let kw = 0; kw < KW; kw++) {
                const ih = y * stride - pad + kh, iw = xw * stride - pad + kw;
                if (ih < 0 || iw < 0 || ih >= H || iw >= W) continue;
                s += x[at(xs, n, g * I + i, ih, iw)]! * w[at(ws, o, i, kh, kw)]!;
              }
          out[at([B, O, Ho, Wo], n, o, y, xw)] = s;
        }
  return out;
}

test("conv2d matches a direct loop for random strides, pads and groups (depthwise included)", () => {
  fc.assert(
    fc.property(
      fc.record({
        B: fc.integer({ min: 1, max: 2 }), G: fc.integer({ min: 1, max: 4 }), cin: fc.integer({ min: 1, max: 3 }), cout: fc.integer({ min: 1, max: 3 }),
        H: fc.integer({ min: 3, max: 9 }), W: fc.integer({ min: 3, max: 9 }), K: fc.integer({ min: 1, max: 3 }),
        stride: fc.integer({ min: 1, max: 3 }), pad: fc.integer({ min: 0, max: 1 }), seed: fc.nat(1000),
      }),
      ({ B, G, cin, cout, H, W, K, stride, pad, seed }) => {
        const C = G * cin, O = G * cout;
        const x = randomTensor([B, C, H, W], seed), w = randomTensor([O, cin, K, K], seed + 1), b = randomTensor([O], seed + 2);
        const got = conv2d(x, w, b, { stride: [stride, stride], pads: [pad, pad, pad, pad], groups: G });
        expect(relErr(got.data, naiveConv(x.data, [B, C, H, W], w.data, [O, cin, K, K], b.data, stride, pad, G))).toBeLessThan(1e-5);
      },
    ),
    { numRuns: 60 },
  );
});
