// Builds graphs op by op, running each op's inference as it is added, so an ill-typed graph
// fails where it is built (as MIL's builder does), with the op and its scope in the message.
import { fail } from "../diagnostics.js";
import { OpTypeError } from "../ops/define.js";
import { opDef, type AttrsOf, type OpKind } from "../ops/index.js";
import type { ConstRole, ConstValue, Graph, Node, TensorType, Value } from "./graph.js";
import { makeNode, typeStr, withOperands } from "./graph.js";
import type { Tensor } from "../kernels/tensor.js";
import { markInferred } from "./verify.js";

/**
 * The most nodes a graph may have. Lowering splits attention into query chunks whose count grows
 * with the square of the token count: the full preset lowers to ~60k ops at 1024² and 460–590k at
 * 4096² (CoreML, ONNX), and at 8192² it would fill the JavaScript heap and abort the process.
 */
export const MAX_GRAPH_NODES = 1_000_000;

export class GraphBuilder {
  private nextId: number;
  private readonly inputs: Value[] = [];
  private readonly nodes: Node[] = [];
  /** the scope recorded on every added node: the names `scoped` nests, joined with "." */
  private scopeName = "";

  /** `firstId` lets a pass append to a copy of an existing graph without reusing value ids. */
  constructor(firstId = 0) {
    this.nextId = firstId;
  }

  /** The id the next new value gets: above every id this builder has given out. */
  get nextValueId(): number {
    return this.nextId;
  }

  newValue(type: TensorType, name?: string): Value {
    // every value has the same fields in the same order, so code walking values sees one shape
    return { id: this.nextId++, type, name };
  }

  input(name: string, type: TensorType): Value {
    const v = this.newValue(type, name);
    this.inputs.push(v);
    return v;
  }

  /** Runs `fn` with `name` appended to the scope recorded on every node it adds. */
  scoped<T>(name: string, fn: () => T): T {
    const saved = this.scopeName;
    this.scopeName = saved ? `${saved}.${name}` : name;
    try {
      return fn();
    } finally {
      this.scopeName = saved;
    }
  }

  /** Runs `fn` with the scope set to exactly `scope` (a rewritten node's scope, say). */
  inScope<T>(scope: string | undefined, fn: () => T): T {
    const saved = this.scopeName;
    this.scopeName = scope ?? "";
    try {
      return fn();
    } finally {
      this.scopeName = saved;
    }
  }

  /** Declares an existing value as a graph input (passes copying a graph keep its inputs). */
  adoptInput(v: Value): void {
    this.inputs.push(v);
  }

  /**
   * Appends an existing node unchanged but for its operands; its result values are kept. Nodes are
   * immutable, so one reading the same operands is appended as it is (wherever it now stands: a
   * rewrite early in a 60k-node graph would otherwise copy every node after it).
   */
  adoptNode(node: Node, inputs: readonly Value[]): Node {
    let same = inputs.length === node.inputs.length;
    for (let i = 0; same && i < inputs.length; i++) same = inputs[i] === node.inputs[i];
    const kept = same ? node : withOperands(node, [...inputs], this.nodes.length);
    this.nodes.push(kept);
    return kept;
  }

  get scope(): string {
    return this.scopeName;
  }

  /** Adds one node; returns all its results. */
  add<K extends OpKind>(kind: K, inputs: readonly Value[], attrs: AttrsOf<K>): Value[] {
    const def = opDef(kind), scope = this.scope;
    const where = () => `${kind}${scope ? ` in ${scope}` : ""}`;
    if (this.nodes.length >= MAX_GRAPH_NODES) throw fail("graphTooLarge", { nodes: MAX_GRAPH_NODES, node: where() });
    const arity = def.arity; // indexed, as in the verifier: no iterator per node
    if (inputs.length < arity[0] || inputs.length > arity[1]) {
      const [lo, hi] = arity;
      throw fail("opType", { node: where(), problem: `takes ${lo === hi ? lo : `${lo}..${hi}`} operands (${def.operands.join(", ")}), got ${inputs.length}` });
    }
    let types: TensorType[];
    try {
      types = def.infer(inputs.map((v) => v.type), attrs);
    } catch (e) {
      if (e instanceof OpTypeError)
        throw fail("opType", { node: where(), problem: `${e.message} (operands ${inputs.map((v) => typeStr(v.type)).join(", ")})` });
      throw e;
    }
    const outputs = types.map((t) => this.newValue(t));
    const node = makeNode(this.nodes.length, kind, [...inputs], attrs, outputs, scope || undefined);
    // the verifier after the pass need not infer these types again
    markInferred(node);
    this.nodes.push(node);
    return outputs;
  }

  /** Adds a single-result node and returns its result. */
  op<K extends OpKind>(kind: K, inputs: readonly Value[], attrs: AttrsOf<K>): Value {
    return this.add(kind, inputs, attrs)[0]!;
  }

  constant(value: ConstValue): Value {
    const v = this.op("const", [], { value });
    v.name = value.source;
    return v;
  }

  /** A constant computed at build time (sin-cos tables, frequency vectors). */
  tensorConstant(source: string, t: Tensor, role?: ConstRole): Value {
    return this.constant({ type: { dtype: t.dtype, shape: t.shape }, source, ...(role ? { role } : {}), load: () => t });
  }

  /** Removes the nodes added from index `from` on and returns them, in order (a rewrite driver re-adds them). */
  takeFrom(from: number): Node[] {
    return this.nodes.splice(from);
  }

  /** The nodes added so far (a live read-only view). */
  get addedNodes(): readonly Node[] {
    return this.nodes;
  }

  finish(outputs: Value[]): Graph {
    return { inputs: [...this.inputs], nodes: [...this.nodes], outputs };
  }
}
