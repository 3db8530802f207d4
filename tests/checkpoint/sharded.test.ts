// Real checkpoints: Hugging Face-style shards with an index, config.json beside them, and
// training-code names mapped by a rename table. One file, three shards, and renamed shards with a
// fused qkv compile to the same bytes on every target; every kind of bad index or table is a
// clear error naming the file and the tensor; index files survive fuzzing like every other reader.
import fc from "fast-check";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ditcSync } from "../helpers.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { DitcError } from "../../src/diagnostics.js";
import { SafetensorsFile, writeSafetensors } from "../../src/checkpoint/safetensors.js";
import { openCheckpoint } from "../../src/model/weights.js";

const README = new URL("../../README.md", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "ditc-shards-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ditc = ditcSync;

/** The README's worked rename table (diffusers-style names onto ditc's). */
function readmeRules(): string {
  const md = readFileSync(README, "utf8");
  const json = /```json\n(\[\s*\{"match": "\^transformer[\s\S]*?\])\n```/.exec(md)?.[1];
  if (!json) throw new Error("README has no rename table example");
  return json;
}

/** ditc name -> training-code name, as a diffusers-style training script would save it. */
function diffusersName(n: string): string {
  if (/^w\d+\./.test(n)) return `transformer.${n}`;
  return `transformer.${n}`.replace(/\.cross\./, ".attn2.").replace(/\.attn\.o\./, ".attn.to_out.0.").replace(/\.attn2\.([qkv])\./, ".attn2.to_$1.").replace(/\.attn2\.o\./, ".attn2.to_out.0.");
}

/** Writes `single` again as diffusers-style shards: renamed, q/k/v of self-attention fused into qkv. */
function writeDiffusersShards(single: string, out: string, dtype: "F32" | "F16" = "F32"): void {
  mkdirSync(out, { recursive: true });
  const f = SafetensorsFile.open(single);
  const tensors: { name: string; shape: number[]; data: Float32Array }[] = [];
  const names = f.names();
  for (const n of names) {
    const m = /^(.*)\.attn\.([qkv])\.(weight|bias)$/.exec(n);
    if (m) {
      if (m[2] !== "q") continue;
      const parts = ["q", "k", "v"].map((p) => `${m[1]}.attn.${p}.${m[3]}`);
      const datas = parts.map((p) => f.readFloat(p));
      const shapes = parts.map((p) => f.entry(p).shape);
      const rows = shapes.reduce((s, sh) => s + sh[0]!, 0);
      const joined = new Float32Array(datas.reduce((s, d) => s + d.length, 0));
      let o = 0;
      for (const d of datas) (joined.set(d, o), (o += d.length));
      tensors.push({ name: diffusersName(`${m[1]}.attn.qkv.${m[3]}`), shape: [rows, ...shapes[0]!.slice(1)], data: joined });
      continue;
    }
    tensors.push({ name: diffusersName(n), shape: f.entry(n).shape, data: f.readFloat(n) });
  }
  const config = f.metadata.config!;
  f.close();
  tensors.sort((a, b) => (a.name < b.name ? -1 : 1));
  const third = Math.ceil(tensors.length / 3);
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < 3; s++) {
    const name = `diffusion_pytorch_model-0000${s + 1}-of-00003.safetensors`;
    const part = tensors.slice(s * third, (s + 1) * third);
    writeSafetensors(join(out, name), part.map((t) => ({ name: t.name, dtype, shape: t.shape, produce: (emit) => emit(t.data) })));
    for (const t of part) weightMap[t.name] = name;
  }
  writeFileSync(join(out, "config.json"), config);
  writeFileSync(join(out, "diffusion_pytorch_model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));
}

function artifactBytes(out: string): Map<string, Buffer> {
  const files = (readdirSync(out, { recursive: true }) as string[]).filter((f) => /^w\d+\//.test(f) && statSync(join(out, f)).isFile());
  return new Map(files.sort().map((f) => [f.replace(/\.[0-9a-f]{16}\.data$/, ".data"), readFileSync(join(out, f))]));
}

describe("one file, three shards, renamed shards", () => {
  const single = join(dir, "single.safetensors"), shards = join(dir, "shards"), renamed = join(dir, "renamed"), rules = join(dir, "rules.json");
  beforeAll(() => {
    expect(ditc("init", "--preset", "micro", "--seed", "5", "--out", single).code).toBe(0);
    expect(ditc("init", "--preset", "micro", "--seed", "5", "--shard-size", "1800KB", "--out", shards).code).toBe(0);
    writeDiffusersShards(single, renamed);
    writeFileSync(rules, readmeRules());
  });

  test("init --shard-size writes shards, an index and config.json", () => {
    const files = readdirSync(shards).sort();
    expect(files.filter((f) => f.endsWith(".safetensors"))).toEqual(["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"]);
    expect(files).toContain("config.json");
    const index = JSON.parse(readFileSync(join(shards, "model.safetensors.index.json"), "utf8"));
    expect(Object.keys(index.weight_map)).toHaveLength(247);
  });

  test("compile to byte-identical artifacts on every target", () => {
    const outs = [[single], [shards], [renamed, "--rename", rules]].map((src, i) => {
      const out = join(dir, `out${i}`);
      const r = ditc("compile", "--checkpoint", ...src, "--target", "coreml,tflite,onnx", "--width", "0.5,1", "--quantize", "k4", "--out", out);
      expect(r.code, r.stderr).toBe(0);
      return artifactBytes(out);
    });
    expect(outs[0]!.size).toBeGreaterThan(6);
    for (const other of outs.slice(1)) {
      expect([...other.keys()]).toEqual([...outs[0]!.keys()]);
      for (const [f, b] of outs[0]!) expect(other.get(f)!.equals(b), f).toBe(true);
    }
  });

  test("an f16 checkpoint (its stored patterns go straight to k-means) compiles to the bytes of its float32 copy, whole, renamed and fused, at one width or two", () => {
    const f16 = join(dir, "single-f16.safetensors"), f32 = join(dir, "f16-as-f32.safetensors"), renamedF16 = join(dir, "renamed-f16");
    expect(ditc("init", "--preset", "micro", "--seed", "6", "--dtype", "f16", "--out", f16).code).toBe(0);
    const f = SafetensorsFile.open(f16);
    writeSafetensors(f32, f.names().map((n) => ({ name: n, dtype: "F32", shape: f.entry(n).shape, produce: (emit) => emit(f.readFloat(n)) })), f.metadata);
    f.close();
    writeDiffusersShards(f16, renamedF16, "F16");
    for (const widths of ["0.5,1", "1"]) {
      const outs = [[f32], [f16], [renamedF16, "--rename", rules]].map((src, i) => {
        const out = join(dir, `f16-${widths}-${i}`);
        const r = ditc("compile", "--checkpoint", ...src, "--target", "coreml,tflite,onnx", "--width", widths, "--quantize", "k4", "--out", out);
        expect(r.code, r.stderr).toBe(0);
        return artifactBytes(out);
      });
      for (const other of outs.slice(1)) {
        expect([...other.keys()]).toEqual([...outs[0]!.keys()]);
        for (const [file, b] of outs[0]!) expect(other.get(file)!.equals(b), `${widths} ${file}`).toBe(true);
      }
    }
  });

  test("verify reopens a renamed checkpoint with the rename table and --config file the compile used", () => {
    const cfg = join(dir, "elsewhere-config.json");
    cpSync(join(shards, "config.json"), cfg);
    const out = join(dir, "out-config");
    const r = ditc("compile", "--checkpoint", renamed, "--rename", rules, "--config", cfg, "--target", "onnx", "--width", "1", "--out", out);
    expect(r.code, r.stderr).toBe(0);
    const model = JSON.parse(readFileSync(join(out, "report.json"), "utf8")).model;
    expect(model).toMatchObject({ rename: rules, configFile: cfg, config: { hidden: 128 } });
    const v = ditc("verify", out, "--json");
    expect(v.code, v.stderr).toBe(0);
    expect(JSON.parse(v.stdout).results.every((x: { pass: boolean }) => x.pass)).toBe(true);
  });

  test("inspect lists what maps, what is unmapped, what is missing, and the per-width parameters", () => {
    const ok = JSON.parse(ditc("inspect", "--checkpoint", renamed, "--rename", rules, "--json").stdout);
    expect(ok.checkpoint.mapped).toBe(247);
    expect(ok.checkpoint.files).toHaveLength(3);
    expect(ok.params["1"]).toBe(1113688);
    const raw = ditc("inspect", "--checkpoint", renamed, "--json");
    expect(raw.code).toBe(2);
    const m = JSON.parse(raw.stdout).checkpoint;
    expect(m.unmapped).toContain("transformer.down.0.attn.qkv.weight");
    expect(m.missing).toContain("down.0.attn.q.weight");
    expect(m.params["0.5"]).toBe(313432);
  });

  test("the API takes a folder, an index and a rename table", () => {
    const ck = openCheckpoint(renamed, { rename: rules });
    expect(ck.file.files).toHaveLength(3);
    expect(ck.read({ name: "mid.1.attn.k.weight" } as never).length).toBeGreaterThan(0);
    ck.close();
  });
});

describe("bad input: exit 2, naming the file and the tensor", () => {
  const base = join(dir, "bad-base");
  beforeAll(() => {
    expect(ditc("init", "--preset", "micro", "--shard-size", "1800KB", "--out", base).code).toBe(0);
  });
  /** A copy of the sharded checkpoint with `change` applied to it. */
  const variant = (name: string, change: (d: string, index: { weight_map: Record<string, string> }) => void): string => {
    const d = join(dir, name);
    cpSync(base, d, { recursive: true });
    const path = join(d, "model.safetensors.index.json");
    const index = JSON.parse(readFileSync(path, "utf8"));
    change(d, index);
    writeFileSync(path, JSON.stringify(index));
    return d;
  };
  const first = (idx: { weight_map: Record<string, string> }) => Object.keys(idx.weight_map).sort()[0]!;

  test.each([
    ["a shard is missing", (d: string) => rmSync(join(d, "model-00002-of-00003.safetensors")), /E3001 .*model-00002-of-00003\.safetensors: cannot read the file \(it does not exist\)|E3011 .*names shard "model-00002-of-00003\.safetensors", which does not exist/],
    ["a shard outside the index's folder", (_d: string, i: { weight_map: Record<string, string> }) => (i.weight_map[first(i)] = "../elsewhere.safetensors"), /E3011 .*index\.json: names shard "\.\.\/elsewhere\.safetensors", which leaves the index's folder/],
    ["a shard that is a symbolic link out of the folder", (d: string, i: { weight_map: Record<string, string> }) => {
      symlinkSync(join(base, "model-00001-of-00003.safetensors"), join(d, "link.safetensors"));
      for (const [t, s] of Object.entries(i.weight_map)) if (s === "model-00001-of-00003.safetensors") i.weight_map[t] = "link.safetensors";
      rmSync(join(d, "model-00001-of-00003.safetensors"));
    }, /E3011 .*names shard "link\.safetensors", which resolves outside the index's folder/],
    ["a tensor in two shards", (d: string) => cpSync(join(d, "model-00001-of-00003.safetensors"), join(d, "model-00002-of-00003.safetensors")), /E3011 .*model-00002-of-00003\.safetensors: holds tensor "[^"]+", which .*model-00001-of-00003\.safetensors holds too|E3011 .*: puts tensor "[^"]+" in "model-00002-of-00003.safetensors", which does not hold it|E3011 .*puts tensor "[^"]+" in "model-00001-of-00003\.safetensors", but it is in "model-00002-of-00003\.safetensors"/],
    ["the index names a tensor its shard lacks", (_d: string, i: { weight_map: Record<string, string> }) => (i.weight_map["down.0.attn.extra.weight"] = "model-00001-of-00003.safetensors"), /E3011 .*index\.json: puts tensor "down\.0\.attn\.extra\.weight" in "model-00001-of-00003\.safetensors", which does not hold it/],
    ["the index misses a tensor a shard holds", (_d: string, i: { weight_map: Record<string, string> }) => delete i.weight_map[first(i)], /E3011 .*model-0000\d-of-00003\.safetensors: holds tensor "[^"]+", which the index .* does not list/],
  ])("%s", (name, change, message) => {
    const d = variant(name.replace(/\W+/g, "-"), change as never);
    const r = ditc("compile", "--checkpoint", d, "--target", "onnx", "--out", join(dir, "x"));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  const rename = (rules: unknown) => {
    const p = join(dir, `rules-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(p, JSON.stringify(rules));
    return p;
  };
  test.each([
    ["a rename that maps two tensors onto one name", [{ match: "^down\\.0\\.attn\\.(q|k)\\.bias$", replace: "down.0.attn.q.bias" }], /E3012 .*rules-.*\.json: maps both "down\.0\.attn\.k\.bias" and "down\.0\.attn\.q\.bias" onto "down\.0\.attn\.q\.bias"/],
    ["a split whose sizes do not add up", [{ match: "^(down\\.0\\.attn)\\.q\\.weight$", split: { axis: 0, into: ["$1.q.weight", "$1.q2.weight"], sizes: [100, 20] } }], /E3012 .*: splits "down\.0\.attn\.q\.weight" along axis 0 into sizes 100 \+ 20 = 120, but that axis has 128/],
    ["an invalid pattern", [{ match: "(", replace: "" }], /E3012 .*: rule 1 has an invalid pattern "\("/],
  ])("%s", (_what, rules, message) => {
    const r = ditc("compile", "--checkpoint", base, "--rename", rename(rules), "--target", "onnx", "--out", join(dir, "x"));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  test("unmapped tensors are listed and refused unless --allow-unused; missing ones are listed", () => {
    const d = variant("extra", (dd, i) => {
      writeSafetensors(join(dd, "extra.safetensors"), [{ name: "ema.decay", dtype: "F32", shape: [1], produce: (e) => e(Float32Array.of(0.999)) }]);
      i.weight_map["ema.decay"] = "extra.safetensors";
    });
    const refused = ditc("compile", "--checkpoint", d, "--target", "onnx", "--out", join(dir, "x"));
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/E3013 .*: 1 stored tensor is not a parameter of the model its config describes: ema\.decay; map it with --rename, or pass --allow-unused/);
    expect(ditc("compile", "--checkpoint", d, "--allow-unused", "--target", "onnx", "--out", join(dir, "ok")).code).toBe(0);
    const missing = ditc("compile", "--checkpoint", d, "--allow-unused", "--rename", rename([{ match: "^mid\\.(\\d)\\.skip\\.", replace: "mid.$1.skip_renamed." }]), "--target", "onnx", "--out", join(dir, "x"));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/E3013 .*: 4 tensors the config needs are missing: mid\.2\.skip\.bias, mid\.2\.skip\.weight, mid\.3\.skip\.bias, mid\.3\.skip\.weight/);
  });

  test("a dtype or shape that differs from the config's", () => {
    const d = variant("shape", (dd, i) => {
      const name = "down.0.ffn.fc1.bias";
      writeSafetensors(join(dd, "patch.safetensors"), [{ name, dtype: "F32", shape: [7], produce: (e) => e(new Float32Array(7)) }]);
      const old = i.weight_map[name]!;
      // drop it from its shard by rewriting that shard without it
      const f = SafetensorsFile.open(join(dd, old));
      const keep = f.names().filter((n) => n !== name).map((n) => ({ name: n, dtype: "F32" as const, shape: f.entry(n).shape, data: f.readFloat(n) }));
      f.close();
      writeSafetensors(join(dd, old), keep.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, produce: (e) => e(t.data) })));
      i.weight_map[name] = "patch.safetensors";
    });
    const r = ditc("compile", "--checkpoint", d, "--target", "onnx", "--out", join(dir, "x"));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/E3013 .*: "down\.0\.ffn\.fc1\.bias" \(in .*patch\.safetensors\) has shape \(7\), the config needs \(256\)/);
  });
});

test("index files survive fuzzing: malformed JSON, huge maps, traversal paths end in a DitcError", () => {
  const base = join(dir, "fuzz-base");
  expect(ditc("init", "--preset", "micro", "--shard-size", "1800KB", "--out", base).code).toBe(0);
  const good = readFileSync(join(base, "model.safetensors.index.json"), "utf8");
  const names = Object.keys(JSON.parse(good).weight_map);
  const mutant = fc.oneof(
    fc.record({ at: fc.nat(good.length - 1), cut: fc.boolean(), text: fc.string({ maxLength: 8 }) }).map(({ at, cut, text }) => (cut ? good.slice(0, at) : good.slice(0, at) + text + good.slice(at + 1))),
    fc.constantFrom("[]", "null", "{}", '{"weight_map": 5}', '{"weight_map": {"a": 7}}', '{"weight_map": {"a": ""}}', '{"metadata": [], "weight_map": {}}'),
    fc.constantFrom("/etc/passwd", "../../x.safetensors", "sub/../../x", "", ".", "..", "a\u0000b").map((shard) => JSON.stringify({ weight_map: Object.fromEntries(names.map((n) => [n, shard])) })),
    fc.integer({ min: 10_000, max: 200_000 }).map((n) => JSON.stringify({ weight_map: Object.fromEntries(Array.from({ length: n }, (_, i) => [`t${i}`, "model-00001-of-00003.safetensors"])) })),
  );
  let cases = 0;
  fc.assert(
    fc.property(mutant, (text) => {
      const d = join(dir, `fuzz-${cases++}`);
      cpSync(base, d, { recursive: true });
      writeFileSync(join(d, "model.safetensors.index.json"), text);
      const t0 = performance.now();
      try {
        openCheckpoint(d).close();
      } catch (e) {
        if (!(e instanceof DitcError)) throw new Error(`not a DitcError: ${(e as Error)?.stack ?? e}`);
      }
      expect(performance.now() - t0).toBeLessThan(10_000);
      rmSync(d, { recursive: true, force: true });
    }),
    { numRuns: 60 },
  );
});



test("the build plugin's cache key covers the index, every shard, config.json and the rename table", async () => {
  const { checkpointFiles } = await import("../../src/plugin/index.js");
  const d = join(dir, "plugin-shards");
  expect(ditc("init", "--preset", "micro", "--shard-size", "1800KB", "--out", d).code).toBe(0);
  const rules = join(dir, "plugin-rules.json");
  writeFileSync(rules, "[]");
  const files = checkpointFiles({ checkpoint: d, rename: rules }).map((f) => f.replace(`${d}/`, ""));
  expect(files.sort()).toEqual(["config.json", "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors", "model.safetensors.index.json", rules].sort());
});
