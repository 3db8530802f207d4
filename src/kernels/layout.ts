// Kernels that move data without arithmetic: transpose, slice, concat, split, gather, pixel shuffle.
import { floatTensor, numel, stridesOf, type FloatTensor, type Tensor, type TensorData } from "./tensor.js";

export function transpose<T extends Tensor>(x: T, perm: readonly number[]): T {
  // read before the loops: a first call long enough to be optimized inside them (on-stack
  // replacement) would otherwise leave a read after them without feedback, and the cached code
  // would deoptimize there on every later call
  const dtype = x.dtype, rank = x.shape.length;
  const outShape = perm.map((p) => x.shape[p]!);
  const inStrides = stridesOf(x.shape);
  const st = perm.map((p) => inStrides[p]!);
  const n = numel(outShape);
  const X = x.data as Float32Array; // any typed array: only element moves happen here
  const out = new (X.constructor as Float32ArrayConstructor)(n);
  if (rank === 0 || n === 0) return { dtype, shape: outShape, data: n ? X.slice() : out } as unknown as T;
  const last = rank - 1, lastN = outShape[last]!, lastS = st[last]!;
  // the output axis that walks the input's rows: when it is not the innermost output axis, the two
  // make a 2-D transpose per plane, done in tiles so both sides stay in cache
  const rowAxis = st.indexOf(1);
  const tiled = rowAxis >= 0 && rowAxis !== last && lastN >= TILE && outShape[rowAxis]! >= TILE;
  const outerAxes = [...outShape.keys()].filter((d) => d !== last && !(tiled && d === rowAxis));
  const outStrides = stridesOf(outShape);
  const rowsN = tiled ? outShape[rowAxis]! : 1, rowOutS = tiled ? outStrides[rowAxis]! : 0;
  const idx = new Array<number>(rank).fill(0);
  let base = 0, o = 0;
  for (let done = 0; done < n; done += lastN * rowsN) {
    if (tiled) {
      // plane: out[o + r·rowOutS + j] = X[base + r + j·lastS]
      for (let j0 = 0; j0 < lastN; j0 += TILE)
        for (let r0 = 0; r0 < rowsN; r0 += TILE) {
          const j1 = Math.min(lastN, j0 + TILE), r1 = Math.min(rowsN, r0 + TILE);
          for (let r = r0; r < r1; r++) for (let j = j0, p = base + r + j0 * lastS, q = o + r * rowOutS + j0; j < j1; j++, p += lastS) out[q++] = X[p]!;
        }
    } else for (let j = 0, p = base; j < lastN; j++, p += lastS) out[o + j] = X[p]!;
    // odometer over the remaining output axes
    for (let k = outerAxes.length - 1; k >= 0; k--) {
      const d = outerAxes[k]!;
      idx[d]!++;
      base += st[d]!;
      o += outStrides[d]!;
      if (idx[d]! < outShape[d]!) break;
      base -= st[d]! * outShape[d]!;
      o -= outStrides[d]! * outShape[d]!;
      idx[d] = 0;
    }
  }
  return { dtype, shape: outShape, data: out } as unknown as T;
}

/** Side of the square tiles a transposed plane is copied in (32 floats: two cache lines a row). */
const TILE = 32;

/** Static slice: begin and size per axis (step 1). */
export function slice(x: FloatTensor, begin: readonly number[], size: readonly number[]): FloatTensor {
  const rank = x.shape.length;
  const n = numel(size);
  const out = new Float32Array(n);
  if (n === 0) return floatTensor(size, out);
  const inStrides = stridesOf(x.shape);
  const last = rank - 1;
  const lastN = size[last]!;
  const idx = new Array<number>(rank).fill(0);
  let base = 0;
  for (let d = 0; d < rank; d++) base += begin[d]! * inStrides[d]!;
  for (let o = 0; o < n; o += lastN) {
    out.set(x.data.subarray(base, base + lastN), o);
    for (let d = last - 1; d >= 0; d--) {
      idx[d]!++;
      base += inStrides[d]!;
      if (idx[d]! < size[d]!) break;
      base -= inStrides[d]! * size[d]!;
      idx[d] = 0;
    }
  }
  return floatTensor(size, out);
}

export function concat(xs: readonly FloatTensor[], axis: number): FloatTensor {
  const shape = [...xs[0]!.shape];
  shape[axis] = xs.reduce((s, x) => s + x.shape[axis]!, 0);
  const outer = numel(shape.slice(0, axis));
  const inner = numel(shape.slice(axis + 1));
  const out = new Float32Array(numel(shape));
  const rowOut = shape[axis]! * inner;
  let off = 0;
  for (const x of xs) {
    const rowIn = x.shape[axis]! * inner;
    for (let o = 0; o < outer; o++) out.set(x.data.subarray(o * rowIn, (o + 1) * rowIn), o * rowOut + off);
    off += rowIn;
  }
  return floatTensor(shape, out);
}

