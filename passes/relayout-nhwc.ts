// relayout-nhwc: the channels-last layout TFLite's CONV_2D and DEPTH_TO_SPACE want (docs/toolchain.md).
// Token-major (B, N, C) values are already channels-last, so only the NCHW spatial ops move:
//
//   %y = conv2d(%x, %w OIHW) {NCHW}     ==>   %y = toNCHW(conv2d(toNHWC(%x), transpose(%w) OHWI) {NHWC})
//   %y = pixel_shuffle(%x) {NCHW}       ==>   %y = toNCHW(pixel_shuffle(toNHWC(%x)) {NHWC})
//
// The conversions meet the token<->map reshapes around these ops and collapse to plain reshapes
// in transpose-elimination; the weight transpose folds into the constant.
import type { Graph, Value } from "../src/ir/graph.js";
import type { GraphBuilder } from "../src/ir/builder.js";
import { applyRules, rule } from "../src/ir/rewrite.js";
import { definePass } from "../src/pipeline/pass.js";

const toNhwc = (b: GraphBuilder, x: Value) => b.op("transpose", [x], { perm: [0, 2, 3, 1] });
const toNchw = (b: GraphBuilder, x: Value) => b.op("transpose", [x], { perm: [0, 3, 1, 2] });

export const relayoutNhwc = definePass({
  name: "relayout-nhwc",
  summary: "NCHW convolutions and pixel shuffles to NHWC (OHWI filters)",
  requires: [],
  ensures: ["layout:nhwc"],
  defaults: {},
  run: (g: Graph, _o, log) => {
    const rules = [
      rule("conv2d-to-nhwc", "conv2d", {
        match: (n) => n.attrs.layout === "NCHW" || "already NHWC",
        rewrite: (n, { b }) => {
          const [x, w, bias] = n.inputs;
          const wt = b.op("transpose", [w!], { perm: [0, 2, 3, 1] });
          return toNchw(b, b.op("conv2d", bias ? [toNhwc(b, x!), wt, bias] : [toNhwc(b, x!), wt], { ...n.attrs, layout: "NHWC" }));
        },
      }),
      rule("pixel-shuffle-to-nhwc", "pixel_shuffle", {
        match: (n) => n.attrs.layout === "NCHW" || "already NHWC",
        rewrite: (n, { b }) => toNchw(b, b.op("pixel_shuffle", [toNhwc(b, n.inputs[0]!)], { ...n.attrs, layout: "NHWC" })),
      }),
    ];
    return applyRules(g, rules, { pass: "relayout-nhwc", mode: "once", ...(log ? { log } : {}) }).graph;
  },
});
