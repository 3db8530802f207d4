// Where compile keeps a width's fp16 weight slices (src/model/weights.ts widthConstant): carved
// out of a few large shared buffers that the next width's slices reuse. Fresh memory costs a page
// fault per 4 KiB on first touch, more than the copy itself (the full preset's 0.75 GB of width-0.5
// slices: 185k faults and 0.52 s into fresh memory, 0.31 s into reused; several times that when
// the host has reclaimed the VM's free memory); memory this process already touched costs only
// the copy.
//
// A slice is valid until the store is reset: compile resets it when a width is done, once nothing
// of that width (its graphs, the cluster pool's lent buffers) is used any more.

/** Slices start on 64-byte boundaries (a cache line; what the kernels' packing reads best). */
const ALIGN = 64;

export class SliceStore {
  private readonly kept = new Map<string, Uint16Array>();
  private readonly chunks: { buffer: SharedArrayBuffer; used: number }[] = [];
  /** the chunk being filled; those before it are full for this width */
  private current = 0;

  constructor(private readonly chunkBytes = 64 * 2 ** 20) {}

  get(key: string): Uint16Array | undefined {
    return this.kept.get(key);
  }

  get size(): number {
    return this.kept.size;
  }

  /** Shared memory for `elements` fp16 patterns, kept under `key`; its contents are the caller's to write. */
  make(key: string, elements: number): Uint16Array {
    const bytes = Math.ceil((2 * elements) / ALIGN) * ALIGN;
    let c = this.chunks[this.current];
    while (c && c.used + bytes > c.buffer.byteLength) c = this.chunks[++this.current];
    if (!c) {
      c = { buffer: new SharedArrayBuffer(Math.max(bytes, this.chunkBytes)), used: 0 };
      this.current = this.chunks.push(c) - 1;
    }
    const slice = new Uint16Array(c.buffer, c.used, elements);
    c.used += bytes;
    this.kept.set(key, slice);
    return slice;
  }

  /** Forgets every slice; their memory goes to the next ones made (a slice handed out before must not be used after). */
  reset(): void {
    this.kept.clear();
    for (const c of this.chunks) c.used = 0;
    this.current = 0;
  }

  /** Forgets every slice and lets their memory go. */
  release(): void {
    this.reset();
    this.chunks.length = 0;
  }

  /** Bytes held (whether in use or not). */
  get bytes(): number {
    return this.chunks.reduce((a, c) => a + c.buffer.byteLength, 0);
  }
}
