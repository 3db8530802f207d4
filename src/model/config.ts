// The model config of docs/checkpoints.md, its presets, and validation whose messages name the field.
import { fail } from "../diagnostics.js";

export const WIDTHS = [0.375, 0.5, 1] as const;
export type Width = (typeof WIDTHS)[number];

export interface ModelConfig {
  hidden: number;
  heads: number;
  kvHeads: number;
  crossDim: number;
  crossHeads: number;
  contextDim: number;
  contextTokens: number;
  depths: [number, number, number];
  ffnRatio: [number, number, number];
  bnaBlocks: number;
  bnaRadius: number;
  bnaPartition: "raster" | "tiles";
  bnaEdge: "clamp" | "shift";
  kvCompress: "depthwise" | "dense";
  qkNorm: "layernorm" | "none";
  rope: "2d" | "none";
  posEmbed: "none" | "sincos";
  patch: number;
  latentChannels: number;
  latentSize: [number, number];
  widths: Width[];
}

const DEFAULT_OPTIONS = {
  bnaRadius: 1,
  bnaPartition: "raster",
  bnaEdge: "clamp",
  kvCompress: "depthwise",
  qkNorm: "layernorm",
  rope: "2d",
  posEmbed: "none",
  patch: 2,
  widths: [0.375, 0.5, 1],
} as const satisfies Partial<ModelConfig>;

export const PRESETS = {
  full: {
    hidden: 2048, heads: 16, kvHeads: 8, crossDim: 512, crossHeads: 8, contextDim: 2560, contextTokens: 333,
    depths: [8, 12, 10], ffnRatio: [4, 3, 4], bnaBlocks: 16, latentChannels: 16, latentSize: [128, 128],
  },
  mini: {
    hidden: 256, heads: 4, kvHeads: 2, crossDim: 128, crossHeads: 2, contextDim: 256, contextTokens: 16,
    depths: [2, 4, 2], ffnRatio: [4, 3, 4], bnaBlocks: 16, latentChannels: 16, latentSize: [32, 32],
  },
  micro: {
    hidden: 128, heads: 4, kvHeads: 2, crossDim: 32, crossHeads: 2, contextDim: 32, contextTokens: 8,
    depths: [1, 4, 1], ffnRatio: [2, 2, 2], bnaBlocks: 16, latentChannels: 4, latentSize: [16, 16],
  },
} as const;

export type PresetName = keyof typeof PRESETS;
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];

export function presetConfig(name: string, overrides: Partial<ModelConfig> = {}): ModelConfig {
  if (!Object.hasOwn(PRESETS, name)) throw fail("unknownPreset", { name, known: PRESET_NAMES });
  const p = PRESETS[name as PresetName];
  const cfg = structuredClone({ ...DEFAULT_OPTIONS, ...p, ...overrides }) as ModelConfig;
  return validateConfig(cfg, `preset ${name}`);
}

/** The option axes of docs/model.md whose every valid combination the tests run. */
export const OPTION_VALUES = {
  qkNorm: ["layernorm", "none"],
  rope: ["2d", "none"],
  posEmbed: ["none", "sincos"],
  kvCompress: ["depthwise", "dense"],
  bnaPartition: ["raster", "tiles"],
  bnaEdge: ["clamp", "shift"],
} as const;

type FieldKind =
  | { kind: "int"; min: number }
  | { kind: "triple"; min: number }
  | { kind: "pair"; min: number }
  | { kind: "enum"; values: readonly string[] }
  | { kind: "widths" };

const FIELDS: Record<keyof ModelConfig, FieldKind> = {
  hidden: { kind: "int", min: 1 },
  heads: { kind: "int", min: 1 },
  kvHeads: { kind: "int", min: 1 },
  crossDim: { kind: "int", min: 1 },
  crossHeads: { kind: "int", min: 1 },
  contextDim: { kind: "int", min: 1 },
  contextTokens: { kind: "int", min: 1 },
  depths: { kind: "triple", min: 0 },
  ffnRatio: { kind: "triple", min: 1 },
  bnaBlocks: { kind: "int", min: 1 },
  bnaRadius: { kind: "int", min: 0 },
  bnaPartition: { kind: "enum", values: OPTION_VALUES.bnaPartition },
  bnaEdge: { kind: "enum", values: OPTION_VALUES.bnaEdge },
  kvCompress: { kind: "enum", values: OPTION_VALUES.kvCompress },
  qkNorm: { kind: "enum", values: OPTION_VALUES.qkNorm },
  rope: { kind: "enum", values: OPTION_VALUES.rope },
  posEmbed: { kind: "enum", values: OPTION_VALUES.posEmbed },
  patch: { kind: "int", min: 1 },
  latentChannels: { kind: "int", min: 1 },
  latentSize: { kind: "pair", min: 1 },
  widths: { kind: "widths" },
};

const isInt = (v: unknown, min: number) => typeof v === "number" && Number.isSafeInteger(v) && v >= min;

