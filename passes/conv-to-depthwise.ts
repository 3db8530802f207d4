// conv-to-depthwise: TFLite runs a conv with one input channel per group as DEPTHWISE_CONV_2D,
// whose filter is (1, KH, KW, C·M) rather than CONV_2D's OHWI (docs/toolchain.md, the tflite target).
//
//   %y = conv2d(%x NHWC, %w (C·M,KH,KW,1)) {groups=C}   ==>   %y = depthwise_conv2d(%x, transpose(%w) {[3,1,2,0]})
//
// The filter transpose folds into the constant (or onto palettized indices) in
// transpose-elimination, so no data moves at run time.
import type { Graph } from "../src/ir/graph.js";
import { applyRules, rule } from "../src/ir/rewrite.js";
import { definePass } from "../src/pipeline/pass.js";

export const convToDepthwise = definePass({
  name: "conv-to-depthwise",
  summary: "NHWC convs with one input channel per group -> depthwise_conv2d (1HWC filters)",
  requires: ["layout:nhwc"],
  ensures: [],
  defaults: {},
  run: (g: Graph, _o, log) => {
    const toDepthwise = rule("conv-to-depthwise", "conv2d", {
      match: (n) => {
        if (n.attrs.layout !== "NHWC") return "not NHWC";
        const C = n.inputs[0]!.type.shape[3]!, w = n.inputs[1]!.type.shape;
        return (n.attrs.groups === C && w[3] === 1 && C > 1) || "not one input channel per group";
      },
      rewrite: (n, { b }) => {
        const [x, w, bias] = n.inputs;
        const filter = b.op("transpose", [w!], { perm: [3, 1, 2, 0] });
        const attrs = { stride: n.attrs.stride, pads: n.attrs.pads };
        return b.op("depthwise_conv2d", bias ? [x!, filter, bias] : [x!, filter], attrs);
      },
    });
    return applyRules(g, [toDepthwise], { pass: "conv-to-depthwise", mode: "once", ...(log ? { log } : {}) }).graph;
  },
});
