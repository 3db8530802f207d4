// From final latents to 8-bit images and back to numbers: the fixtures' pixel-shuffle decoding,
// a user's ONNX decoder, the PNG grid (fast-png) and image PSNR (docs/sampling.md).
import { decode as decodePng, encode as encodePng } from "fast-png";
import { fail } from "../diagnostics.js";
import { floatTensor, type FloatTensor } from "../kernels/tensor.js";
import { loadOrt } from "../../targets/onnx/ort.js";

/** N images of the same size, 8 bits per channel, channels interleaved (gray or RGB). */
export interface Images {
  count: number;
  width: number;
  height: number;
  channels: 1 | 3;
  /** one per image, height · width · channels bytes, row-major */
  pixels: Uint8Array[];
}

/** A decoder's value v in [-1, 1] → byte clamp(round((v + 1) · 127.5), 0, 255). */
export function toByte(v: number): number {
  const b = Math.round((v + 1) * 127.5);
  return b < 0 ? 0 : b > 255 ? 255 : Number.isNaN(b) ? 0 : b;
}

/** (N, k, H, W) values in [-1, 1] → images (k = 1 or 3 channels). */
export function imagesFromValues(t: FloatTensor, what: string): Images {
  const [N, k, H, W] = t.shape as [number, number, number, number];
  if (t.shape.length !== 4 || (k !== 1 && k !== 3)) throw fail("decoderMismatch", { file: what, problem: `returns shape (${t.shape.join(", ")}); images must be (N, 1 or 3, H, W)` });
  const pixels = Array.from({ length: N }, (_, n) => {
    const out = new Uint8Array(H * W * k);
    for (let c = 0; c < k; c++)
      for (let p = 0; p < H * W; p++) out[p * k + c] = toByte(t.data[((n * k + c) * H * W) + p]!);
    return out;
  });
  return { count: N, width: W, height: H, channels: k as 1 | 3, pixels };
}

/**
 * The fixtures' lossless decoder: pixel shuffle by r. Latent channel c·r² + dy·r + dx holds image
 * channel c at pixel (r·y + dy, r·x + dx); latent channels must be r² (gray) or 3r² (RGB).
 */
export function pixelShuffleDecode(latent: FloatTensor, r: number): Images {
  const [N, C, H, W] = latent.shape as [number, number, number, number];
  const k = C / (r * r);
  if (!Number.isInteger(r) || r < 1 || (k !== 1 && k !== 3))
    throw fail("badOption", { option: "decode", value: `pixel-shuffle:${r}`, expected: `a factor r with latent channels (${C}) = r² or 3r²` });
  const out = new Float32Array(N * k * H * r * W * r);
  const Ho = H * r, Wo = W * r;
  for (let n = 0; n < N; n++)
    for (let c = 0; c < k; c++)
      for (let dy = 0; dy < r; dy++)
        for (let dx = 0; dx < r; dx++) {
          const src = (n * C + c * r * r + dy * r + dx) * H * W;
          for (let y = 0; y < H; y++)
            for (let x = 0; x < W; x++) out[((n * k + c) * Ho + r * y + dy) * Wo + r * x + dx] = latent.data[src + y * W + x]!;
        }
  return imagesFromValues(floatTensor([N, k, Ho, Wo], out), `pixel-shuffle:${r}`);
}

/**
 * A user's VAE decoder in ONNX, run by onnxruntime-node: its first input takes the latents
 * (N, C, H, W) float32 (a symbolic or matching batch), its first output gives images (N, 1 or 3,
 * H', W') with values in [-1, 1].
 */
