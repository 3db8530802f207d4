// Prompt → context for models whose text side is an embedding table (the fixtures): each word's
// row of `embedding` (V, Dctx), padded with row 0 to the model's context length (docs/sampling.md).
// Real models bring their own text encoder's output as a context file.
import { fail } from "../diagnostics.js";
import { FLOAT_DTYPES, SafetensorsFile } from "../checkpoint/safetensors.js";
import { floatTensor, type FloatTensor } from "../kernels/tensor.js";

export interface Vocab {
  path: string;
  words: string[];
  /** (V, Dctx) */
  embedding: FloatTensor;
}

export function loadVocab(path: string): Vocab {
  const f = SafetensorsFile.open(path);
  try {
    const raw = f.metadata.vocab;
    if (raw === undefined) throw fail("samplingInput", { file: path, what: "__metadata__", problem: `has no "vocab" (the JSON list of words, one per row of "embedding")` });
    let words: unknown;
    try {
      words = JSON.parse(raw);
    } catch (e) {
      throw fail("samplingInput", { file: path, what: "__metadata__.vocab", problem: `is not JSON (${(e as Error).message})` });
    }
    if (!Array.isArray(words) || !words.every((w) => typeof w === "string") || words.length === 0)
      throw fail("samplingInput", { file: path, what: "__metadata__.vocab", problem: "must be a non-empty JSON array of words" });
    const e = f.entries.get("embedding");
    if (!e) throw fail("samplingInput", { file: path, what: "tensor \"embedding\"", problem: "is missing (it must be (V, Dctx), one row per word)" });
    if (!FLOAT_DTYPES.includes(e.dtype)) throw fail("tensorDtype", { file: path, tensor: "embedding", dtype: e.dtype });
    if (e.shape.length !== 2 || e.shape[0] !== words.length)
      throw fail("samplingInput", { file: path, what: "tensor \"embedding\"", problem: `has shape (${e.shape.join(", ")}), the vocabulary has ${words.length} words so it must be (${words.length}, Dctx)` });
    return { path, words: words as string[], embedding: floatTensor(e.shape, f.readFloat("embedding")) };
  } finally {
    f.close();
  }
}

/** Context (N, S, Dctx) of the prompts: word rows, then row 0 up to S. */
export function promptContext(vocab: Vocab, prompts: readonly string[], tokens: number, contextDim: number): FloatTensor {
  const D = vocab.embedding.shape[1]!;
  if (D !== contextDim) throw fail("samplingInput", { file: vocab.path, what: "tensor \"embedding\"", problem: `has rows of ${D}, the model's context is ${contextDim} wide` });
  const out = new Float32Array(prompts.length * tokens * D);
  prompts.forEach((p, n) => {
    const words = p.trim().split(/\s+/).filter(Boolean);
    if (words.length > tokens) throw fail("samplingInput", { file: vocab.path, what: `prompt "${p}"`, problem: `has ${words.length} words; the model reads ${tokens} context tokens` });
    for (let s = 0; s < tokens; s++) {
      const word = words[s];
      const row = word === undefined ? 0 : vocab.words.indexOf(word);
      if (row < 0) throw fail("promptWord", { prompt: p, word: word!, vocab: vocab.path, words: vocab.words });
      out.set(vocab.embedding.data.subarray(row * D, (row + 1) * D), (n * tokens + s) * D);
    }
  });
  return floatTensor([prompts.length, tokens, D], out);
}

/** A context file's `context` (N, S, Dctx), checked against the model. */
export function checkContext(file: string, t: FloatTensor | undefined, tokens: number, contextDim: number): FloatTensor {
  if (!t) throw fail("samplingInput", { file, what: "tensor \"context\"", problem: "is missing; a context file holds context (N, S, Dctx)" });
  if (t.shape.length !== 3 || t.shape[1] !== tokens || t.shape[2] !== contextDim || t.shape[0]! < 1)
    throw fail("samplingInput", { file, what: "tensor \"context\"", problem: `has shape (${t.shape.join(", ")}); the model needs (N, ${tokens}, ${contextDim})` });
  return t;
}
