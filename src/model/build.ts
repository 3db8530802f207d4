// Builds the IR of the SnapGen++ DiT (docs/model.md) in token layout (B, L, D): the supernetwork at
// full width, whose constants know how they narrow (docs/model.md, elastic widths), and through the slice-width pass the
// width-w sub-network. This is the semantic reference: it follows the design's equations one to
// one; slicing, layout and lowering decisions belong to passes.
import { fail } from "../diagnostics.js";
import { GraphBuilder } from "../ir/builder.js";
import { mapToTokens as toTokens, tokensToMap as toMap } from "../ir/views.js";
import type { ConstValue, Graph, Value } from "../ir/graph.js";
import { floatTensor, intTensor } from "../kernels/tensor.js";
import { sliceWidth } from "../../passes/slice-width.js";
import { dims, validateResolution, widthTag, type ModelConfig, type Width } from "./config.js";
import { hasSkip, isolatedSpecs, paramSpecs, stageDepth, type ParamSpec, type StageName } from "./params.js";
import { supernetConstant, type WeightSource } from "./weights.js";

export const LAYER_NORM_EPS = 1e-6;
export const TIMESTEP_FREQS = 128;

export interface BuildOptions {
  width: Width;
  batch?: number;
  /** latent (Hl, Wl); defaults to the config's latentSize */
  latentSize?: [number, number];
  contextTokens?: number;
}

export interface BuiltModel {
  graph: Graph;
  config: ModelConfig;
  width: Width;
  batch: number;
  latentSize: [number, number];
  contextTokens: number;
}

/** `--resolution R` (pixels) means a latent of R/8 x R/8 (docs/checkpoints.md). */
export function latentForResolution(r: number): [number, number] {
  if (!Number.isInteger(r) || r <= 0 || r % 8) throw fail("badOption", { option: "resolution", value: String(r), expected: "a positive multiple of 8 (pixels; the latent is R/8)" });
  return [r / 8, r / 8];
}

/** Refuses a width whose isolated parameters the weights do not hold. */
export function checkWidth(src: WeightSource, w: Width): void {
  if (!src.config.widths.includes(w)) throw fail("badOption", { option: "width", value: String(w), expected: `one of the widths this checkpoint holds: ${src.config.widths.join(", ")}` });
}

/** The width-w sub-network: the supernetwork, narrowed by the slice-width pass. */
export function buildModel(src: WeightSource, opts: BuildOptions): BuiltModel {
  checkWidth(src, opts.width);
  const sup = buildSupernetwork(src, opts);
  return { ...sup, graph: sliceWidth.run(sup.graph, { width: opts.width }), width: opts.width };
}

/**
 * The model at full width: shared weights whole, width 1's isolated parameters (present in the
 * checkpoint only if it lists width 1), every width-dependent constant carrying its `atWidth`.
 */
