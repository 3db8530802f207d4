// Every checkpoint tensor of a config, once: its name, stored shape, how each axis is sliced for
// a narrower width (docs/model.md, elastic widths) and how synthetic weights for it are drawn. The checkpoint
// validator, `ditc init`, the parameter counts and the model builder all read this one table.
import { dims, widthTag, WIDTHS, type ModelConfig, type Width } from "./config.js";

/** How one axis of a shared tensor shrinks at width w. */
export type AxisSlice =
  | { kind: "full" } // not sliced
  | { kind: "prefix"; scale: number } // keep the first scale·Dw entries (D, rD, 4D axes)
  | { kind: "heads"; heads: number } // in each of `heads` heads keep the first dh_w of dh
  | { kind: "parts"; parts: number }; // `parts` consecutive D-sized parts, keep the first Dw of each

export type InitKind = "weight" | "bias" | "modulation" | "norm_weight" | "norm_bias";

export interface ParamSpec {
  name: string;
  /** shape as stored in the checkpoint */
  shape: number[];
  /** for shared tensors, one entry per axis; isolated tensors are stored at their width already */
  slice?: AxisSlice[];
  /**
   * for isolated tensors: which entries of the full-width tensor's index space the width-w one
   * stands in for, by the same per-axis rules (the supernetwork's width slicing lines them up
   * with the sliced tensors they meet)
   */
  keeps?: AxisSlice[];
  /** set for isolated (per-width) parameters */
  width?: Width;
  init: InitKind;
  /** fan-in for weight initialization */
  fanIn?: number;
}

const FULL: AxisSlice = { kind: "full" };
const D_AXIS: AxisSlice = { kind: "prefix", scale: 1 };

export type StageName = "down" | "mid" | "up";
export const STAGES: readonly StageName[] = ["down", "mid", "up"];

const BLOCK_SCOPE = new RegExp(`^(${STAGES.join("|")})\\.\\d+(\\.|\\/|$)`);

/** Whether a node scope (or a tensor name an emitter derives from one, "down.0/linear_12") lies inside a DiT block. */
export function inBlockScope(scope: string): boolean {
  return BLOCK_SCOPE.test(scope);
}

export function stageDepth(c: ModelConfig, s: StageName): number {
  return c.depths[STAGES.indexOf(s)]!;
}

/** Middle blocks i >= ceil(nm/2) take a dense skip (docs/model.md step 6). */
export function hasSkip(c: ModelConfig, i: number): boolean {
  return i >= Math.ceil(c.depths[1] / 2);
}

export function paramSpecs(c: ModelConfig): ParamSpec[] {
  const D = c.hidden, H = c.heads, Hkv = c.kvHeads, dh = D / H, kv = Hkv * dh;
  const specs: ParamSpec[] = [];
  const linear = (name: string, out: number, inF: number, outSlice: AxisSlice, inSlice: AxisSlice) => {
    specs.push({ name: `${name}.weight`, shape: [out, inF], slice: [outSlice, inSlice], init: "weight", fanIn: inF });
    specs.push({ name: `${name}.bias`, shape: [out], slice: [outSlice], init: "bias" });
  };
  const conv = (name: string, out: number, inG: number, k: number, outSlice: AxisSlice, inSlice: AxisSlice) => {
    specs.push({ name: `${name}.weight`, shape: [out, inG, k, k], slice: [outSlice, inSlice, FULL, FULL], init: "weight", fanIn: inG * k * k });
    specs.push({ name: `${name}.bias`, shape: [out], slice: [outSlice], init: "bias" });
  };
  const qHeads: AxisSlice = { kind: "heads", heads: H }, kvHeads: AxisSlice = { kind: "heads", heads: Hkv };

  conv("patch_embed", D, c.latentChannels, c.patch, D_AXIS, FULL);
  linear("t_embed.0", D, 256, D_AXIS, FULL);
  linear("t_embed.2", D, D, D_AXIS, D_AXIS);
  for (const stage of STAGES) {
    const r = c.ffnRatio[STAGES.indexOf(stage)]!;
    for (let i = 0; i < stageDepth(c, stage); i++) {
      const p = `${stage}.${i}`;
      linear(`${p}.attn.q`, D, D, qHeads, D_AXIS);
      linear(`${p}.attn.k`, kv, D, kvHeads, D_AXIS);
      linear(`${p}.attn.v`, kv, D, kvHeads, D_AXIS);
      linear(`${p}.attn.o`, D, D, D_AXIS, qHeads);
      if (stage !== "mid") {
        linear(`${p}.attn.gate`, H, D, FULL, D_AXIS);
        const dense = c.kvCompress === "dense";
        for (const n of ["k", "v"]) conv(`${p}.attn.${n}_compress`, kv, dense ? kv : 1, 2, kvHeads, dense ? kvHeads : FULL);
      }
      linear(`${p}.cross.q`, c.crossDim, D, FULL, D_AXIS);
      linear(`${p}.cross.k`, c.crossDim, c.contextDim, FULL, FULL);
      linear(`${p}.cross.v`, c.crossDim, c.contextDim, FULL, FULL);
      linear(`${p}.cross.o`, D, c.crossDim, D_AXIS, FULL);
      linear(`${p}.ffn.fc1`, r * D, D, { kind: "prefix", scale: r }, D_AXIS);
      linear(`${p}.ffn.fc2`, D, r * D, D_AXIS, { kind: "prefix", scale: r });
      if (stage === "mid" && hasSkip(c, i)) linear(`${p}.skip`, D, 2 * D, D_AXIS, { kind: "parts", parts: 2 });
    }
  }
  conv("downsample", D, D, 2, D_AXIS, D_AXIS);
  linear("upsample", 4 * D, D, { kind: "prefix", scale: 4 }, D_AXIS);
  linear("final.linear", c.patch * c.patch * c.latentChannels, D, FULL, D_AXIS);

  for (const w of c.widths) specs.push(...isolatedSpecs(c, w));
  return specs;
}

