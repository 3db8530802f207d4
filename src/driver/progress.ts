// What long steps report, for the CLI's progress bar, the API's callback and plain logs: the
// step, how far along it is in its own units, and one line a log can print.
export interface ProgressEvent {
  /** e.g. "probe w0.5", "tflite w0.5: writing" */
  step: string;
  done: number;
  total: number;
  /** the unit of done/total ("layers", "weights", "artifacts", ...) */
  unit: string;
}

export type ProgressFn = (e: ProgressEvent) => void;

/** A ProgressFn that calls `log` once per step (plain output: logs, pipes, --json's stderr). */
export function stepLogger(log: (line: string) => void): ProgressFn {
  let last = "";
  return (e) => {
    if (e.step !== last) log(e.step);
    last = e.step;
  };
}

/**
 * An interpreter onNode callback that reports a forward pass node by node (about a hundred
 * events per pass, whatever its size), so a minutes-long forward is visibly alive.
 */
export function nodeProgress(step: string, totalNodes: number, onProgress: ProgressFn | undefined): ((node: unknown, index: number) => void) | undefined {
  if (!onProgress) return undefined;
  const every = Math.max(1, Math.floor(totalNodes / 100));
  onProgress({ step, done: 0, total: totalNodes, unit: "nodes" });
  return (_node, i) => {
    if ((i + 1) % every === 0 || i + 1 === totalNodes) onProgress({ step, done: i + 1, total: totalNodes, unit: "nodes" });
  };
}
