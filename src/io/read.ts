// Positioned reads that fill their buffer: readSync may return fewer bytes than asked.
import { readSync } from "node:fs";

/** Reads into all of `buf` from `position` of `fd`; returns the bytes read (fewer only where the file ends). */
export function readFullyAt(fd: number, buf: Uint8Array, position: number): number {
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}
