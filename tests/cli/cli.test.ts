import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { main } from "../../src/cli/main.js";
import { kernelBuild } from "../../src/kernels/fast.js";
import { engineInfo, setThreads } from "../../src/kernels/simd/engine.js";
import { DITC_VERSION } from "../../src/version.js";

const dir = mkdtempSync(join(tmpdir(), "ditc-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const GOLDEN = new URL("../../fixtures/golden/", import.meta.url).pathname;
const BIN = new URL("../../bin/ditc.js", import.meta.url).pathname;

async function ditc(...args: string[]) {
  let stdout = "", stderr = "";
  const code = await main(args, { out: (s) => (stdout += s + "\n"), err: (s) => (stderr += s + "\n") });
  return { code, stdout, stderr };
}

/** A copy of the golden micro checkpoint with its header (and optionally its bytes) edited. */
function mutated(name: string, edit: (header: Record<string, any>) => void, bytes?: (b: Buffer) => Buffer): string {
  const src = readFileSync(`${GOLDEN}micro-checkpoint.safetensors`);
  const n = Number(src.readBigUInt64LE(0));
  const header = JSON.parse(src.subarray(8, 8 + n).toString());
  edit(header);
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  let out = Buffer.concat([len, h, src.subarray(8 + n)]);
  if (bytes) out = bytes(out);
  const p = join(dir, `${name}.safetensors`);
  writeFileSync(p, out);
  return p;
}

const config = (h: Record<string, any>) => JSON.parse(h.__metadata__.config);
const setConfig = (h: Record<string, any>, c: unknown) => (h.__metadata__.config = JSON.stringify(c));

const malformed: [string, () => string, RegExp][] = [
  ["truncated file", () => mutated("truncated", () => {}, (b) => b.subarray(0, b.length >> 1)), /beyond the \d+ bytes of data in the file \(truncated\?\)/],
  ["header length larger than the file", () => mutated("hlen", () => {}, (b) => (b.writeBigUInt64LE(BigInt(b.length)), b)), /header declares \d+ bytes but the file has only/],
  ["absurd header length", () => mutated("hhuge", () => {}, (b) => (b.writeBigUInt64LE(1n << 62n), b)), /more than the \d+-byte limit/],
  ["file shorter than 8 bytes", () => mutated("tiny", () => {}, (b) => b.subarray(0, 5)), /fewer than the 8-byte header length/],
  ["header not JSON", () => mutated("nojson", () => {}, (b) => (b.write("{{", 8), b)), /header is not valid JSON/],
  ["overlapping offsets", () => mutated("overlap", (h) => (h["patch_embed.bias"].data_offsets = h["patch_embed.weight"].data_offsets.map((x: number) => x) && [h["patch_embed.weight"].data_offsets[0], h["patch_embed.weight"].data_offsets[0] + 512])), /overlap/],
  ["size not matching dtype x shape", () => mutated("size", (h) => (h["patch_embed.bias"].shape = [129])), /declares F32 shape \(129\) = 516 bytes, but its data_offsets span 512/],
  ["terabyte shape", () => mutated("tera", (h) => (h["patch_embed.bias"].shape = [1 << 20, 1 << 20, 1 << 10])), /declares F32 shape \(1048576, 1048576, 1024\)/],
  ["missing tensor", () => mutated("missing", (h) => delete h["mid.1.ffn.fc1.weight"]), /1 tensor the config needs is missing: mid\.1\.ffn\.fc1\.weight/],
  ["extra tensor", () => mutated("extra", (h) => (h["mid.9.extra"] = { dtype: "F32", shape: [0], data_offsets: [0, 0] })), /1 stored tensor is not a parameter of the model its config describes: mid\.9\.extra/],
  ["wrong shape", () => mutated("shape", (h) => ((h["upsample.weight"].shape = [128, 512]))), /"upsample\.weight" \(in .*\) has shape \(128, 512\), the config needs \(512, 128\)/],
  ["unsupported dtype", () => mutated("dtype", (h) => (h["upsample.bias"].dtype = "I32")), /"upsample\.bias" \(in .*\) has dtype I32; ditc reads F32, F16 and BF16/],
  ["unknown dtype", () => mutated("dtype2", (h) => (h["upsample.bias"].dtype = "F128")), /unknown dtype "F128"/],
  ["invalid config", () => mutated("cfg", (h) => setConfig(h, { ...config(h), heads: 3 })), /config field "kvHeads" \(2\) must divide heads \(3\)/],
  ["config not JSON", () => mutated("cfgjson", (h) => (h.__metadata__.config = "{heads:")), /the config is not valid JSON/],
  ["config missing", () => mutated("nocfg", (h) => delete h.__metadata__), /no __metadata__\.config/],
  ["file does not exist", () => join(dir, "nope.safetensors"), /does not exist/],
];

describe("malformed checkpoints: exit 2, one paragraph naming the problem, no stack trace", () => {
  test.each(malformed)("%s", async (_, make, message) => {
    const r = await ditc("inspect", "--checkpoint", make(), "--json");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stderr.trim().split("\n").length).toBe(1);
    expect(JSON.parse(r.stdout).error.code).toMatch(/^E\d{4}$/);
  });

  test("the real binary exits 2 with the message and no stack trace", () => {
    const r = spawnSync(process.execPath, [BIN, "run", "--checkpoint", malformed[0]![1](), "--width", "0.5"], { encoding: "utf8" });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^ditc: E3003 .*truncated/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

test("a weight that is not finite (in half precision, for palettes): a quantized compile exits 2 naming it, and writes no artifact", async () => {
  const weight = "mid.0.ffn.fc1.weight";
  for (const [bad, what] of [[NaN, /holds NaN/], [1e6, /holds Infinity in half precision \(it holds magnitudes up to 65504\)/]] as const) {
    const ck = mutated(`nonfinite-${bad}`, () => {}, (b) => {
      const n = Number(b.readBigUInt64LE(0)), entry = JSON.parse(b.subarray(8, 8 + n).toString())[weight];
      b.writeFloatLE(bad, 8 + n + entry.data_offsets[0] + 4 * 17);
      return b;
    });
    for (const quantize of ["k4", "mixed", ...(Number.isNaN(bad) ? ["int8"] : [])]) {
      const out = join(dir, `nonfinite-${bad}-${quantize}`);
      const r = await ditc("compile", "--checkpoint", ck, "--target", "onnx", "--quantize", quantize, "--out", out);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`E3014 weight "${weight.replaceAll(".", "\\.")}" ${quantize === "int8" ? "holds NaN in row \\d+" : what.source}, which no quantized form stands for`));
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(existsSync(join(out, "w375", "model.onnx")) || existsSync(join(out, "report.json"))).toBe(false);
    }
  }
});

test("an unquantized compile of such a checkpoint writes it as it is; verify fails it, saying the float reference is not finite", async () => {
  const weight = "mid.0.ffn.fc1.weight";
  const ck = mutated("nonfinite-unquantized", () => {}, (b) => {
    const n = Number(b.readBigUInt64LE(0)), entry = JSON.parse(b.subarray(8, 8 + n).toString())[weight];
    b.writeFloatLE(NaN, 8 + n + entry.data_offsets[0]);
    return b;
  });
  const out = join(dir, "nonfinite-unquantized");
  expect((await ditc("compile", "--checkpoint", ck, "--target", "onnx", "--width", "1", "--out", out)).code).toBe(0);
  const r = await ditc("verify", out);
  expect(r.code).toBe(1);
  expect(r.stdout).toMatch(/FAIL w1000\/model\.onnx ditc: .*\(the float reference itself holds \d+ non-finite of \d+ values: the weights or inputs hold NaN or an infinity\)/);
});

test("a weight past half precision's range: an fp16 compile exits 2 naming it and the value, an fp32 one compiles", async () => {
  const weight = "upsample.weight";
  const ck = mutated("past-fp16", () => {}, (b) => {
    const n = Number(b.readBigUInt64LE(0)), entry = JSON.parse(b.subarray(8, 8 + n).toString())[weight];
    b.writeFloatLE(-1e6, 8 + n + entry.data_offsets[0] + 4 * 5);
    return b;
  });
  for (const [target, precision] of [["coreml", "auto"], ["tflite", "fp16"], ["onnx", "fp16"]]) {
    const out = join(dir, `past-fp16-${target}`);
    const r = await ditc("compile", "--checkpoint", ck, "--target", target, "--precision", precision, "--width", "1", "--out", out);
    expect(r.code, `${target}: ${r.stderr}`).toBe(2);
    expect(r.stderr).toMatch(/E3015 weight "upsample\.weight[^"]*" holds -1000000 \(element \d+\), past half precision's largest value 65504, where it would be an infinity; compile with --precision fp32/);
    expect(existsSync(join(out, "report.json"))).toBe(false);
  }
  const ok = await ditc("compile", "--checkpoint", ck, "--target", "onnx", "--precision", "fp32", "--width", "1", "--out", join(dir, "past-fp16-fp32"));
  expect(ok.code, ok.stderr).toBe(0);
});

describe("commands end to end on micro", () => {
  test("init -> inspect -> inputs -> run, with --json documents", async () => {
    const ck = join(dir, "m.safetensors"), inp = join(dir, "in.safetensors"), out = join(dir, "out.safetensors");
    const init = await ditc("init", "--preset", "micro", "--seed", "3", "--out", ck, "--json");
    expect(init.code).toBe(0);
    expect(JSON.parse(init.stdout).tensors).toBeGreaterThan(100);
    const ins = await ditc("inspect", "--checkpoint", ck, "--width", "0.5", "--json");
    const doc = JSON.parse(ins.stdout);
    expect(Object.keys(doc.params).sort()).toEqual(["0.375", "0.5", "1"]);
    expect(doc.transposes.inBlocks).toBe(0);
    expect(doc.ops.assa_attention).toBe(2);
    expect(doc.maxRank).toBe(4);
    expect(doc.largestTensorBytes).toBeGreaterThan(0);
    expect((await ditc("inputs", "--checkpoint", ck, "--batch", "2", "--seed", "4", "--out", inp)).code).toBe(0);
    const run = await ditc("run", "--checkpoint", ck, "--width", "0.375", "--inputs", inp, "--out", out, "--json");
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).velocity.shape).toEqual([2, 4, 16, 16]);
    expect(existsSync(out)).toBe(true);
    // the preset with the same seed is the same model
    const threads = engineInfo().threads;
    const viaPreset = await ditc("run", "--preset", "micro", "--seed", "3", "--width", "0.375", "--inputs", inp, "--threads", "1", "--json");
    setThreads(threads); // main() set it for this whole process
    expect(JSON.parse(viaPreset.stdout).velocity).toEqual(JSON.parse(run.stdout).velocity);
    // the time comes with what computed it
    expect(JSON.parse(run.stdout)).toMatchObject({ kernels: kernelBuild(), threads });
    expect(JSON.parse(viaPreset.stdout)).toMatchObject({ kernels: kernelBuild(), threads: 1 });
  });

  test("inspect --ir prints the graph; full-preset counts match docs/model.md", async () => {
    const ir = await ditc("inspect", "--preset", "micro", "--ir");
    expect(ir.stdout).toMatch(/^graph\(%0 latent: f32\[1,4,16,16\]/);
    const full = JSON.parse((await ditc("inspect", "--preset", "full", "--json")).stdout);
    expect(full.params).toEqual({ "0.375": 299638240, "0.5": 460581728, "1": 1540825440 });
  });

  test("usage errors exit 2 with a message: unknown flag, preset, width, pipeline, missing model, inputs of the wrong shape", async () => {
    for (const [args, msg] of [
      [["run", "--preset", "micro", "--frobnicate"], /unknown flag --frobnicate/],
      [["compile", "--preset", "micro", "--tagret", "onnx", "--out", dir], /unknown flag --tagret \(did you mean --target\?\)/],
      [["compile", "--preset", "micro", "--target", "onx", "--out", dir], /--target onx is not valid: expected one of coreml, tflite, onnx \(did you mean onnx\?\)/],
      [["run", "--preset", "mcro"], /did you mean micro\?/],
      [["run", "--preset", "micro", "--width", "0.4"], /did you mean 0\.375\?/],
      [["run", "--preset", "huge"], /unknown preset "huge"; choose one of full, mini, micro/],
      [["run", "--preset", "micro", "--width", "2"], /--width 2 is not valid/],
      [["inspect", "--preset", "micro", "--pipeline", "tpu"], /--pipeline tpu is not valid/],
      [["run"], /say which model/],
      // each thread is a worker with its own heap: a runaway count is refused, not started
      [["run", "--preset", "micro", "--threads", "100000"], /--threads 100000 is not valid: expected an integer from 1 to 256/],
      [["run", "--preset", "micro", "--threads", "0"], /--threads 0 is not valid: expected an integer from 1 to 256/],
      [["inspect", "--preset", "micro", "--resolution", "100"], /--resolution 100 is not valid/],
      [["inspect", "--preset", "micro", "--resolution", "72"], /E2004 --resolution 72 \(latent 9x9\) does not fit the model: the latent is not divisible by patch 2/],
      [["inspect", "--preset", "micro", "--resolution", "96"], /its 36 tokens \(6x6\) are not divisible by bnaBlocks 16/],
      [["run", "--preset", "micro", "--inputs", `${GOLDEN}micro-velocity-w500.safetensors`], /input "latent"|latent/],
      [[], /name a command/],
    ] as [string[], RegExp][]) {
      const r = await ditc(...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toMatch(msg);
    }
  });

  test("compile shows a progress bar on a terminal, plain ASCII under NO_COLOR, and never color codes", () => {
    const run = (env: Record<string, string>) =>
      execFileSync("script", ["-qec", `${process.execPath} ${BIN} compile --preset micro --target onnx --width 0.5 --out ${join(dir, "tty")}`, "/dev/null"], { encoding: "utf8", env: { ...process.env, ...env } });
    const fancy = run({ TERM: "xterm" });
    expect(fancy).toMatch(/onnx w0\.5: writing .* \[\u2588+\u2591*\] \d+\/\d+ weights/);
    const plain = run({ TERM: "xterm", NO_COLOR: "1" });
    expect(plain).toMatch(/\[#+-*\] \d+\/\d+ weights/);
    expect(plain).not.toMatch(/\u2588/);
    for (const out of [fancy, plain]) expect(out).not.toMatch(/\x1b\[[0-9;]*m/);
  });

  test("compile without a terminal logs one line per step on stderr; --json keeps stdout to one document", async () => {
    const r = await ditc("compile", "--preset", "micro", "--target", "tflite", "--width", "1", "--out", join(dir, "plain"));
    expect(r.code).toBe(0);
    expect(r.stderr.split("\n").filter((l) => l.startsWith("tflite w1: writing")).length).toBe(1);
    const j = await ditc("compile", "--preset", "micro", "--target", "tflite", "--width", "1", "--out", join(dir, "plain"), "--json");
    expect(JSON.parse(j.stdout).artifacts[0].target).toBe("tflite");
    expect(j.stderr).toBe("");
  });

  test("--version prints package.json's version, the one report.json and the artifacts carry", () => {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
    expect(DITC_VERSION).toBe(pkg.version);
    const r = spawnSync(process.execPath, [BIN, "--version"], { encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  test("--help shows examples", () => {
    const help = execFileSync(process.execPath, [BIN, "run", "--help"], { encoding: "utf8" });
    expect(help).toMatch(/Examples:/);
    expect(help).toMatch(/--precision/);
  });
});
