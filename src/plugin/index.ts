// The build-pipeline plugin (unplugin: one plugin for Vite, Rollup, Rolldown, webpack, esbuild).
// An app imports a model description with the compile options in the query:
//
//   import url from "./dit.ditc.json?target=onnx&width=0.5&quantize=mixed";
//
// and gets the URL of the compiled artifact, emitted as an asset of the build. Compiles are cached
// on disk by a content hash of the checkpoint (or preset and seed) and the options, so a rebuild
// with nothing changed compiles nothing. `dit.ditc.json` holds {"preset": "mini", "seed": 0} or
// {"checkpoint": "./ck.safetensors"} (relative to the file), and optional defaults for the query
// keys target, width, quantize, precision, resolution.
import { createHash } from "node:crypto";
import { createReadStream, existsSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { createUnplugin } from "unplugin";
import { fail, oneOf } from "../diagnostics.js";
import { compile, parseQuantize, type Precision } from "../driver/compile.js";
import { openSource } from "../driver/source.js";
import { openStore } from "../checkpoint/open.js";
import { latentForResolution } from "../model/build.js";
import { WIDTHS, type Width } from "../model/config.js";
import { BACKENDS } from "../driver/pipelines.js";
import { buildFingerprint } from "../io/project.js";
import { makeOutputFolder, writeAll, writeFileAtomic } from "../io/atomic.js";
import { DITC_VERSION } from "../version.js";

export interface DitcPluginOptions {
  /** where compiled artifacts are kept between builds (default node_modules/.cache/ditc) */
  cacheDir?: string;
  /** told about every model import: compiled (with seconds) or found in the cache */
  onEvent?: (e: DitcPluginEvent) => void;
}

export type DitcPluginEvent = { kind: "compiled" | "cached"; description: string; target: string; width: number; key: string; seconds: number };

interface Request {
  description: string;
  model: { preset: string; seed: number } | { checkpoint: string; rename?: string; config?: string; allowUnused?: boolean };
  target: string;
  width: Width;
  quantize: string;
  precision: Precision | "auto";
  resolution?: number;
}

const ID = /\.ditc\.json\?/;
const VIRTUAL = "\0ditc:";

function parseRequest(file: string, query: string): Request {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw fail("configJson", { where: file, problem: (e as Error).message });
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw fail("configJson", { where: file, problem: "it is not a JSON object" });
  const q = new URLSearchParams(query);
  const get = (k: string) => q.get(k) ?? (doc[k] === undefined ? undefined : String(doc[k]));
  const known = new Set(["target", "width", "quantize", "precision", "resolution"]);
  for (const k of q.keys()) if (!known.has(k)) throw fail("badOption", { option: k, value: q.get(k)!, expected: `a query key, ${oneOf(k, [...known])}` });
  const target = get("target");
  if (!target || !BACKENDS[target]) throw fail("badOption", { option: "target", value: target ?? "(none)", expected: `${oneOf(target ?? "", Object.keys(BACKENDS))} in the import query or ${basename(file)}` });
  const width = Number(get("width") ?? 1) as Width;
  if (!WIDTHS.includes(width)) throw fail("badOption", { option: "width", value: String(get("width")), expected: oneOf(String(get("width")), WIDTHS) });
  const quantize = get("quantize") ?? "none";
  parseQuantize(quantize);
  const precision = (get("precision") ?? "auto") as Precision | "auto";
  if (!["auto", "fp32", "fp16"].includes(precision)) throw fail("badOption", { option: "precision", value: precision, expected: "auto, fp32 or fp16" });
  const resolution = get("resolution") === undefined ? undefined : Number(get("resolution"));
  let model: Request["model"];
  const near = (p: string) => (isAbsolute(p) ? p : resolve(dirname(file), p));
  if (typeof doc.checkpoint === "string")
    model = {
      checkpoint: near(doc.checkpoint),
      ...(typeof doc.rename === "string" ? { rename: near(doc.rename) } : {}),
      ...(typeof doc.config === "string" ? { config: near(doc.config) } : {}),
      ...(doc.allowUnused === true ? { allowUnused: true } : {}),
    };
  else if (typeof doc.preset === "string") {
    const seed = doc.seed ?? 0;
    if (!Number.isSafeInteger(seed) || (seed as number) < 0) throw fail("configInvalid", { where: file, field: "seed", problem: `is ${JSON.stringify(seed)}, not an integer >= 0` });
    model = { preset: doc.preset, seed: seed as number };
  } else throw fail("configInvalid", { where: file, field: "preset", problem: 'is missing: a model description names "preset" (and "seed") or "checkpoint"' });
  return { description: file, model, target, width, quantize, precision, ...(resolution !== undefined ? { resolution } : {}) };
}

/** sha256 of a file, remembered beside the cache by (path, size, mtime) so unchanged checkpoints are hashed once. */
async function fileHash(path: string, cacheDir: string): Promise<string> {
  const st = statSync(path);
  const memo = join(cacheDir, "hashes", createHash("sha256").update(`${resolve(path)}|${st.size}|${st.mtimeMs}`).digest("hex"));
  if (existsSync(memo)) return readFileSync(memo, "utf8");
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  const digest = h.digest("hex");
  makeOutputFolder(dirname(memo));
  writeFileAtomic(memo, (fd) => writeAll(fd, Buffer.from(digest)));
  return digest;
}

/**
 * Every file a checkpoint reference reads: the file itself, or the index and each shard it names,
 * plus a config.json beside it, the rename table and the config file when given.
 */
export function checkpointFiles(m: { checkpoint: string; rename?: string; config?: string }): string[] {
  const store = openStore(m.checkpoint);
  try {
    const files = [...new Set([store.path, ...store.files])];
    const beside = join(dirname(store.path), "config.json");
    if (existsSync(beside)) files.push(beside);
    return [...files, ...(m.rename ? [m.rename] : []), ...(m.config ? [m.config] : [])];
  } finally {
    store.close();
  }
}

/** This process's ditc build (src/io/project.ts): artifacts cached by another build are not served. */
let fingerprint: string | undefined;

/** The cache entry of a request: its options, its model's content and the ditc build (exported for tests). */
export async function cacheKey(r: Request, cacheDir: string, build: string = (fingerprint ??= buildFingerprint())): Promise<string> {
  const model = "checkpoint" in r.model
    ? { checkpointSha256: await Promise.all(checkpointFiles(r.model).map((f) => fileHash(f, cacheDir))), allowUnused: r.model.allowUnused ?? false }
    : r.model;
  const { description: _, ...options } = r;
  return createHash("sha256").update(JSON.stringify({ ditc: DITC_VERSION, build, ...options, model })).digest("hex").slice(0, 24);
}

/** Compiles into the cache (a temp folder renamed into place when whole) unless it is there. */
async function compiled(r: Request, cacheDir: string, onEvent?: (e: DitcPluginEvent) => void): Promise<{ dir: string; files: string[] }> {
  const key = await cacheKey(r, cacheDir);
  const dir = join(cacheDir, key);
  const t0 = performance.now();
  let kind: DitcPluginEvent["kind"] = "cached";
  if (!existsSync(join(dir, "report.json"))) {
    kind = "compiled";
    const tmp = join(cacheDir, `.tmp-${key}-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    const { source, close } = openSource(r.model);
    try {
      compile({
        source, ref: r.model, targets: [r.target], widths: [r.width], out: tmp,
        precision: r.precision, quantize: parseQuantize(r.quantize), ...(r.resolution !== undefined ? { latentSize: latentForResolution(r.resolution) } : {}),
      });
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      throw e;
    } finally {
      close();
    }
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  }
  onEvent?.({ kind, description: r.description, target: r.target, width: r.width, key, seconds: (performance.now() - t0) / 1000 });
  const artifact = join(dir, `w${r.width * 1000}`, BACKENDS[r.target]!.artifact);
  const files = statSync(artifact).isDirectory() ? (readdirSync(artifact, { recursive: true }) as string[]).map((f) => join(artifact, f)).filter((f) => statSync(f).isFile()).sort() : [artifact];
  return { dir: artifact, files };
}

export const ditc = createUnplugin((options: DitcPluginOptions | undefined) => {
  const cacheDir = resolve(options?.cacheDir ?? join("node_modules", ".cache", "ditc"));
  return {
    name: "ditc",
    enforce: "pre",
    // a virtual id, so the bundler's own JSON handling never sees the description
    resolveId(id, importer) {
      if (!ID.test(id)) return null;
      const [path, query] = id.split("?") as [string, string];
      const file = isAbsolute(path) ? path : resolve(importer ? dirname(importer) : process.cwd(), path);
      return `${VIRTUAL}${file}?${query}`;
    },
    loadInclude: (id) => id.startsWith(VIRTUAL),
    async load(id) {
      if (!id.startsWith(VIRTUAL)) return null;
      const [file, query] = id.slice(VIRTUAL.length).split("?") as [string, string];
      this.addWatchFile(file);
      const r = parseRequest(file, query);
      if ("checkpoint" in r.model) for (const f of checkpointFiles(r.model)) this.addWatchFile(f);
      const { dir, files } = await compiled(r, cacheDir, options?.onEvent);
      const stem = `${basename(file, ".ditc.json")}-${r.target}-w${r.width * 1000}${r.quantize === "none" ? "" : `-${r.quantize.replace(":", "")}`}`;
      const ext = BACKENDS[r.target]!.artifact.slice(BACKENDS[r.target]!.artifact.indexOf("."));
      // emitFile returns a reference id in Rollup-family bundlers; others place the file by name
      const emit = this.emitFile as unknown as (f: { type: "asset"; name?: string; fileName?: string; source: Uint8Array }) => string | undefined;
      if (files.length === 1) {
        const ref = emit({ type: "asset", name: `${stem}${ext}`, source: readFileSync(files[0]!) });
        if (typeof ref === "string") return `export default import.meta.ROLLUP_FILE_URL_${ref};`;
        return `export default new URL(${JSON.stringify(`${stem}${ext}`)}, import.meta.url).href;`;
      }
      // a package (CoreML) is a folder: its files keep their layout under one content-named folder
      const hash = createHash("sha256");
      for (const f of files) hash.update(relative(dir, f)).update(readFileSync(f));
      const folder = `assets/${stem}-${hash.digest("hex").slice(0, 8)}${ext}`;
      let manifest: string | undefined;
      for (const f of files) {
        const ref = emit({ type: "asset", fileName: `${folder}/${relative(dir, f).split(sep).join("/")}`, source: readFileSync(f) });
        if (basename(f) === "Manifest.json" && typeof ref === "string") manifest = ref;
      }
      if (manifest) return `export default import.meta.ROLLUP_FILE_URL_${manifest}.replace(/\\/Manifest\\.json$/, "");`;
      return `export default new URL(${JSON.stringify(folder)}, import.meta.url).href;`;
    },
  };
});

export default ditc;
