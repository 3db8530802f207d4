import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { SafetensorsFile } from "../../src/checkpoint/safetensors.js";
import { writeSyntheticCheckpoint } from "../../src/driver/init.js";
import { presetConfig } from "../../src/model/config.js";
import { openCheckpoint } from "../../src/model/weights.js";
import { palettize } from "../../src/quant/kmeans.js";
import { palettizeCheckpoint } from "../../src/quant/palettize-file.js";

const dir = mkdtempSync(join(tmpdir(), "ditc-palfile-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("checkpoint palettization: same clustering as palettize(), byte-identical for 1 and 2 workers", async () => {
  const ck = join(dir, "micro.safetensors");
  writeSyntheticCheckpoint(presetConfig("micro"), 3, ck);
  const bits = (name: string) => (name.includes("ffn") ? 8 : 4) as 4 | 8;
  const a = await palettizeCheckpoint(ck, join(dir, "a.safetensors"), bits, 1);
  const b = await palettizeCheckpoint(ck, join(dir, "b.safetensors"), bits, 2);
  expect(a.tensors).toBe(b.tensors);
  expect(readFileSync(join(dir, "a.safetensors")).equals(readFileSync(join(dir, "b.safetensors")))).toBe(true);
  const out = SafetensorsFile.open(join(dir, "b.safetensors"));
  const src = openCheckpoint(ck);
  for (const name of ["mid.1.ffn.fc1.weight", "down.0.attn.q.weight"]) {
    const want = palettize(src.file.readFloat(name), bits(name));
    const packed = out.readBytes(out.entry(`${name}.indices`));
    const idx = bits(name) === 4 ? Uint8Array.from({ length: want.indices.length }, (_, i) => (packed[i >> 1]! >> ((i & 1) * 4)) & 15) : packed;
    expect([...idx]).toEqual([...want.indices]);
    expect([...out.readFloat(`${name}.lut`)]).toEqual([...want.lut]);
  }
  out.close();
  src.close();
});

test("a weight that cannot be clustered fails the palettizing with its name, and leaves no output file", async () => {
  const { closeSync, existsSync, openSync, writeSync } = await import("node:fs");
  const ck = join(dir, "broken.safetensors");
  writeSyntheticCheckpoint(presetConfig("micro"), 3, ck);
  const name = "down.0.attn.q.weight";
  const f = SafetensorsFile.open(ck);
  const e = f.entry(name);
  f.close();
  expect(e.dtype).toBe("F32");
  const headerBytes = Number(readFileSync(ck).readBigUInt64LE(0));
  const fd = openSync(ck, "r+");
  writeSync(fd, Buffer.from(new Float32Array([Infinity]).buffer), 0, 4, 8 + headerBytes + e.begin + 4 * 17);
  closeSync(fd);
  const broken = SafetensorsFile.open(ck);
  expect(broken.readFloat(name)[17]).toBe(Infinity);
  broken.close();
  const out = join(dir, "broken-out.safetensors");
  await expect(palettizeCheckpoint(ck, out, () => 4, 2)).rejects.toThrow(`tensor "${name}" holds Infinity in half precision`);
  expect(existsSync(out)).toBe(false);
});
