// The rewrite driver (src/ir/rewrite.ts): greedy walks to a fixed point, nodes before the first
// match kept as they are (and later ones whose operands did not change), each refusal logged once,
// and matches that stay pure.
import fc from "fast-check";
import { expect, test } from "vitest";
import { GraphBuilder } from "../../src/ir/builder.js";
import type { Graph } from "../../src/ir/graph.js";
import { applyRules, removeDeadNodes, rule } from "../../src/ir/rewrite.js";

/** y = sqrt(neg(neg(neg(neg(exp(x)))))): two pairs of negations to cancel. */
function negations(): Graph {
  const b = new GraphBuilder();
  let v = b.op("exp", [b.input("x", { dtype: "f32", shape: [2, 3] })], {});
  for (let i = 0; i < 4; i++) v = b.op("neg", [v], {});
  const y = b.op("sqrt", [v], {});
  y.name = "y";
  return b.finish([y]);
}

const cancelNeg = rule("cancel-neg", "neg", {
  match: (n, ctx) => ctx.producer(n.inputs[0]!)?.kind === "neg" || "input is not a neg",
  rewrite: (n, ctx) => ctx.producer(n.inputs[0]!)!.inputs[0]!,
});

test("greedy rewriting reaches the fixed point, keeps the nodes before the first match, and logs each refusal once", () => {
  const g = negations();
  const lines: string[] = [];
  const { graph, fired } = applyRules(g, [cancelNeg], { pass: "test", log: (l) => lines.push(l) });
  expect(graph.nodes.map((n) => n.kind)).toEqual(["exp", "sqrt"]);
  expect(graph.nodes[0]).toBe(g.nodes[0]); // before the first match: the very same node
  expect(graph.outputs[0]!.name).toBe("y");
  expect(fired).toEqual({ "cancel-neg": 2 });
  // walk 1: the first neg refuses (logged once, not again when the walk starts at the second),
  // the second cancels with it, the third refuses, the fourth cancels; walk 2 finds no neg
  expect(lines).toEqual([
    "cancel-neg: skip neg: input is not a neg",
    "cancel-neg: rewrote neg",
    "cancel-neg: skip neg: input is not a neg",
    "cancel-neg: rewrote neg",
  ]);
});

test("a walk that matches nothing returns the graph it was given, logging each refusal once", () => {
  const b = new GraphBuilder();
  const y = b.op("neg", [b.op("exp", [b.input("x", { dtype: "f32", shape: [4] })], {})], {});
  const g = b.finish([y]);
  const lines: string[] = [];
  const { graph, fired } = applyRules(g, [cancelNeg], { pass: "test", log: (l) => lines.push(l) });
  expect(graph.nodes).toEqual(g.nodes);
  graph.nodes.forEach((n, i) => expect(n).toBe(g.nodes[i]));
  expect(fired).toEqual({});
  expect(lines).toEqual(["cancel-neg: skip neg: input is not a neg"]);
});

