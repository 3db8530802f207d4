import fc from "fast-check";
import { expect, test } from "vitest";
import { asReshapeTranspose, asTranspose, isContiguous, reshapeView, rootView, transposeView, type View } from "../../src/ir/views.js";
import { transpose } from "../../src/kernels/layout.js";
import { floatTensor, numel } from "../../src/kernels/tensor.js";

/** Materializes a view of iota(root) element by element. */
function materialize(v: View): number[] {
  const out: number[] = [];
  const idx = v.shape.map(() => 0);
  for (let n = 0; n < numel(v.shape); n++) {
    out.push(idx.reduce((s, i, d) => s + i * v.strides[d]!, 0));
    for (let d = v.shape.length - 1; d >= 0; d--) {
      if (++idx[d]! < v.shape[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

test("views of random transpose/reshape chains agree with the kernels, and the single-op forms are exact", () => {
  const iota = (shape: number[]) => floatTensor(shape, Float32Array.from({ length: numel(shape) }, (_, i) => i));
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 2, maxLength: 4 }), fc.array(fc.nat(1000), { minLength: 1, maxLength: 4 }), (shape, steps) => {
      let view: View | undefined = rootView(shape);
      let t = iota(shape);
      for (const s of steps) {
        if (s % 2 === 0) {
          const perm = t.shape.map((_, i) => i).sort((a, b) => ((a * 31 + s) % 7) - ((b * 31 + s) % 7));
          t = transpose(t, perm);
          view = transposeView(view, perm);
        } else {
          // merge two neighbouring axes or split one, the reshapes a layout chain makes
          const sh = [...t.shape];
          const k = s % sh.length;
          const next = k + 1 < sh.length && s % 3 === 0 ? [...sh.slice(0, k), sh[k]! * sh[k + 1]!, ...sh.slice(k + 2)] : [...sh.slice(0, k), 1, ...sh.slice(k)];
          t = floatTensor(next, transpose(t, t.shape.map((_, i) => i)).data);
          view = reshapeView(view, next);
          if (!view) return; // that reshape would copy; the analysis rightly refuses it
        }
        expect(materialize(view)).toEqual([...t.data]);
      }
      if (isContiguous(view)) expect([...t.data]).toEqual([...iota(shape).data]);
      const p = asTranspose(view, shape);
      if (p) expect([...transpose(iota(shape), p).data]).toEqual([...t.data]);
      const rt = asReshapeTranspose(view, shape);
      if (rt) expect([...transpose(floatTensor(rt.shape, iota(shape).data), rt.perm).data]).toEqual([...t.data]);
    }),
    { numRuns: 200 },
  );
});

test("tokens -> map -> NHWC is a plain reshape, also on a square grid", () => {
  // (B, L, C) -transpose-> (B, C, L) -reshape-> (B, C, H, W) -transpose-> (B, H, W, C)
  for (const [H, W] of [[4, 4], [2, 6]]) {
    let v = transposeView(rootView([2, H * W, 3]), [0, 2, 1]);
    v = reshapeView(v, [2, 3, H, W])!;
    v = transposeView(v, [0, 2, 3, 1]);
    expect(isContiguous(v)).toBe(true);
  }
  // whereas transposing the map's spatial axes is not
  const w = transposeView(reshapeView(rootView([1, 3, 16]), [1, 3, 4, 4])!, [0, 1, 3, 2]);
  expect(isContiguous(w)).toBe(false);
});
