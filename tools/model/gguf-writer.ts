/**
 * Minimal, dependency-free GGUF v3 writer.
 *
 * Layout (all little-endian):
 *   magic "GGUF" | u32 version (3) | u64 tensor_count | u64 kv_count
 *   kv*:     string key | u32 value_type | value
 *   tensor*: string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset (relative to data section)
 *   padding to `general.alignment`
 *   tensor data, each tensor starting at an aligned offset
 *
 * Strings are u64 byte length + UTF-8 bytes (no terminator).
 * `ne[0]` is the innermost (contiguous, row) dimension, as in ggml.
 */
import { type FileHandle, open } from "node:fs/promises";
import { GGML_BLOCKS } from "../../worker/model-shape.ts";

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** Subset of ggml tensor types this writer can encode. */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q8_0 = 8,
  /** From here on sizes only (header-only files for planning; the writer cannot encode their data). */
  Q5_0 = 6,
  Q5_1 = 7,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  IQ4_NL = 20,
  IQ4_XS = 23,
  MXFP4 = 39,
}

/** `general.file_type` values (llama_ftype) matching the tensor types above. */
export enum LlamaFileType {
  ALL_F32 = 0,
  MOSTLY_F16 = 1,
  MOSTLY_Q8_0 = 7,
}

export const Q8_0_BLOCK_SIZE = 32;
/** fp16 scale + 32 int8 values */
export const Q8_0_BLOCK_BYTES = 2 + Q8_0_BLOCK_SIZE;

export type GgufArrayElementType = "string" | "int32" | "uint32" | "float32";

export type GgufMetadataValue =
  | { type: "uint32"; value: number }
  | { type: "int32"; value: number }
  | { type: "float32"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "array"; elementType: "string"; value: readonly string[] }
  | { type: "array"; elementType: "int32" | "uint32" | "float32"; value: ArrayLike<number> };

/** Tensor data is given as f32 values; a function is called lazily at write time (keeps memory flat). */
export type TensorSource = Float32Array | (() => Float32Array);

export interface GgufTensorSpec {
  name: string;
  /** ggml order: dims[0] is the row length (contiguous). */
  dims: readonly number[];
  type: GgmlType;
  source: TensorSource;
}

// ---------------------------------------------------------------------------
// numeric helpers

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE-754 binary32 -> binary16 bit pattern, round-to-nearest-even (matches ggml's fp32->fp16). */
export function float32ToFloat16Bits(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0); // Inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> Inf
  if (e <= 0) {
    // subnormal half (or zero)
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // a carry out of the mantissa correctly bumps the exponent (possibly to Inf)
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) === 1)) half++;
  return sign | half;
}

/** binary16 bit pattern -> number */
export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : Number.NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** C `roundf`: halves away from zero. */
function roundAwayFromZero(v: number): number {
  return v < 0 ? -Math.round(-v) : Math.round(v);
}

/**
 * Q8_0 quantization (ggml `quantize_row_q8_0_ref`): blocks of 32 values,
 * d = max|x| / 127 stored as fp16, q = round(x / d) stored as int8.
 */
export function quantizeQ8_0(values: Float32Array): Uint8Array {
  if (values.length % Q8_0_BLOCK_SIZE !== 0) {
    throw new Error(`Q8_0 needs a multiple of ${Q8_0_BLOCK_SIZE} values, got ${values.length}`);
  }
  const blocks = values.length / Q8_0_BLOCK_SIZE;
  const out = new Uint8Array(blocks * Q8_0_BLOCK_BYTES);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let b = 0; b < blocks; b++) {
    const base = b * Q8_0_BLOCK_SIZE;
    let amax = 0;
    for (let i = 0; i < Q8_0_BLOCK_SIZE; i++) {
      const a = Math.abs(values[base + i]!);
      if (a > amax) amax = a;
    }
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const o = b * Q8_0_BLOCK_BYTES;
    view.setUint16(o, float32ToFloat16Bits(d), true);
    for (let i = 0; i < Q8_0_BLOCK_SIZE; i++) {
      const q = roundAwayFromZero(Math.fround(values[base + i]! * id));
      view.setInt8(o + 2 + i, Math.max(-128, Math.min(127, q)));
    }
  }
  return out;
}

/** Inverse of {@link quantizeQ8_0} (useful for tests). */
export function dequantizeQ8_0(data: Uint8Array): Float32Array {
  const blocks = data.length / Q8_0_BLOCK_BYTES;
  const out = new Float32Array(blocks * Q8_0_BLOCK_SIZE);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let b = 0; b < blocks; b++) {
    const o = b * Q8_0_BLOCK_BYTES;
    const d = float16BitsToFloat32(view.getUint16(o, true));
    for (let i = 0; i < Q8_0_BLOCK_SIZE; i++) out[b * Q8_0_BLOCK_SIZE + i] = d * view.getInt8(o + 2 + i);
  }
  return out;
}

export function tensorElementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

