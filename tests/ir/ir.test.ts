import { describe, expect, test } from "vitest";
import { DIAGNOSTICS, DitcError } from "../../src/diagnostics.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import type { Graph, Node } from "../../src/ir/graph.js";
import { printGraph } from "../../src/ir/print.js";
import { verifyGraph } from "../../src/ir/verify.js";
import { runGraph } from "../../src/interp/interpreter.js";
import { roundToF16InPlace } from "../../src/kernels/fp16.js";
import { floatTensor } from "../../src/kernels/tensor.js";
import { relErr } from "../helpers.js";
import { OPS } from "../../src/ops/index.js";

function tiny(): Graph {
  const b = new GraphBuilder();
  const x = b.input("x", { dtype: "f32", shape: [2, 3] });
  const w = b.tensorConstant("w", floatTensor([4, 3], Float32Array.from({ length: 12 }, (_, i) => i / 10)));
  const y = b.scoped("blk.0", () => b.op("gelu_tanh", [b.op("linear", [x, w], {})], {}));
  y.name = "y";
  return b.finish([y]);
}

describe("builder", () => {
  test("infers types as it builds and refuses ill-typed ops, naming op and scope", () => {
    const b = new GraphBuilder();
    const x = b.input("x", { dtype: "f32", shape: [2, 3] });
    const w = b.tensorConstant("w", floatTensor([4, 5]));
    expect(() => b.scoped("down.0.attn", () => b.op("linear", [x, w], {}))).toThrow(/E4002 linear in down\.0\.attn: weight \(4, 5\) expects 5 input features, x has 3/);
    for (const perm of [[0, 0], [0, 2], [1], [-1, 0], [0.5, 1], [1, 0, 2]]) expect(() => b.op("transpose", [x], { perm })).toThrow(/not a permutation/);
    expect(b.op("transpose", [x], { perm: [1, 0] }).type.shape).toEqual([3, 2]);
    expect(() => b.op("add", [x], {})).toThrow(/takes 2 operands/);
    expect(b.op("reshape", [x], { shape: [3, 2] }).type.shape).toEqual([3, 2]);
  });
});

describe("verifier", () => {
  test("accepts a built graph", () => {
    expect(() => verifyGraph(tiny())).not.toThrow();
  });

  test("rejects a use before definition, naming the pass", () => {
    const g = tiny();
    const nodes = [...g.nodes].reverse();
    expect(() => verifyGraph({ ...g, nodes }, "reorder-for-test")).toThrow(/after pass reorder-for-test: .* reads %\d+, which is not defined before it/);
  });

  test("checks the place of nodes it has verified before: order and single definition", () => {
    const g = tiny();
    verifyGraph(g); // every node now known as checked
    expect(() => verifyGraph({ ...g, nodes: [...g.nodes].reverse() }, "reorder-for-test")).toThrow(/after pass reorder-for-test: .* reads %\d+, which is not defined before it/);
    expect(() => verifyGraph({ ...g, nodes: [...g.nodes, g.nodes[g.nodes.length - 1]!] })).toThrow(/%\d+ is defined twice/);
    expect(() => verifyGraph(g)).not.toThrow();
  });

  test("rejects a stored type that inference disagrees with", () => {
    const g = tiny();
    const gelu = g.nodes.find((n) => n.kind === "gelu_tanh")!;
    const wrong = { ...gelu, outputs: [{ id: 99, type: { dtype: "f32" as const, shape: [2, 5] } }] } as Node;
    const nodes = g.nodes.map((n) => (n === gelu ? wrong : n));
    expect(() => verifyGraph({ ...g, nodes, outputs: wrong.outputs })).toThrow(/stored as f32\[2,5\] but infers f32\[2,4\]/);
  });

  test("re-infers a kept node whose operands or attrs a pass changed (its results array reused)", () => {
    const b = new GraphBuilder();
    const x = b.input("x", { dtype: "f32", shape: [2, 3] });
    const z = b.input("z", { dtype: "f32", shape: [3, 2] });
    const t = b.op("transpose", [x], { perm: [1, 0] });
    const g = b.finish([t]);
    verifyGraph(g); // remembered as inferred
    const node = g.nodes[0]!;
    // a copy as a pass keeps it: same results and attrs, operand rewired to a value of another shape
    const rewired = { ...node, inputs: [z] } as Node;
    expect(() => verifyGraph({ ...g, nodes: [rewired] }, "rewire-for-test")).toThrow(/stored as f32\[3,2\] but infers f32\[2,3\]/);
    const reattributed = { ...node, attrs: { perm: [0, 1] } } as Node;
    expect(() => verifyGraph({ ...g, nodes: [reattributed] }, "reattr-for-test")).toThrow(/stored as f32\[3,2\] but infers f32\[2,3\]/);
    // an unchanged copy passes without re-inference
    expect(() => verifyGraph({ ...g, nodes: [{ ...node, id: 0 } as Node] })).not.toThrow();
  });

  test("does not infer again what the builder inferred; infers a node a pass built by hand", () => {
    const b = new GraphBuilder();
    const x = b.input("x", { dtype: "f32", shape: [2, 3] });
    const t = b.op("transpose", [x], { perm: [1, 0] });
    const g = b.finish([t]);
    const def = OPS.transpose as { infer: (...a: never[]) => unknown };
    const infer = def.infer;
    let calls = 0;
    def.infer = (...a) => (calls++, infer(...a));
    try {
      verifyGraph(g);
      expect(calls).toBe(0);
      const byHand = { ...g.nodes[0]!, outputs: [{ id: 7, type: t.type }] } as Node;
      verifyGraph({ ...g, nodes: [byHand], outputs: byHand.outputs });
      expect(calls).toBe(1);
    } finally {
      def.infer = infer;
    }
  });

  test("accepts sparse ids (a small graph left by a pass on a large one) and still catches a shared id there", () => {
    const b = new GraphBuilder(5_000_000);
    const x = b.input("x", { dtype: "f32", shape: [2, 3] });
    const y = b.op("gelu_tanh", [x], {});
    const g = b.finish([y]);
    expect(() => verifyGraph(g)).not.toThrow();
    const clash = { ...g.nodes[0]!, outputs: [{ ...y, id: x.id }] } as Node;
    expect(() => verifyGraph({ ...g, nodes: [clash], outputs: clash.outputs })).toThrow(/%5000000 is used by two values/);
  });

  test("rejects an id that is not a non-negative integer", () => {
    const g = tiny();
    for (const id of [-1, 1.5, Number.NaN]) {
      const nodes = g.nodes.map((n, i) => (i === 0 ? ({ ...n, outputs: [{ ...n.outputs[0]!, id }] } as Node) : n));
      expect(() => verifyGraph({ ...g, nodes }), String(id)).toThrow(/not a non-negative integer/);
    }
  });

  test("rejects two values with one id (a pass numbering from 0 again)", () => {
    const g = tiny();
    const gelu = g.nodes.find((n) => n.kind === "gelu_tanh")!;
    const clash = { ...gelu, outputs: [{ ...gelu.outputs[0]!, id: g.inputs[0]!.id }] } as Node;
    expect(() => verifyGraph({ ...g, nodes: g.nodes.map((n) => (n === gelu ? clash : n)), outputs: clash.outputs })).toThrow(/%0 is used by two values \(again by %0 gelu_tanh in blk\.0\)/);
  });

  test("rejects an undefined output and an unknown op", () => {
    const g = tiny();
    expect(() => verifyGraph({ ...g, outputs: [{ id: 1234, type: { dtype: "f32", shape: [1] } }] })).toThrow(/output %1234 is not defined/);
    const bogus = { ...g.nodes[1]!, kind: "frobnicate" } as unknown as Node;
    expect(() => verifyGraph({ ...g, nodes: [g.nodes[0]!, bogus] })).toThrow(/unknown op kind "frobnicate"/);
  });
});

