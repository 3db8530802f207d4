import fc from "fast-check";
import { expect, test } from "vitest";
import { caseArb, modelGraph, opCount, runPasses, transposesInBlocks } from "./helpers.js";

test("relayout-nhwc: every conv and pixel shuffle runs NHWC; with elimination no transposes remain in blocks", () => {
  fc.assert(
    fc.property(caseArb, (c) => {
      const { graph, inputs } = modelGraph(c);
      const out = runPasses(graph, [{ pass: "lower-assa" }, { pass: "relayout-nhwc" }, { pass: "transpose-elimination" }], inputs);
      const convs = out.nodes.filter((n) => n.kind === "conv2d");
      expect(convs.length).toBeGreaterThan(0);
      expect(convs.every((n) => n.kind === "conv2d" && n.attrs.layout === "NHWC")).toBe(true);
      expect(opCount(out, "pixel_shuffle")).toBe(2);
      expect(transposesInBlocks(out)).toBe(0);
    }),
    { numRuns: 8 },
  );
});
