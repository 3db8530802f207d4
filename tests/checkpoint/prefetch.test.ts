// Prefetching a width's tensors on two threads (src/checkpoint/prefetch.ts): the cache then holds
// exactly the bytes the ordinary reads give, each tensor is read once and counted once, and a
// tensor the helper cannot read is read again the ordinary way, with its usual error.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { prefetchInto, type PrefetchItem } from "../../src/checkpoint/prefetch.js";
import { writeSafetensors } from "../../src/checkpoint/safetensors.js";
import { specsForWidth } from "../../src/model/params.js";
import { openCheckpoint, withReadCache } from "../../src/model/weights.js";
import { ditcSync } from "../helpers.js";

const dir = mkdtempSync(join(tmpdir(), "ditc-prefetch-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("prefetch into the read cache", () => {
  const single = join(dir, "micro.safetensors"), shards = join(dir, "shards");
  beforeAll(() => {
    expect(ditcSync("init", "--preset", "micro", "--seed", "3", "--dtype", "f16", "--out", single).code).toBe(0);
    expect(ditcSync("init", "--preset", "micro", "--seed", "3", "--dtype", "f16", "--shard-size", "1800KB", "--out", shards).code).toBe(0);
  });

  for (const [what, path, threads] of [["one file", () => single, 2], ["three shards", () => shards, 2], ["one file, one thread", () => single, 1]] as const)
    test(`${what}: the cache holds the ordinary reads' bytes, each tensor read and counted once`, () => {
      const plain = openCheckpoint(path()), ck = openCheckpoint(path());
      const cached = withReadCache(ck);
      const specs = specsForWidth(ck.config, 1);
      const names = specs.map((s) => s.name);
      const bytes = cached.prefetch([...names, ...names.slice(0, 5)], threads); // repeats are read once
      const stored = names.reduce((s, n) => s + ck.file.entry(n).end - ck.file.entry(n).begin, 0);
      expect(bytes).toBe(stored);
      expect(ck.file.bytesRead).toBe(stored);
      const same = (a: ArrayBufferView | undefined, b: ArrayBufferView | undefined) =>
        a !== undefined && b !== undefined && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
      for (const spec of specs) {
        expect(same(cached.readF16!(spec), plain.readF16!(spec)), spec.name).toBe(true);
        expect(same(cached.read(spec), plain.read(spec)), spec.name).toBe(true);
      }
      expect(ck.file.bytesRead).toBe(stored); // every later read came from the cache
      expect(cached.prefetch(names, threads)).toBe(0);
      cached.close();
      plain.close();
    });
});

describe("a tensor the prefetch cannot read", () => {
  const file = join(dir, "two.safetensors");
  beforeAll(() => {
    const t = (name: string, n: number) => ({ name, dtype: "F32" as const, shape: [n], produce: (emit: (d: Float32Array) => void) => emit(Float32Array.from({ length: n }, (_, i) => i + n)) });
    writeSafetensors(file, [t("a", 300), t("b", 700)]);
  });
  const item = (key: string, path: string, length: number, readAgain: () => Uint8Array): PrefetchItem => {
    let counted = 0;
    return { key, entry: { name: key, dtype: "U8", shape: [length], begin: 0, end: length }, file: path, offset: 0, readAgain, counted: (n) => (counted += n), get count() { return counted; } } as PrefetchItem;
  };

  test("is read again the ordinary way; good ones beside it are prefetched", () => {
    const again = new Uint8Array([1, 2, 3]);
    const cache = new Map<string, Uint8Array>();
    const good = item("good", file, 64, () => new Uint8Array(0));
    const bytes = prefetchInto([item("missing", join(dir, "no-such-file"), 3, () => again), good, item("short", file, 1 << 20, () => again)], cache);
    expect(cache.get("missing")).toBe(again);
    expect(cache.get("short")).toBe(again); // the file ends before the range does
    expect(cache.get("good")!.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect((good as unknown as { count: number }).count).toBe(64);
    expect(bytes).toBe(64 + 3 + 3);
  });

  test("the ordinary read's error is the one raised", () => {
    expect(() => prefetchInto([item("x", join(dir, "no-such-file"), 8, () => { throw new Error("tensor x: the usual diagnostic"); }), item("y", file, 8, () => new Uint8Array(8))], new Map())).toThrow(/the usual diagnostic/);
  });
});
