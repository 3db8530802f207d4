// Shared checks for pass tests: random small configs and interpreter parity around passes.
import fc from "fast-check";
import { expect } from "vitest";
import { PASSES } from "../../passes/index.js";
import { syntheticInputs } from "../../src/driver/init.js";
import type { Graph } from "../../src/ir/graph.js";
import { runGraph } from "../../src/interp/interpreter.js";
import { buildModel } from "../../src/model/build.js";
import { presetConfig, validateConfig, WIDTHS, type ModelConfig, type Width } from "../../src/model/config.js";
import { syntheticSource } from "../../src/model/weights.js";
import { buildPipeline, type PipelineEntry } from "../../src/pipeline/pass.js";
import { runPipeline } from "../../src/pipeline/run.js";
import { relErr } from "../helpers.js";

export interface Case {
  config: ModelConfig;
  width: Width;
  seed: number;
}

/** Small valid configs over every option of docs/model.md and a few shapes. */
export const caseArb: fc.Arbitrary<Case> = fc
  .record({
    qkNorm: fc.constantFrom("layernorm", "none"),
    rope: fc.constantFrom("2d", "none"),
    posEmbed: fc.constantFrom("none", "sincos"),
    kvCompress: fc.constantFrom("depthwise", "dense"),
    bnaPartition: fc.constantFrom("raster", "tiles"),
    bnaEdge: fc.constantFrom("clamp", "shift"),
    bnaBlocks: fc.constantFrom(1, 4, 16),
    bnaRadius: fc.integer({ min: 0, max: 2 }),
    latent: fc.constantFrom<[number, number]>([16, 16], [8, 16], [16, 8]),
    heads: fc.constantFrom(2, 4),
    kvDiv: fc.constantFrom(1, 2),
    depths: fc.constantFrom<[number, number, number]>([1, 2, 1], [1, 3, 0], [0, 1, 1]),
    width: fc.constantFrom(...WIDTHS),
    seed: fc.nat(10_000),
  })
  .filter((r) => !(r.rope === "2d" && r.posEmbed === "sincos"))
  .map((r) => {
    const { latent, kvDiv, width, seed, ...opts } = r;
    const base = presetConfig("micro");
    const raw = { ...base, ...opts, kvHeads: opts.heads / kvDiv, latentSize: latent, hidden: 64 * opts.heads / 2 } as ModelConfig;
    try {
      return { config: validateConfig(structuredClone(raw), "test"), width: width as Width, seed };
    } catch {
      return undefined;
    }
  })
  .filter((c): c is Case => c !== undefined);

export function modelGraph(c: Case): { graph: Graph; inputs: ReturnType<typeof syntheticInputs> } {
  const inputs = syntheticInputs(c.config, c.seed, { batch: 1, latentSize: c.config.latentSize, contextTokens: c.config.contextTokens });
  return { graph: buildModel(syntheticSource(c.config, c.seed), { width: c.width }).graph, inputs };
}

/** Runs `entries` (verifying after each, interpreter before/after each) and returns the graph. */
export function runPasses(g: Graph, entries: PipelineEntry[], inputs?: Record<string, any>, rtol = 1e-5): Graph {
  const steps = buildPipeline({ name: "test", entries }, PASSES);
  return runPipeline(g, steps, inputs ? { semanticCheck: { inputs, rtol } } : {});
}

/** Asserts the graph computes what the reference did, within rtol (max-abs relative). */
export function expectSameOutputs(before: Graph, after: Graph, inputs: Record<string, any>, rtol = 1e-5): void {
  const a = runGraph(before, inputs), b = runGraph(after, inputs);
  for (const k of Object.keys(a)) expect(relErr(b[k]!.data as Float32Array, a[k]!.data as Float32Array)).toBeLessThanOrEqual(rtol);
}

export function opCount(g: Graph, kind: string): number {
  return g.nodes.filter((n) => n.kind === kind).length;
}

export function transposesInBlocks(g: Graph): number {
  return g.nodes.filter((n) => n.kind === "transpose" && /^(down|mid|up)\.\d+/.test(n.scope ?? "")).length;
}
