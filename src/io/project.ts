// Where ditc's own files are: the project root (scripts/, the tool virtualenvs) and the compiled
// JavaScript of a module (worker threads and child processes start from it). The same answer
// whether ditc runs compiled from dist/ or from its TypeScript sources (the test runner).
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(import.meta.url); // src/io/project.ts, or dist/src/io/project.js
export const PROJECT_ROOT = join(dirname(here), ...(here.endsWith(".ts") ? ["..", ".."] : ["..", "..", ".."]));

/** The compiled form of a module, by its path from the project root ("targets/tflite/litert-worker.js"). */
export function compiledModule(path: string): string {
  return join(PROJECT_ROOT, "dist", path);
}
