// A bounds-checked flatbuffer reader for untrusted files. The flatbuffers runtime trusts its
// input (an offset past the end is a RangeError deep inside, a vector length is believed), and
// JavaScript has no flatbuffer verifier, so the TFLite reader goes through this instead: every
// offset, vtable and vector is checked against the bytes present before it is used, vector
// lengths are capped by the bytes that could hold them, and each failure names the field.
//
// The bytes may be a prefix of a larger file (a model with weights appended after the
// flatbuffer): a read past the prefix but inside the file throws NeedMoreBytes, and the caller
// retries with a longer prefix.

export class FlatbufferError extends Error {
  constructor(readonly where: string, readonly problem: string) {
    super(`${where} ${problem}`);
  }
}

export class NeedMoreBytes extends Error {
  constructor(readonly atLeast: number) {
    super(`need ${atLeast} bytes`);
  }
}

export class FbReader {
  private readonly dv: DataView;
  constructor(readonly bytes: Uint8Array, private readonly limit: number) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  check(off: number, len: number, where: string): void {
    if (!Number.isSafeInteger(off) || off < 0 || len < 0) throw new FlatbufferError(where, `points to offset ${off}, outside the file`);
    const end = off + len;
    if (end <= this.bytes.length) return;
    if (end <= this.limit) throw new NeedMoreBytes(end);
    throw new FlatbufferError(where, `needs bytes [${off}, ${end}), past the end of the flatbuffer (${this.limit} bytes)`);
  }

  u8(off: number, where: string): number {
    this.check(off, 1, where);
    return this.dv.getUint8(off);
  }
  i8(off: number, where: string): number {
    this.check(off, 1, where);
    return this.dv.getInt8(off);
  }
  u16(off: number, where: string): number {
    this.check(off, 2, where);
    return this.dv.getUint16(off, true);
  }
  i32(off: number, where: string): number {
    this.check(off, 4, where);
    return this.dv.getInt32(off, true);
  }
  u32(off: number, where: string): number {
    this.check(off, 4, where);
    return this.dv.getUint32(off, true);
  }
  f32(off: number, where: string): number {
    this.check(off, 4, where);
    return this.dv.getFloat32(off, true);
  }
  i64(off: number, where: string): bigint {
    this.check(off, 8, where);
    return this.dv.getBigInt64(off, true);
  }
  u64(off: number, where: string): bigint {
    this.check(off, 8, where);
    return this.dv.getBigUint64(off, true);
  }

  identifier(): string {
    this.check(4, 4, "file identifier");
    return String.fromCharCode(...this.bytes.subarray(4, 8));
  }

  root(what: string): FbTable {
    return new FbTable(this, this.u32(0, "root offset"), what);
  }
}

/** One table: its vtable is checked on construction, each field on access. */
export class FbTable {
  private readonly vtable: number;
  private readonly vtableSize: number;
  private readonly objectSize: number;

  constructor(private readonly r: FbReader, private readonly pos: number, readonly what: string) {
    this.vtable = pos - r.i32(pos, `${what} (table header)`);
    this.vtableSize = r.u16(this.vtable, `${what} (vtable)`);
    this.objectSize = r.u16(this.vtable + 2, `${what} (vtable)`);
    if (this.vtableSize < 4 || this.vtableSize % 2) throw new FlatbufferError(what, `has a vtable of ${this.vtableSize} bytes`);
    if (this.objectSize < 4) throw new FlatbufferError(what, `declares an object of ${this.objectSize} bytes`);
    r.check(this.vtable, this.vtableSize, `${what} (vtable)`);
    r.check(pos, this.objectSize, what);
  }

  private at(slot: number, size: number, name: string): number | undefined {
    const e = 4 + 2 * slot;
    if (e + 2 > this.vtableSize) return undefined;
    const off = this.r.u16(this.vtable + e, `${this.what}.${name}`);
    if (off === 0) return undefined;
    if (off + size > this.objectSize) throw new FlatbufferError(`${this.what}.${name}`, `lies outside its table (${off} + ${size} > ${this.objectSize})`);
    return this.pos + off;
  }

