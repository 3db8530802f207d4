// Seeded synthetic weights and inputs with the statistics of a trained model rather than of a
// fresh init: per-layer scales that differ (log-normal), heavy-tailed tensors (Student-t, ν = 3,
// as palettization has to face in real checkpoints), small modulation tables and near-identity
// QK-norm affines. Each tensor has its own generator seeded from (seed, name), so any tensor can
// be regenerated alone and the values do not depend on generation order.
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
}

export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

const CHUNK = 1 << 20;

/** Whether a weight tensor is drawn heavy-tailed: output projections always, others by hash. */
function isHeavyTailed(name: string, seed: number): boolean {
  return /\.(attn\.o|ffn\.fc2)\.weight$/.test(name) || new Rng(seed, name, "tail").uniform() < 0.25;
}

/** Streams a synthetic tensor's values in chunks (a single chunk for small tensors). */
export function produceSynthetic(spec: ParamSpec, seed: number, emit: (chunk: Float32Array) => void): void {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const layer = new Rng(seed, spec.name, "scale");
  const layerScale = Math.exp(0.35 * layer.normal());
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
  for (let start = 0; start < n; start += CHUNK) {
    const chunk = new Float32Array(Math.min(CHUNK, n - start));
    for (let i = 0; i < chunk.length; i++) chunk[i] = draw();
    emit(chunk);
  }
}

export function synthesize(spec: ParamSpec, seed: number): Float32Array {
  const out = new Float32Array(spec.shape.reduce((a, b) => a * b, 1));
  let off = 0;
  produceSynthetic(spec, seed, (c) => {
    out.set(c, off);
    off += c.length;
  });
  return out;
}
