// An independent width slicer for tests: cuts supernetwork tensors down to the smaller config
// (hidden = w·D, one width) tensor by tensor, with the rules written out here from docs/model.md, elastic widths
// rather than taken from src/model/params.ts or the slice-width pass.
import type { ModelConfig } from "../../src/model/config.js";
import { paramSpecs, type ParamSpec } from "../../src/model/params.js";
import type { WeightSource } from "../../src/model/weights.js";

/** Indices kept along one axis, by docs/model.md, elastic widths's rule for that axis. */
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

function gatherAxes(data: Float32Array, shape: readonly number[], idx: number[][]): Float32Array {
  const out: number[] = [];
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const rec = (axis: number, off: number) => {
    if (axis === shape.length) return void out.push(data[off]!);
    for (const i of idx[axis]!) rec(axis + 1, off + i * strides[axis]!);
  };
  rec(0, 0);
  return Float32Array.from(out);
}

/** The smaller config a width-w sub-network is: hidden w·D, width 1 only. */
export function smallConfig(c: ModelConfig, w: number): ModelConfig {
  return { ...c, hidden: w * c.hidden, widths: [1] };
}

/** A stored shared tensor's data and shape after offline slicing to width w. */
export function sliceTensor(name: string, shape: readonly number[], data: Float32Array, c: ModelConfig, w: number): { shape: number[]; data: Float32Array } {
  const r = rules(name, shape.length, c);
  const idx = shape.map((n, a) => keep(r[a]!, n, c, w));
  return { shape: idx.map((i) => i.length), data: gatherAxes(data, shape, idx) };
}

/** The smaller config's weights, cut from the supernetwork's on each read (isolated sets renamed to width 1's). */
export function offlineSlicedSource(sup: WeightSource, w: number): WeightSource {
  const c = sup.config, tag = `w${w * 1000}.`;
  const stored = new Map(paramSpecs(c).map((s) => [s.name, s])); // the supernetwork's stored shapes
  return {
    config: smallConfig(c, w),
    origin: `${sup.origin}, sliced offline to width ${w}`,
    read: (spec: ParamSpec) => {
      if (spec.width !== undefined) return sup.read(stored.get(spec.name.replace(/^w1000\./, tag))!);
      const full = stored.get(spec.name)!;
      return sliceTensor(spec.name, full.shape, sup.read(full), c, w).data;
    },
  };
}
