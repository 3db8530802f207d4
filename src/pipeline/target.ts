// What every backend provides: a pipeline, a legality table, an emitter, a reader for its own
// files, and optionally a real runtime that runs them.
import type { Graph } from "../ir/graph.js";
import type { FloatTensor } from "../kernels/tensor.js";
import type { Legality } from "./legality.js";
import type { Pipeline } from "./pass.js";

export interface EmitOptions {
  externalData?: "auto" | "always" | "never";
  /** CoreML deployment target */
  deployment?: "iOS17" | "iOS18";
  metadata: Record<string, string>;
  /** called as weights (or ops) are written: done of total */
  onProgress?: (done: number, total: number) => void;
}

export interface TargetBackend {
  readonly name: string;
  /** file (or folder) name of the artifact inside DIR/w{width}/ */
  readonly artifact: string;
  readonly pipeline: Pipeline;
  readonly legality: Legality;
  /** writes the artifact; `transposes` counts the transposes in the operator list written (TFLite, ONNX) */
  emit(g: Graph, path: string, opts: EmitOptions): { files: string[]; bytes: number; transposes?: { total: number; inBlocks: number } };
  read(path: string): { graph: Graph; close(): void };
  /** precision when the user does not choose (CoreML computes in fp16 on device) */
  readonly defaultPrecision?: "fp32" | "fp16";
  /** an external tool that validates the file without running it (coremltools for CoreML) */
  checker?: {
    engine: string;
    unavailable?: () => string | undefined;
    check(path: string): Promise<{ ok: boolean; detail: string }>;
  };
  runtime?: {
    engine: string;
    /** undefined when usable, else why not (shown by verify) */
    unavailable?: () => string | undefined;
    run(path: string, inputs: Record<string, FloatTensor>): Promise<Record<string, FloatTensor>>;
  };
}
