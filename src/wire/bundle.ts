/**
 * Bundles: several lanchat datagrams to one peer carried in one end-to-end
 * data packet (security/e2e_wire.ts type 3), so that a burst of messages, or
 * the acks of a burst, costs one seal, one open and one send instead of one
 * each. Pure: bytes in, bytes out.
 *
 * ```
 * bundle: magic "LNCB" (4c 4e 43 42) ‖ one or more members:
 *           length (2 bytes, big-endian, ≥ 1) ‖ that many bytes: one LNCH datagram
 * ```
 *
 * A lone datagram travels as it is (no bundle): the first four bytes tell a
 * bundle from a datagram. Members keep the order they were sent in.
 *
 * @module
 */
import { MAGIC } from "./frame.ts";

export const BUNDLE_MAGIC: Uint8Array = new Uint8Array([0x4c, 0x4e, 0x43, 0x42]); // "LNCB"
/** Bytes a member adds to its datagram in a bundle. */
export const MEMBER_OVERHEAD = 2;

/** Whether `bytes` is a bundle (by its magic). */
export function isBundle(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === BUNDLE_MAGIC[0] && bytes[1] === BUNDLE_MAGIC[1] &&
    bytes[2] === BUNDLE_MAGIC[2] && bytes[3] === BUNDLE_MAGIC[3];
}

/**
 * Packs `datagrams` (in order) into as few payloads of at most `max` bytes
 * as the order allows: each payload a bundle of those that fit together, or
 * a lone datagram as it is. A datagram longer than `max` alone is an error
 * of the caller (none is: see e2e_wire.ts MAX_INNER).
 */
export function packBundles(datagrams: readonly Uint8Array[], max: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let run: Uint8Array[] = [];
  let size = BUNDLE_MAGIC.length;
  const close = () => {
    if (run.length === 1) out.push(run[0]!);
    else if (run.length > 1) out.push(encodeBundle(run, size));
    run = [];
    size = BUNDLE_MAGIC.length;
  };
  for (const d of datagrams) {
    if (d.length > max) throw new RangeError(`A datagram of ${d.length} bytes does not fit in ${max}`);
    if (d.length === 0 || d.length > 0xffff) throw new RangeError(`A bundle member of ${d.length} bytes`);
    if (run.length > 0 && size + MEMBER_OVERHEAD + d.length > max) close();
    run.push(d);
    size += MEMBER_OVERHEAD + d.length;
  }
  close();
  return out;
}

function encodeBundle(members: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  out.set(BUNDLE_MAGIC);
  let at = BUNDLE_MAGIC.length;
  for (const m of members) {
    out[at] = m.length >> 8;
    out[at + 1] = m.length & 0xff;
    out.set(m, at + MEMBER_OVERHEAD);
    at += MEMBER_OVERHEAD + m.length;
  }
  return out;
}

/**
 * The datagrams of a bundle (views into it), or why it is malformed: a
 * member of length 0, one running past the end, one that is not an LNCH
 * datagram (a bundle inside a bundle), or fewer than two members.
 */
export function unpackBundle(bytes: Uint8Array): Uint8Array[] | string {
  if (!isBundle(bytes)) return "not a bundle";
  const out: Uint8Array[] = [];
  let at = BUNDLE_MAGIC.length;
  while (at < bytes.length) {
    if (at + MEMBER_OVERHEAD > bytes.length) return `a member length cut short at byte ${at}`;
    const n = (bytes[at]! << 8) | bytes[at + 1]!;
    at += MEMBER_OVERHEAD;
    if (n === 0) return `an empty member at byte ${at - MEMBER_OVERHEAD}`;
    if (at + n > bytes.length) return `a member of ${n} bytes runs past the end (${bytes.length - at} left)`;
    const m = bytes.subarray(at, at + n);
    if (m.length < 4 || m[0] !== MAGIC[0] || m[1] !== MAGIC[1] || m[2] !== MAGIC[2] || m[3] !== MAGIC[3]) {
      return `member ${out.length + 1} is not a lanchat datagram`;
    }
    out.push(m);
    at += n;
  }
  if (out.length < 2) return `a bundle of ${out.length} member${out.length === 1 ? "" : "s"}`;
  return out;
}
