// The repository needs nothing beside it: no tracked file may point outside it for data or docs.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, test } from "vitest";

const ROOT = new URL("../../", import.meta.url).pathname;
const OUTSIDE = [".." + "/shared", "shared/" + "DESIGN.md", "shared/" + "specs", "shared/" + "golden"];

test("no tracked file refers to a folder outside the repository", () => {
  const files = execFileSync("git", ["ls-files"], { cwd: ROOT, encoding: "utf8" }).split("\n").filter((f) => /\.(ts|js|mjs|md|json|sh|py)$/.test(f) || f === ".ci/run");
  expect(files.length).toBeGreaterThan(50);
  const offenders = files.filter((f) => {
    const text = readFileSync(join(ROOT, f), "utf8");
    return OUTSIDE.some((s) => text.includes(s));
  });
  expect(offenders).toEqual([]);
});

test("the fixtures the tests read are in the repository", () => {
  const tracked = execFileSync("git", ["ls-files", "fixtures"], { cwd: ROOT, encoding: "utf8" });
  for (const f of ["golden/micro-checkpoint.safetensors", "golden/micro-inputs.safetensors", "golden/micro-velocity-w1000.safetensors", "golden/micro-velocity-w500.safetensors", "shapes-micro/model.safetensors", "shapes-micro/vocab.safetensors"])
    expect(tracked).toContain(`fixtures/${f}`);
});