/** Checks an untrusted config object field by field; `where` names its origin (file or preset). */
export function validateConfig(raw: unknown, where: string): ModelConfig {
  const bad = (field: string, problem: string) => fail("configInvalid", { where, field, problem });
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw fail("configJson", { where, problem: "it is not a JSON object" });
  const obj = raw as Record<string, unknown>;
  for (const key of Object.keys(obj)) if (!Object.hasOwn(FIELDS, key)) throw bad(key, `is not a known field (known: ${Object.keys(FIELDS).join(", ")})`);
  for (const [key, spec] of Object.entries(FIELDS)) {
    const v = obj[key];
    if (v === undefined) throw bad(key, "is missing; every field of docs/checkpoints.md is required");
    switch (spec.kind) {
      case "int":
        if (!isInt(v, spec.min)) throw bad(key, `must be an integer >= ${spec.min}, got ${JSON.stringify(v)}`);
        break;
      case "triple":
      case "pair": {
        const n = spec.kind === "triple" ? 3 : 2;
        if (!Array.isArray(v) || v.length !== n || !v.every((x) => isInt(x, spec.min)))
          throw bad(key, `must be a list of ${n} integers >= ${spec.min}, got ${JSON.stringify(v)}`);
        break;
      }
      case "enum":
        if (typeof v !== "string" || !spec.values.includes(v)) throw bad(key, `must be one of ${spec.values.map((s) => `"${s}"`).join(", ")}, got ${JSON.stringify(v)}`);
        break;
      case "widths":
        if (!Array.isArray(v) || v.length === 0 || !v.every((w) => (WIDTHS as readonly unknown[]).includes(w)) || new Set(v).size !== v.length)
          throw bad(key, `must be a non-empty list of distinct widths from ${WIDTHS.join(", ")}, got ${JSON.stringify(v)}`);
    }
  }
  const c = obj as unknown as ModelConfig;
  c.widths = [...c.widths].sort((a, b) => a - b);
  if (c.heads % c.kvHeads !== 0) throw bad("kvHeads", `(${c.kvHeads}) must divide heads (${c.heads})`);
  if (c.crossDim % c.crossHeads !== 0) throw bad("crossHeads", `(${c.crossHeads}) must divide crossDim (${c.crossDim})`);
  if (c.rope === "2d" && c.posEmbed === "sincos") throw bad("posEmbed", `"sincos" cannot be combined with rope "2d" (docs/model.md step 4); set one of them to "none"`);
  for (const w of c.widths) {
    const Dw = w * c.hidden;
    if (!Number.isInteger(Dw)) throw bad("hidden", `(${c.hidden}) times width ${w} is ${Dw}, not a whole number of channels`);
    if (Dw % c.heads !== 0) throw bad("heads", `(${c.heads}) must divide the width-${w} hidden size ${Dw}`);
    const dh = Dw / c.heads;
    if (c.rope === "2d" && dh % 4 !== 0) throw bad("rope", `"2d" needs the head dim divisible by 4, but width ${w} has head dim ${Dw}/${c.heads} = ${dh}`);
    if (c.posEmbed === "sincos" && Dw % 4 !== 0) throw bad("posEmbed", `"sincos" needs the hidden size divisible by 4, but width ${w} has ${Dw}`);
  }
  validateResolution(c, c.latentSize, where);
  return c;
}

/**
 * Shape rules that depend on the compiled latent size (docs/model.md steps 5 and 6). Checked for the
 * config's own latentSize when a config is read, and for every --resolution a compile asks for.
 */
export function validateResolution(c: ModelConfig, latent: readonly [number, number], where: string, requested = false): void {
  const bad = (problem: string) =>
    requested
      ? fail("resolutionInvalid", { resolution: latent[0] * 8, latent: `${latent[0]}x${latent[1]}`, problem })
      : fail("configInvalid", { where, field: "latentSize", problem: `${JSON.stringify(latent)}: ${problem}` });
  const [Hl, Wl] = latent;
  if (Hl % c.patch || Wl % c.patch) throw bad(`the latent is not divisible by patch ${c.patch}`);
  const Hg = Hl / c.patch, Wg = Wl / c.patch, L = Hg * Wg;
  if (Hg % 2 || Wg % 2) throw bad(`the ${Hg}x${Wg} token grid has an odd side; downsampling and KV compression need even sides`);
  if (c.bnaPartition === "raster" && L % c.bnaBlocks) throw bad(`its ${L} tokens (${Hg}x${Wg}) are not divisible by bnaBlocks ${c.bnaBlocks}`);
  if (c.bnaPartition === "tiles") {
    const s = Math.round(Math.sqrt(c.bnaBlocks));
    if (s * s !== c.bnaBlocks) throw fail("configInvalid", { where, field: "bnaBlocks", problem: `(${c.bnaBlocks}) must be a perfect square for bnaPartition "tiles"` });
    if (Hg % s || Wg % s) throw bad(`its ${Hg}x${Wg} token grid does not split into ${s}x${s} equal tiles`);
  }
}

export function widthTag(w: Width): string {
  return `w${Math.round(w * 1000)}`;
}

export function parseWidth(s: string | number): Width | undefined {
  const n = typeof s === "number" ? s : Number(s);
  return (WIDTHS as readonly number[]).includes(n) ? (n as Width) : undefined;
}

/** Derived sizes at one width (docs/model.md, elastic widths). */
export function dims(c: ModelConfig, w: Width) {
  const D = w * c.hidden;
  return { D, H: c.heads, Hkv: c.kvHeads, dh: D / c.heads, Dc: c.crossDim, Hc: c.crossHeads, Dctx: c.contextDim };
}
