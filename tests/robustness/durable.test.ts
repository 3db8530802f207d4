// Durable writes are opt-in (DITC_FSYNC=1): the fsync happens then, and only then.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, expect, test } from "vitest";
import { settleFile, writeAll, writeFileAtomic } from "../../src/io/atomic.js";

const before = process.env.DITC_FSYNC;
afterEach(() => {
  if (before === undefined) delete process.env.DITC_FSYNC;
  else process.env.DITC_FSYNC = before;
});

test("an output is fsynced before its rename with DITC_FSYNC=1, and not otherwise", () => {
  const dir = mkdtempSync(join(tmpdir(), "ditc-durable-"));
  try {
    // a closed descriptor: fsync on it fails, so whether it was attempted shows
    const fd = openSync(join(dir, "probe"), "w");
    closeSync(fd);
    delete process.env.DITC_FSYNC;
    expect(() => settleFile(fd)).not.toThrow();
    process.env.DITC_FSYNC = "1";
    expect(() => settleFile(fd)).toThrow(/EBADF/);
    for (const durable of ["1", "0"]) {
      process.env.DITC_FSYNC = durable;
      const path = join(dir, `out-${durable}`);
      writeFileAtomic(path, (f) => writeAll(f, Buffer.from(`bytes ${durable}`)));
      expect(readFileSync(path, "utf8")).toBe(`bytes ${durable}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
