// Seeded synthetic weights and inputs with the statistics of a trained model rather than of a
// fresh init: per-layer scales that differ (log-normal), heavy-tailed tensors (Student-t, ν = 3,
// as palettization has to face in real checkpoints), small modulation tables and near-identity
// QK-norm affines. Each tensor has its own generator seeded from (seed, name), so any tensor can
// be regenerated alone and the values do not depend on generation order.
//
// A tensor is drawn in batches (Rng.fillNormal, fillHeavyTailed): the same draws in the same
// order as one call per value, so the same bits, without a call and a boxed spare per value
// (synthesizeScalar, the per-value form, is the oracle tests compare them with).
import { numel } from "../kernels/tensor.js";
import type { ParamSpec } from "./params.js";

/** sfc32: small, fast, and good enough for synthetic data. */
export class Rng {
  private a: number; private b: number; private c: number; private d: number;
  private spare: number | undefined;

  constructor(...seeds: (number | string)[]) {
    const h = seeds.map((s) => (typeof s === "number" ? s >>> 0 : fnv1a(s)));
    this.a = h[0] ?? 0x9e3779b9; this.b = h[1] ?? 0x243f6a88; this.c = h[2] ?? 0xb7e15162; this.d = 1;
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** uniform in (0, 1) */
  uniform(): number {
    return (this.nextU32() + 0.5) / 4294967296;
  }

  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(this.uniform())), th = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(th);
    return r * Math.cos(th);
  }

  /** Student-t with 3 degrees of freedom, scaled to unit variance: z / sqrt(χ²₃ / 3) / sqrt(3). */
  heavyTailed(): number {
    const z = this.normal(), y = this.normal();
    const chi3 = -2 * Math.log(this.uniform()) + y * y; // χ²₂ is an exponential with mean 2
    return z / Math.sqrt(chi3);
  }

  /**
   * out[i] = offset + scale · normal() for every i, bit for bit as one normal() per value (a
   * spare left from before goes first; an odd count leaves one for the next draw), without a
   * call and a boxed spare per value: what makes ditc init and the presets' weights fast.
   */
  fillNormal(out: Float32Array, scale: number, offset = 0): void {
    let i = 0;
    const n = out.length, put = (k: number, z: number) => void (out[k] = offset === 0 ? scale * z : offset + scale * z);
    if (n > 0 && this.spare !== undefined) put(i++, this.normal());
    for (; i + 1 < n; i += 2) {
      const u1 = this.uniform(), u2 = this.uniform();
      const r = Math.sqrt(-2 * Math.log(u1)), th = 2 * Math.PI * u2;
      if (offset === 0) (out[i] = scale * (r * Math.cos(th))), (out[i + 1] = scale * (r * Math.sin(th)));
      else (out[i] = offset + scale * (r * Math.cos(th))), (out[i + 1] = offset + scale * (r * Math.sin(th)));
    }
    if (i < n) put(i, this.normal());
  }

  /** out[i] = scale · heavyTailed() for every i, bit for bit as one heavyTailed() per value. */
  fillHeavyTailed(out: Float32Array, scale: number): void {
    const n = out.length;
    // with a spare pending the pairs straddle values: the per-value form keeps the order
    if (this.spare !== undefined) {
      for (let i = 0; i < n; i++) out[i] = scale * this.heavyTailed();
      return;
    }
    for (let i = 0; i < n; i++) {
      const u1 = this.uniform(), u2 = this.uniform(), u3 = this.uniform();
      const r = Math.sqrt(-2 * Math.log(u1)), th = 2 * Math.PI * u2;
      const z = r * Math.cos(th), y = r * Math.sin(th);
      out[i] = scale * (z / Math.sqrt(-2 * Math.log(u3) + y * y));
    }
  }
}

export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Whether a weight tensor is drawn heavy-tailed: output projections always, others by hash. */
function isHeavyTailed(name: string, seed: number): boolean {
  return /\.(attn\.o|ffn\.fc2)\.weight$/.test(name) || new Rng(seed, name, "tail").uniform() < 0.25;
}

/** How a tensor's values are drawn: scale · t or offset + scale · z, from its init kind and name. */
function drawing(spec: ParamSpec, seed: number): { heavy: boolean; scale: number; offset: number } {
  const layerScale = Math.exp(0.35 * new Rng(seed, spec.name, "scale").normal());
  switch (spec.init) {
    case "weight":
      return { heavy: isHeavyTailed(spec.name, seed), scale: layerScale / Math.sqrt(spec.fanIn ?? 1), offset: 0 };
    case "bias":
      return { heavy: false, scale: 0.02 * layerScale, offset: 0 };
    case "modulation":
      return { heavy: false, scale: 0.05, offset: 0 };
    case "norm_weight":
      return { heavy: false, scale: 0.1, offset: 1 };
    case "norm_bias":
      return { heavy: false, scale: 0.02, offset: 0 };
  }
}

/** A synthetic tensor's values into `out` (its length the tensor's). */
export function synthesizeInto(spec: ParamSpec, seed: number, out: Float32Array): Float32Array {
  const { heavy, scale, offset } = drawing(spec, seed);
  const rng = new Rng(seed, spec.name);
  if (heavy) rng.fillHeavyTailed(out, scale);
  else rng.fillNormal(out, scale, offset);
  return out;
}

export function synthesize(spec: ParamSpec, seed: number): Float32Array {
  return synthesizeInto(spec, seed, new Float32Array(numel(spec.shape)));
}

/** The same values one draw call per value: the oracle the batched draws are tested against. */
export function synthesizeScalar(spec: ParamSpec, seed: number): Float32Array {
  const layerScale = Math.exp(0.35 * new Rng(seed, spec.name, "scale").normal());
  const rng = new Rng(seed, spec.name);
  let draw: () => number;
  switch (spec.init) {
    case "weight": {
      const std = layerScale / Math.sqrt(spec.fanIn ?? 1);
      draw = isHeavyTailed(spec.name, seed) ? () => std * rng.heavyTailed() : () => std * rng.normal();
      break;
    }
    case "bias":
      draw = () => 0.02 * layerScale * rng.normal();
      break;
    case "modulation":
      draw = () => 0.05 * rng.normal();
      break;
    case "norm_weight":
      draw = () => 1 + 0.1 * rng.normal();
      break;
    case "norm_bias":
      draw = () => 0.02 * rng.normal();
      break;
  }
  const out = new Float32Array(numel(spec.shape));
  for (let i = 0; i < out.length; i++) out[i] = draw();
  return out;
}
