// `ditc init` and `ditc inputs`: seeded synthetic checkpoints and model inputs, streamed to disk.
import { writeSafetensors } from "../checkpoint/safetensors.js";
import { writeTensorFile } from "../checkpoint/tensors.js";
import { floatTensor, type FloatTensor } from "../kernels/tensor.js";
import type { ModelConfig } from "../model/config.js";
import { paramCounts, paramSpecs } from "../model/params.js";
import { produceSynthetic, Rng } from "../model/synthetic.js";

/** Config JSON with keys in docs/checkpoints.md's order, so files are byte-identical across runs. */
export function configJson(c: ModelConfig): string {
  const keys: (keyof ModelConfig)[] = [
    "hidden", "heads", "kvHeads", "crossDim", "crossHeads", "contextDim", "contextTokens", "depths", "ffnRatio",
    "bnaBlocks", "bnaRadius", "bnaPartition", "bnaEdge", "kvCompress", "qkNorm", "rope", "posEmbed", "patch",
    "latentChannels", "latentSize", "widths",
  ];
  return JSON.stringify(Object.fromEntries(keys.map((k) => [k, c[k]])));
}

export interface InitResult {
  path: string;
  tensors: number;
  bytes: number;
  params: Record<string, number>;
}

export function writeSyntheticCheckpoint(config: ModelConfig, seed: number, out: string, dtype: "f32" | "f16" = "f32"): InitResult {
  const specs = paramSpecs(config);
  const st = dtype === "f32" ? "F32" : "F16";
  writeSafetensors(
    out,
    specs.map((s) => ({ name: s.name, dtype: st, shape: s.shape, produce: (emit) => produceSynthetic(s, seed, emit) })),
    { config: configJson(config), format: "pt", generator: `ditc init, seed ${seed}` },
  );
  const elems = specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  return { path: out, tensors: specs.length, bytes: elems * (dtype === "f32" ? 4 : 2), params: paramCounts(config) as Record<string, number> };
}

export interface InputShapes {
  batch: number;
  latentSize: [number, number];
  contextTokens: number;
}

/** Seeded model inputs: latent and context ~ N(0, 1), timestep ~ U(0, 1). */
export function syntheticInputs(config: ModelConfig, seed: number, shapes: InputShapes): Record<string, FloatTensor> {
  const rng = new Rng(seed, "inputs");
  const fill = (shape: number[], draw: () => number) => floatTensor(shape, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, draw));
  const { batch: B, latentSize: [Hl, Wl], contextTokens: S } = shapes;
  return {
    latent: fill([B, config.latentChannels, Hl, Wl], () => rng.normal()),
    timestep: fill([B], () => rng.uniform()),
    context: fill([B, S, config.contextDim], () => rng.normal()),
  };
}

export function writeInputs(path: string, inputs: Record<string, FloatTensor>): void {
  writeTensorFile(path, inputs);
}
