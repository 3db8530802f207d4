#!/usr/bin/env node
// Builds the fast kernels' WebAssembly from src/kernels/simd/assembly with AssemblyScript (an npm
// devDependency, no native toolchain): dist/wasm/simd.wasm (128-bit SIMD) and
// dist/wasm/simd-relaxed.wasm (the same source with relaxed-SIMD fused multiply-add, the one the
// engine loads unless DITC_FMA=0 or V8 cannot validate it; src/kernels/simd/engine.ts), and dist/wasm/kmeans.wasm from src/quant/assembly (the
// k-means programme's layer; scalar, its own memory). Deterministic: the same source gives the
// same bytes.
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import asc from "assemblyscript/asc";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const entry = join(root, "src/kernels/simd/assembly/index.ts");
mkdirSync(join(root, "dist/wasm"), { recursive: true });
const common = ["--runtime", "stub", "-O3", "--noAssert", "--importMemory", "--sharedMemory", "--initialMemory", "1", "--maximumMemory", "65536", "--enable", "simd", "--enable", "threads"];
for (const [file, extra] of [["simd.wasm", []], ["simd-relaxed.wasm", ["--enable", "relaxed-simd"]]]) {
  const { error, stderr } = await asc.main([entry, "-o", join(root, "dist/wasm", file), ...common, ...extra]);
  if (error) {
    console.error(stderr.toString());
    console.error(`build-wasm: ${file}: ${error.message}`);
    process.exit(1);
  }
}
{
  const { error, stderr } = await asc.main([join(root, "src/quant/assembly/kmeans.ts"), "-o", join(root, "dist/wasm", "kmeans.wasm"), "--runtime", "stub", "-O3", "--noAssert", "--initialMemory", "1"]);
  if (error) {
    console.error(stderr.toString());
    console.error(`build-wasm: kmeans.wasm: ${error.message}`);
    process.exit(1);
  }
}