export function buildSupernetwork(src: WeightSource, opts: Omit<BuildOptions, "width">): BuiltModel {
  const c = src.config;
  const w: Width = 1;
  const batch = opts.batch ?? 1;
  const latentSize = opts.latentSize ?? c.latentSize;
  validateResolution(c, latentSize, src.origin, opts.latentSize !== undefined);
  const S = opts.contextTokens ?? c.contextTokens;
  const { D, H, Hkv, dh, Dc, Hc, Dctx } = dims(c, w);
  const p = c.patch;
  const [Hl, Wl] = latentSize;
  const Hg = Hl / p, Wg = Wl / p;
  const b = new GraphBuilder();

  const specs = new Map<string, ParamSpec>([...paramSpecs(c).filter((s) => s.width === undefined), ...isolatedSpecs(c, 1)].map((s) => [s.name, s]));
  const tag = widthTag(w);
  /** The supernetwork constant of a checkpoint tensor; isolated names are given without the width tag. */
  const W = (name: string): Value => {
    const spec = specs.get(name) ?? specs.get(`${tag}.${name}`);
    if (!spec) throw new Error(`internal: no parameter ${name}`);
    return b.constant(supernetConstant(src, spec));
  };
  const scalar = (x: number) => b.tensorConstant(`scalar ${x}`, floatTensor([1], Float32Array.of(x)));
  const linear = (x: Value, name: string) => b.op("linear", [x, W(`${name}.weight`), W(`${name}.bias`)], {});
  const layerNorm = (x: Value) => b.op("layer_norm", [x], { axis: -1, eps: LAYER_NORM_EPS });
  const add = (x: Value, y: Value) => b.op("add", [x, y], {});
  const mul = (x: Value, y: Value) => b.op("mul", [x, y], {});
  const modulate = (x: Value, shift: Value, scale: Value) => add(mul(x, add(scale, scalar(1))), shift);
  /** Row k of a (B, n, D) table as (B, 1, D), broadcasting over tokens. */
  const row = (t: Value, k: number) => b.op("slice", [t], { begin: [0, k, 0], size: [batch, 1, t.type.shape[2]!] });
  const tokensToMap = (x: Value, h: number, wd: number) => toMap(b, x, h, wd);
  const mapToTokens = (x: Value) => toTokens(b, x);

  const latent = b.input("latent", { dtype: "f32", shape: [batch, c.latentChannels, Hl, Wl] });
  const timestep = b.input("timestep", { dtype: "f32", shape: [batch] });
  const context = b.input("context", { dtype: "f32", shape: [batch, S, Dctx] });

  // 1. patch embed (+ fixed sin-cos table)
  let x = b.scoped("patch_embed", () => {
    const m = b.op("conv2d", [latent, W("patch_embed.weight"), W("patch_embed.bias")], { stride: [p, p], pads: [0, 0, 0, 0], groups: 1, layout: "NCHW" });
    const t = mapToTokens(m);
    return c.posEmbed === "sincos" ? add(t, b.constant(sincosConstant(Hg, Wg, D))) : t;
  });

  // 2. timestep embedding and adaLN-single modulation
  const { temb, tmod } = b.scoped("t_embed", () => {
    const half = TIMESTEP_FREQS;
    const freqs = Float32Array.from({ length: half }, (_, k) => Math.exp((-Math.log(10000) * k) / half));
    const tt = b.op("reshape", [mul(timestep, scalar(1000))], { shape: [batch, 1] });
    const args = mul(tt, b.tensorConstant(`timestep freqs ${half}`, floatTensor([1, half], freqs), "table"));
    const sinusoid = b.op("concat", [b.op("cos", [args], {}), b.op("sin", [args], {})], { axis: 1 });
    const temb = linear(b.op("silu", [linear(sinusoid, "t_embed.0")], {}), "t_embed.2");
    const tmod = b.op("reshape", [linear(b.op("silu", [temb], {}), "t_block")], { shape: [batch, 6, D] });
    return { temb, tmod };
  });

  const selfAttention = (stage: StageName, i: number, xm: Value, grid: [number, number]) => {
    const pre = `${stage}.${i}.attn`;
    let q = linear(xm, `${pre}.q`), k = linear(xm, `${pre}.k`);
    const v = linear(xm, `${pre}.v`);
    if (c.qkNorm === "layernorm") {
      q = b.op("qk_norm", [q, W(`${pre}.q_norm.weight`), W(`${pre}.q_norm.bias`)], { heads: H, eps: LAYER_NORM_EPS });
      k = b.op("qk_norm", [k, W(`${pre}.k_norm.weight`), W(`${pre}.k_norm.bias`)], { heads: Hkv, eps: LAYER_NORM_EPS });
    }
    if (c.rope === "2d") {
      q = b.op("rope_2d", [q], { heads: H, grid });
      k = b.op("rope_2d", [k], { heads: Hkv, grid });
    }
    const head = { heads: H, kvHeads: Hkv, scale: 1 / Math.sqrt(dh) };
    let o: Value;
    if (stage === "mid") o = b.op("gqa_attention", [q, k, v], head);
    else {
      const gate = b.op("sigmoid", [linear(xm, `${pre}.gate`)], {});
      const bna = { grid, blocks: c.bnaBlocks, radius: c.bnaRadius, partition: c.bnaPartition, edge: c.bnaEdge };
      o = b.op("assa_attention", [q, k, v, W(`${pre}.k_compress.weight`), W(`${pre}.k_compress.bias`), W(`${pre}.v_compress.weight`), W(`${pre}.v_compress.bias`), gate], { ...head, ...bna });
    }
    return linear(o, `${pre}.o`);
  };

  const crossAttention = (pre: string, xi: Value) => {
    const q = linear(xi, `${pre}.q`), k = linear(context, `${pre}.k`), v = linear(context, `${pre}.v`);
    const o = b.op("cross_attention", [q, k, v], { heads: Hc, scale: 1 / Math.sqrt(Dc / Hc) });
    return linear(o, `${pre}.o`);
  };

  const block = (stage: StageName, i: number, xi: Value, grid: [number, number]) =>
    b.scoped(`${stage}.${i}`, () => {
      const mod = add(tmod, W(`${stage}.${i}.scale_shift_table`)); // (B, 6, D)
      const [shiftMsa, scaleMsa, gateMsa, shiftMlp, scaleMlp, gateMlp] = [0, 1, 2, 3, 4, 5].map((k) => row(mod, k)) as [Value, Value, Value, Value, Value, Value];
      let h = add(xi, mul(gateMsa, selfAttention(stage, i, modulate(layerNorm(xi), shiftMsa, scaleMsa), grid)));
      h = add(h, crossAttention(`${stage}.${i}.cross`, h));
      const hidden = b.op("gelu_tanh", [linear(modulate(layerNorm(h), shiftMlp, scaleMlp), `${stage}.${i}.ffn.fc1`)], {});
      return add(h, mul(gateMlp, linear(hidden, `${stage}.${i}.ffn.fc2`)));
    });

  // 6. stages
  const full: [number, number] = [Hg, Wg], half: [number, number] = [Hg / 2, Wg / 2];
  for (let i = 0; i < stageDepth(c, "down"); i++) x = block("down", i, x, full);
  const downOut = x;
  x = b.scoped("downsample", () =>
    mapToTokens(b.op("conv2d", [tokensToMap(x, Hg, Wg), W("downsample.weight"), W("downsample.bias")], { stride: [2, 2], pads: [0, 0, 0, 0], groups: 1, layout: "NCHW" })),
  );
  const midOuts: Value[] = [];
  const nm = stageDepth(c, "mid");
  for (let i = 0; i < nm; i++) {
    if (hasSkip(c, i)) x = b.scoped(`mid.${i}.skip`, () => linear(b.op("concat", [x, midOuts[nm - 1 - i]!], { axis: 2 }), `mid.${i}.skip`));
    x = block("mid", i, x, half);
    midOuts.push(x);
  }
  x = b.scoped("upsample", () => {
    const up = tokensToMap(linear(x, "upsample"), half[0], half[1]); // (B, 4D, Hg/2, Wg/2)
    return add(mapToTokens(b.op("pixel_shuffle", [up], { factor: 2, layout: "NCHW", order: "CRD" })), downOut);
  });
  for (let i = 0; i < stageDepth(c, "up"); i++) x = block("up", i, x, full);

  // 7. final layer and unpatchify
  const velocity = b.scoped("final", () => {
    const table = add(b.op("reshape", [temb], { shape: [batch, 1, D] }), W("final_scale_shift_table")); // (B, 2, D)
    const y = linear(modulate(layerNorm(x), row(table, 0), row(table, 1)), "final.linear"); // (B, L, p·p·C)
    // unpatchify: output channel (i·p + j)·C + c goes to latent channel c at offset (i, j); reorder
    // the channels to PyTorch's pixel-shuffle order c·p² + i·p + j, then shuffle (rank stays ≤ 4)
    const C = c.latentChannels;
    const order = Int32Array.from({ length: p * p * C }, (_, n) => ((n % (p * p)) * C) + Math.floor(n / (p * p)));
    const shuffled = b.op("gather", [y, b.tensorConstant("unpatchify order", intTensor([p * p * C], order))], { axis: 2 });
    return b.op("pixel_shuffle", [tokensToMap(shuffled, Hg, Wg)], { factor: p, layout: "NCHW", order: "CRD" });
  });
  velocity.name = "velocity";
  return { graph: b.finish([velocity]), config: c, width: w, batch, latentSize, contextTokens: S };
}

