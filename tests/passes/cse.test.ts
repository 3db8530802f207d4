import fc from "fast-check";
import { expect, test } from "vitest";
import { GraphBuilder } from "../../src/ir/builder.js";
import { floatTensor } from "../../src/kernels/tensor.js";
import { randomTensor } from "../helpers.js";
import { expectSameOutputs, opCount, runPasses } from "./helpers.js";

test("cse merges identical nodes and keeps different ones", () => {
  const b = new GraphBuilder();
  const x = b.input("x", { dtype: "f32", shape: [2, 3] });
  const t1 = b.op("transpose", [x], { perm: [1, 0] }), t2 = b.op("transpose", [x], { perm: [1, 0] });
  const c1 = b.tensorConstant("one", floatTensor([1], Float32Array.of(1))), c2 = b.tensorConstant("one", floatTensor([1], Float32Array.of(1)));
  const y = b.op("add", [b.op("add", [t1, c1], {}), b.op("add", [t2, c2], {})], {});
  y.name = "y";
  const g = b.finish([y]);
  const out = runPasses(g, [{ pass: "cse" }]);
  expect(opCount(out, "transpose")).toBe(1);
  expect(opCount(out, "const")).toBe(2); // distinct constant objects are never merged
  expect(opCount(out, "add")).toBe(3);
  // nodes none of whose operands merged are the same objects; the add reading t2 is a new one
  for (const n of [g.nodes[0], g.nodes[2], g.nodes[3], g.nodes[4]]) expect(out.nodes).toContain(n);
  expect(out.nodes).not.toContain(g.nodes[5]);
  expectSameOutputs(g, out, { x: randomTensor([2, 3], 1) }, 0);
});

test("cse merges nodes of one kind and operand by their attributes, however many share the operand", () => {
  // slices of one input at begins drawn from a few: the first of each begin is kept, the order of
  // first appearance decides which, and equal ones merge even when others came between them
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 12 }), (begins) => {
      const b = new GraphBuilder();
      const x = b.input("x", { dtype: "f32", shape: [2, 8] });
      const slices = begins.map((at) => b.op("slice", [x], { begin: [0, at], size: [2, 4] }));
      const y = slices.slice(1).reduce((acc, s) => b.op("add", [acc, s], {}), slices[0]!);
      y.name = "y";
      const g = b.finish([y]);
      const out = runPasses(g, [{ pass: "cse" }]);
      expect(opCount(out, "slice")).toBe(new Set(begins).size);
      const kept = out.nodes.filter((n) => n.kind === "slice").map((n) => (n.attrs as { begin: number[] }).begin[1]);
      expect(kept).toEqual([...new Set(begins)]);
      expectSameOutputs(g, out, { x: randomTensor([2, 8], begins.length) }, 0);
    }),
    { numRuns: 60 },
  );
});

test("cse compares attributes by structure: key order does not matter, any element does", () => {
  const b = new GraphBuilder();
  const x = b.input("x", { dtype: "f32", shape: [2, 8] });
  const s1 = b.op("slice", [x], { begin: [0, 1], size: [2, 4] });
  const s2 = b.op("slice", [x], { size: [2, 4], begin: [0, 1] }); // the same slice, keys reordered
  const s3 = b.op("slice", [x], { begin: [0, 2], size: [2, 4] }); // one element differs
  const y = b.op("add", [b.op("add", [s1, s2], {}), s3], {});
  y.name = "y";
  const g = b.finish([y]);
  const out = runPasses(g, [{ pass: "cse" }]);
  const begins = out.nodes.filter((n) => n.kind === "slice").map((n) => (n.attrs as { begin: number[] }).begin[1]);
  expect(begins).toEqual([1, 2]);
  expectSameOutputs(g, out, { x: randomTensor([2, 8], 3) }, 0);
});
