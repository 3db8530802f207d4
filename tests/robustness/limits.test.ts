// Resource limits and hostile structure: declared sizes far beyond the file are refused before
// any allocation, structured mutations of the safetensors header and the config JSON (swapped
// dtypes, terabyte shapes, deep nesting, wrong types) end in diagnostics, a full disk is a clear
// error with nothing left behind, and output folders that lead elsewhere are refused.
import { execFileSync, spawnSync } from "node:child_process";
import fc from "fast-check";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { main } from "../../src/cli/main.js";
import { allocationFailure, DitcError } from "../../src/diagnostics.js";
import { writeSyntheticCheckpoint } from "../../src/driver/init.js";
import { writeFileAtomic } from "../../src/io/atomic.js";
import { presetConfig } from "../../src/model/config.js";
import { openCheckpoint } from "../../src/model/weights.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import { runGraph } from "../../src/interp/interpreter.js";
import { floatTensor } from "../../src/kernels/tensor.js";

const BIN = new URL("../../bin/ditc.js", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "ditc-limits-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const good = join(dir, "good.safetensors");
writeSyntheticCheckpoint(presetConfig("micro"), 1, good);
const bytes = readFileSync(good);
const headerLen = Number(bytes.readBigUInt64LE(0));
const header = JSON.parse(bytes.subarray(8, 8 + headerLen).toString("utf8")) as Record<string, any>;

/** The checkpoint with its header replaced (the data section kept as it was). */
function withHeader(h: unknown): Buffer {
  const json = Buffer.from(typeof h === "string" ? h : JSON.stringify(h));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, bytes.subarray(8 + headerLen)]);
}

let cases = 0;
afterAll(() => console.log(`structured fuzz: ${cases} malformed headers and configs, each a DitcError`));

function expectRefused(file: Buffer): void {
  cases++;
  const p = join(dir, "m.safetensors");
  writeFileSync(p, file);
  const before = process.memoryUsage().rss;
  try {
    const ck = openCheckpoint(p);
    try {
      for (const n of ck.file.names().slice(0, 3)) ck.file.readFloat(n);
    } finally {
      ck.close();
    }
  } catch (e) {
    if (!(e instanceof DitcError)) throw new Error(`not a DitcError: ${(e as Error)?.stack ?? e}`);
    expect(e.message).toMatch(/m\.safetensors/);
    // nothing sized by a declared (rather than actual) size was allocated
    expect(process.memoryUsage().rss - before).toBeLessThan(256 * 2 ** 20);
    return;
  }
  throw new Error("the malformed checkpoint was accepted");
}

const tensorNames = Object.keys(header).filter((k) => k !== "__metadata__");
const config = JSON.parse(header.__metadata__.config) as Record<string, unknown>;

describe("structured mutations of the safetensors header and the config", () => {
  test("dtype swaps, terabyte shapes, offsets past the end, deep nesting", () => {
    fc.assert(
      fc.property(fc.constantFrom(...tensorNames), fc.constantFrom("dtype", "inflate", "offsets", "nest", "drop"), fc.constantFrom("I64", "U8", "F64", "BOOL", "f32", "", 7), fc.integer({ min: 1, max: 1e6 }), (name, kind, dtype, factor) => {
        const h = structuredClone(header);
        const t = h[name];
        if (kind === "dtype") t.dtype = dtype;
        else if (kind === "inflate") t.shape = [...t.shape.slice(0, -1), t.shape[t.shape.length - 1] * 2 ** 20 * factor];
        else if (kind === "offsets") t.data_offsets = [t.data_offsets[0], t.data_offsets[1] + factor * 2 ** 30];
        else if (kind === "nest") h[name] = "__NEST__";
        else delete h[name];
        // deep nesting is spliced in as text: JSON.stringify itself would overflow the stack
        const depth = factor * 3;
        expectRefused(withHeader(JSON.stringify(h).replace('"__NEST__"', "[".repeat(depth) + "]".repeat(depth))));
      }),
      { numRuns: 150 },
    );
  });

  test("config fields of the wrong type, range or shape", () => {
    const bad: unknown[] = ["256", -1, 0, 1.5, 1e300, null, true, [], {}, [1, 2], "layernorm", NaN];
    fc.assert(
      fc.property(fc.constantFrom(...Object.keys(config)), fc.constantFrom(...bad), (key, value) => {
        const c = { ...config, [key]: value };
        // some replacements are valid by chance (a boolean where none is expected is not); the rest must be refused
        const h = { ...header, __metadata__: { config: JSON.stringify(c) } };
        try {
          expectRefused(withHeader(h));
        } catch (e) {
          if (!/was accepted/.test((e as Error).message)) throw e;
          cases--;
        }
      }),
      { numRuns: 150 },
    );
    for (const text of ["{", '{"hidden": 128', "[]", '"x"', "null", "{}".repeat(3), "[".repeat(100000)]) expectRefused(withHeader({ ...header, __metadata__: { config: text } }));
    expectRefused(withHeader("{not json"));
    expectRefused(withHeader(`{"__metadata__": ${"[".repeat(200000)}${"]".repeat(200000)}}`));
  });
});

