// decompose-layer-norm: LayerNorm as the reductions and elementwise ops every runtime has, for
// targets with no layer-norm op (TFLite: docs/formats/tflite.md).
//
//   %y = layer_norm(%x, %w, %b) {axis, eps}   ==>   %m = reduce_mean(%x) {axis, keep}
//                                                   %d = sub(%x, %m)
//                                                   %v = reduce_mean(mul(%d, %d)) {axis, keep}
//                                                   %y = add(mul(mul(%d, rsqrt(add(%v, eps))), %w'), %b')
//
// %w' and %b' are the affine reshaped to broadcast along the axis (a no-op for the last axis).
import type { Graph, Value } from "../src/ir/graph.js";
import { applyRules, rule } from "../src/ir/rewrite.js";
import { floatTensor, normAxis } from "../src/kernels/tensor.js";
import { definePass } from "../src/pipeline/pass.js";

export const decomposeLayerNorm = definePass({
  name: "decompose-layer-norm",
  summary: "layer_norm -> mean, subtract, mean of squares, rsqrt, scale and shift",
  requires: [],
  ensures: [],
  defaults: {},
  run: (g: Graph, _o, log) => {
    const decompose = rule("decompose-layer-norm", "layer_norm", {
      match: () => true,
      rewrite: (n, { b }) => {
        const [x, w, bias] = n.inputs;
        const rank = x!.type.shape.length, axis = normAxis(n.attrs.axis, rank);
        const dtype = x!.type.dtype as "f32" | "f16";
        const mean = (v: Value) => b.op("reduce_mean", [v], { axes: [axis], keepDims: true });
        const d = b.op("sub", [x!, mean(x!)], {});
        const variance = mean(b.op("mul", [d, d], {}));
        const eps = b.tensorConstant(`eps ${n.attrs.eps}`, floatTensor([1], Float32Array.of(n.attrs.eps), dtype));
        let y = b.op("mul", [d, b.op("rsqrt", [b.op("add", [variance, eps], {})], {})], {});
        if (w && bias) {
          const along = (v: Value) => (axis === rank - 1 ? v : b.op("reshape", [v], { shape: [x!.type.shape[axis]!, ...Array<number>(rank - 1 - axis).fill(1)] }));
          y = b.op("add", [b.op("mul", [y, along(w)], {}), along(bias)], {});
        }
        return y;
      },
    });
    return applyRules(g, [decompose], { pass: "decompose-layer-norm", mode: "once", ...(log ? { log } : {}) }).graph;
  },
});
