// The shape of a compile's report.json, checked before verify (or anything else) trusts it: the
// file is the user's, and one edited by hand, truncated into other valid JSON or written by
// another tool must end in an error naming its field, not in a crash deep inside verify.
// Only the fields ditc reads back are checked; the rest of the report is for people.
import { isAbsolute, normalize, sep } from "node:path";
import { fail } from "../diagnostics.js";
import { WIDTHS } from "../model/config.js";
import type { CompileReport } from "./compile.js";

type Check = (v: unknown) => boolean;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const str: Check = (v) => typeof v === "string";
const num: Check = (v) => typeof v === "number" && Number.isFinite(v);
const int: Check = (v) => Number.isSafeInteger(v);
const positiveInt: Check = (v) => int(v) && (v as number) > 0;
const bool: Check = (v) => typeof v === "boolean";
const optional = (c: Check): Check => (v) => v === undefined || c(v);
const nullable = (c: Check): Check => (v) => v === null || c(v);
const listOf = (c: Check): Check => (v) => Array.isArray(v) && v.every(c);
const oneOf = (...xs: unknown[]): Check => (v) => xs.includes(v);
const width: Check = (v) => (WIDTHS as readonly unknown[]).includes(v);
const WIDTH: [Check, string] = [width, `one of the widths ${WIDTHS.join(", ")}`];
/** a path inside the report's folder: relative, and not climbing out of it */
const inside: Check = (v) => str(v) && (v as string) !== "" && !isAbsolute(v as string) && !normalize(v as string).split(sep).includes("..");

/** Fields of one object: each check, with what it expects for the message. */
type Shape = Record<string, [Check, string]>;

function checkFields(o: unknown, shape: Shape, where: string, bad: (where: string, expected: string) => never): Record<string, unknown> {
  if (!isObject(o)) bad(where, "an object");
  const r = o as Record<string, unknown>;
  for (const [k, [c, expected]] of Object.entries(shape)) if (!c(r[k])) bad(where ? `${where}.${k}` : k, expected);
  return r;
}

const ARTIFACT: Shape = {
  target: [str, "a target name"],
  width: WIDTH,
  path: [inside, "a path inside the folder"],
  precision: [oneOf("fp32", "fp16"), '"fp32" or "fp16"'],
};

const LAYER: Shape = { name: [str, "a tensor name"], width: WIDTH, bits: [oneOf(4, 8), "4 or 8"] };

const QUANTIZATION: Shape = {
  mode: [oneOf("k4", "k8", "mixed", "int8"), '"k4", "k8", "mixed" or "int8"'],
  lutGroupSize: [int, "an integer"],
  kmeansRevision: [optional(positiveInt), "a positive integer"],
  statistics: [optional(inside), "a path inside the folder"],
  layers: [Array.isArray, "a list of layers"],
};

const TECHNIQUES: Shape = {
  probe: [str, "a probe name"],
  kmeans: [oneOf("plain", "weighted"), '"plain" or "weighted"'],
  biasCorrection: [bool, "true or false"],
  lutGroupSize: [int, "an integer"],
};

const SAMPLING: Shape = {
  prompts: [nullable(listOf(str)), "a list of prompts or null"],
  vocab: [nullable(str), "a path or null"],
  context: [nullable(str), "a path or null"],
  steps: [positiveInt, "a positive integer"],
  shift: [num, "a number"],
  seeds: [nullable(listOf(int)), "a list of integer seeds or null"],
  decode: [str, "a decoder"],
  results: [Array.isArray, "a list of results"],
};

/** `value` (the parsed report.json at `file`) as a CompileReport, or an error naming the first field that is not what ditc wrote. */
export function checkReport(value: unknown, file: string): CompileReport {
  const bad = (where: string, expected: string): never => {
    throw fail("modelInvalid", { file, where: where ? `field ${where}` : "the report", problem: `is not ${expected}; this is not a report ditc compile wrote (recompile the folder)` });
  };
  const r = checkFields(value, {
    model: [isObject, "an object"],
    latentSize: [(v) => Array.isArray(v) && v.length === 2 && v.every(positiveInt), "two positive integers"],
    contextTokens: [positiveInt, "a positive integer"],
    tolerances: [isObject, "an object"],
    artifacts: [Array.isArray, "a list of artifacts"],
  }, "", bad);
  const model = r.model as Record<string, unknown>;
  if ("checkpoint" in model) checkFields(model, { checkpoint: [str, "a path"], rename: [optional(str), "a path"], configFile: [optional(str), "a path"], allowUnused: [optional(bool), "true or false"] }, "model", bad);
  else checkFields(model, { preset: [str, "a preset name"], seed: [int, "an integer"] }, "model", bad);
  const tol = r.tolerances as Record<string, unknown>;
  checkFields(tol.fp32, { maxRelErr: [num, "a number"] }, "tolerances.fp32", bad);
  checkFields(tol.fp16, { relL2: [num, "a number"] }, "tolerances.fp16", bad);
  (r.artifacts as unknown[]).forEach((a, i) => checkFields(a, ARTIFACT, `artifacts[${i}]`, bad));
  if (r.quantization !== undefined) {
    const q = checkFields(r.quantization, QUANTIZATION, "quantization", bad);
    (q.layers as unknown[]).forEach((l, i) => checkFields(l, LAYER, `quantization.layers[${i}]`, bad));
    if (q.techniques !== undefined) checkFields(q.techniques, TECHNIQUES, "quantization.techniques", bad);
  }
  if (r.sampling !== undefined) {
    const s = checkFields(r.sampling, SAMPLING, "sampling", bad);
    checkFields(s.thresholds, { fp32: [num, "a number"], fp16: [num, "a number"] }, "sampling.thresholds", bad);
    if (s.prompts !== null && s.vocab === null) bad("sampling.vocab", "a path (the prompts need their vocabulary)");
    if (s.prompts === null && s.context === null) bad("sampling.context", "a path (there are no prompts)");
    const paths = new Set((r.artifacts as { path: string }[]).map((a) => a.path));
    (s.results as unknown[]).forEach((x, i) => {
      const res = checkFields(x, { path: [str, "a path"], target: [str, "a target name"], width: WIDTH, engine: [str, "an engine name"] }, `sampling.results[${i}]`, bad);
      if (!paths.has(res.path as string)) bad(`sampling.results[${i}].path`, "the path of one of the report's artifacts");
    });
  }
  return value as CompileReport;
}
