// `ditc inspect`: parameter counts per width and the figures that matter on a device, computed
// from the graph a pipeline produces (op histogram, transposes in and out of blocks, max rank,
// largest intermediate tensor).
import { BYTES_PER_ELEMENT } from "../ir/dtype.js";
import type { Graph } from "../ir/graph.js";
import { numel } from "../kernels/tensor.js";
import type { ModelConfig } from "../model/config.js";
import { inBlockScope, paramCounts } from "../model/params.js";

export interface GraphStats {
  ops: Record<string, number>;
  transposes: { total: number; inBlocks: number };
  maxRank: number;
  largestTensorBytes: number;
  largestTensor: string;
  /** the largest softmax input/output (an attention score tensor) stored in fp16 */
  largestScoreBytesFp16: number;
  nodes: number;
}

const ATTENTION = new Set(["gqa_attention", "cross_attention", "bna_attention", "assa_attention"]);

export function graphStats(g: Graph): GraphStats {
  const ops: Record<string, number> = {};
  let total = 0, inBlocks = 0, maxRank = 0, largest = 0, largestTensor = "", scores = 0;
  for (const v of g.inputs) maxRank = Math.max(maxRank, v.type.shape.length);
  for (const n of g.nodes) {
    if (n.kind === "const") continue;
    ops[n.kind] = (ops[n.kind] ?? 0) + 1;
    if (n.kind === "softmax") scores = Math.max(scores, numel(n.outputs[0]!.type.shape) * 2);
    if (ATTENTION.has(n.kind)) {
      // an unlowered attention op hides its scores: one head's (B, Lq, Lk) is what a device holds
      const [B, Lq] = n.inputs[0]!.type.shape as [number, number];
      scores = Math.max(scores, B * Lq * n.inputs[1]!.type.shape[1]! * 2);
    }
    if (n.kind === "transpose") {
      total++;
      if (n.scope && inBlockScope(n.scope)) inBlocks++;
    }
    for (const o of n.outputs) {
      maxRank = Math.max(maxRank, o.type.shape.length);
      const bytes = numel(o.type.shape) * BYTES_PER_ELEMENT[o.type.dtype];
      if (bytes > largest) {
        largest = bytes;
        largestTensor = `%${o.id} ${n.kind}${n.scope ? ` in ${n.scope}` : ""} (${o.type.shape.join("x")})`;
      }
    }
  }
  const sorted = Object.fromEntries(Object.entries(ops).sort(([a], [b]) => (a < b ? -1 : 1)));
  return { ops: sorted, transposes: { total, inBlocks }, maxRank, largestTensorBytes: largest, largestTensor, largestScoreBytesFp16: scores, nodes: g.nodes.length };
}

export interface InspectReport extends GraphStats {
  params: Record<string, number>;
  width: number;
  pipeline: string;
  latentSize: [number, number];
}

export function inspectReport(config: ModelConfig, g: Graph, width: number, pipeline: string, latentSize: [number, number]): InspectReport {
  return { params: paramCounts(config) as Record<string, number>, ...graphStats(g), width, pipeline, latentSize };
}
