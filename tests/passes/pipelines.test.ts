import { describe, expect, test } from "vitest";
import { PASSES } from "../../passes/index.js";
import { applyPipeline, sharedPrefixLowering, TARGET_PIPELINES } from "../../src/driver/pipelines.js";
import { printGraph } from "../../src/ir/print.js";
import { graphStats } from "../../src/driver/inspect.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import type { Node } from "../../src/ir/graph.js";
import { presetConfig } from "../../src/model/config.js";
import { buildPipeline, definePass } from "../../src/pipeline/pass.js";
import { runPipeline } from "../../src/pipeline/run.js";
import { main } from "../../src/cli/main.js";
import { modelGraph } from "./helpers.js";

describe("whole pipelines end to end", () => {
  for (const preset of ["micro", "mini"] as const)
    for (const target of Object.keys(TARGET_PIPELINES))
      test(`${preset} through ${target}: every pass preserves the outputs (1e-5), result is legal`, () => {
        const c = presetConfig(preset);
        const { graph, inputs } = modelGraph({ config: c, width: preset === "mini" ? 0.5 : 1, seed: 5 });
        const out = applyPipeline(graph, target, { semanticCheck: { inputs, rtol: 1e-5 } });
        const s = graphStats(out);
        expect(s.maxRank).toBeLessThanOrEqual(4);
        if (target !== "onnx") expect(s.transposes.inBlocks).toBe(0);
        expect(Object.keys(s.ops).filter((k) => k.endsWith("attention") || k === "rope_2d" || k === "qk_norm")).toEqual([]);
      });
});

describe("targets lowered together share the passes their pipelines begin with", () => {
  const { graph } = modelGraph({ config: presetConfig("micro"), width: 1, seed: 3 });
  const bits = { "blocks.0.attn.qkv.weight": 4 as const };
  const palettize = [{ pass: "palettize", options: { bits, shared: { clusterings: new Map(), biases: new Map() } } }];
  const requests = { coreml: { fp16: true, before: palettize }, tflite: { before: palettize }, onnx: { before: palettize } };

  test("each target's graph is the one its own pipeline gives, in any order; shared steps run once", () => {
    for (const order of [["coreml", "tflite", "onnx"], ["onnx", "tflite", "coreml"]]) {
      const ran: string[][] = [];
      const together = sharedPrefixLowering(graph, Object.fromEntries(order.map((t) => [t, { ...requests[t as keyof typeof requests], onPass: (p: string) => ran.at(-1)!.push(p) }])));
      for (const t of order) {
        ran.push([]);
        const alone = applyPipeline(graph, t, requests[t as keyof typeof requests]);
        expect(printGraph(together.lower(t))).toBe(printGraph(alone));
      }
      const first = ran[0]!, second = ran[1]!, third = ran[2]!;
      expect(first[0]).toBe("palettize");
      // the second TFLite/ONNX pipeline starts after the attention lowering; the third never palettizes again
      const tokensPair = order.indexOf("tflite") < order.indexOf("onnx") ? ["tflite", "onnx"] : ["onnx", "tflite"];
      const later = ran[order.indexOf(tokensPair[1]!)]!;
      expect(later[0]).not.toBe("split-lut-groups");
      expect(later).not.toContain("split-einsum-attention");
      expect([second, third].every((r) => !r.includes("palettize"))).toBe(true);
      expect(() => together.lower(order[0]!)).toThrow(/lowered already/);
    }
  });

  test("steps whose options differ, by value or by identity, are not shared", () => {
    const other = [{ pass: "palettize", options: { bits, shared: { clusterings: new Map(), biases: new Map() } } }];
    const ran: string[] = [];
    const lowering = sharedPrefixLowering(graph, { tflite: { before: palettize }, onnx: { before: other, onPass: (p) => ran.push(p) } });
    lowering.lower("tflite");
    lowering.lower("onnx");
    expect(ran.slice(0, 2)).toEqual(["palettize", "split-lut-groups"]);
    const otherBits = [{ pass: "palettize", options: { ...palettize[0]!.options, bits: { "blocks.0.attn.o.weight": 4 as const } } }];
    const ranByValue: string[] = [];
    const byValue = sharedPrefixLowering(graph, { tflite: { before: palettize }, onnx: { before: otherBits, onPass: (p) => ranByValue.push(p) } });
    byValue.lower("tflite");
    byValue.lower("onnx");
    expect(ranByValue[0]).toBe("palettize");
    // fp16 appends a pass at the end: everything up to it is shared
    const ranFp16: string[] = [];
    const fp16 = sharedPrefixLowering(graph, { onnx: { fp16: true, onPass: (p) => ranFp16.push(p) }, tflite: {} });
    fp16.lower("tflite");
    fp16.lower("onnx");
    expect(ranFp16[0]).toBe("transpose-elimination");
  });
});

