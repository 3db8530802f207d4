// The store compile keeps a width's fp16 slices in (src/model/slice-store.ts): slices never
// overlap, a reset hands the same memory to the next width's, a release lets it go; and
// makeWidthSlices, which fills it for a width before the probe.
import fc from "fast-check";
import { expect, test } from "vitest";
import { presetConfig } from "../../src/model/config.js";
import { slicedShape, specsForWidth } from "../../src/model/params.js";
import { SliceStore } from "../../src/model/slice-store.js";
import { synthesize } from "../../src/model/synthetic.js";
import { makeWidthSlices, widthConstant, type WeightSource } from "../../src/model/weights.js";
import { encodeF16 } from "../../src/kernels/fp16.js";
import { asFloat } from "../../src/kernels/tensor.js";

/** Each slice's [start, end) in bytes, with its buffer. */
const extent = (s: Uint16Array) => ({ buffer: s.buffer, start: s.byteOffset, end: s.byteOffset + s.byteLength });

test("slices of any sizes never overlap, start on 64-byte boundaries, and keep what was written to them", () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 4 }), (sizes, widths) => {
      const store = new SliceStore(4096); // small chunks: many slices span the chunk boundary or exceed a chunk
      for (let w = 0; w < widths; w++) {
        const made = sizes.map((n, i) => {
          const s = store.make(`t${i}@${w}`, n);
          s.fill(i + 1);
          return s;
        });
        made.forEach((s, i) => {
          expect(s.length).toBe(sizes[i]);
          expect(s.byteOffset % 64).toBe(0);
          expect(store.get(`t${i}@${w}`)).toBe(s);
          expect(s.every((x) => x === i + 1)).toBe(true); // no later slice wrote over it
        });
        const ext = made.filter((s) => s.length).map(extent);
        for (const a of ext) for (const b of ext) if (a !== b && a.buffer === b.buffer) expect(a.end <= b.start || b.end <= a.start).toBe(true);
        const held = store.bytes;
        store.reset();
        expect(store.size).toBe(0);
        // the same sizes again fit in the memory already held
        sizes.forEach((n, i) => store.make(`again${i}`, n));
        expect(store.bytes).toBe(held);
        store.reset();
      }
    }),
  );
});

test("a reset reuses the memory for the next slices; a release lets it go", () => {
  const store = new SliceStore(1 << 16);
  const a = store.make("a@0.375", 1000);
  store.reset();
  expect(store.get("a@0.375")).toBeUndefined();
  const b = store.make("a@0.5", 2000);
  expect(b.buffer).toBe(a.buffer);
  expect(b.byteOffset).toBe(a.byteOffset);
  store.release();
  expect(store.bytes).toBe(0);
  expect(store.make("a@0.5", 10).buffer).not.toBe(a.buffer);
});

test("makeWidthSlices makes each fp16 slice of a width once, up front; the width's constants then load those very slices", () => {
  const cfg = presetConfig("mini");
  const stored = new Map<string, Uint16Array>();
  const src: WeightSource = {
    config: cfg,
    origin: "test",
    read: (spec) => synthesize(spec, 1),
    readF16: (spec) => stored.get(spec.name) ?? stored.set(spec.name, encodeF16(synthesize(spec, 1))).get(spec.name)!,
    slices: new SliceStore(),
  };
  const sliced = specsForWidth(cfg, 0.5).filter((s) => s.width === undefined && s.slice && slicedShape(s, cfg, 0.5).some((d, i) => d !== s.shape[i]));
  expect(sliced.length).toBeGreaterThan(10);
  expect(makeWidthSlices(src, 0.5)).toBe(sliced.length);
  expect(makeWidthSlices(src, 0.5)).toBe(0); // all there already
  const held = src.slices!.bytes;
  for (const spec of sliced) {
    const c = widthConstant(src, spec, 0.5);
    expect(asFloat(c.load()).half!).toBe(src.slices!.get(`${spec.name}@0.5`));
    expect(c.load().data).toEqual(widthConstant({ ...src, slices: undefined }, spec, 0.5).load().data);
  }
  expect(src.slices!.size).toBe(sliced.length); // nothing sliced again
  expect(src.slices!.bytes).toBe(held);
  expect(makeWidthSlices(src, 1)).toBe(0); // width 1 slices nothing
  expect(makeWidthSlices({ ...src, slices: undefined }, 0.5)).toBe(0);
});
