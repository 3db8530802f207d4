import fc from "fast-check";
import { expect, test } from "vitest";
import { queryChunks } from "../../passes/split-einsum-attention.js";
import { presetConfig } from "../../src/model/config.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import { randomTensor } from "../helpers.js";
import { caseArb, modelGraph, opCount, runPasses } from "./helpers.js";

for (const layout of ["tokens", "nchw"] as const) {
  test(`lower-rope (${layout}, computed or stored tables) and lower-qk-norm (${layout}) remove their ops and keep the outputs`, () => {
    fc.assert(
      fc.property(caseArb, fc.constantFrom("computed", "stored-per-channel"), (c, tables) => {
        const { graph, inputs } = modelGraph(c);
        const after = runPasses(graph, [{ pass: "lower-rope", options: { layout, tables } }, { pass: "lower-qk-norm", options: { layout } }], inputs);
        expect(opCount(after, "rope_2d") + opCount(after, "qk_norm")).toBe(0);
        if (c.config.rope === "2d") expect(opCount(after, "gather")).toBeGreaterThan(opCount(graph, "gather"));
      }),
      { numRuns: 10 },
    );
  });

  const forms = layout === "nchw" ? (["einsum", "matmul"] as const) : (["matmul"] as const);
  for (const form of forms)
    test(`split-einsum-attention (${layout}, ${form}) lowers every attention and keeps the outputs`, () => {
      fc.assert(
        fc.property(caseArb, fc.boolean(), (c, tinyBudget) => {
          const { graph, inputs } = modelGraph(c);
          const pre = [{ pass: "lower-assa" }, { pass: "unroll-bna", options: { layout } }];
          // a tiny score budget forces query chunking
          const options = { layout, form, ...(tinyBudget ? { maxScoreBytes: 256 } : {}) };
          const mid = runPasses(graph, pre);
          const after = runPasses(graph, [...pre, { pass: "split-einsum-attention", options }], inputs);
          expect(opCount(after, "gqa_attention") + opCount(after, "cross_attention")).toBe(0);
          expect(opCount(after, "einsum")).toBe(form === "einsum" ? opCount(after, "softmax") : 0);
          // the token form needs no transposes at all (kᵀ rides on the matmul flag)
          if (layout === "tokens") expect(opCount(after, "transpose")).toBe(opCount(mid, "transpose"));
        }),
        { numRuns: 8 },
      );
    });
}

test("split-einsum-attention keeps each head's score tensor within the budget", () => {
  expect(queryChunks(1, 4096, 1024, { layout: "nchw", form: "einsum", maxScoreBytes: 16 * 2 ** 20, scoreBytes: 2 })).toEqual([4096]);
  expect(queryChunks(1, 4096, 4096, { layout: "nchw", form: "einsum", maxScoreBytes: 16 * 2 ** 20, scoreBytes: 2 })).toEqual([2048, 2048]);
  expect(queryChunks(2, 10, 3, { layout: "tokens", form: "matmul", maxScoreBytes: 48, scoreBytes: 4 })).toEqual([2, 2, 2, 2, 2]);
  const c = presetConfig("micro", { depths: [0, 1, 0] });
  const { graph, inputs } = modelGraph({ config: c, width: 1, seed: 3 });
  const after = runPasses(graph, [{ pass: "lower-assa" }, { pass: "unroll-bna" }, { pass: "split-einsum-attention", options: { layout: "tokens", maxScoreBytes: 512 } }], inputs);
  for (const n of after.nodes.filter((x) => x.kind === "softmax")) expect(n.outputs[0]!.type.shape.reduce((a, b) => a * b, 1) * 2).toBeLessThanOrEqual(512);
});

test("split-einsum-attention slices each kv head once for its group of query heads", () => {
  for (const [layout, form] of [["tokens", "matmul"], ["nchw", "einsum"], ["nchw", "matmul"]] as const) {
    const b = new GraphBuilder();
    const [B, L, heads, kvHeads, dh] = [1, 6, 8, 2, 4];
    const q = b.input("q", { dtype: "f32", shape: [B, L, heads * dh] });
    const k = b.input("k", { dtype: "f32", shape: [B, L, kvHeads * dh] }), v = b.input("v", { dtype: "f32", shape: [B, L, kvHeads * dh] });
    const y = b.op("gqa_attention", [q, k, v], { heads, kvHeads, scale: 0.5 });
    y.name = "y";
    const g = b.finish([y]);
    const after = runPasses(g, [{ pass: "lower-assa" }, { pass: "unroll-bna", options: { layout } }, { pass: "split-einsum-attention", options: { layout, form } }], { q: randomTensor(q.type.shape, 1), k: randomTensor(k.type.shape, 2), v: randomTensor(v.type.shape, 3) });
    // one slice of q per head, one of k and one of v per kv head
    expect(opCount(after, "slice")).toBe(heads + 2 * kvHeads);
  }
});

test("mask-bna (the benchmark baseline) computes BNA exactly as the reference does", () => {
  fc.assert(
    fc.property(caseArb, (c) => {
      const { graph, inputs } = modelGraph(c);
      const after = runPasses(graph, [{ pass: "lower-assa" }, { pass: "mask-bna" }], inputs);
      expect(opCount(after, "bna_attention")).toBe(0);
    }),
    { numRuns: 8 },
  );
});
