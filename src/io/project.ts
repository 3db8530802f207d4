// Where ditc's own files are: the project root (scripts/, the tool virtualenvs) and the compiled
// JavaScript of a module (worker threads and child processes start from it). The same answer
// whether ditc runs compiled from dist/ or from its TypeScript sources (the test runner). And a
// digest of that compiled code, for caches of what it makes.
import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative } from "node:path";
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

/** The folders of dist/ whose code makes artifacts (the benchmarks' and tests' do not). */
const BUILD_FOLDERS = ["src", "passes", "targets", "wasm"];

/**
 * A digest of ditc's built code: every .js and .wasm file in dist/'s src, passes, targets and wasm
 * folders under `dist`, by relative path and content. Caches of compiled artifacts key on it, so
 * a ditc whose output may differ (a pass, an emitter, the k-means) never serves another build's
 * artifacts (a few megabytes: milliseconds). Folders that do not exist add nothing.
 */
export function buildFingerprint(dist: string = join(PROJECT_ROOT, "dist")): string {
  const files: string[] = [];
  for (const folder of BUILD_FOLDERS) {
    try {
      for (const e of readdirSync(join(dist, folder), { recursive: true, withFileTypes: true }))
        if (e.isFile() && /\.(js|wasm)$/.test(e.name)) files.push(relative(dist, join(e.parentPath, e.name)).split("\\").join("/"));
    } catch {
      /* not built */
    }
  }
  const h = createHash("sha256");
  for (const f of files.sort()) {
    const bytes = readFileSync(join(dist, f));
    h.update(`${f}\0${bytes.length}\0`).update(bytes);
  }
  return h.digest("hex");
}
