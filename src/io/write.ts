// Writes in calls of bounded size.
import { writeSync } from "node:fs";

/**
 * The most one write call hands the kernel. Larger calls cost the kernel far more here (Linux
 * 6.18, ext4, this VM): 0.72 GB in 4 MiB (or 2 MiB) calls took 2.0 s of system time, in 1 MiB
 * calls 0.16 s, while the machine had recently freed memory at hand; with none at hand both took
 * ~1.9 s (every new page-cache page first touched). Larger calls presumably make the page cache
 * take huge folios, which come from memory the host has reclaimed.
 */
export const WRITE_CALL_BYTES = 1 << 20;

/** Writes `length` bytes of `buf` from `offset` in calls of at most WRITE_CALL_BYTES (at `position` when given). */
export function writeChunked(fd: number, buf: Uint8Array, offset = 0, length = buf.length - offset, position?: number): void {
  for (let done = 0; done < length; ) {
    const n = Math.min(WRITE_CALL_BYTES, length - done);
    done += writeSync(fd, buf, offset + done, n, position === undefined ? null : position + done);
  }
}