describe("printer and interpreter", () => {
  test("dumps one node a line with types and scopes", () => {
    const text = printGraph(tiny());
    expect(text).toContain("graph(%0 x: f32[2,3]) {");
    expect(text).toMatch(/%\d+ = const\(\) \{"w"\} : f32\[4,3\]/);
    expect(text).toMatch(/= gelu_tanh\(%\d+\) : f32\[2,4\]  # blk\.0/);
    expect(text).toMatch(/return %\d+ y/);
  });

  test("runs the graph, checks feeds, and fp16 mode rounds to half precision", () => {
    const g = tiny();
    const x = floatTensor([2, 3], Float32Array.of(1, 2, 3, -1, 0, 1));
    const y = runGraph(g, { x }).y!;
    expect(y.shape).toEqual([2, 4]);
    expect(y.data[0]).toBeCloseTo(0.5 * 0.8 * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (0.8 + 0.044715 * 0.8 ** 3))), 6);
    const h = runGraph(g, { x }, { precision: "fp16" }).y!;
    for (const v of h.data) expect(Math.fround(v)).toBe(v);
    expect(() => runGraph(g, {})).toThrow(/input "x" is missing/);
    expect(() => runGraph(g, { x: floatTensor([3, 2]) })).toThrow(/has f32\[3,2\], the model needs f32\[2,3\]/);
  });
});

test("fp16 mode rounds each result to half precision where it lies, and leaves the caller's feeds and constants as they were", () => {
  const b = new GraphBuilder();
  const x = b.input("x", { dtype: "f32", shape: [64, 48] });
  const wData = Float32Array.from({ length: 32 * 48 }, (_, i) => Math.sin(i) / 7);
  const w = b.tensorConstant("w", floatTensor([32, 48], wData));
  const y = b.op("reshape", [b.op("gelu_tanh", [b.op("linear", [x, w], {})], {})], { shape: [32, 64] });
  y.name = "y";
  const g = b.finish([y]);
  const xData = Float32Array.from({ length: 64 * 48 }, (_, i) => Math.cos(i) * 3.3);
  const x0 = xData.slice(), w0 = wData.slice();
  let results = 0;
  const half = runGraph(g, { x: floatTensor([64, 48], xData) }, {
    precision: "fp16",
    observe: (_n, _ins, outs) => {
      for (const t of outs) {
        results++;
        expect([...t.data]).toEqual([...roundToF16InPlace(Float32Array.from(t.data as Float32Array))]);
      }
    },
  }).y!;
  expect(results).toBe(3);
  expect(xData).toEqual(x0); // rounded as copies
  expect(wData).toEqual(w0);
  const full = runGraph(g, { x: floatTensor([64, 48], xData) }).y!;
  expect(relErr(half.data, full.data)).toBeLessThan(5e-3);
  expect(relErr(half.data, full.data)).toBeGreaterThan(0);
});

test("diagnostic codes are unique and every op kind has a kernel and inference", () => {
  const codes = Object.values(DIAGNOSTICS).map((d) => d.code);
  expect(new Set(codes).size).toBe(codes.length);
  for (const [name, def] of Object.entries(OPS)) {
    expect(typeof def.infer, name).toBe("function");
    expect(typeof def.kernel, name).toBe("function");
  }
  expect(new DitcError("usage", "E1003", "usage", "x").exitCode).toBe(2);
});
