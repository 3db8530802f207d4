// Time spent reading weights (from the checkpoint or its cache) and slicing them to a width, on
// this thread: compile reports it apart from the forwards and the k-means it interleaves with.
let readDepth = 0, readSeconds = 0;

/** Seconds this thread has spent reading weights and slicing them to a width (compile's phase timings). */
export const weightReadClock = (): number => readSeconds;

/** Runs `read` on the weight-read clock; a read inside another counts once. */
export function timedRead<T>(read: () => T): T {
  if (readDepth++ > 0)
    try {
      return read();
    } finally {
      readDepth--;
    }
  const t0 = performance.now();
  try {
    return read();
  } finally {
    readDepth--;
    readSeconds += (performance.now() - t0) / 1000;
  }
}
