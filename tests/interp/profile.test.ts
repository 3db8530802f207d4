// The run profile (`ditc run --profile`, the API's run with `profile`): every node that ran is
// counted once under its kind, the kinds' and the constants' times add up to the total, the
// slowest nodes are the graph's own, and profiling changes no result.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { buildModel, emit, presetWeights, run, runPipeline, type RunProfile } from "../../src/api/index.js";
import { syntheticInputs } from "../../src/driver/init.js";
import { main } from "../../src/cli/main.js";
import { formatProfile } from "../../src/interp/profile.js";
import type { Graph } from "../../src/ir/graph.js";
import { presetConfig } from "../../src/model/config.js";

const dir = mkdtempSync(join(tmpdir(), "ditc-profile-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Checks a profile against the graph it ran. */
function checkProfile(p: RunProfile, g: Graph) {
  const ran = g.nodes.filter((n) => n.kind !== "const");
  expect(p.nodes).toBe(ran.length);
  const counts = new Map<string, number>();
  for (const n of ran) counts.set(n.kind, (counts.get(n.kind) ?? 0) + 1);
  expect(Object.fromEntries(p.byKind.map((k) => [k.kind, k.count]))).toEqual(Object.fromEntries(counts));
  // every constant the graph holds is read by some node, and loaded once
  expect(p.constants.count).toBe(g.nodes.length - ran.length);
  const parts = p.byKind.reduce((a, k) => a + k.seconds, 0) + p.constants.seconds;
  expect(parts).toBeCloseTo(p.seconds, 9);
  expect(p.byKind.reduce((a, k) => a + k.share, 0) + p.constants.seconds / p.seconds).toBeCloseTo(1, 9);
  for (let i = 1; i < p.byKind.length; i++) expect(p.byKind[i]!.seconds).toBeLessThanOrEqual(p.byKind[i - 1]!.seconds);
  expect(p.slowest.length).toBe(Math.min(10, ran.length));
  for (let i = 1; i < p.slowest.length; i++) expect(p.slowest[i]!.seconds).toBeLessThanOrEqual(p.slowest[i - 1]!.seconds);
  for (const s of p.slowest) {
    const n = g.nodes[s.index]!;
    expect(s.kind).toBe(n.kind);
    expect(s.scope).toBe(n.scope ?? null);
    expect(s.shape).toEqual(n.outputs[0]!.type.shape);
    expect(s.seconds).toBeGreaterThanOrEqual(0);
  }
  // no node's time is more than the slowest's
  const slowestKind = p.byKind.find((k) => k.kind === p.slowest[0]!.kind)!;
  expect(slowestKind.seconds).toBeGreaterThanOrEqual(p.slowest[0]!.seconds);
}

test("the float model's profile accounts for every node and changes no result", () => {
  const source = presetWeights("micro", 3);
  const { graph } = buildModel(source, { width: 0.5 });
  const inputs = syntheticInputs(presetConfig("micro"), 1, { batch: 1, latentSize: [16, 16], contextTokens: 8 });
  let profile: RunProfile | undefined;
  const profiled = run(graph, inputs, { profile: (p) => (profile = p) });
  checkProfile(profile!, graph);
  const plain = run(graph, inputs);
  expect(profiled.velocity!.data).toEqual(plain.velocity!.data);
  // the text lists the biggest kinds with their share, then the slowest nodes
  const text = formatProfile(profile!);
  expect(text).toMatch(new RegExp(`^profile: ${profile!.nodes} nodes in `));
  expect(text).toContain(`  ${profile!.byKind[0]!.kind} `);
  expect(text).toContain("(loading constants)");
  expect(text).toContain("slowest nodes:");
});

test("an artifact's profile is its reader's graph; the CLI prints it and puts it in --json", async () => {
  const source = presetWeights("micro", 3);
  const g = runPipeline(buildModel(source, { width: 1 }).graph, "onnx");
  const path = join(dir, "model.onnx");
  emit(g, "onnx", path);
  const inputs = syntheticInputs(presetConfig("micro"), 1, { batch: 1, latentSize: [16, 16], contextTokens: 8 });
  let profile: RunProfile | undefined;
  run(path, inputs, { profile: (p) => (profile = p) });
  expect(profile!.nodes).toBeGreaterThan(0);
  expect(profile!.byKind.reduce((a, k) => a + k.count, 0)).toBe(profile!.nodes);

  const out: string[] = [];
  const io = { out: (s: string) => out.push(s), err: () => {} };
  expect(await main(["run", "--preset", "micro", "--profile", "--json"], io)).toBe(0);
  const doc = JSON.parse(out.join("\n"));
  expect(doc.profile.byKind.length).toBeGreaterThan(3);
  expect(doc.profile.nodes).toBe(doc.profile.byKind.reduce((a: number, k: { count: number }) => a + k.count, 0));
  out.length = 0;
  expect(await main(["run", "--preset", "micro", "--profile"], io)).toBe(0);
  expect(out.join("\n")).toMatch(/\nprofile: \d+ nodes in [\d.]+ s\n/);
  out.length = 0;
  expect(await main(["run", "--preset", "micro"], io)).toBe(0);
  expect(out.join("\n")).not.toContain("profile:");
});
