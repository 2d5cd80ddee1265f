/**
 * Whether an IPv4 address may be a peer's: what a peer-exchange entry or a
 * DNS-SD A record names must be one, or it is not probed.
 *
 * @module
 */

/** An IPv4 address a peer may have: not 0/8, loopback, multicast, reserved (240/4) or the limited broadcast. */
export function isUnicastV4(s: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return false;
  const b = m.slice(1).map(Number);
  if (b.some((x) => x > 255)) return false;
  return b[0]! !== 0 && b[0]! !== 127 && b[0]! < 224;
}
