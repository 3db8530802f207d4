// The layout a lowering pass emits its core ops in. "tokens" keeps (B, N, C) tensors (TFLite's
// NHWC and ONNX); "nchw" computes on channels-first (B, C, 1, N) views, converting at the edges
// so that transpose-elimination cancels the conversions between neighbouring ops.
import { fail } from "../src/diagnostics.js";

export type LoweringLayout = "tokens" | "nchw";

export function checkLayout(pass: string, layout: unknown): LoweringLayout {
  if (layout !== "tokens" && layout !== "nchw") throw fail("usage", { detail: `pass ${pass}: option layout must be "tokens" or "nchw", got ${JSON.stringify(layout)}.` });
  return layout;
}
