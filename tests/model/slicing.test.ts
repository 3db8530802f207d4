// Width slicing checked against an independent path: the supernetwork checkpoint is cut offline,
// tensor by tensor, into a checkpoint of the smaller config (hidden = w·D, one width), with
// slicing rules written out here from DESIGN §2 rather than taken from src/model/params.ts.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { SafetensorsFile, writeSafetensors } from "../../src/checkpoint/safetensors.js";
import { configJson, syntheticInputs, writeSyntheticCheckpoint } from "../../src/driver/init.js";
import { runFloatModel } from "../../src/driver/run.js";
import { presetConfig, type ModelConfig } from "../../src/model/config.js";
import { openCheckpoint } from "../../src/model/weights.js";
import { relErr } from "../helpers.js";

const dir = mkdtempSync(join(tmpdir(), "ditc-slice-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Indices kept along one axis, by DESIGN §2's rule for that axis. */
function keep(rule: string, size: number, c: ModelConfig, w: number): number[] {
  const D = c.hidden, Dw = w * D, range = (a: number, n: number) => Array.from({ length: n }, (_, i) => a + i);
  const heads = (n: number) => range(0, n).flatMap((h) => range(h * (size / n), (size / n) * w));
  switch (rule) {
    case "D": return range(0, Dw);
    case "q": return heads(c.heads); // H heads of dh
    case "kv": return heads(c.kvHeads);
    case "ffn": return range(0, (size / D) * Dw);
    case "up4": return range(0, 4 * Dw);
    case "skip2": return [...range(0, Dw), ...range(D, Dw)];
    default: return range(0, size); // "all"
  }
}

/** Which rule applies to each axis of a shared tensor, from its name. */
function rules(name: string, rank: number, c: ModelConfig): string[] {
  const [kind] = name.split(".").slice(-1);
  const base = name.replace(/\.(weight|bias)$/, "");
  const out = (r: string, inp: string) => (kind === "bias" ? [r] : rank === 4 ? [r, inp, "all", "all"] : [r, inp]);
  if (/attn\.q$/.test(base)) return out("q", "D");
  if (/attn\.[kv]$/.test(base)) return out("kv", "D");
  if (/attn\.o$/.test(base)) return out("D", "q");
  if (/attn\.gate$/.test(base)) return out("all", "D");
  // dense compression mixes all kv channels: its input axis is head-structured too; depthwise has 1
  if (/attn\.[kv]_compress$/.test(base)) return out("kv", c.kvCompress === "dense" ? "kv" : "all");
  if (/cross\.q$/.test(base)) return out("all", "D");
  if (/cross\.[kv]$/.test(base)) return out("all", "all");
  if (/cross\.o$/.test(base)) return out("D", "all");
  if (/fc1$/.test(base)) return out("ffn", "D");
  if (/fc2$/.test(base)) return out("D", "ffn");
  if (/skip$/.test(base)) return out("D", "skip2");
  if (base === "patch_embed") return out("D", "all");
  if (base === "t_embed.0") return out("D", "all");
  if (base === "t_embed.2" || base === "downsample") return out("D", "D");
  if (base === "upsample") return out("up4", "D");
  if (base === "final.linear") return out("all", "D");
  throw new Error(`no rule for ${name}`);
}

function gatherAxes(data: Float32Array, shape: number[], idx: number[][]): Float32Array {
  const out: number[] = [];
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const rec = (axis: number, off: number) => {
    if (axis === shape.length) return void out.push(data[off]!);
    for (const i of idx[axis]!) rec(axis + 1, off + i * strides[axis]!);
  };
  rec(0, 0);
  return Float32Array.from(out);
}

test("the width-w sub-network equals the smaller model built from an offline-sliced checkpoint; width 1 is the identity", () => {
  const config = presetConfig("micro", { kvCompress: "dense" }); // dense compress exercises per-head input slicing
  const superCk = join(dir, "super.safetensors");
  writeSyntheticCheckpoint(config, 21, superCk);
  const file = SafetensorsFile.open(superCk);
  const inputs = syntheticInputs(config, 5, { batch: 2, latentSize: config.latentSize, contextTokens: config.contextTokens });
  const sup = openCheckpoint(superCk);
  for (const w of [0.375, 0.5, 1] as const) {
    const small = { ...config, hidden: w * config.hidden, widths: [1] } as ModelConfig;
    const tag = `w${w * 1000}.`;
    const tensors = file.names().flatMap((name) => {
      const e = file.entry(name);
      if (/^w\d+\./.test(name)) {
        if (!name.startsWith(tag)) return [];
        const data = file.readFloat(name);
        return [{ name: name.replace(tag, "w1000."), dtype: "F32" as const, shape: e.shape, produce: (emit: (c: Float32Array) => void) => emit(data) }];
      }
      const r = rules(name, e.shape.length, config);
      const idx = e.shape.map((n, a) => keep(r[a]!, n, config, w));
      const data = gatherAxes(file.readFloat(name), e.shape, idx);
      return [{ name, dtype: "F32" as const, shape: idx.map((i) => i.length), produce: (emit: (c: Float32Array) => void) => emit(data) }];
    });
    const smallCk = join(dir, `small-${w}.safetensors`);
    writeSafetensors(smallCk, tensors, { config: configJson(small) });
    const direct = openCheckpoint(smallCk);
    const viaSlicing = runFloatModel(sup, w, inputs);
    const viaSmall = runFloatModel(direct, 1, inputs);
    expect(relErr(viaSlicing.data, viaSmall.data)).toBeLessThanOrEqual(1e-5);
    if (w === 1) expect(viaSlicing.data).toEqual(viaSmall.data);
    direct.close();
  }
  sup.close();
  file.close();
});
