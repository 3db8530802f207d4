// Resolves "which model" from the user's choice: a built-in preset with seeded synthetic
// weights, or a checkpoint file. Both give a WeightSource; nothing is read until used.
import { fail } from "../diagnostics.js";
import { presetConfig } from "../model/config.js";
import { openCheckpoint, syntheticSource, type WeightSource } from "../model/weights.js";

export interface ModelChoice {
  preset?: string;
  seed?: number;
  checkpoint?: string;
}

export interface OpenedSource {
  source: WeightSource;
  close(): void;
}

export function openSource(choice: ModelChoice): OpenedSource {
  if (choice.preset !== undefined && choice.checkpoint !== undefined)
    throw fail("usage", { detail: "give either --preset or --checkpoint, not both." });
  if (choice.checkpoint !== undefined) {
    const ck = openCheckpoint(choice.checkpoint);
    return { source: ck, close: () => ck.close() };
  }
  if (choice.preset === undefined) throw fail("usage", { detail: "say which model: --preset NAME (synthetic weights) or --checkpoint FILE.safetensors." });
  const seed = choice.seed ?? 0;
  const config = presetConfig(choice.preset);
  return { source: syntheticSource(config, seed, `preset ${choice.preset}, seed ${seed}`), close: () => {} };
}
