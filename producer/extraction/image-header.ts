import { ApiError } from "../errors.ts";

/*
 * The size of a PNG, JPEG or TIFF read from its header, before any pixel is decoded: the OCR engine decodes the
 * whole image into memory first, so a 100,000 × 100,000 PNG of a few kilobytes must be refused here. Ours rather
 * than a dependency: each header is a few fixed fields (PNG: IHDR; JPEG: the SOFn segment; TIFF: tags 256, 257 of
 * each image file directory).
 */

/** Pixels of one image the OCR engine is given at most: an A4 page scanned at 600 dpi is 35 million. */
export const MAX_OCR_PIXELS = 60_000_000;

export interface ImageHeader {
  format: "png" | "jpeg" | "tiff";
  width: number;
  height: number;
  /** Images in the file: a TIFF may hold several pages. */
  pages: number;
}

const unreadable = (what: string) => new ApiError("unreadable_file", `the image could not be read (${what})`);

function png(view: DataView): ImageHeader {
  if (view.byteLength < 24 || view.getUint32(12) !== 0x49484452) throw unreadable("no PNG header");
  return { format: "png", width: view.getUint32(16), height: view.getUint32(20), pages: 1 };
}

function jpeg(view: DataView): ImageHeader {
  let at = 2;
  while (at + 4 <= view.byteLength) {
    if (view.getUint8(at) !== 0xff) throw unreadable("a JPEG segment does not start with 0xFF");
    const marker = view.getUint8(at + 1);
    // Fill bytes, and markers without a length (TEM, RSTn): skip them.
    if (marker === 0xff || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += marker === 0xff ? 1 : 2;
      continue;
    }
    // SOF0-SOF15 hold the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share their range but do not.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (at + 9 > view.byteLength) break;
      return { format: "jpeg", height: view.getUint16(at + 5), width: view.getUint16(at + 7), pages: 1 };
    }
    at += 2 + view.getUint16(at + 2);
  }
  throw unreadable("no JPEG frame header");
}

function tiff(view: DataView): ImageHeader {
  const le = view.getUint16(0) === 0x4949;
  const u16 = (at: number) => view.getUint16(at, le);
  const u32 = (at: number) => view.getUint32(at, le);
  let width = 0;
  let height = 0;
  let pages = 0;
  const seen = new Set<number>();
  // Image file directories form a chain; a loop in it (a hostile file) ends the count.
  for (let ifd = u32(4); ifd !== 0 && !seen.has(ifd) && pages < 10_000; ifd = u32(ifd + 2 + u16(ifd) * 12)) {
    if (ifd + 2 > view.byteLength || ifd + 6 + u16(ifd) * 12 > view.byteLength) throw unreadable("a TIFF directory is cut short");
    seen.add(ifd);
    pages++;
    if (pages > 1) continue;
    for (let i = 0, at = ifd + 2; i < u16(ifd); i++, at += 12) {
      const tag = u16(at);
      const value = u16(at + 2) === 3 ? u16(at + 8) : u32(at + 8);
      if (tag === 256) width = value;
      else if (tag === 257) height = value;
    }
  }
  if (pages === 0 || !width || !height) throw unreadable("no TIFF image size");
  return { format: "tiff", width, height, pages };
}

/**
 * The format, size and page count of an image, from its header. Throws unreadable_file for a file that is none of
 * PNG, JPEG and TIFF, too_many_pages for a TIFF of several pages (the OCR engine reads a TIFF's first page only), and
 * payload_too_large above MAX_OCR_PIXELS.
 */
export function readImageHeader(bytes: Uint8Array): ImageHeader {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.byteLength < 8) throw unreadable("too short");
  let header: ImageHeader;
  if (view.getUint32(0) === 0x89504e47) header = png(view);
  else if (view.getUint16(0) === 0xffd8) header = jpeg(view);
  else if (view.getUint32(0) === 0x49492a00 || view.getUint32(0) === 0x4d4d002a) header = tiff(view);
  else throw unreadable("not a PNG, JPEG or TIFF");
  if (header.pages > 1)
    throw new ApiError(
      "too_many_pages",
      `the TIFF holds ${header.pages} pages; docket reads a TIFF of one page: send the pages as one PDF, or one TIFF each`,
    );
  if (header.width * header.height > MAX_OCR_PIXELS)
    throw new ApiError(
      "payload_too_large",
      `the image is ${header.width} × ${header.height} pixels; OCR reads at most ${MAX_OCR_PIXELS} pixels: scale it down (300 dpi is plenty)`,
    );
  return header;
}
