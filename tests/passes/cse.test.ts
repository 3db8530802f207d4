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
