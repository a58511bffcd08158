import { inflateRawSync } from "node:zlib";
import { ApiError } from "../errors.ts";

/*
 * The sizes a zip (a DOCX) declares, read from its central directory (PKWARE APPNOTE 4.3.12-4.3.16) before
 * anything is inflated. Ours rather than a dependency: JSZip (mammoth's) keeps the sizes internal, and fflate is
 * only a dev dependency's dependency; neither would check that a directory tells the truth.
 */

const END_OF_DIRECTORY = 0x06054b50;
const DIRECTORY_ENTRY = 0x02014b50;
const LOCAL_HEADER = 0x04034b50;
/** A 16- or 32-bit field at its maximum means the real value is in a ZIP64 record. */
const ZIP64 = [0xffff, 0xffffffff];

interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  uncompressedSize: number;
  localOffset: number;
}

const corrupt = (what: string) => new ApiError("unreadable_file", `the DOCX is not a readable zip (${what})`);
const tooLarge = (what: string) =>
  new ApiError("uncompressed_too_large", `the DOCX ${what}; send a smaller file or raise DOCKET_EXTRACT_MAX_UNCOMPRESSED_BYTES`);

function entries(bytes: Uint8Array): ZipEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // The end record is the last 22 bytes, unless an archive comment (at most 65,535 bytes) follows it.
  let end = -1;
  for (let i = bytes.byteLength - 22; i >= Math.max(0, bytes.byteLength - 22 - 0xffff) && end < 0; i--) {
    if (view.getUint32(i, true) === END_OF_DIRECTORY) end = i;
  }
  if (end < 0) throw corrupt("no end of central directory");
  const count = view.getUint16(end + 10, true);
  const start = view.getUint32(end + 16, true);
  if (count === ZIP64[0] || start === ZIP64[1]) throw tooLarge("uses ZIP64 (an entry or a size beyond 4 GiB)");
  const list: ZipEntry[] = [];
  for (let at = start, i = 0; i < count; i++) {
    if (at + 46 > bytes.byteLength || view.getUint32(at, true) !== DIRECTORY_ENTRY) throw corrupt("truncated central directory");
    const nameLength = view.getUint16(at + 28, true);
    const entry = {
      name: Buffer.from(bytes.subarray(at + 46, at + 46 + nameLength)).toString("utf8"),
      method: view.getUint16(at + 10, true),
      compressedSize: view.getUint32(at + 20, true),
      uncompressedSize: view.getUint32(at + 24, true),
      localOffset: view.getUint32(at + 42, true),
    };
    if (entry.compressedSize === ZIP64[1] || entry.uncompressedSize === ZIP64[1]) throw tooLarge(`${entry.name} uses ZIP64`);
    list.push(entry);
    at += 46 + nameLength + view.getUint16(at + 30, true) + view.getUint16(at + 32, true);
  }
  return list;
}

/**
 * Throws uncompressed_too_large when the zip's entries declare more than `max` bytes in all, or when an entry
 * inflates past what it declares (a directory that lies: mammoth would inflate it all the same, and JSZip checks
 * the size only once it has). Each entry is inflated by zlib with its declared size as the cap, then dropped.
 */
export function checkInflatedSize(bytes: Uint8Array, max: number): void {
  const list = entries(bytes);
  const declared = list.reduce((sum, e) => sum + e.uncompressedSize, 0);
  if (declared > max) throw tooLarge(`inflates to ${declared} bytes; the most accepted is ${max}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const e of list) {
    const at = e.localOffset;
    if (at + 30 > bytes.byteLength || view.getUint32(at, true) !== LOCAL_HEADER) throw corrupt(`no local header for ${e.name}`);
    const from = at + 30 + view.getUint16(at + 26, true) + view.getUint16(at + 28, true);
    const data = bytes.subarray(from, from + e.compressedSize);
    if (e.method === 0) {
      if (e.compressedSize !== e.uncompressedSize) throw corrupt(`${e.name} is stored with two different sizes`);
    } else if (e.method === 8) {
      try {
        inflateRawSync(data, { maxOutputLength: Math.max(1, e.uncompressedSize) });
      } catch (err) {
        if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE")
          throw new ApiError(
            "uncompressed_too_large",
            `the DOCX entry ${e.name} inflates past the ${e.uncompressedSize} bytes its zip directory declares: the file is damaged or a zip bomb`,
          );
        throw corrupt(`${e.name}: ${(err as Error).message}`);
      }
    } else throw corrupt(`${e.name} uses compression method ${e.method}; only stored and deflate are read`);
  }
}
