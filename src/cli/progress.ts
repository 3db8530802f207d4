// Progress on the terminal: a bar (cli-progress) when stderr is a TTY, one line per step when it
// is a pipe or a log, nothing under --json. The bar uses no color; with NO_COLOR or TERM=dumb it
// is plain ASCII as well.
import cliProgress from "cli-progress";
import { stepLogger, type ProgressFn } from "../driver/progress.js";

export interface ProgressView {
  onProgress: ProgressFn | undefined;
  stop(): void;
}

export function progressView(opts: { json: boolean; log: (line: string) => void; tty: boolean; env?: NodeJS.ProcessEnv }): ProgressView {
  if (opts.json) return { onProgress: undefined, stop: () => {} };
  if (!opts.tty) return { onProgress: stepLogger(opts.log), stop: () => {} };
  const env = opts.env ?? process.env;
  const plain = env.NO_COLOR !== undefined || env.TERM === "dumb";
  const bar = new cliProgress.SingleBar({
    stream: process.stderr,
    format: "{step} [{bar}] {value}/{total} {unit}",
    barCompleteChar: plain ? "#" : "\u2588",
    barIncompleteChar: plain ? "-" : "\u2591",
    hideCursor: true,
    clearOnComplete: false,
    etaBuffer: 20,
  });
  let step: string | undefined;
  return {
    onProgress: (e) => {
      if (e.step !== step) {
        if (step !== undefined) bar.stop();
        step = e.step;
        bar.start(Math.max(e.total, 1), e.done, { step: e.step, unit: e.unit });
      } else bar.update(e.done);
    },
    stop: () => {
      if (step !== undefined) bar.stop();
    },
  };
}
