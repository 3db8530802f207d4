// General einsum over explicit equations ("bhqd,bhkd->bhqk"): any number of operands, repeated
// and summed indices, no ellipsis. Written for clarity; attention lowerings use it on small shapes.
import { floatTensor, numel, stridesOf, type FloatTensor } from "./tensor.js";

export interface EinsumSpec {
  inputs: string[];
  output: string;
}

export function parseEinsum(equation: string): EinsumSpec | string {
  const eq = equation.replace(/\s+/g, "");
  const m = /^([a-zA-Z,]+)->([a-zA-Z]*)$/.exec(eq);
  if (!m) return `equation "${equation}" must have the form "ab,bc->ac" (explicit output, letters only)`;
  const inputs = m[1]!.split(",");
  if (inputs.some((s) => s.length === 0)) return `equation "${equation}" has an empty operand`;
  const output = m[2]!;
  if (new Set(output).size !== output.length) return `equation "${equation}" repeats an output index`;
  for (const c of output) if (!inputs.some((s) => s.includes(c))) return `output index "${c}" of "${equation}" appears in no operand`;
  return { inputs, output };
}

/** Sizes of every index letter, or a reason the operand shapes disagree with the spec. */
export function einsumSizes(spec: EinsumSpec, shapes: readonly (readonly number[])[]): Map<string, number> | string {
  if (shapes.length !== spec.inputs.length) return `equation has ${spec.inputs.length} operands, got ${shapes.length}`;
  const sizes = new Map<string, number>();
  for (let t = 0; t < shapes.length; t++) {
    const sub = spec.inputs[t]!, shape = shapes[t]!;
    if (sub.length !== shape.length) return `operand ${t} "${sub}" needs rank ${sub.length}, got rank ${shape.length}`;
    for (let i = 0; i < sub.length; i++) {
      const prev = sizes.get(sub[i]!);
      if (prev !== undefined && prev !== shape[i]) return `index "${sub[i]}" is ${prev} in one place and ${shape[i]} in another`;
      sizes.set(sub[i]!, shape[i]!);
    }
  }
  return sizes;
}

export function einsum(spec: EinsumSpec, xs: readonly FloatTensor[]): FloatTensor {
  const sizes = einsumSizes(spec, xs.map((x) => x.shape));
  if (typeof sizes === "string") throw new Error(`internal: einsum ${sizes}`);
  const letters = [...new Set([...spec.output, ...spec.inputs.join("")])];
  const dims = letters.map((l) => sizes.get(l)!);
  const outShape = [...spec.output].map((l) => sizes.get(l)!);
  const outStrides = stridesOf(outShape);
  // per operand: stride of each letter in it (summing strides handles repeated indices, i.e. diagonals)
  const opStrides = xs.map((x, t) => {
    const st = stridesOf(x.shape);
    return letters.map((l) => [...spec.inputs[t]!].reduce((s, c, i) => (c === l ? s + st[i]! : s), 0));
  });
  const outLetterStride = letters.map((l) => {
    const i = spec.output.indexOf(l);
    return i < 0 ? 0 : outStrides[i]!;
  });
  const out = new Float32Array(numel(outShape));
  const total = numel(dims);
  const idx = new Array<number>(letters.length).fill(0);
  const offs = new Array<number>(xs.length).fill(0);
  let o = 0;
  for (let n = 0; n < total; n++) {
    let p = 1;
    for (let t = 0; t < xs.length; t++) p *= xs[t]!.data[offs[t]!]!;
    out[o] += p;
    for (let d = letters.length - 1; d >= 0; d--) {
      idx[d]!++;
      o += outLetterStride[d]!;
      for (let t = 0; t < xs.length; t++) offs[t]! += opStrides[t]![d]!;
      if (idx[d]! < dims[d]!) break;
      o -= outLetterStride[d]! * dims[d]!;
      for (let t = 0; t < xs.length; t++) offs[t]! -= opStrides[t]![d]! * dims[d]!;
      idx[d] = 0;
    }
  }
  return floatTensor(outShape, out);
}