  has(slot: number): boolean {
    return this.at(slot, 1, `slot ${slot}`) !== undefined;
  }

  u8(slot: number, name: string, dflt = 0): number {
    const p = this.at(slot, 1, name);
    return p === undefined ? dflt : this.r.u8(p, `${this.what}.${name}`);
  }
  i8(slot: number, name: string, dflt = 0): number {
    const p = this.at(slot, 1, name);
    return p === undefined ? dflt : this.r.i8(p, `${this.what}.${name}`);
  }
  bool(slot: number, name: string, dflt = false): boolean {
    return this.u8(slot, name, dflt ? 1 : 0) !== 0;
  }
  i32(slot: number, name: string, dflt = 0): number {
    const p = this.at(slot, 4, name);
    return p === undefined ? dflt : this.r.i32(p, `${this.what}.${name}`);
  }
  u32(slot: number, name: string, dflt = 0): number {
    const p = this.at(slot, 4, name);
    return p === undefined ? dflt : this.r.u32(p, `${this.what}.${name}`);
  }
  f32(slot: number, name: string, dflt = 0): number {
    const p = this.at(slot, 4, name);
    return p === undefined ? dflt : this.r.f32(p, `${this.what}.${name}`);
  }
  /** A ulong field as a safe integer (file offsets and sizes), or an error naming it. */
  u64(slot: number, name: string): number {
    const p = this.at(slot, 8, name);
    if (p === undefined) return 0;
    const v = this.r.u64(p, `${this.what}.${name}`);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FlatbufferError(`${this.what}.${name}`, `is ${v}, beyond any file size`);
    return Number(v);
  }

  /** The target of an offset field: where it points, checked to lie in the file. */
  private deref(slot: number, name: string): number | undefined {
    const p = this.at(slot, 4, name);
    if (p === undefined) return undefined;
    return p + this.r.u32(p, `${this.what}.${name}`);
  }

  table(slot: number, name: string, what = `${this.what}.${name}`): FbTable | undefined {
    const t = this.deref(slot, name);
    return t === undefined ? undefined : new FbTable(this.r, t, what);
  }

  /** A vector's element start and length, checked to fit the file. */
  vector(slot: number, name: string, elemSize: number): { start: number; length: number } | undefined {
    const v = this.deref(slot, name);
    if (v === undefined) return undefined;
    const length = this.r.u32(v, `${this.what}.${name} (length)`);
    this.r.check(v + 4, length * elemSize, `${this.what}.${name} (${length} elements)`);
    return { start: v + 4, length };
  }

  str(slot: number, name: string): string | undefined {
    const v = this.vector(slot, name, 1);
    return v && new TextDecoder().decode(this.r.bytes.subarray(v.start, v.start + v.length));
  }

  ints(slot: number, name: string): number[] | undefined {
    const v = this.vector(slot, name, 4);
    return v && Array.from({ length: v.length }, (_, i) => this.r.i32(v.start + 4 * i, `${this.what}.${name}`));
  }
  floats(slot: number, name: string): number[] | undefined {
    const v = this.vector(slot, name, 4);
    return v && Array.from({ length: v.length }, (_, i) => this.r.f32(v.start + 4 * i, `${this.what}.${name}`));
  }
  longs(slot: number, name: string): number[] | undefined {
    const v = this.vector(slot, name, 8);
    return v && Array.from({ length: v.length }, (_, i) => Number(this.r.i64(v.start + 8 * i, `${this.what}.${name}`)));
  }

  tables(slot: number, name: string, label: (i: number) => string): FbTable[] {
    const v = this.vector(slot, name, 4);
    if (!v) return [];
    return Array.from({ length: v.length }, (_, i) => {
      const p = v.start + 4 * i;
      return new FbTable(this.r, p + this.r.u32(p, `${this.what}.${name}[${i}]`), label(i));
    });
  }
}
