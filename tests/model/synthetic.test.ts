// The batched synthetic draws (Rng.fillNormal, fillHeavyTailed) against one draw call per value
// (synthesizeScalar): the same bits for every init kind, heavy-tailed or not, any length (odd ones
// leave a spare), and after a spare left by an earlier draw.
import fc from "fast-check";
import { expect, test } from "vitest";
import { Rng, synthesize, synthesizeScalar } from "../../src/model/synthetic.js";
import { paramSpecs, type ParamSpec } from "../../src/model/params.js";
import { presetConfig } from "../../src/model/config.js";

/** Whether two arrays hold the same bits (Buffer.compare: toEqual walks millions of elements slowly). */
const sameBits = (a: Float32Array, b: Float32Array) => a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
const INITS = ["weight", "bias", "modulation", "norm_weight", "norm_bias"] as const;

test("batched draws equal one call per value, for every init kind and length", () =>
  fc.assert(
    fc.property(
      fc.constantFrom(...INITS),
      // ".attn.o.weight" is always heavy-tailed; other weights are by a hash of the name
      fc.constantFrom("blocks.0.attn.q.weight", "blocks.3.attn.o.weight", "x.fc", "blocks.1.ffn.fc1.weight", "b.y"),
      fc.integer({ min: 0, max: 3000 }),
      fc.integer({ min: 0, max: 2 ** 31 }),
      fc.integer({ min: 1, max: 64 }),
      (init, name, n, seed, fanIn) => {
        const spec: ParamSpec = { name, shape: [n], init, fanIn };
        expect(sameBits(synthesize(spec, seed), synthesizeScalar(spec, seed))).toBe(true);
      },
    ),
    { numRuns: 200 },
  ));

test("a long tensor of odd length (a spare left at its end) equals the per-value draws", () => {
  for (const name of ["blocks.0.attn.q.weight", "blocks.0.attn.o.weight"]) {
    const spec: ParamSpec = { name, shape: [(1 << 20) + 3], init: "weight", fanIn: 256 };
    expect(sameBits(synthesize(spec, 7), synthesizeScalar(spec, 7))).toBe(true);
  }
});

test("a spare pending from an earlier draw goes first, as one call per value takes it", () =>
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 31 }), fc.integer({ min: 0, max: 41 }), fc.boolean(), (seed, n, heavy) => {
      const a = new Rng(seed), b = new Rng(seed);
      a.normal(), b.normal(); // each now holds a spare
      const batch = new Float32Array(n);
      if (heavy) a.fillHeavyTailed(batch, 0.5);
      else a.fillNormal(batch, 0.5, 1);
      const one = Float32Array.from({ length: n }, () => (heavy ? 0.5 * b.heavyTailed() : 1 + 0.5 * b.normal()));
      expect(sameBits(batch, one)).toBe(true);
      // and the generators are left in the same state
      expect(a.normal()).toBe(b.normal());
    }),
  ));

test("the mini preset's weights are those of the per-value draws", () => {
  for (const spec of paramSpecs(presetConfig("mini"))) expect(sameBits(synthesize(spec, 3), synthesizeScalar(spec, 3)), spec.name).toBe(true);
});
