import { execFileSync } from "node:child_process";
import { floatTensor, type FloatTensor } from "../src/kernels/tensor.js";
import { OPTION_VALUES, type ModelConfig } from "../src/model/config.js";
import { Rng } from "../src/model/synthetic.js";

export function randomTensor(shape: number[], seed: number, scale = 1): FloatTensor {
  const rng = new Rng(seed, "test");
  return floatTensor(shape, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => scale * rng.normal()));
}

/** max |a - b| / max |b| */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let d = 0, m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return m === 0 ? d : d / m;
}

/** Row-major index helper for naive reference loops. */
export function at(shape: readonly number[], ...idx: number[]): number {
  let o = 0;
  for (let i = 0; i < shape.length; i++) o = o * shape[i]! + idx[i]!;
  return o;
}

/** Every valid combination of docs/model.md's options (48: rope "2d" excludes posEmbed "sincos"). */
export function validOptionCombos(): Partial<ModelConfig>[] {
  const combos: Partial<ModelConfig>[] = [];
  for (const qkNorm of OPTION_VALUES.qkNorm)
    for (const rope of OPTION_VALUES.rope)
      for (const posEmbed of OPTION_VALUES.posEmbed)
        for (const kvCompress of OPTION_VALUES.kvCompress)
          for (const bnaPartition of OPTION_VALUES.bnaPartition)
            for (const bnaEdge of OPTION_VALUES.bnaEdge)
              if (!(rope === "2d" && posEmbed === "sincos")) combos.push({ qkNorm, rope, posEmbed, kvCompress, bnaPartition, bnaEdge });
  return combos;
}

const BIN = new URL("../bin/ditc.js", import.meta.url).pathname;

/** Runs the built `ditc` command in a child process: exit code, stdout, stderr. */
export function ditcSync(...args: string[]): { code: number; stdout: string; stderr: string } {
  try {
    return { code: 0, stdout: execFileSync(process.execPath, [BIN, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 1 << 26 }), stderr: "" };
  } catch (e) {
    const x = e as { status: number; stdout: string; stderr: string };
    return { code: x.status, stdout: x.stdout, stderr: x.stderr };
  }
}