export function tensorByteSize(type: GgmlType, dims: readonly number[]): number {
  const n = tensorElementCount(dims);
  switch (type) {
    case GgmlType.F32:
      return n * 4;
    case GgmlType.F16:
      return n * 2;
    case GgmlType.Q8_0:
      if ((dims[0] ?? 0) % Q8_0_BLOCK_SIZE !== 0) {
        throw new Error(`Q8_0 requires ne[0] % ${Q8_0_BLOCK_SIZE} == 0 (got ne[0]=${dims[0]})`);
      }
      return (n / Q8_0_BLOCK_SIZE) * Q8_0_BLOCK_BYTES;
    default: {
      const block = GGML_BLOCKS[type];
      if (!block) throw new Error(`unsupported ggml type ${String(type)}`);
      if ((dims[0] ?? 0) % block[1] !== 0) {
        throw new Error(`ggml type ${type} requires ne[0] % ${block[1]} == 0 (got ne[0]=${dims[0]})`);
      }
      return (n / block[1]) * block[0];
    }
  }
}

export function encodeTensorData(type: GgmlType, values: Float32Array): Uint8Array {
  switch (type) {
    case GgmlType.F32:
      return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    case GgmlType.F16: {
      const out = new Uint8Array(values.length * 2);
      const view = new DataView(out.buffer);
      for (let i = 0; i < values.length; i++) view.setUint16(i * 2, float32ToFloat16Bits(values[i]!), true);
      return out;
    }
    case GgmlType.Q8_0:
      return quantizeQ8_0(values);
    default:
      throw new Error(`unsupported ggml type ${String(type)}`);
  }
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

// ---------------------------------------------------------------------------
// header encoding

class ByteBuilder {
  private chunks: Uint8Array[] = [];
  length = 0;
  push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }
  private fixed(size: number, fill: (view: DataView) => void): void {
    const bytes = new Uint8Array(size);
    fill(new DataView(bytes.buffer));
    this.push(bytes);
  }
  u8(v: number): void {
    this.fixed(1, (d) => d.setUint8(0, v));
  }
  u32(v: number): void {
    this.fixed(4, (d) => d.setUint32(0, v, true));
  }
  i32(v: number): void {
    this.fixed(4, (d) => d.setInt32(0, v, true));
  }
  f32(v: number): void {
    this.fixed(4, (d) => d.setFloat32(0, v, true));
  }
  u64(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`invalid u64 ${v}`);
    this.fixed(8, (d) => d.setBigUint64(0, BigInt(v), true));
  }
  str(s: string): void {
    const bytes = Buffer.from(s, "utf8");
    this.u64(bytes.length);
    this.push(bytes);
  }
  zeros(n: number): void {
    if (n > 0) this.push(new Uint8Array(n));
  }
  concat(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}

function checkInt(key: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`metadata ${key}: ${v} out of range`);
}

// ---------------------------------------------------------------------------
// writer

export class GgufWriter {
  private readonly metadata = new Map<string, GgufMetadataValue>();
  private readonly tensors: GgufTensorSpec[] = [];
  readonly alignment: number;

  constructor(options: { alignment?: number } = {}) {
    this.alignment = options.alignment ?? GGUF_DEFAULT_ALIGNMENT;
    if (!Number.isInteger(this.alignment) || this.alignment <= 0 || this.alignment % 8 !== 0) {
      throw new Error(`alignment must be a positive multiple of 8, got ${this.alignment}`);
    }
    this.set("general.alignment", { type: "uint32", value: this.alignment });
  }

  set(key: string, value: GgufMetadataValue): this {
    if (value.type === "uint32") checkInt(key, value.value, 0, 0xffffffff);
    if (value.type === "int32") checkInt(key, value.value, -0x80000000, 0x7fffffff);
    this.metadata.set(key, value);
    return this;
  }
  addUint32(key: string, value: number): this {
    return this.set(key, { type: "uint32", value });
  }
  addInt32(key: string, value: number): this {
    return this.set(key, { type: "int32", value });
  }
  addFloat32(key: string, value: number): this {
    return this.set(key, { type: "float32", value });
  }
  addBool(key: string, value: boolean): this {
    return this.set(key, { type: "bool", value });
  }
  addString(key: string, value: string): this {
    return this.set(key, { type: "string", value });
  }
  addStringArray(key: string, value: readonly string[]): this {
    return this.set(key, { type: "array", elementType: "string", value });
  }
  addInt32Array(key: string, value: ArrayLike<number>): this {
    return this.set(key, { type: "array", elementType: "int32", value });
  }
  addUint32Array(key: string, value: ArrayLike<number>): this {
    return this.set(key, { type: "array", elementType: "uint32", value });
  }
  addFloat32Array(key: string, value: ArrayLike<number>): this {
    return this.set(key, { type: "array", elementType: "float32", value });
  }

  addTensor(name: string, dims: readonly number[], type: GgmlType, source: TensorSource): this {
    if (this.tensors.some((t) => t.name === name)) throw new Error(`duplicate tensor ${name}`);
    if (dims.length < 1 || dims.length > 4 || dims.some((d) => !Number.isInteger(d) || d <= 0)) {
      throw new Error(`tensor ${name}: invalid dims [${dims.join(", ")}]`);
    }
    tensorByteSize(type, dims); // validates type/dims combination early
    if (source instanceof Float32Array && source.length !== tensorElementCount(dims)) {
      throw new Error(`tensor ${name}: expected ${tensorElementCount(dims)} values, got ${source.length}`);
    }
    this.tensors.push({ name, dims: [...dims], type, source });
    return this;
  }

