import fc from "fast-check";
import { expect, test } from "vitest";
import { GraphBuilder } from "../../src/ir/builder.js";
import type { Graph } from "../../src/ir/graph.js";
import { floatTensor } from "../../src/kernels/tensor.js";
import { caseArb, expectSameOutputs, modelGraph, opCount, runPasses, transposesInBlocks } from "./helpers.js";
import { randomTensor } from "../helpers.js";

function graphOf(shape: number[], body: (b: GraphBuilder, x: ReturnType<GraphBuilder["input"]>) => ReturnType<GraphBuilder["input"]>): Graph {
  const b = new GraphBuilder();
  const x = b.input("x", { dtype: "f32", shape });
  const y = body(b, x);
  y.name = "y";
  return b.finish([y]);
}

const kinds = (g: Graph) => g.nodes.map((n) => n.kind);
const elim = (g: Graph) => runPasses(g, [{ pass: "transpose-elimination" }]);

test("a cancelling pair disappears, leaving only the op between", () => {
  const g = graphOf([2, 3], (b, x) => b.op("silu", [b.op("transpose", [b.op("transpose", [x], { perm: [1, 0] })], { perm: [1, 0] })], {}));
  const out = elim(g);
  expect(kinds(out)).toEqual(["silu"]);
  expectSameOutputs(g, out, { x: randomTensor([2, 3], 1) }, 0);
});

test("tokens -> channels-first -> tokens collapses to nothing, on square and non-square grids", () => {
  for (const [H, W] of [[4, 4], [2, 8]]) {
    const g = graphOf([1, H * W, 6], (b, x) => {
      const map = b.op("reshape", [b.op("transpose", [x], { perm: [0, 2, 1] })], { shape: [1, 6, H, W] });
      const nhwc = b.op("transpose", [map], { perm: [0, 2, 3, 1] });
      return b.op("sigmoid", [nhwc], {});
    });
    const out = elim(g);
    expect(kinds(out)).toEqual(["reshape", "sigmoid"]); // (B, L, C) -> (B, H, W, C) is a plain reshape
    expectSameOutputs(g, out, { x: randomTensor([1, H * W, 6], 2) }, 0);
  }
});

test("a lone layout op goes only when it changes nothing: same shape, same order of elements", () => {
  // a reshape to its operand's shape, or a transpose that swaps two unit axes, each alone: it vanishes
  for (const layout of [
    (b: GraphBuilder, v: ReturnType<GraphBuilder["input"]>) => b.op("reshape", [v], { shape: [1, 1, 6] }),
    (b: GraphBuilder, v: ReturnType<GraphBuilder["input"]>) => b.op("transpose", [v], { perm: [1, 0, 2] }),
  ]) {
    const same = graphOf([1, 1, 6], (b, x) => b.op("add", [layout(b, b.op("exp", [x], {})), x], {}));
    const out = elim(same);
    expect(kinds(out)).toEqual(["exp", "add"]);
    expectSameOutputs(same, out, { x: randomTensor([1, 1, 6], 5) }, 0);
  }
  // a lone reshape, or a transpose that only moves a unit axis (a reshape in effect), stays as it is
  for (const body of [
    (b: GraphBuilder, x: ReturnType<GraphBuilder["input"]>) => b.op("reshape", [b.op("exp", [x], {})], { shape: [6, 1, 1] }),
    (b: GraphBuilder, x: ReturnType<GraphBuilder["input"]>) => b.op("transpose", [b.op("exp", [x], {})], { perm: [2, 0, 1] }),
  ]) {
    const g = graphOf([1, 1, 6], body);
    expect(elim(g).nodes).toEqual(g.nodes);
  }
});

test("a real permutation of a square map is kept (no decision from equal sizes)", () => {
  const g = graphOf([1, 3, 4, 4], (b, x) => b.op("exp", [b.op("transpose", [x], { perm: [0, 1, 3, 2] })], {}));
  const out = elim(g);
  expect(opCount(out, "transpose")).toBe(1);
  expectSameOutputs(g, out, { x: randomTensor([1, 3, 4, 4], 3) }, 0);
});

test("layout ops on constants fold into the constant; transposes sink below unary ops", () => {
  const g = graphOf([3, 2], (b, x) => {
    const c = b.tensorConstant("c", floatTensor([2, 3], Float32Array.of(1, 2, 3, 4, 5, 6)));
    return b.op("add", [x, b.op("transpose", [c], { perm: [1, 0] })], {});
  });
  const out = elim(g);
  expect(kinds(out)).toEqual(["const", "add"]);
  expectSameOutputs(g, out, { x: randomTensor([3, 2], 4) }, 0);
  const h = graphOf([2, 3], (b, x) => b.op("transpose", [b.op("tanh", [b.op("transpose", [x], { perm: [1, 0] })], {})], { perm: [1, 0] }));
  expect(kinds(elim(h))).toEqual(["tanh"]);
});

test("after the channels-first lowerings and relayout-nchw, no transposes remain inside blocks, outputs unchanged", () => {
  const nchw = { layout: "nchw" };
  fc.assert(
    fc.property(caseArb, (c) => {
      const { graph, inputs } = modelGraph(c);
      const out = runPasses(graph, [
        { pass: "lower-assa" }, { pass: "unroll-bna", options: nchw }, { pass: "lower-rope", options: nchw }, { pass: "lower-qk-norm", options: nchw },
        { pass: "split-einsum-attention", options: { ...nchw, form: "einsum" } }, { pass: "relayout-nchw" }, { pass: "transpose-elimination" },
      ], inputs);
      expect(transposesInBlocks(out)).toBe(0);
      expect(opCount(out, "linear")).toBe(3); // only the rank-2 timestep MLP stays a linear
    }),
    { numRuns: 8 },
  );
});