test("a full disk is a clear error (exit 2) and leaves no temp file", () => {
  // the real thing where this machine lets us mount a 2 MiB tmpfs
  const small = join(dir, "small");
  mkdirSync(small);
  const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", small]).status === 0;
  try {
    if (mounted) {
      const r = spawnSync(process.execPath, [BIN, "compile", "--preset", "micro", "--target", "onnx", "--width", "1", "--out", join(small, "out")], { encoding: "utf8" });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/E3009 cannot write .*model\.onnx.*: the disk is full\./);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect((readdirSync(join(small, "out"), { recursive: true }) as string[]).filter((f) => f.includes(".tmp-"))).toEqual([]);
    }
  } finally {
    if (mounted) execFileSync("umount", [small]);
  }
  console.log(`disk-full test on a real 2 MiB tmpfs: ${mounted ? "ran" : "not permitted here (the injected ENOSPC below still runs)"}`);
  // the same handling, with the error injected, everywhere
  const target = join(dir, "full", "x.bin");
  expect(() => writeFileAtomic(target, () => {
    throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
  })).toThrow(/E3009 cannot write .*x\.bin: the disk is full\./);
  expect(readdirSync(join(dir, "full"))).toEqual([]);
});

test("an output folder that is a symbolic link elsewhere is refused", async () => {
  const out = join(dir, "out"), elsewhere = join(dir, "elsewhere");
  mkdirSync(out);
  mkdirSync(elsewhere);
  symlinkSync(elsewhere, join(out, "w500"));
  let err = "";
  const code = await main(["compile", "--preset", "micro", "--target", "tflite", "--width", "0.5", "--out", out], { out: () => {}, err: (s) => (err += s) });
  expect(code).toBe(2);
  expect(err).toMatch(/cannot write .*w500: it is a symbolic link \(to .*elsewhere\); ditc writes only inside/);
  expect(readdirSync(elsewhere)).toEqual([]);
});

test("an output folder that is a file, or lies under one, is a clear error before any work", async () => {
  const file = join(dir, "a-file");
  writeFileSync(file, "mine\n");
  const run = async (...args: string[]) => {
    let err = "";
    const code = await main(args, { out: () => {}, err: (s) => (err += s) });
    return { code, err };
  };
  for (const [out, problem] of [[file, "it exists and is not a folder"], [join(file, "sub"), "a part of the path before it is a file, not a folder"]] as const) {
    for (const args of [
      ["compile", "--preset", "micro", "--target", "onnx", "--width", "1", "--out", out],
      ["init", "--preset", "micro", "--shard-size", "1MB", "--out", out],
      ["init", "--preset", "micro", "--out", join(out, "x.safetensors")], // a single file's folder
    ]) {
      const r = await run(...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.err).toContain(`E3009 cannot write ${out}: ${problem}.`);
      expect(r.err).not.toMatch(/internal error|\n\s+at /);
    }
  }
  expect(readFileSync(file, "utf8")).toBe("mine\n");
});

test("a resolution whose lowering would fill the heap is refused with E4003, not a V8 abort", async () => {
  // micro at 65536² px: attention split into query chunks per head grows with the tokens squared;
  // without the builder's cap this ran into V8's heap limit and aborted the process
  let err = "";
  const out = join(dir, "huge");
  const code = await main(["compile", "--preset", "micro", "--target", "onnx", "--width", "1", "--resolution", "65536", "--out", out], { out: () => {}, err: (s) => (err += s) });
  expect(code).toBe(2);
  expect(err).toMatch(/E4003 the graph being built passed 1,000,000 ops \(adding \w+ in [\w.]+\): .*choose a smaller --resolution/);
  expect(readdirSync(out)).toEqual([]);
});

test("an allocation the machine cannot make is E7001 (exit 2) naming it, not an internal error", async () => {
  expect(allocationFailure(new RangeError("Invalid array length"))?.message).toMatch(/^E7001 out of memory \(Invalid array length\): .*smaller --resolution/);
  expect(allocationFailure(new RangeError("WebAssembly.Memory.grow(): Maximum memory size exceeded"))).toBeUndefined();
  expect(allocationFailure(new RangeError("Array buffer allocation failed"))?.code).toBe("E7001");
  expect(allocationFailure(new TypeError("Invalid array length"))).toBeUndefined(); // only RangeErrors are sizes
  expect(allocationFailure(new RangeError("offset is out of bounds"))).toBeUndefined(); // a bug, reported as one
  // a kernel result past the engine's 4 GiB, named by its node (two 128 KiB operands, a 4 GiB product)
  const b = new GraphBuilder();
  const x = b.input("x", { dtype: "f32", shape: [1, 32768, 1] }), y = b.input("y", { dtype: "f32", shape: [1, 1, 32768] });
  const g = b.finish([b.op("matmul", [x, y], { transposeA: false, transposeB: false })]);
  const feed = (shape: number[]) => floatTensor(shape, new Float32Array(32768));
  expect(() => runGraph(g, { x: feed([1, 32768, 1]), y: feed([1, 1, 32768]) })).toThrow(/^E7001 out of memory \(%\d+ matmul: a kernel needs 4\.00 GiB/);
  // and a whole command: sampling micro at 32768² px
  const inputs = join(dir, "micro-inputs.safetensors");
  let err = "";
  const io = { out: () => {}, err: (s: string) => (err += s) };
  expect(await main(["inputs", "--preset", "micro", "--out", inputs], io)).toBe(0);
  expect(await main(["sample", "--preset", "micro", "--resolution", "32768", "--context", inputs, "--steps", "1", "--out", join(dir, "s")], io)).toBe(2);
  expect(err).toMatch(/E7001 out of memory \(%\d+ \w+ in patch_embed: .+\): the model at this size needs more memory/);
  expect(err).not.toMatch(/internal error/);
});
