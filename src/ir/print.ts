// A readable textual dump of a graph, one node a line:
//   %12 = conv2d(%0, %10, %11) {stride=[2,2] pads=[0,0,0,0] groups=1} : f32[2,128,8,8]  # down.0
import { opDef } from "../ops/index.js";
import { typeStr, type Graph, type Value } from "./graph.js";

function ref(v: Value): string {
  return `%${v.id}`;
}

function attrText(attrs: Record<string, unknown>): string {
  return Object.entries(attrs)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? `[${v.join(",")}]` : typeof v === "number" ? +v.toPrecision(6) : JSON.stringify(v)}`)
    .join(" ");
}

export function printGraph(g: Graph): string {
  const lines: string[] = [];
  lines.push(`graph(${g.inputs.map((v) => `${ref(v)} ${v.name ?? ""}: ${typeStr(v.type)}`).join(", ")}) {`);
  for (const n of g.nodes) {
    const def = opDef(n.kind);
    const custom = def.printAttrs?.(n.attrs as never);
    const attrs = custom ?? attrText(n.attrs as Record<string, unknown>);
    const lhs = n.outputs.map(ref).join(", ");
    const types = n.outputs.map((o) => typeStr(o.type)).join(", ");
    const scope = n.scope ? `  # ${n.scope}` : "";
    lines.push(`  ${lhs} = ${n.kind}(${n.inputs.map(ref).join(", ")})${attrs ? ` {${attrs}}` : ""} : ${types}${scope}`);
  }
  lines.push(`  return ${g.outputs.map((v) => `${ref(v)}${v.name ? ` ${v.name}` : ""}`).join(", ")}`);
  lines.push("}");
  return lines.join("\n");
}