/** The sin-cos table as a constant that is recomputed, not sliced, for a narrower width (docs/model.md, elastic widths). */
function sincosConstant(Hg: number, Wg: number, D: number): ConstValue {
  const at = (Dw: number): ConstValue => ({ type: { dtype: "f32", shape: [1, Hg * Wg, Dw] }, source: `sincos ${Hg}x${Wg}x${Dw}`, role: "table", load: () => sincosTable(Hg, Wg, Dw) });
  return {
    ...at(D),
    atWidth: (w) => ({ value: at(w * D), kept: [null, null, w === 1 ? null : Int32Array.from({ length: w * D }, (_, i) => i)] }),
  };
}

/**
 * MAE's 2-D sin-cos table for an Hg x Wg grid and width D, as (1, L, D): the first D/2 channels
 * encode the column, the last D/2 the row, each [sin | cos] over D/4 frequencies 10000^(-k/(D/4)).
 */
export function sincosTable(Hg: number, Wg: number, D: number) {
  const q = D / 4;
  const out = new Float32Array(Hg * Wg * D);
  for (let r = 0; r < Hg; r++)
    for (let col = 0; col < Wg; col++) {
      const o = (r * Wg + col) * D;
      for (let k = 0; k < q; k++) {
        const omega = 10000 ** (-k / q);
        out[o + k] = Math.sin(col * omega);
        out[o + q + k] = Math.cos(col * omega);
        out[o + 2 * q + k] = Math.sin(r * omega);
        out[o + 3 * q + k] = Math.cos(r * omega);
      }
    }
  return floatTensor([1, Hg * Wg, D], out);
}
