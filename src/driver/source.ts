// Resolves "which model" from the user's choice: a built-in preset with seeded synthetic
// weights, or a checkpoint file. Both give a WeightSource; nothing is read until used.
import { fail } from "../diagnostics.js";
import { presetConfig } from "../model/config.js";
import { openCheckpoint, syntheticSource, type WeightSource } from "../model/weights.js";

export interface ModelChoice {
  preset?: string;
  seed?: number;
  /** a safetensors file, a shard index, or a folder holding one */
  checkpoint?: string;
  /** a rename table for the checkpoint's tensor names */
  rename?: string;
  /** the config as JSON (when the checkpoint has none, or to override it) */
  config?: string;
  allowUnused?: boolean;
}

export interface OpenedSource {
  source: WeightSource;
  close(): void;
}

export function openSource(choice: ModelChoice): OpenedSource {
  if (choice.preset !== undefined && choice.checkpoint !== undefined)
    throw fail("usage", { detail: "give either --preset or --checkpoint, not both." });
  if (choice.checkpoint === undefined && (choice.rename !== undefined || choice.config !== undefined || choice.allowUnused))
    throw fail("usage", { detail: "--rename, --config and --allow-unused describe a --checkpoint; give one." });
  if (choice.checkpoint !== undefined) {
    const ck = openCheckpoint(choice.checkpoint, { ...(choice.rename !== undefined ? { rename: choice.rename } : {}), ...(choice.config !== undefined ? { config: choice.config } : {}), ...(choice.allowUnused ? { allowUnused: true } : {}) });
    return { source: ck, close: () => ck.close() };
  }
  if (choice.preset === undefined) throw fail("usage", { detail: "say which model: --preset NAME (synthetic weights) or --checkpoint FILE.safetensors." });
  const seed = choice.seed ?? 0;
  const config = presetConfig(choice.preset);
  return { source: syntheticSource(config, seed, `preset ${choice.preset}, seed ${seed}`), close: () => {} };
}
