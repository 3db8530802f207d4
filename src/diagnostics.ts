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
  unknownPreset: d<{ name: string; known: string[] }>("E1001", "usage", (a) => `unknown preset "${a.name}"; choose ${oneOf(a.name, a.known)}.`),
  badOption: d<{ option: string; value: string; expected: string }>("E1002", "usage", (a) => `--${a.option} ${a.value} is not valid: expected ${a.expected}.`),
  usage: d<{ detail: string }>("E1003", "usage", (a) => a.detail),
  // 2xxx config
  configInvalid: d<{ where: string; field: string; problem: string }>("E2001", "input", (a) => `${a.where}: config field "${a.field}" ${a.problem}.`),
  configJson: d<{ where: string; problem: string }>("E2002", "input", (a) => `${a.where}: the config is not valid JSON (${a.problem}); it must be an object with the keys of docs/checkpoints.md.`),
  resolutionInvalid: d<{ resolution: number; latent: string; problem: string }>("E2004", "input", (a) => `--resolution ${a.resolution} (latent ${a.latent}) does not fit the model: ${a.problem}. Pick a resolution that gives an even token grid whose token count the BNA blocks divide.`),
  configMissing: d<{ file: string }>("E2003", "input", (a) => `${a.file}: no config: the safetensors header has no __metadata__.config and there is no config.json beside it, so the model shape is unknown; put the config JSON in one of them (ditc init does) or pass --config FILE.json.`),
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
  checkpointIndex: d<{ file: string; problem: string }>("E3011", "input", (a) => `${a.file}: ${a.problem}.`),
  renameInvalid: d<{ file: string; problem: string }>("E3012", "input", (a) => `${a.file}: ${a.problem}.`),
  checkpointTensors: d<{ file: string; problem: string }>("E3013", "input", (a) => `${a.file}: ${a.problem}.`),
  weightValue: d<{ tensor: string; problem: string }>("E3014", "input", (a) => `weight "${a.tensor}" ${a.problem}, which no quantized form stands for; fix the checkpoint, or compile without --quantize.`),
  weightRange: d<{ tensor: string; value: number; index: number }>("E3015", "input", (a) => `weight "${a.tensor}" holds ${a.value} (element ${a.index}), past half precision's largest value 65504, where it would be an infinity; compile with --precision fp32, or rescale the weight.`),
  outputPath: d<{ path: string; problem: string }>("E3009", "input", (a) => `cannot write ${a.path}: ${a.problem}.`),
  // 4xxx IR
  irInvalid: d<{ where: string; problem: string }>("E4001", "internal", (a) => `${a.where}: ${a.problem}`),
  opType: d<{ node: string; problem: string }>("E4002", "internal", (a) => `${a.node}: ${a.problem}`),
  graphTooLarge: d<{ nodes: number; node: string }>("E4003", "usage", (a) => `the graph being built passed ${a.nodes.toLocaleString("en-US")} ops (adding ${a.node}): the model at this size lowers to more ops than ditc holds in memory, or a device would load; choose a smaller --resolution (or batch).`),
  // 5xxx checks
  // 6xxx sampling
  promptWord: d<{ prompt: string; word: string; vocab: string; words: string[] }>("E6001", "input", (a) => `prompt "${a.prompt}": the word "${a.word}" is not in the vocabulary of ${a.vocab}${closest(a.word, a.words) ? ` (did you mean "${closest(a.word, a.words)}"?)` : ""}; it has: ${a.words.join(", ")}.`),
  samplingInput: d<{ file: string; what: string; problem: string }>("E6002", "input", (a) => `${a.file}: ${a.what} ${a.problem}.`),
  decoderMismatch: d<{ file: string; problem: string }>("E6003", "input", (a) => `${a.file}: the decoder ${a.problem}.`),
  goldenMismatch: d<{ what: string; err: number; tol: number }>("E5001", "check", (a) => `${a.what}: relative error ${a.err.toExponential(2)} exceeds ${a.tol}.`),
  // 7xxx resources
  outOfMemory: d<{ problem: string }>("E7001", "usage", (a) => `out of memory (${a.problem}): the model at this size needs more memory than ditc can allocate here; choose a smaller --resolution or batch, or fewer --threads.`),
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

/**
 * A failed allocation as a diagnostic: JavaScript and WebAssembly report a request larger than
 * they can hold (an array past its maximum length, a buffer or memory the system refused, the
 * engine's 4 GiB) as a RangeError, which is the size of the user's model, not a bug in ditc.
 */
export function allocationFailure(e: unknown, where?: string): DitcError | undefined {
  if (!(e instanceof RangeError) || !/invalid (typed )?array length|array buffer allocation failed|could not allocate memory|out of memory|GiB of working memory/i.test(e.message)) return undefined;
  return fail("outOfMemory", { problem: where ? `${where}: ${e.message}` : e.message });
}

/** Edit distance (insertions, deletions, substitutions, swaps of neighbours), for "did you mean" hints. */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  return d[a.length]![b.length]!;
}

/** The choice closest to `value` when it is close enough to be a typo (numbers: the nearest). */
export function closest(value: string, choices: readonly (string | number)[]): string | undefined {
  if (choices.length && choices.every((c) => typeof c === "number") && Number.isFinite(Number(value)))
    return String([...(choices as number[])].sort((x, y) => Math.abs(x - Number(value)) - Math.abs(y - Number(value)))[0]);
  const scored = choices.map((c) => ({ c: String(c), d: editDistance(value.toLowerCase(), String(c).toLowerCase()) })).sort((x, y) => x.d - y.d);
  const best = scored[0];
  return best && best.d > 0 && best.d <= Math.max(1, Math.floor(best.c.length / 3)) ? best.c : undefined;
}

/** "one of a, b, c" plus a did-you-mean hint, for badOption's `expected`. */
export function oneOf(value: string, choices: readonly (string | number)[]): string {
  const hint = closest(value, choices);
  return `one of ${choices.join(", ")}${hint !== undefined ? ` (did you mean ${hint}?)` : ""}`;
}
