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
