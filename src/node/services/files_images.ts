/**
 * The pictures among a transfer's files, as the transfer keeps them (a
 * short list in its stored record, so listing transfers never reads their
 * files): a file goes in once it is readable here — an outgoing one when
 * it is offered (its head read while it is hashed), an incoming one once
 * received and renamed into place — and only if its first bytes say PNG,
 * JPEG, GIF or WebP. Also how long a picture sent from the page stays.
 *
 * @module
 */
import type { ImageJson } from "../../api/types.ts";
import { HEAD_BYTES, imageSize, SNIFF_BYTES, sniffImage } from "../../protocol/media_type.ts";
import type { ImageEntry, Transfer } from "./files_model.ts";

/** Files up to this size are checked by their SHA-256 before they are served; larger ones by size and mtime. */
export const HASH_CHECK_MAX_BYTES = 64 * 1024 * 1024;

/** Pictures listed per transfer at most (an offer of 10,000 photos lists the first of them). */
export const MAX_IMAGES = 200;

/**
 * A transfer sent from the page whose files are all pictures, this many
 * bytes at most, keeps its upload once done (until the transfer is
 * forgotten), so the sender's page still shows what it sent; any other
 * upload goes when its transfer ends.
 */
export const KEEP_SENT_PICTURES_BYTES = 64 * 1024 * 1024;

/** The first {@link HEAD_BYTES} of a file (fewer for a short one); empty when it cannot be read. */
export async function headOf(path: string): Promise<Uint8Array> {
  try {
    using f = await Deno.open(path, { read: true });
    return await readHead(f, HEAD_BYTES);
  } catch {
    return new Uint8Array();
  }
}

/** The first `bytes` (default {@link SNIFF_BYTES}, what the type is told by) of an open file, read from where it is. */
export async function readHead(f: Deno.FsFile, bytes = SNIFF_BYTES): Promise<Uint8Array> {
  const head = new Uint8Array(bytes);
  let got = 0;
  while (got < head.length) {
    const n = await f.read(head.subarray(got));
    if (n === null) break;
    got += n;
  }
  return head.subarray(0, got);
}

/** File `n` as a picture of its transfer if its head says it is one (with its size in pixels where the head says). */
export function imageEntry(n: number, path: string, size: number, head: Uint8Array): ImageEntry | undefined {
  const type = sniffImage(head);
  if (!type) return undefined;
  return { n, name: path.slice(path.lastIndexOf("/") + 1), type, size, ...imageSize(head, type) };
}

/** Lists file `n` of `t` among its pictures if its head says it is one (kept in order, at most {@link MAX_IMAGES}). */
export function noteImage(t: Transfer, n: number, path: string, size: number, head: Uint8Array): void {
  const entry = imageEntry(n, path, size, head);
  if (!entry) return;
  const list = t.images ??= [];
  if (list.length >= MAX_IMAGES || list.some((i) => i.n === n)) return;
  list.push(entry);
  list.sort((a, b) => a.n - b.n);
}

/** The pictures of a transfer as the API shows them, or undefined for none. */
export function imagesJson(t: Transfer): ImageJson[] | undefined {
  if (!t.images?.length) return undefined;
  return t.images.map((i) => ({ ...i, url: `/transfers/${t.id}/files/${i.n}` }));
}

/** Whether a finished upload stays: done, and every file a picture, {@link KEEP_SENT_PICTURES_BYTES} at most. */
export function keepsUpload(t: Transfer): boolean {
  return t.state === "done" && (t.images?.length ?? 0) === t.count && t.bytes <= KEEP_SENT_PICTURES_BYTES;
}
