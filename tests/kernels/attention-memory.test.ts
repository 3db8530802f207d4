// Attention never makes an (L x L) tensor: the float mini model at 1024² (L = 4096 tokens in the
// Down and Up stages, where one dense score tensor is 64 MiB and its mask 16 MiB more) runs with
// every tensor and the kernels' whole working memory below that, and attention at L = 16384
// (a 1 GiB score tensor) stays within a few hundred MiB.
import { execFileSync } from "node:child_process";
import { expect, test } from "vitest";

const dist = new URL("../../dist/", import.meta.url).href;

function child(script: string): Record<string, number> {
  return JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 300_000 }));
}

test("the float mini model at 1024²: no tensor and no kernel working set as large as one dense score tensor", () => {
  const r = child(`
    const { presetWeights, buildModel, makeInputs } = await import("${dist}src/api/index.js");
    const { runGraph } = await import("${dist}src/interp/interpreter.js");
    const { engineInfo } = await import("${dist}src/kernels/simd/engine.js");
    const w = presetWeights("mini", 0);
    const g = buildModel(w, { width: 1, resolution: 1024 }).graph;
    let largest = 0;
    const out = runGraph(g, makeInputs(w, { resolution: 1024 }), { observe: (_n, _i, outs) => { for (const t of outs) largest = Math.max(largest, t.data.byteLength); } });
    console.log(JSON.stringify({ largest, wasm: engineInfo().memoryBytes, rss: process.resourceUsage().maxRSS * 1024, finite: out.velocity.data.every(Number.isFinite) ? 1 : 0 }));
  `);
  const L = 4096, denseScores = L * L * 4;
  expect(r.finite).toBe(1);
  expect(r.largest).toBeLessThan(denseScores / 2);
  expect(r.wasm).toBeLessThan(denseScores);
  expect(r.rss).toBeLessThan(1.5 * 2 ** 30);
});

test("BNA and global attention at L = 16384 run in a fraction of the dense form's memory", () => {
  const r = child(`
    const { bnaAttentionTiled, multiHeadAttentionTiled } = await import("${dist}src/kernels/simd/attention.js");
    const { floatTensor } = await import("${dist}src/kernels/tensor.js");
    const L = 16384, H = 2, dh = 16;
    const t = (n, s) => floatTensor([1, n, s], Float32Array.from({ length: n * s }, (_, i) => Math.sin(i)));
    const q = t(L, H * dh), k = t(L, dh), v = t(L, dh);
    const a = { heads: H, kvHeads: 1, scale: 0.25, grid: [128, 128], blocks: 16, radius: 1, partition: "raster", edge: "clamp" };
    const local = bnaAttentionTiled(q, k, v, a);
    const global = multiHeadAttentionTiled(q, k, v, a);
    console.log(JSON.stringify({ rss: process.resourceUsage().maxRSS * 1024, finite: local.data.every(Number.isFinite) && global.data.every(Number.isFinite) ? 1 : 0 }));
  `);
  expect(r.finite).toBe(1);
  // the dense form needs L² floats of scores (1 GiB) and L² bytes of mask on top of everything else
  expect(r.rss).toBeLessThan(512 * 2 ** 20);
});
