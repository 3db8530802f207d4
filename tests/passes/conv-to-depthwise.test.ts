import fc from "fast-check";
import { expect, test } from "vitest";
import { caseArb, modelGraph, opCount, runPasses, transposesInBlocks } from "./helpers.js";

test("conv-to-depthwise: depthwise compress convs become depthwise_conv2d, filter moves fold away, outputs unchanged", () => {
  fc.assert(
    fc.property(caseArb, (c) => {
      const { graph, inputs } = modelGraph(c);
      const pre = [{ pass: "lower-assa" }, { pass: "relayout-nhwc" }];
      const out = runPasses(graph, [...pre, { pass: "conv-to-depthwise" }, { pass: "transpose-elimination" }], inputs);
      const assaBlocks = c.config.depths[0] + c.config.depths[2];
      expect(opCount(out, "depthwise_conv2d")).toBe(c.config.kvCompress === "depthwise" ? 2 * assaBlocks : 0);
      // what is left as conv2d is ungrouped: the patch embed, the downsample and dense compress convs
      expect(out.nodes.every((n) => n.kind !== "conv2d" || n.attrs.groups === 1)).toBe(true);
      expect(transposesInBlocks(out)).toBe(0);
    }),
    { numRuns: 8 },
  );
});
