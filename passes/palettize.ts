// palettize: replaces linear/conv weights by k-means palettized constants (docs/toolchain.md).
//
//   %w = const "down.0.ffn.fc1.weight" : f32[512,256]
//     ==>  %i = const "…fc1.weight indices" : u4[512,256]
//          %l = const "…fc1.weight lut" : f32[16]
//          %w = lut_to_dense(%i, %l) : f32[512,256]
//
// Options (PalettizeOptions): which weights at which bits, LUT groups, and, from calibration
// statistics, activation-weighted clustering and bias correction (docs/toolchain.md).
// The clustering (src/quant/kmeans.ts) runs when a backend first loads either constant and is
// dropped once both are loaded, so palettized weights stream like dense ones.
import type { ConstValue, Graph, Node, Value } from "../src/ir/graph.js";
import { applyRules, rule, type RewriteContext } from "../src/ir/rewrite.js";
import { asFloat, floatTensor } from "../src/kernels/tensor.js";
import { definePass } from "../src/pipeline/pass.js";
import type { ChannelStats } from "../src/quant/calibration.js";
import type { Palettized } from "../src/quant/kmeans.js";
import { clusterPlan, clusterWeight, correctedBias, correctedBiasSource, weightForClustering, type ClusterPlan, type QuantizeTechniques } from "../src/quant/layer.js";

/** Weights up to this many elements keep their clustering for later runs (interpreter reuse). */
const KEEP_ELEMENTS = 1 << 22;

export interface PalettizeOptions extends QuantizeTechniques {
  /** checkpoint tensor name -> 4 or 8 bits; weights not named stay dense */
  bits: Record<string, 4 | 8>;
  /** per-input-channel activation statistics by checkpoint name (src/quant/calibration.ts); bias
   * correction creates a zero bias where a corrected layer has none */
  stats?: ReadonlyMap<string, ChannelStats>;
  /**
   * What every pipeline run with these options shares (compile's targets at one width): each
   * weight is clustered, and each corrected bias computed, once for all of them, and kept until
   * the caller drops it.
   */
  shared?: SharedQuantization;
}

/** Clusterings by weight source, corrected biases by bias source. */
export interface SharedQuantization {
  clusterings: Map<string, Palettized>;
  biases: Map<string, Float32Array>;
  /**
   * Blocks until the clustering of this weight (and the biases corrected with it) is stored, when
   * something else is computing it (compile's worker pool, while the targets are lowered and
   * written); returns at once otherwise.
   */
  ready?: (weightSource: string) => void;
}

/** `compute` once per key in `shared`, every time without it. */
function memo<T>(shared: Map<string, T> | undefined, key: string, compute: () => T): T {
  const had = shared?.get(key);
  if (had) return had;
  const v = compute();
  shared?.set(key, v);
  return v;
}

/** Indices and LUT of one weight, computed on the first load of either; large ones are released after both. */
function palettizedConstants(w: ConstValue, plan: ClusterPlan, shared?: SharedQuantization): { indices: ConstValue; lut: ConstValue; clustering: () => Palettized } {
  let cached: Palettized | undefined;
  const cluster = () => {
    shared?.ready?.(w.source);
    return memo(shared?.clusterings, w.source, () => clusterWeight(w.source, weightForClustering(w), plan));
  };
  // the loads that read the clustering: both constants, and a corrected bias
  const readers = plan.biasCorrected ? ["indices", "lut", "bias"] : ["indices", "lut"];
  const pending = new Set(readers);
  const keep = w.type.shape.reduce((a, b) => a * b, 1) <= KEEP_ELEMENTS;
  const take = (part: "indices" | "lut" | "bias") => {
    cached ??= cluster();
    const r = cached;
    pending.delete(part);
    if (!pending.size && !keep) {
      cached = undefined;
      for (const x of readers) pending.add(x);
    }
    return r;
  };
  const { bits, groups } = plan;
  const k = 1 << bits;
  return {
    indices: { type: { dtype: bits === 4 ? "u4" : "u8", shape: w.type.shape }, source: `${w.source} indices`, role: "palette", ownedByOneWeight: true, load: () => ({ dtype: bits === 4 ? "u4" : "u8", shape: w.type.shape, data: take("indices").indices }) },
    lut: { type: { dtype: "f32", shape: groups > 1 ? [groups, k] : [k] }, source: `${w.source} lut`, role: "lut", ownedByOneWeight: true, load: () => floatTensor(groups > 1 ? [groups, k] : [k], take("lut").lut) },
    clustering: () => take("bias"),
  };
}