/**
 * The per-width parameters, stored at that width's size (docs/model.md, elastic widths). Width 1's set exists in
 * every config as a description (the supernetwork's shapes), in a checkpoint only if it lists 1.
 */
export function isolatedSpecs(c: ModelConfig, w: Width): ParamSpec[] {
  const { D, dh } = dims(c, w);
  const t = widthTag(w);
  const six: AxisSlice = { kind: "parts", parts: 6 }, headDim: AxisSlice = { kind: "heads", heads: 1 };
  const out: ParamSpec[] = [
    { name: `${t}.t_block.weight`, shape: [6 * D, D], width: w, keeps: [six, D_AXIS], init: "weight", fanIn: D },
    { name: `${t}.t_block.bias`, shape: [6 * D], width: w, keeps: [six], init: "bias" },
    { name: `${t}.final_scale_shift_table`, shape: [2, D], width: w, keeps: [FULL, D_AXIS], init: "modulation" },
  ];
  for (const stage of STAGES)
    for (let i = 0; i < stageDepth(c, stage); i++) {
      out.push({ name: `${t}.${stage}.${i}.scale_shift_table`, shape: [6, D], width: w, keeps: [FULL, D_AXIS], init: "modulation" });
      if (c.qkNorm === "layernorm")
        for (const n of ["q", "k"]) {
          out.push({ name: `${t}.${stage}.${i}.attn.${n}_norm.weight`, shape: [dh], width: w, keeps: [headDim], init: "norm_weight" });
          out.push({ name: `${t}.${stage}.${i}.attn.${n}_norm.bias`, shape: [dh], width: w, keeps: [headDim], init: "norm_bias" });
        }
    }
  return out;
}

/** [start, length] runs of the stored axis that width w keeps. */
export function axisRanges(s: AxisSlice, size: number, c: ModelConfig, w: Width): [number, number][] {
  const Dw = w * c.hidden;
  switch (s.kind) {
    case "full":
      return [[0, size]];
    case "prefix":
      return [[0, s.scale * Dw]];
    case "heads": {
      const dh = size / s.heads, dhw = w * dh;
      return Array.from({ length: s.heads }, (_, h) => [h * dh, dhw] as [number, number]);
    }
    case "parts": {
      const part = size / s.parts;
      return Array.from({ length: s.parts }, (_, k) => [k * part, Dw] as [number, number]);
    }
  }
}

/** The kept indices of every axis at width w, or null for an axis kept whole. */
export function keptIndices(rules: readonly AxisSlice[], shape: readonly number[], c: ModelConfig, w: Width): (Int32Array | null)[] {
  return rules.map((s, a) => {
    const runs = axisRanges(s, shape[a]!, c, w);
    if (runs.length === 1 && runs[0]![0] === 0 && runs[0]![1] === shape[a]) return null;
    const out = new Int32Array(runs.reduce((n, [, len]) => n + len, 0));
    let o = 0;
    for (const [start, len] of runs) for (let i = 0; i < len; i++) out[o++] = start + i;
    return out;
  });
}

/** The shape a spec has inside the width-w sub-network. */
export function slicedShape(p: ParamSpec, c: ModelConfig, w: Width): number[] {
  if (!p.slice) return p.shape;
  return p.shape.map((n, a) => axisRanges(p.slice![a]!, n, c, w).reduce((s, [, len]) => s + len, 0));
}

/** Specs the width-w sub-network uses: shared tensors plus that width's isolated ones. */
export function specsForWidth(c: ModelConfig, w: Width): ParamSpec[] {
  return paramSpecs(c).filter((p) => p.width === undefined || p.width === w);
}

/** Parameter count of the width-w sub-network (shared tensors after slicing, plus its isolated set). */
export function paramCount(c: ModelConfig, w: Width): number {
  return specsForWidth(c, w).reduce((s, p) => s + slicedShape(p, c, w).reduce((a, b) => a * b, 1), 0);
}

export function paramCounts(c: ModelConfig): Partial<Record<`${Width}`, number>> {
  const out: Partial<Record<`${Width}`, number>> = {};
  for (const w of WIDTHS) if (c.widths.includes(w)) out[`${w}`] = paramCount(c, w);
  return out;
}