  private encodeHeader(): { header: Buffer; offsets: number[] } {
    const b = new ByteBuilder();
    b.u32(GGUF_MAGIC);
    b.u32(GGUF_VERSION);
    b.u64(this.tensors.length);
    b.u64(this.metadata.size);
    for (const [key, v] of this.metadata) {
      b.str(key);
      switch (v.type) {
        case "uint32":
          b.u32(GgufValueType.UINT32);
          b.u32(v.value);
          break;
        case "int32":
          b.u32(GgufValueType.INT32);
          b.i32(v.value);
          break;
        case "float32":
          b.u32(GgufValueType.FLOAT32);
          b.f32(v.value);
          break;
        case "bool":
          b.u32(GgufValueType.BOOL);
          b.u8(v.value ? 1 : 0);
          break;
        case "string":
          b.u32(GgufValueType.STRING);
          b.str(v.value);
          break;
        case "array": {
          b.u32(GgufValueType.ARRAY);
          if (v.elementType === "string") {
            b.u32(GgufValueType.STRING);
            b.u64(v.value.length);
            for (const s of v.value) b.str(s);
          } else {
            const elemType =
              v.elementType === "int32"
                ? GgufValueType.INT32
                : v.elementType === "uint32"
                  ? GgufValueType.UINT32
                  : GgufValueType.FLOAT32;
            b.u32(elemType);
            b.u64(v.value.length);
            const arr = new Uint8Array(v.value.length * 4);
            const view = new DataView(arr.buffer);
            for (let i = 0; i < v.value.length; i++) {
              const x = v.value[i]!;
              if (v.elementType === "int32") view.setInt32(i * 4, x, true);
              else if (v.elementType === "uint32") view.setUint32(i * 4, x, true);
              else view.setFloat32(i * 4, x, true);
            }
            b.push(arr);
          }
          break;
        }
      }
    }
    const offsets: number[] = [];
    let offset = 0;
    for (const t of this.tensors) {
      b.str(t.name);
      b.u32(t.dims.length);
      for (const d of t.dims) b.u64(d);
      b.u32(t.type);
      b.u64(offset);
      offsets.push(offset);
      offset = alignUp(offset + tensorByteSize(t.type, t.dims), this.alignment);
    }
    b.zeros(alignUp(b.length, this.alignment) - b.length);
    return { header: b.concat(), offsets };
  }

  /** A tensor described in the header only: for header-only files written with {@link writeHeader}. */
  addTensorInfo(name: string, dims: readonly number[], type: GgmlType): this {
    return this.addTensor(name, dims, type, () => {
      throw new Error(`tensor ${name} has no data: write the file with writeHeader()`);
    });
  }

  /**
   * Writes metadata and tensor infos without tensor data (what GGUF readers such as
   * readGgufFileInfo parse): a planning fixture for a model too large to generate. Returns bytes written.
   */
  async writeHeader(path: string): Promise<number> {
    const { header } = this.encodeHeader();
    const fh: FileHandle = await open(path, "w");
    try {
      await fh.writeFile(header);
      return header.length;
    } finally {
      await fh.close();
    }
  }

  /** Total file size that {@link write} will produce. */
  get byteLength(): number {
    const { header } = this.encodeHeader();
    let size = header.length;
    for (const t of this.tensors) size = alignUp(size + tensorByteSize(t.type, t.dims), this.alignment);
    return size;
  }

  /** Write the file (tensor data is produced and encoded one tensor at a time). Returns bytes written. */
  async write(path: string): Promise<number> {
    const { header, offsets } = this.encodeHeader();
    const fh: FileHandle = await open(path, "w");
    try {
      let pos = 0;
      const writeAll = async (bytes: Uint8Array): Promise<void> => {
        let done = 0;
        while (done < bytes.length) {
          const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, pos + done);
          done += bytesWritten;
        }
        pos += bytes.length;
      };
      await writeAll(header);
      const dataStart = header.length;
      for (let i = 0; i < this.tensors.length; i++) {
        const t = this.tensors[i]!;
        const expectedPos = dataStart + offsets[i]!;
        if (pos !== expectedPos) await writeAll(new Uint8Array(expectedPos - pos));
        const values = typeof t.source === "function" ? t.source() : t.source;
        if (values.length !== tensorElementCount(t.dims)) {
          throw new Error(`tensor ${t.name}: expected ${tensorElementCount(t.dims)} values, got ${values.length}`);
        }
        const bytes = encodeTensorData(t.type, values);
        if (bytes.length !== tensorByteSize(t.type, t.dims)) throw new Error(`tensor ${t.name}: size mismatch`);
        await writeAll(bytes);
      }
      const end = alignUp(pos, this.alignment);
      if (end !== pos) await writeAll(new Uint8Array(end - pos));
      return pos;
    } finally {
      await fh.close();
    }
  }
}