describe("pipeline errors name the pass", () => {
  test("a pipeline that needs a fact no earlier pass ensures is refused when built", () => {
    expect(() => buildPipeline({ name: "bad", entries: [{ pass: "split-einsum-attention" }] }, PASSES)).toThrow(/pass split-einsum-attention requires "assa:lowered"/);
    expect(() => buildPipeline({ name: "bad", entries: [{ pass: "no-such-pass" }] }, PASSES)).toThrow(/no-such-pass/);
    expect(() => buildPipeline({ name: "bad", entries: [{ pass: "cse", options: { speed: 1 } }] }, PASSES)).toThrow(/has no option "speed"/);
  });

  test("a pass that leaves the graph invalid fails with the pass and the op", () => {
    const breaker = definePass({
      name: "break-softmax",
      summary: "test: corrupts a node's stored type",
      requires: [],
      ensures: [],
      defaults: {},
      run: (g) => ({ ...g, nodes: g.nodes.map((n) => (n.kind === "silu" ? ({ ...n, outputs: [{ ...n.outputs[0]!, type: { dtype: "f32", shape: [9] } }] } as Node) : n)) }),
    });
    const b = new GraphBuilder();
    const x = b.input("x", { dtype: "f32", shape: [2] });
    const y = b.scoped("mid.0", () => b.op("silu", [x], {}));
    const g = b.finish([y]);
    expect(() => runPipeline(g, [{ pass: breaker as never, options: {} }])).toThrow(/after pass break-softmax: %\d+ silu in mid\.0 result 0 is stored as f32\[9\] but infers f32\[2\]/);
  });

  test("an op a target cannot express is named by the legality check", () => {
    const { graph } = modelGraph({ config: presetConfig("micro"), width: 1, seed: 0 });
    expect(() => runPipeline(graph, [], { legality: { target: "coreml", table: TARGET_PIPELINES.coreml!.legality } })).toThrow(/coreml legality: %\d+ \w+ .*(not legal for coreml|rank above 4)/);
  });

  test("ditc inspect: unknown pipeline and unknown --print-after pass exit 2", async () => {
    let err = "";
    const io = { out: () => {}, err: (s: string) => (err += s) };
    expect(await main(["inspect", "--preset", "micro", "--pipeline", "gpu"], io)).toBe(2);
    expect(err).toMatch(/--pipeline gpu is not valid: expected one of none, coreml, tflite, onnx/);
    expect(await main(["inspect", "--preset", "micro", "--pipeline", "coreml", "--print-after", "relayout-nhwc"], io)).toBe(2);
    expect(err).toMatch(/a pass of pipeline coreml/);
  });

  test("--print-after dumps the IR after that pass", async () => {
    let err = "";
    expect(await main(["inspect", "--preset", "micro", "--pipeline", "tflite", "--print-after", "relayout-nhwc"], { out: () => {}, err: (s) => (err += s) })).toBe(0);
    expect(err).toMatch(/\/\/ after relayout-nhwc\ngraph\(/);
    expect(err).toMatch(/conv2d\(.*layout="NHWC"/);
  });
});

test("full preset at 1024²: coreml and tflite graphs keep no transposes in blocks, rank ≤ 4, scores ≤ 16 MiB", async () => {
  for (const pipeline of ["coreml", "tflite"]) {
    let out = "";
    expect(await main(["inspect", "--preset", "full", "--pipeline", pipeline, "--resolution", "1024", "--json"], { out: (s) => (out += s), err: () => {} })).toBe(0);
    const r = JSON.parse(out);
    expect(r.transposes.inBlocks).toBe(0);
    expect(r.maxRank).toBeLessThanOrEqual(4);
    expect(r.largestScoreBytesFp16).toBeLessThanOrEqual(16 * 2 ** 20);
    expect(r.ops.assa_attention).toBeUndefined();
  }
});
