// Runs a resolved pipeline: verify after every pass that changed the graph (always), compare
// interpreter outputs before and after every pass (when given inputs), dump IR after named
// passes, check legality at the end.
import { fail } from "../diagnostics.js";
import type { Graph } from "../ir/graph.js";
import { printGraph } from "../ir/print.js";
import { verifyGraph } from "../ir/verify.js";
import { runGraph } from "../interp/interpreter.js";
import type { Tensor } from "../kernels/tensor.js";
import { checkLegal, type Legality } from "./legality.js";
import type { ResolvedStep } from "./pass.js";

export interface PipelineRunOptions {
  /** target name and its legality table, checked after the last pass */
  legality?: { target: string; table: Legality };
  /** run the interpreter before and after each pass on these inputs and compare */
  semanticCheck?: { inputs: Record<string, Tensor>; rtol: number };
  printAfter?: readonly string[];
  print?: (text: string) => void;
  log?: (line: string) => void;
  /** per pass: name, wall time and node count after it */
  onPass?: (name: string, seconds: number, graph: Graph) => void;
}

function relMaxErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return m === 0 ? d : d / m;
}

export function runPipeline(g: Graph, steps: readonly ResolvedStep[], opts: PipelineRunOptions = {}): Graph {
  verifyGraph(g);
  let reference = opts.semanticCheck ? runGraph(g, opts.semanticCheck.inputs) : undefined;
  for (const { pass, options } of steps) {
    const t0 = performance.now();
    const before = g;
    g = pass.run(g, options, opts.log);
    // a pass that changed nothing returns the graph it was given, which is verified already
    if (g !== before) verifyGraph(g, pass.name);
    opts.onPass?.(pass.name, (performance.now() - t0) / 1000, g);
    if (opts.printAfter?.includes(pass.name)) opts.print?.(`// after ${pass.name}\n${printGraph(g)}`);
    if (opts.semanticCheck && reference) {
      const out = runGraph(g, opts.semanticCheck.inputs);
      for (const [name, t] of Object.entries(reference)) {
        const err = relMaxErr(out[name]!.data as Float32Array, t.data as Float32Array);
        if (!(err <= opts.semanticCheck.rtol)) throw fail("goldenMismatch", { what: `after pass ${pass.name}, output ${name}`, err, tol: opts.semanticCheck.rtol });
      }
      reference = out;
    }
  }
  if (opts.legality) checkLegal(g, opts.legality.target, opts.legality.table);
  return g;
}
