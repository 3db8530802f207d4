// What machine a benchmark ran on, and its single-core float32 peak estimate.
import { readFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  mhz: number;
  simd: string;
  /** clock x FLOPs/cycle of one core's FMA units (2 FMA pipes x lanes x 2) */
  peakGflopsPerCore: number;
}

export function machine(): Machine {
  let flags = "", mhz = cpus()[0]?.speed ?? 0;
  try {
    const info = readFileSync("/proc/cpuinfo", "utf8");
    flags = /^flags\s*:(.*)$/m.exec(info)?.[1] ?? "";
    mhz = Number(/^cpu MHz\s*:\s*([\d.]+)/m.exec(info)?.[1] ?? mhz);
  } catch {
    /* not Linux */
  }
  // AVX-512 parts often run 512-bit FMAs at half rate or on one port, so count AVX2 width as peak
  const simd = /\bavx512f\b/.test(flags) ? "avx512f" : /\bavx2\b/.test(flags) ? "avx2" : "sse";
  const lanes = simd === "sse" ? 4 : 8;
  return {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    memoryGiB: +(totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    mhz,
    simd,
    peakGflopsPerCore: +((mhz / 1000) * 2 * lanes * 2).toFixed(1),
  };
}
