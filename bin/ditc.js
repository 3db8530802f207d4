#!/usr/bin/env node
// Entry point of the `ditc` command; the code lives in dist/ (built by `npm install` / `npm run build`).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const entry = new URL("../dist/src/cli/main.js", import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write("ditc: the compiled code is missing; run `npm run build` in the ditc folder first.\n");
  process.exit(2);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