test("a match may not build: the driver says which pass broke the rule", () => {
  const impure = rule("impure", "neg", {
    match: (n, ctx) => ctx.b.op("exp", [n.inputs[0]!], {}) !== undefined,
    rewrite: (n) => n.inputs[0]!,
  });
  expect(() => applyRules(negations(), [impure], { pass: "impure-pass" })).toThrow(/pass impure-pass: a rule's match used the builder/);
});

test("a node after a rewrite that reads none of the rewritten values is kept as it is (a rule's refusing candidate too), though its position moved", () => {
  // x -> exp -> neg -> neg -> sqrt ; x -> tanh : the negations cancel, the tanh reads only x
  const b = new GraphBuilder();
  const x = b.input("x", { dtype: "f32", shape: [3] });
  const y = b.op("sqrt", [b.op("neg", [b.op("neg", [b.op("exp", [x], {})], {})], {})], {});
  const z = b.op("tanh", [x], {});
  const w = b.op("neg", [z], {}); // a candidate of the rule that refuses: kept as it is too
  const g = b.finish([y, w]);
  const { graph } = applyRules(g, [cancelNeg], { pass: "test" });
  expect(graph.nodes.map((n) => n.kind)).toEqual(["exp", "sqrt", "tanh", "neg"]);
  expect(graph.nodes[2]).toBe(g.nodes[4]); // the same object, now at index 2
  expect(graph.nodes[3]).toBe(g.nodes[5]);
  expect(graph.nodes[1]).not.toBe(g.nodes[3]); // sqrt reads the exp now: a new node
  expect(graph.nodes[1]!.inputs[0]).toBe(graph.nodes[0]!.outputs[0]);
});

/** A random chain-and-branch graph of unary and binary ops over one input; some results unread. */
function randomGraph(picks: readonly number[]): Graph {
  const b = new GraphBuilder();
  const vals = [b.input("x", { dtype: "f32", shape: [2] })];
  for (const p of picks) {
    const a = vals[p % vals.length]!, c = vals[(p >> 3) % vals.length]!;
    vals.push(p % 3 === 0 ? b.op("add", [a, c], {}) : b.op(p % 3 === 1 ? "neg" : "exp", [a], {}));
  }
  return b.finish([vals[vals.length - 1]!, vals[Math.floor(vals.length / 2)]!]);
}

/** The nodes some output depends on, by a plain search from the outputs. */
function liveNodes(g: Graph): Set<unknown> {
  const producer = new Map(g.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
  const live = new Set<unknown>();
  const visit = (v: (typeof g.outputs)[number]) => {
    const n = producer.get(v);
    if (n && !live.has(n)) (live.add(n), n.inputs.forEach(visit));
  };
  g.outputs.forEach(visit);
  return live;
}

test("dead nodes go, whether the rules fire or not, and use counts are those of the graph walked", () => {
  const counted = new Map<number, number>();
  const countUses = rule("count-uses", ["exp", "neg", "add"], {
    match: (n, ctx) => (counted.set(n.outputs[0]!.id, ctx.useCount(n.outputs[0]!)), "only counts"),
    rewrite: () => {
      throw new Error("never");
    },
  });
  fc.assert(
    fc.property(fc.array(fc.nat(255), { minLength: 1, maxLength: 40 }), fc.boolean(), (picks, cancel) => {
      const g = randomGraph(picks);
      counted.clear();
      const { graph } = applyRules(g, cancel ? [cancelNeg] : [countUses], { pass: "test" });
      if (!cancel) {
        // no rewrite: the live nodes of the input, in order; each count as a plain tally says
        expect(graph.nodes).toEqual(g.nodes.filter((n) => liveNodes(g).has(n)));
        for (const n of g.nodes) {
          const o = n.outputs[0]!;
          expect(counted.get(o.id)).toBe(g.nodes.filter((m) => m.inputs.includes(o)).reduce((a, m) => a + m.inputs.filter((v) => v === o).length, 0) + g.outputs.filter((v) => v === o).length);
        }
      }
      expect(graph.nodes.length).toBe(liveNodes(graph).size);
      expect(removeDeadNodes(graph).nodes).toEqual(graph.nodes);
    }),
  );
});

/** neg(transpose(...transpose(x))) with `depth` transposes: sinking the neg takes one rewrite per transpose. */
function negOverTransposes(depth: number): Graph {
  const b = new GraphBuilder();
  let v = b.input("x", { dtype: "f32", shape: [2, 3] });
  for (let i = 0; i < depth; i++) v = b.op("transpose", [v], { perm: [1, 0] });
  const y = b.op("neg", [v], {});
  y.name = "y";
  return b.finish([y]);
}

const sinkNeg = rule("sink-neg", "neg", {
  match: (n, ctx) => ctx.producer(n.inputs[0]!)?.kind === "transpose" || "input is not a transpose",
  rewrite: (n, ctx) => {
    const t = ctx.producer(n.inputs[0]!)!;
    return ctx.b.op("transpose", [ctx.b.op("neg", [t.inputs[0]!], {})], { perm: [1, 0] });
  },
});

test("greedy rewriting matches what a rewrite built at once: a chain of rewrites takes one walk (and one to find nothing), longer ones a walk per nine steps", () => {
  for (const [depth, walks] of [[5, 2], [9, 2], [10, 3], [20, 4]] as const) {
    const { graph, fired, walks: w } = applyRules(negOverTransposes(depth), [sinkNeg], { pass: "test" });
    expect(graph.nodes.map((n) => n.kind)).toEqual(["neg", ...Array<string>(depth).fill("transpose")]);
    expect(graph.nodes[0]!.inputs[0]).toBe(graph.inputs[0]);
    expect(graph.outputs[0]!.name).toBe("y");
    expect(fired).toEqual({ "sink-neg": depth });
    expect(w, `depth ${depth}`).toBe(walks);
  }
  // one walk in "once" mode is one step: what the rewrite built waits
  const once = applyRules(negOverTransposes(5), [sinkNeg], { pass: "test", mode: "once" });
  expect(once.graph.nodes.map((n) => n.kind)).toEqual(["transpose", "transpose", "transpose", "transpose", "neg", "transpose"]);
});

test("while a walk matches what a rewrite built, use counts are unknown (-1), so a rule that needs them waits for the next walk", () => {
  const seen: number[] = [];
  const sinkSingleUse = rule("sink-single-use", "neg", {
    match: (n, ctx) => {
      const t = ctx.producer(n.inputs[0]!);
      if (t?.kind !== "transpose") return "input is not a transpose";
      seen.push(ctx.useCount(n.inputs[0]!));
      return ctx.useCount(n.inputs[0]!) === 1 || "the transpose has other readers";
    },
    rewrite: sinkNeg.rewrite as never,
  });
  const { graph, fired, walks } = applyRules(negOverTransposes(3), [sinkSingleUse], { pass: "test" });
  expect(graph.nodes.map((n) => n.kind)).toEqual(["neg", "transpose", "transpose", "transpose"]);
  expect(fired).toEqual({ "sink-single-use": 3 });
  // each walk: the scan for its first match and the match itself see the count, then the neg the
  // rewrite built refuses with it unknown (the last one reads x: no count asked)
  expect(seen).toEqual([1, 1, -1, 1, 1, -1, 1, 1]);
  expect(walks).toBe(4);
});