export async function onnxDecode(path: string, latent: FloatTensor): Promise<Images> {
  const ort = loadOrt();
  let session: Awaited<ReturnType<typeof ort.InferenceSession.create>>;
  try {
    session = await ort.InferenceSession.create(path, { intraOpNumThreads: 2, logSeverityLevel: 3 });
  } catch (e) {
    throw fail("decoderMismatch", { file: path, problem: `cannot be loaded by onnxruntime (${(e as Error).message.split("\n")[0]})` });
  }
  try {
    const input = session.inputMetadata[0];
    if (!input || !input.isTensor) throw fail("decoderMismatch", { file: path, problem: "has no tensor input" });
    const shape = input.shape;
    const want = latent.shape;
    const fits = input.type === "float32" && shape.length === 4 && shape.every((d, i) => typeof d !== "number" || d === want[i] || (i === 0 && d === 1));
    if (!fits) throw fail("decoderMismatch", { file: path, problem: `input "${input.name}" is ${input.type} (${shape.join(", ")}); the latents are float32 (${want.join(", ")})` });
    const perSample = shape[0] === 1 && want[0] !== 1;
    const [N, C, H, W] = want as [number, number, number, number];
    const parts: FloatTensor[] = [];
    for (const [from, count] of perSample ? Array.from({ length: N }, (_, n) => [n, 1] as const) : [[0, N] as const]) {
      const data = latent.data.subarray(from * C * H * W, (from + count) * C * H * W);
      const out = await session.run({ [input.name]: new ort.Tensor("float32", Float32Array.from(data), [count, C, H, W]) });
      const first = out[session.outputNames[0]!]!;
      parts.push(floatTensor(first.dims as number[], Float32Array.from(first.data as Float32Array)));
    }
    const dims = parts[0]!.shape;
    const joined = new Float32Array(parts.reduce((s, p) => s + p.data.length, 0));
    let o = 0;
    for (const p of parts) (joined.set(p.data, o), (o += p.data.length));
    return imagesFromValues(floatTensor([N, ...dims.slice(1)], joined), path);
  } finally {
    await session.release();
  }
}

/** PSNR in dB of 8-bit images against a reference (all images pooled); 100 when identical. */
export function psnr(a: Images, ref: Images): number {
  if (a.count !== ref.count || a.width !== ref.width || a.height !== ref.height || a.channels !== ref.channels) throw new Error("internal: PSNR of images of different sizes");
  let se = 0, n = 0;
  for (let i = 0; i < a.count; i++) {
    const x = a.pixels[i]!, y = ref.pixels[i]!;
    for (let p = 0; p < x.length; p++) se += (x[p]! - y[p]!) ** 2;
    n += x.length;
  }
  if (se === 0) return 100;
  return Math.min(100, 10 * Math.log10((255 * 255) / (se / n)));
}

const GAP = 2;

/** The images side by side, `columns` per row, 2-pixel white gaps, as a PNG. */
export function gridPng(im: Images, columns = Math.min(im.count, 8)): Uint8Array {
  const rows = Math.ceil(im.count / columns);
  const W = columns * im.width + (columns - 1) * GAP, H = rows * im.height + (rows - 1) * GAP;
  const k = im.channels;
  const data = new Uint8Array(W * H * k).fill(255);
  im.pixels.forEach((px, i) => {
    const x0 = (i % columns) * (im.width + GAP), y0 = Math.floor(i / columns) * (im.height + GAP);
    for (let y = 0; y < im.height; y++) data.set(px.subarray(y * im.width * k, (y + 1) * im.width * k), ((y0 + y) * W + x0) * k);
  });
  return encodePng({ width: W, height: H, data, channels: k, depth: 8 });
}

/** Cuts a grid PNG made by gridPng back into its images. */
export function imagesFromGrid(png: Uint8Array, count: number, width: number, height: number, columns = Math.min(count, 8)): Images {
  const d = decodePng(png);
  const k = d.channels as 1 | 3;
  const W = d.width;
  const pixels = Array.from({ length: count }, (_, i) => {
    const x0 = (i % columns) * (width + GAP), y0 = Math.floor(i / columns) * (height + GAP);
    const out = new Uint8Array(width * height * k);
    for (let y = 0; y < height; y++) out.set((d.data as Uint8Array).subarray(((y0 + y) * W + x0) * k, ((y0 + y) * W + x0 + width) * k), y * width * k);
    return out;
  });
  return { count, width, height, channels: k, pixels };
}