export const palettizeWeights = definePass<PalettizeOptions>({
  name: "palettize",
  summary: "k-means palettize linear/conv weights into 16- or 256-entry LUTs (optionally activation-weighted, with bias correction)",
  requires: [],
  ensures: [],
  defaults: { bits: {}, groupSize: 0, weighted: false, biasCorrection: false, stats: undefined, shared: undefined },
  run: (g: Graph, o, log) => {
    const done = new Map<Value, { w: Value; plan: ClusterPlan; clustering: () => Palettized }>();
    const weightOf = (n: { inputs: readonly Value[] }, ctx: RewriteContext) => {
      const p = ctx.producer(n.inputs[1]!);
      return p?.kind === "const" && o.bits[p.attrs.value.source] ? p : undefined;
    };
    const planFor = (n: Node, c: ConstValue): ClusterPlan =>
      clusterPlan(c.type.shape, n.kind === "conv2d" ? (n.attrs as { groups: number }).groups : 1, o.bits[c.source]!, o, o.stats?.get(c.source));
    const rules = [
      rule("palettize-weight", ["linear", "conv2d"], {
        match: (n, ctx) => weightOf(n, ctx) !== undefined || "weight is not a listed constant",
        rewrite: (n, ctx) => {
          const c = weightOf(n, ctx)!.attrs.value;
          let d = done.get(n.inputs[1]!);
          if (!d) {
            const plan = planFor(n, c);
            const p = palettizedConstants(c, plan, o.shared);
            d = { w: ctx.b.op("lut_to_dense", [ctx.b.constant(p.indices), ctx.b.constant(p.lut)], {}), plan, clustering: p.clustering };
            done.set(n.inputs[1]!, d);
          }
          const stats = o.biasCorrection ? o.stats?.get(c.source) : undefined;
          if (!stats) return ctx.b.op(n.kind, [n.inputs[0]!, d.w, ...n.inputs.slice(2)], n.attrs as never);
          const bp = n.inputs[2] ? ctx.producer(n.inputs[2]) : undefined;
          if (n.inputs[2] && bp?.kind !== "const") return ctx.b.op(n.kind, [n.inputs[0]!, d.w, ...n.inputs.slice(2)], n.attrs as never);
          const old = bp?.kind === "const" ? bp.attrs.value : undefined;
          const rows = c.type.shape[0]!, plan = d.plan, clustering = d.clustering;
          const source = correctedBiasSource(c, old);
          // shared targets compute it once: it reads the whole weight and its clustering
          const compute = () => correctedBias(weightForClustering(c), clustering(), plan, stats.mean, old ? asFloat(old.load()).data : undefined);
          const bias: ConstValue = {
            type: { dtype: "f32", shape: [rows] }, source, role: "weight", ownedByOneWeight: true,
            load: () => {
              o.shared?.ready?.(c.source);
              return floatTensor([rows], memo(o.shared?.biases, source, compute));
            },
          };
          return ctx.b.op(n.kind, [n.inputs[0]!, d.w, ctx.b.constant(bias)], n.attrs as never);
        },
      }),
    ];
    return applyRules(g, rules, { pass: "palettize", mode: "once", ...(log ? { log } : {}) }).graph;
  },
});
