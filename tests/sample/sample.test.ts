// `ditc sample` on the trained shapes fixture: the float model's latents against an independent
// sampling loop written here from docs/sampling.md alone, the PNG against the latents, a user's
// ONNX decoder, every artifact and runtime against the float model's images, and bad input.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { decode as decodePng } from "fast-png";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { readTensorFile, writeTensorFile } from "../../src/checkpoint/tensors.js";
import { SafetensorsFile } from "../../src/checkpoint/safetensors.js";
import { runGraph } from "../../src/interp/interpreter.js";
import { floatTensor, type FloatTensor } from "../../src/kernels/tensor.js";
import { buildModel } from "../../src/model/build.js";
import { openCheckpoint } from "../../src/model/weights.js";
import { encodeModel, ONNX_DTYPE, ATTR, IR_VERSION, OPSET } from "../../targets/onnx/proto.js";
import { pixelShuffleDecode, psnr } from "../../src/sample/images.js";
import { randomTensor, relErr } from "../helpers.js";

const BIN = new URL("../../bin/ditc.js", import.meta.url).pathname;
const FIX = new URL("../../fixtures/shapes-micro/", import.meta.url).pathname;
const CK = `${FIX}model.safetensors`, VOCAB = `${FIX}vocab.safetensors`;
const dir = mkdtempSync(join(tmpdir(), "ditc-sample-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function ditc(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await promisify(execFile)(process.execPath, [BIN, ...args], { maxBuffer: 1 << 26 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

const PROMPTS = ["circle large left", "square small right", "triangle large top", "cross large center"];
const promptArgs = PROMPTS.flatMap((p) => ["--prompt", p]);

describe("the float model's samples", () => {
  test("match a sampling loop written from docs/sampling.md alone (20 steps, fixed noise) within 1e-4", async () => {
    // the independent loop: context rows looked up by hand, a uniform grid, Euler steps, the IR interpreter as v
    const vocab = SafetensorsFile.open(VOCAB);
    const words = JSON.parse(vocab.metadata.vocab!) as string[];
    const emb = vocab.readFloat("embedding");
    vocab.close();
    const ck = openCheckpoint(CK);
    const { contextTokens: S, contextDim: D, latentChannels: C, latentSize: [H, W] } = ck.config;
    const ctx = new Float32Array(PROMPTS.length * S * D);
    PROMPTS.forEach((p, n) => {
      const ws = p.split(" ");
      for (let s = 0; s < S; s++) ctx.set(emb.subarray(words.indexOf(ws[s] ?? "pad") * D, (words.indexOf(ws[s] ?? "pad") + 1) * D), (n * S + s) * D);
    });
    const noise = randomTensor([PROMPTS.length, C, H, W], 42);
    const g = buildModel(ck, { width: 0.5, batch: PROMPTS.length }).graph;
    const x = noise.data.slice();
    const N = 20;
    for (let i = 0; i < N; i++) {
      const t = 1 - i / N, next = 1 - (i + 1) / N;
      const v = runGraph(g, { latent: floatTensor(noise.shape, x.slice()), timestep: floatTensor([PROMPTS.length], new Float32Array(PROMPTS.length).fill(t)), context: floatTensor([PROMPTS.length, S, D], ctx) }).velocity!.data as Float32Array;
      for (let j = 0; j < x.length; j++) x[j] = x[j]! + (next - t) * v[j]!;
    }
    ck.close();
    writeTensorFile(join(dir, "noise.safetensors"), { noise });
    const out = join(dir, "float");
    const r = await ditc("sample", "--checkpoint", CK, "--width", "0.5", "--vocab", VOCAB, ...promptArgs, "--noise", join(dir, "noise.safetensors"), "--steps", "20", "--out", out, "--json");
    expect(r.code, r.stderr).toBe(0);
    const got = readTensorFile(join(out, "latents.safetensors")).latent!;
    expect(got.shape).toEqual([PROMPTS.length, C, H, W]);
    expect(relErr(got.data, x)).toBeLessThan(1e-4);
    expect(JSON.parse(r.stdout).sample.prompts).toEqual(PROMPTS);
  });

  test("samples.png decodes to the 8-bit pixels the latents give; seeds reproduce a sample alone", async () => {
    const out = join(dir, "seeded");
    const r = await ditc("sample", "--checkpoint", CK, "--vocab", VOCAB, ...promptArgs, "--seed", "7", "--steps", "6", "--out", out);
    expect(r.code, r.stderr).toBe(0);
    const latents = readTensorFile(join(out, "latents.safetensors")).latent!;
    const png = decodePng(readFileSync(join(out, "samples.png")));
    expect([png.channels, png.height, png.width]).toEqual([1, 32, 4 * 32 + 3 * 2]);
    // pixel (y, x) of sample n is latent channel (y % 2)·2 + x % 2 at (y/2, x/2), mapped to a byte
    for (let n = 0; n < PROMPTS.length; n++)
      for (let y = 0; y < 32; y++)
        for (let x = 0; x < 32; x++) {
          const v = latents.data[((n * 4 + (y % 2) * 2 + (x % 2)) * 16 + (y >> 1)) * 16 + (x >> 1)]!;
          const want = Math.min(255, Math.max(0, Math.round((v + 1) * 127.5)));
          expect(png.data[y * png.width + n * 34 + x]).toBe(want);
        }
    const record = JSON.parse(readFileSync(join(out, "sample.json"), "utf8"));
    expect(record.seeds).toEqual([7, 8, 9, 10]);
    // the third sample alone, from its recorded seed, is the same sample
    const alone = join(dir, "alone");
    expect((await ditc("sample", "--checkpoint", CK, "--vocab", VOCAB, "--prompt", PROMPTS[2]!, "--seed", "9", "--steps", "6", "--out", alone)).code).toBe(0);
    const one = readTensorFile(join(alone, "latents.safetensors")).latent!;
    expect(relErr(one.data, latents.data.subarray(2 * 4 * 256, 3 * 4 * 256))).toBeLessThan(1e-5);
  });

  test("a user's ONNX decoder (here a depth-to-space) gives the images the fixture's pixel shuffle gives", async () => {
    const dec = join(dir, "decoder.onnx");
    writeFileSync(dec, tinyDecoder(4, 16, 16));
    const a = join(dir, "dec-a"), b = join(dir, "dec-b");
    expect((await ditc("sample", "--checkpoint", CK, "--vocab", VOCAB, ...promptArgs.slice(0, 4), "--steps", "4", "--decoder", dec, "--out", a)).code).toBe(0);
    expect((await ditc("sample", "--checkpoint", CK, "--vocab", VOCAB, ...promptArgs.slice(0, 4), "--steps", "4", "--decode", "pixel-shuffle:2", "--out", b)).code).toBe(0);
    expect(readFileSync(join(a, "samples.png")).equals(readFileSync(join(b, "samples.png")))).toBe(true);
    const bad = join(dir, "decoder-bad.onnx");
    writeFileSync(bad, tinyDecoder(3, 16, 16));
    const r = await ditc("sample", "--checkpoint", CK, "--vocab", VOCAB, "--prompt", "circle", "--steps", "1", "--decoder", bad, "--out", join(dir, "x"));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/E6003 .*decoder-bad\.onnx: the decoder input "latent" is float32 \(1, 3, 16, 16\); the latents are float32 \(1, 4, 16, 16\)/);
  });
});

describe("bad input exits 2 naming what is wrong", () => {
  const base = ["sample", "--checkpoint", CK, "--out", join(dir, "bad")];
  test.each([
    ["a word not in the vocabulary", [...base, "--vocab", VOCAB, "--prompt", "circle huge left", "--steps", "2"], /E6001 prompt "circle huge left": the word "huge" is not in the vocabulary of .*vocab\.safetensors.*; it has: pad, circle, square, triangle, cross, small, large, left, right, top, bottom, center\./],
    ["a step count below 1", [...base, "--vocab", VOCAB, "--prompt", "circle", "--steps", "0"], /--steps 0 is not valid: expected an integer from 1 to 1000/],
    ["a step count past a training schedule's", [...base, "--vocab", VOCAB, "--prompt", "circle", "--steps", "1000000000"], /--steps 1000000000 is not valid: expected an integer from 1 to 1000/],
    // calibrate keeps every call's inputs: what cannot fit is refused before it samples
    ["a calibration recording past its memory bound", ["calibrate", "--checkpoint", CK, "--vocab", VOCAB, "--prompt", "circle", "--steps", "1000", "--samples", "100000", "--out", join(dir, "cal.safetensors")], /E1003 calibrate would record 100,000,000 velocity calls \(1 context\(s\) × 100000 sample\(s\) × 1000 steps\), [\d.]+ GiB .* more than the 8 GiB it allows; use fewer --steps or --samples\./],
    ["no prompt and no context", [...base, "--steps", "2"], /--prompt .* --vocab .* or --context/],
  ])("%s", async (_what, args, message) => {
    const r = await ditc(...(args as string[]));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  test("a context of the wrong shape", async () => {
    const ctx = join(dir, "ctx.safetensors");
    writeTensorFile(ctx, { context: randomTensor([2, 5, 32], 1) });
    const r = await ditc(...base, "--context", ctx, "--steps", "2");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/E6002 .*ctx\.safetensors: tensor "context" has shape \(2, 5, 32\); the model needs \(N, 8, 32\)/);
  });

  test("noise for another resolution than the artifact was compiled for", async () => {
    const out = join(dir, "c64");
    expect((await ditc("compile", "--checkpoint", CK, "--target", "onnx", "--width", "0.5", "--resolution", "64", "--out", out)).code).toBe(0);
    const noise = join(dir, "noise128.safetensors");
    writeTensorFile(noise, { noise: randomTensor([1, 4, 16, 16], 3) });
    const r = await ditc("sample", join(out, "w500", "model.onnx"), "--vocab", VOCAB, "--prompt", "circle", "--noise", noise, "--steps", "1", "--out", join(dir, "n"));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/E6002 .*noise128\.safetensors: tensor "noise" has shape \(1, 4, 16, 16\), but .*model\.onnx .* takes latents of \(4, 8, 8\): it was compiled for another resolution/);
  });
});

describe("artifacts and runtimes against the float model", () => {
  const out = join(dir, "compiled");
  const float: Record<string, FloatTensor> = {};
  beforeAll(async () => {
    const r = await ditc("compile", "--checkpoint", CK, "--target", "coreml,tflite,onnx", "--width", "0.375,0.5,1", "--out", out);
    expect(r.code, r.stderr).toBe(0);
    for (const [w, tag] of [["0.375", "w375"], ["0.5", "w500"], ["1", "w1000"]]) {
      const o = join(dir, `float-${tag}`);
      expect((await ditc("sample", "--checkpoint", CK, "--width", w, "--vocab", VOCAB, ...promptArgs, "--out", o)).code).toBe(0);
      float[tag] = readTensorFile(join(o, "latents.safetensors")).latent!;
    }
  }, 300_000);

  const cases: [string, string, number][] = [];
  for (const tag of ["w375", "w500", "w1000"]) cases.push([`${tag}/model.onnx`, "onnxruntime", 40], [`${tag}/model.tflite`, "litert", 40], [`${tag}/model.mlpackage`, "ditc", 30]);
  test.each(cases)("%s in %s: image PSNR >= %d dB against the float model", async (artifact, engine, dB) => {
    const o = join(dir, `s-${artifact.replace(/\W/g, "-")}-${engine}`);
    const r = await ditc("sample", join(out, artifact), "--engine", engine, "--vocab", VOCAB, ...promptArgs, "--out", o, "--json");
    expect(r.code, r.stderr).toBe(0);
    const got = pixelShuffleDecode(readTensorFile(join(o, "latents.safetensors")).latent!, 2);
    expect(psnr(got, pixelShuffleDecode(float[artifact.split("/")[0]!]!, 2))).toBeGreaterThanOrEqual(dB);
  }, 120_000);
});

/** A decoder that is only DepthToSpace(2, CRD): latent (1, C, H, W) -> image (1, C/4, 2H, 2W). */
function tinyDecoder(C: number, H: number, W: number): Uint8Array {
  const vi = (name: string, dims: number[]) => ({ name, type: { tensorType: { elemType: ONNX_DTYPE.FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });
  return encodeModel({
    irVersion: IR_VERSION, opsetImport: [{ domain: "", version: OPSET }], producerName: "ditc-test",
    graph: {
      name: "decoder",
      node: [{ input: ["latent"], output: ["image"], opType: "DepthToSpace", name: "d2s", attribute: [{ name: "blocksize", type: ATTR.INT, i: 2 }, { name: "mode", type: ATTR.STRING, s: new TextEncoder().encode("CRD") }] }],
      input: [vi("latent", [1, C, H, W])],
      output: [vi("image", [1, C / 4, 2 * H, 2 * W])],
      initializer: [],
    },
  });
}

test("the README's sample command makes the image the README shows", async () => {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const cmd = /```sh\n(node bin\/ditc\.js sample [^\n]*)\n```/.exec(readme)?.[1];
  expect(cmd).toBeDefined();
  const args = [...cmd!.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!).slice(2);
  const outAt = args.indexOf("--out");
  expect(args[outAt + 1]).toBe("docs/samples");
  args[outAt + 1] = join(dir, "readme");
  const root = new URL("../../", import.meta.url).pathname;
  const r = await promisify(execFile)(process.execPath, [BIN, ...args], { cwd: root });
  expect(r.stdout).toMatch(/8 samples/);
  const shown = decodePng(readFileSync(join(root, "docs/samples/samples.png")));
  const made = decodePng(readFileSync(join(dir, "readme", "samples.png")));
  expect([made.width, made.height]).toEqual([shown.width, shown.height]);
  // the same bytes where the engine's arithmetic is the same; within 40 dB where it is not (FMA)
  let se = 0;
  for (let i = 0; i < made.data.length; i++) se += (made.data[i]! - shown.data[i]!) ** 2;
  expect(se === 0 || 10 * Math.log10((255 * 255) / (se / made.data.length)) >= 40).toBe(true);
});

test("compile with --vocab and prompts puts samples and image PSNR in the report; verify holds every artifact to the threshold", async () => {
  const out = join(dir, "with-samples");
  const r = await ditc("compile", "--checkpoint", CK, "--target", "tflite,onnx", "--width", "0.5", "--quantize", "k8", "--vocab", VOCAB, "--prompt", "circle large left", "--prompt", "cross small top", "--sample-steps", "8", "--out", out, "--json");
  expect(r.code, r.stderr).toBe(0);
  const report = JSON.parse(readFileSync(join(out, "report.json"), "utf8"));
  const s = report.sampling;
  expect(s.prompts).toEqual(["circle large left", "cross small top"]);
  expect(s.thresholds).toEqual({ fp32: 40, fp16: 30 });
  expect(s.results.map((x: { target: string; engine: string }) => `${x.target} ${x.engine}`).sort()).toEqual(["onnx ditc", "onnx onnxruntime", "tflite ditc", "tflite litert"]);
  for (const x of s.results) {
    expect(x.psnr).toBeGreaterThan(20); // k8 of a trained model: close to the float images, not identical
    expect(decodePng(readFileSync(join(out, x.image))).width).toBe(2 * 32 + 2);
  }
  const html = readFileSync(join(out, "report.html"), "utf8");
  expect(html).toContain("<h2>Samples</h2>");
  expect((html.match(/src="data:image\/png;base64,/g) ?? []).length).toBe(5);
  const v = await ditc("verify", out, "--json");
  expect(v.code, v.stderr).toBe(0);
  const images = JSON.parse(v.stdout).results.filter((x: { check?: string }) => x.check === "images");
  expect(images).toHaveLength(4);
  for (const x of images) expect(x.psnr).toBeGreaterThanOrEqual(40);
});

test("sample() in the API: progress per step, and an AbortSignal stops it", async () => {
  const { sample } = await import("../../src/api/index.js");
  const steps: number[] = [];
  const r = await sample({ checkpoint: CK, vocab: VOCAB, prompts: ["square large right"], steps: 5, onProgress: (e) => steps.push(e.done) });
  expect(steps).toEqual([1, 2, 3, 4, 5]);
  expect(r.latents.shape).toEqual([1, 4, 16, 16]);
  expect(r.images.pixels[0]!.length).toBe(32 * 32);
  const controller = new AbortController();
  const run = sample({ checkpoint: CK, vocab: VOCAB, prompts: ["square large right"], steps: 50, signal: controller.signal, onProgress: (e) => e.done === 2 && controller.abort(new Error("stop here")) });
  await expect(run).rejects.toThrow("stop here");
});
