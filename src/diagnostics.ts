// Diagnostics are data: every user-facing error has a unique code, a category (which sets the
// exit code: 2 for bad input or usage, 1 for a failed check) and a message template. Code refers
// to entries by key; tests check the codes are unique.

export type Category = "input" | "usage" | "check" | "internal";

interface DiagnosticSpec<A> {
  readonly code: string;
  readonly category: Category;
  readonly message: (args: A) => string;
}

const d = <A>(code: string, category: Category, message: (args: A) => string): DiagnosticSpec<A> => ({ code, category, message });

export const DIAGNOSTICS = {
  // 1xxx usage
  unknownPreset: d<{ name: string; known: string[] }>("E1001", "usage", (a) => `unknown preset "${a.name}"; choose one of ${a.known.join(", ")}.`),
  badOption: d<{ option: string; value: string; expected: string }>("E1002", "usage", (a) => `--${a.option} ${a.value} is not valid: expected ${a.expected}.`),
  usage: d<{ detail: string }>("E1003", "usage", (a) => a.detail),
  // 2xxx config
  configInvalid: d<{ where: string; field: string; problem: string }>("E2001", "input", (a) => `${a.where}: config field "${a.field}" ${a.problem}.`),
  configJson: d<{ where: string; problem: string }>("E2002", "input", (a) => `${a.where}: the config is not valid JSON (${a.problem}); it must be an object with the keys of DESIGN §3.`),
  resolutionInvalid: d<{ resolution: number; latent: string; problem: string }>("E2004", "input", (a) => `--resolution ${a.resolution} (latent ${a.latent}) does not fit the model: ${a.problem}. Pick a resolution that gives an even token grid whose token count the BNA blocks divide.`),
  configMissing: d<{ file: string }>("E2003", "input", (a) => `${a.file}: the safetensors header has no __metadata__.config, so the model shape is unknown; write the config JSON there (ditc init does).`),
  // 3xxx files
  fileUnreadable: d<{ file: string; problem: string }>("E3001", "input", (a) => `${a.file}: cannot read the file (${a.problem}).`),
  safetensorsHeader: d<{ file: string; problem: string }>("E3002", "input", (a) => `${a.file}: not a valid safetensors file: ${a.problem}.`),
  tensorEntry: d<{ file: string; tensor: string; problem: string }>("E3003", "input", (a) => `${a.file}: tensor "${a.tensor}" ${a.problem}.`),
  tensorMissing: d<{ file: string; tensor: string; shape: string }>("E3004", "input", (a) => `${a.file}: tensor "${a.tensor}" with shape ${a.shape} is missing; the config says the checkpoint must contain it.`),
  tensorUnexpected: d<{ file: string; tensor: string }>("E3005", "input", (a) => `${a.file}: tensor "${a.tensor}" is not a parameter of the model its config describes; remove it or fix the config.`),
  tensorShape: d<{ file: string; tensor: string; expected: string; found: string }>("E3006", "input", (a) => `${a.file}: tensor "${a.tensor}" has shape ${a.found}, the config needs ${a.expected}.`),
  tensorDtype: d<{ file: string; tensor: string; dtype: string }>("E3007", "input", (a) => `${a.file}: tensor "${a.tensor}" has dtype ${a.dtype}; ditc reads F32, F16 and BF16.`),
  inputTensor: d<{ file: string; tensor: string; problem: string }>("E3008", "input", (a) => `${a.file}: input "${a.tensor}" ${a.problem}.`),
  modelInvalid: d<{ file: string; where: string; problem: string }>("E3010", "input", (a) => `${a.file}: ${a.where} ${a.problem}.`),
  outputPath: d<{ path: string; problem: string }>("E3009", "input", (a) => `cannot write ${a.path}: ${a.problem}.`),
  // 4xxx IR
  irInvalid: d<{ where: string; problem: string }>("E4001", "internal", (a) => `${a.where}: ${a.problem}`),
  opType: d<{ node: string; problem: string }>("E4002", "internal", (a) => `${a.node}: ${a.problem}`),
  // 5xxx checks
  goldenMismatch: d<{ what: string; err: number; tol: number }>("E5001", "check", (a) => `${a.what}: relative error ${a.err.toExponential(2)} exceeds ${a.tol}.`),
} as const;

export type DiagnosticKey = keyof typeof DIAGNOSTICS;
type ArgsOf<K extends DiagnosticKey> = (typeof DIAGNOSTICS)[K] extends DiagnosticSpec<infer A> ? A : never;

export const EXIT_CODE: Record<Category, number> = { input: 2, usage: 2, check: 1, internal: 70 };

export class DitcError extends Error {
  constructor(
    readonly key: DiagnosticKey,
    readonly code: string,
    readonly category: Category,
    message: string,
  ) {
    super(message);
    this.name = "DitcError";
  }
  get exitCode(): number {
    return EXIT_CODE[this.category];
  }
}

export function fail<K extends DiagnosticKey>(key: K, args: ArgsOf<K>): DitcError {
  const spec = DIAGNOSTICS[key] as DiagnosticSpec<ArgsOf<K>>;
  return new DitcError(key, spec.code, spec.category, `${spec.code} ${spec.message(args)}`);
}
