// Whether a helper thread still runs, for callers that wait for it with Atomics.wait. Such a
// caller never sees a Worker's exit event (that needs its event loop, which it is blocking), so a
// thread that ended in the middle of its work (its heap ran out, say) would leave it waiting
// forever. Each thread records its OS thread id in a shared cell as it starts; a caller whose
// wait times out asks the OS whether that thread is still there.
import { existsSync, readlinkSync } from "node:fs";

/** One Int32 of shared memory: the thread's OS thread id once it has started (0 before, or where it is not known). */
export type ThreadIdCell = Int32Array;

export const threadIdCell = (): ThreadIdCell => new Int32Array(new SharedArrayBuffer(4));

/** Called on the thread itself as it starts. */
export function recordThreadId(cell: ThreadIdCell): void {
  try {
    Atomics.store(cell, 0, Number(readlinkSync("/proc/thread-self").split("/").pop()) || 0);
  } catch {
    // no /proc: a caller cannot tell a thread that ended from a slow one, and waits as before
  }
}

/** False once the thread has ended; true while it runs, before it has recorded its id, and where the OS cannot say. */
export function threadAlive(cell: ThreadIdCell): boolean {
  const tid = Atomics.load(cell, 0);
  return tid === 0 || existsSync(`/proc/self/task/${tid}`);
}

/** How long a caller waits on a helper before it checks that the helper still runs. */
export const LIVENESS_CHECK_MS = 1000;
