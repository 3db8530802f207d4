// `ditc calibrate`: the float model's sampling trajectories as calibration inputs. The sampler of
// docs/sampling.md runs in the IR interpreter; every velocity call's (latent, timestep, context)
// is recorded, so the probe and the activation statistics see what the deployed model sees at
// every timestep. CAL.safetensors holds latent (N, C, H, W), timestep (N), context (N, S, Dctx).
import { writeTensorFile } from "../checkpoint/tensors.js";
import { fail } from "../diagnostics.js";
import { floatTensor, type FloatTensor } from "../kernels/tensor.js";
import type { Width } from "../model/config.js";
import type { WeightSource } from "../model/weights.js";
import type { CalibrationSet } from "../quant/calibration.js";
import { irEngine } from "../sample/engines.js";
import type { ProgressFn } from "./progress.js";
import { checkSteps, sampleContext, sampleLatents, sampleNoise, type SampleSpec } from "./sample.js";

export interface CalibrateSpec extends Pick<SampleSpec, "prompts" | "vocab" | "context" | "steps" | "shift" | "seed"> {
  /** trajectories per prompt (or context row), each from its own noise seed */
  samples: number;
  width: Width;
  latentSize: [number, number];
}

export interface CalibrationRecord {
  prompts: string[] | null;
  seeds: number[];
  steps: number;
  shift: number;
  width: Width;
  /** calls × batch = N records */
  records: number;
}

/** The most memory a recording may hold (its calls' inputs, and their joined copy). */
const MAX_RECORDING_BYTES = 8 * 2 ** 30;

/** Runs the float sampler and returns every velocity call's inputs, in call order. */
export async function recordTrajectories(source: WeightSource, spec: CalibrateSpec, onProgress?: ProgressFn): Promise<{ set: CalibrationSet; record: CalibrationRecord }> {
  if (!Number.isSafeInteger(spec.samples) || spec.samples < 1) throw fail("badOption", { option: "samples", value: String(spec.samples), expected: "an integer >= 1" });
  checkSteps(spec.steps);
  const base = irEngine(source, spec.width, spec.latentSize);
  const { context: one, prompts } = sampleContext(spec as SampleSpec, base);
  // K trajectories per prompt: the contexts repeated, each row with its own seed
  const P = one.shape[0]!, per = one.data.length / P, K = spec.samples;
  // every call's inputs are kept, then joined: refused up front when that cannot fit
  const [C, H, W] = base.latent, records = P * K * spec.steps, bytes = 2 * 4 * records * (C * H * W + 1 + per);
  if (bytes > MAX_RECORDING_BYTES)
    throw fail("usage", { detail: `calibrate would record ${records.toLocaleString("en-US")} velocity calls (${P} context(s) × ${K} sample(s) × ${spec.steps} steps), ${(bytes / 2 ** 30).toFixed(1)} GiB held while it joins them, more than the ${MAX_RECORDING_BYTES / 2 ** 30} GiB it allows; use fewer --steps or --samples.` });
  const context = floatTensor([P * K, ...one.shape.slice(1)], new Float32Array(P * K * per));
  for (let k = 0; k < K; k++) context.data.set(one.data, k * P * per);
  const { noise, seeds } = sampleNoise(spec as SampleSpec, base, P * K);
  const latents: FloatTensor[] = [], times: FloatTensor[] = [], contexts: FloatTensor[] = [];
  const recorder = {
    ...base,
    velocity: (latent: FloatTensor, timestep: FloatTensor, ctx: FloatTensor) => {
      latents.push(latent);
      times.push(timestep);
      contexts.push(ctx);
      return base.velocity(latent, timestep, ctx);
    },
  };
  await sampleLatents(recorder, noise, context, spec, onProgress);
  const cat = (ts: FloatTensor[]) => {
    const n = ts.reduce((s, t) => s + t.shape[0]!, 0);
    const out = new Float32Array(ts.reduce((s, t) => s + t.data.length, 0));
    let o = 0;
    for (const t of ts) (out.set(t.data, o), (o += t.data.length));
    return floatTensor([n, ...ts[0]!.shape.slice(1)], out);
  };
  const set = { latent: cat(latents), timestep: cat(times), context: cat(contexts) };
  return { set, record: { prompts: prompts ? Array.from({ length: K }, () => prompts).flat() : null, seeds: seeds ?? [], steps: spec.steps, shift: spec.shift, width: spec.width, records: set.latent.shape[0]! } };
}

/** Writes CAL.safetensors (atomically), the record in `__metadata__["ditc.calibration"]`. */
export function writeCalibration(path: string, set: CalibrationSet, record: CalibrationRecord): void {
  writeTensorFile(path, set, { "ditc.calibration": JSON.stringify(record) });
}