export function split(x: FloatTensor, axis: number, sizes: readonly number[]): FloatTensor[] {
  const outs: FloatTensor[] = [];
  let start = 0;
  for (const s of sizes) {
    const begin = x.shape.map((_, d) => (d === axis ? start : 0));
    const size = x.shape.map((n, d) => (d === axis ? s : n));
    outs.push(slice(x, begin, size));
    start += s;
  }
  return outs;
}

/** out[..., i, ...] = x[..., indices[i], ...] along `axis`; indices are flattened and must be in range. */
export function gather<T extends Tensor>(x: T, indices: Tensor, axis: number): T {
  const n = x.shape[axis]!;
  const outShape = [...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)];
  const outer = numel(x.shape.slice(0, axis));
  const inner = numel(x.shape.slice(axis + 1));
  const X = x.data as Float32Array; // any typed array: only element moves happen here
  const out = new (X.constructor as Float32ArrayConstructor)(numel(outShape));
  const rows = gatherRows(indices.data, n);
  let o = 0;
  if (inner === 1) {
    // element gathers (channel permutations, palette lookups)
    for (let a = 0, base = 0; a < outer; a++, base += n) for (let j = 0; j < rows.length; j++) out[o++] = X[base + rows[j]!]!;
  } else if (inner <= 16) {
    // short rows (4-bit palette indices decoded in pairs): a subarray per row costs more than its copy
    for (let a = 0; a < outer; a++)
      for (let j = 0; j < rows.length; j++) for (let src = (a * n + rows[j]!) * inner, e = src + inner; src < e; src++) out[o++] = X[src]!;
  } else {
    for (let a = 0; a < outer; a++)
      for (let j = 0; j < rows.length; j++) {
        const src = (a * n + rows[j]!) * inner;
        out.set(X.subarray(src, src + inner), o);
        o += inner;
      }
  }
  return { dtype: x.dtype, shape: outShape, data: out } as unknown as T;
}

/**
 * Gather indices as rows of an axis of size n (negative ones count from its end), checked. Plain
 * loops, one per kind of array: a mapping callback (`Int32Array.from(d, f)`) cost ~100 ns an
 * element, and palettized weights are gathered element by element on every forward.
 */
function gatherRows(data: TensorData, n: number): Int32Array {
  const rows = new Int32Array(data.length);
  const bad = (raw: number | bigint) => new RangeError(`gather index ${raw} out of range for axis of size ${n}`);
  if (data instanceof BigInt64Array) {
    const size = BigInt(n);
    for (let j = 0; j < data.length; j++) {
      const raw = data[j]!, i = raw < 0n ? raw + size : raw;
      if (i < 0n || i >= size) throw bad(raw);
      rows[j] = Number(i);
    }
    return rows;
  }
  for (let j = 0; j < data.length; j++) {
    const raw = data[j]!, i = raw < 0 ? raw + n : raw;
    if (!(i >= 0 && i < n)) throw bad(raw);
    rows[j] = i;
  }
  return rows;
}

/** (B, C·r², H, W) -> (B, C, H·r, W·r); input channel c·r² + i·r + j lands at offset (i, j) of channel c. */
/**
 * (B, C·r², H, W) -> (B, C, H·r, W·r). CRD (PyTorch's PixelShuffle, ONNX DepthToSpace "CRD")
 * reads channel c·r² + i·r + j for offset (i, j); DCR (TensorFlow's depth_to_space) reads
 * channel (i·r + j)·C + c.
 */
export function pixelShuffle(x: FloatTensor, r: number, order: "CRD" | "DCR" = "CRD"): FloatTensor {
  const [B, Cr, H, W] = x.shape as [number, number, number, number];
  const C = Cr / (r * r);
  const out = new Float32Array(x.data.length);
  const Ho = H * r, Wo = W * r;
  for (let b = 0; b < B; b++)
    for (let c = 0; c < C; c++)
      for (let i = 0; i < r; i++)
        for (let j = 0; j < r; j++) {
          const ch = order === "CRD" ? c * r * r + i * r + j : (i * r + j) * C + c;
          const src = ((b * Cr + ch) * H) * W;
          for (let h = 0; h < H; h++) {
            const dst = ((b * C + c) * Ho + h * r + i) * Wo + j;
            for (let w = 0; w < W; w++) out[dst + w * r] = x.data[src + h * W + w]!;
          }
        }
  return floatTensor([B, C, Ho, Wo], out);
}
