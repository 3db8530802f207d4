// Prefetching a width's tensors on two threads (src/checkpoint/prefetch.ts): the cache then holds
// exactly the bytes the ordinary reads give, each tensor is read once and counted once, and a
// tensor the helper cannot read is read again the ordinary way, with its usual error. Reads
// started on the helper alone (compile's next width) are the same bytes once joined, and none
// once cancelled.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { prefetchInto, startPrefetch, type PrefetchItem, type ReadWork } from "../../src/checkpoint/prefetch.js";
import { JOB, jobBoard, startHelper, takeJobs } from "../../src/io/helper-jobs.js";
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

describe("reads started on the helper alone", () => {
  const file = join(dir, "later.safetensors");
  beforeAll(() => expect(ditcSync("init", "--preset", "micro", "--seed", "4", "--dtype", "f16", "--out", file).code).toBe(0));

  test("the helper reads every tensor while this thread waits, before any join", () => {
    const ck = openCheckpoint(file);
    const items = ck.file.prefetchItems(specsForWidth(ck.config, 1).map((s) => s.name));
    const work: ReadWork = { jobs: items.map((it) => ({ file: it.file, offset: it.offset, length: it.entry.end - it.entry.begin, into: new SharedArrayBuffer(it.entry.end - it.entry.begin) })), board: jobBoard(items.length) };
    const helper = startHelper(items.length, 2, { module: "src/checkpoint/prefetch-worker.js", data: work });
    for (let i = 0; i < items.length; i++)
      for (let s = Atomics.load(work.board.states, i); s !== JOB.DONE; s = Atomics.load(work.board.states, i)) {
        expect(s).not.toBe(JOB.FAILED);
        expect(Atomics.wait(work.board.states, i, s, 30_000)).not.toBe("timed-out");
      }
    const finished: boolean[] = [];
    helper.join(() => { throw new Error("no job should be left for this thread"); }, (i, ok) => finished.push(ok), 30_000, () => new Error("timed out"));
    expect(finished).toEqual(items.map(() => true));
    for (const [i, it] of items.entries()) expect(Buffer.from(work.jobs[i]!.into).equals(Buffer.from(it.readAgain()))).toBe(true);
    ck.close();
  });

  test("joined, the cache holds what a prefetch reads; cancelled, nothing, and the tensors are read later", () => {
    const ck = openCheckpoint(file), names = specsForWidth(ck.config, 1).map((s) => s.name);
    const reference = new Map<string, Uint8Array>();
    prefetchInto(ck.file.prefetchItems(names), reference, 1);
    const stored = ck.file.bytesRead;
    const cache = new Map<string, Uint8Array>();
    const cancelled = startPrefetch(ck.file.prefetchItems(names), cache, 2);
    cancelled.cancel();
    expect(cache.size).toBe(0);
    expect(ck.file.bytesRead).toBe(stored); // a cancelled read is not counted
    expect(() => cancelled.join()).toThrow(/once/);
    const pending = startPrefetch(ck.file.prefetchItems(names), cache, 2);
    expect(pending.join()).toBe(stored);
    expect(ck.file.bytesRead).toBe(2 * stored);
    expect([...cache.keys()].sort()).toEqual([...reference.keys()].sort());
    for (const [k, v] of reference) expect(Buffer.from(cache.get(k)!).equals(Buffer.from(v)), k).toBe(true);
    ck.close();
  });

  test("a stopped board gives no job to whoever takes next", () => {
    const board = jobBoard(5);
    const helper = startHelper(5, 1, { module: "src/checkpoint/prefetch-worker.js", data: { board, jobs: [] } });
    helper.stop();
    let taken = 0;
    takeJobs(board, 5, () => taken++);
    expect(taken).toBe(0);
    expect([...board.states]).toEqual([JOB.FREE, JOB.FREE, JOB.FREE, JOB.FREE, JOB.FREE]);
  });
});
