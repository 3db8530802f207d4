import fc from "fast-check";
import { expect, test } from "vitest";
import { presetConfig } from "../../src/model/config.js";
import { caseArb, modelGraph, opCount, runPasses } from "./helpers.js";

for (const layout of ["tokens", "nchw"] as const)
  test(`unroll-bna (${layout}): one gqa_attention per block, every partition and edge, outputs unchanged`, () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const { graph, inputs } = modelGraph(c);
        const lowered = runPasses(graph, [{ pass: "lower-assa" }]);
        const before = opCount(lowered, "gqa_attention"), bna = opCount(lowered, "bna_attention");
        const after = runPasses(lowered, [{ pass: "unroll-bna", options: { layout } }], inputs);
        expect(opCount(after, "bna_attention")).toBe(0);
        expect(opCount(after, "gqa_attention")).toBe(before + bna * c.config.bnaBlocks);
      }),
      { numRuns: 10 },
    );
  });

test("unroll-bna: each block's keys are exactly its window (shift keeps 2r+1 blocks, clamp trims the edges)", () => {
  for (const edge of ["clamp", "shift"] as const) {
    const c = presetConfig("micro", { bnaEdge: edge, depths: [1, 0, 0] });
    const { graph } = modelGraph({ config: c, width: 1, seed: 1 });
    const after = runPasses(graph, [{ pass: "lower-assa" }, { pass: "unroll-bna" }]);
    // 16 local blocks of 4 tokens; the down block's global attention sees 16 compressed tokens
    const keyLens = after.nodes.filter((n) => n.kind === "gqa_attention" && n.inputs[0]!.type.shape[1] === 4).map((n) => n.inputs[1]!.type.shape[1]);
    expect(keyLens.length).toBe(16);
    expect(keyLens[0]).toBe(edge === "shift" ? 12 : 8);
    expect(keyLens[7]).toBe(12);
    expect(keyLens[15]).toBe(edge === "shift" ? 12 : 8);
  }
});
