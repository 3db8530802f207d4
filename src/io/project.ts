// Where ditc's own files are: the project root (scripts/, the tool virtualenvs) and the compiled
// JavaScript of a module (worker threads and child processes start from it). The same answer
// whether ditc runs compiled from dist/ or from its TypeScript sources (the test runner).
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(import.meta.url); // src/io/project.ts, or dist/src/io/project.js
export const PROJECT_ROOT = join(dirname(here), ...(here.endsWith(".ts") ? ["..", ".."] : ["..", "..", ".."]));

/** The compiled form of a module, by its path from the project root ("targets/tflite/litert-worker.js"). */
export function compiledModule(path: string): string {
  return join(PROJECT_ROOT, "dist", path);
}

/** The bytes of a WebAssembly module the build produced ("simd.wasm" in dist/wasm). */
export function builtWasm(file: string): Uint8Array<ArrayBuffer> {
  const path = join(PROJECT_ROOT, "dist", "wasm", file);
  try {
    const b = readFileSync(path);
    return new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  } catch {
    throw new Error(`ditc's WebAssembly is not built (${path} is missing); run npm run build`);
  }
}
