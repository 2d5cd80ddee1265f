/**
 * The /64 an IPv6 address is in: the unit one host controls (a host picks
 * addresses in its /64 at will, so per-address limits do not bound it).
 *
 * @module
 */

/**
 * `fd00:198:18::1:5` → `fd00:198:18:0::/64`; a link-local address keeps its
 * scope (`fe80:0:0:0::/64%eth0`: one link). Undefined for an IPv4 address
 * (dotted, or IPv4-mapped `::ffff:a.b.c.d`) or text that is not IPv6.
 *
 * @example
 * prefix64("fd00::1:2") // "fd00:0:0:0::/64"
 */
export function prefix64(address: string): string | undefined {
  if (!address.includes(":")) return undefined;
  const pct = address.indexOf("%");
  const scope = pct < 0 ? "" : address.slice(pct);
  const text = (pct < 0 ? address : address.slice(0, pct)).toLowerCase();
  if (text.includes(".")) return undefined; // IPv4-mapped or -embedded: counted as IPv4
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(":") : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  if (!groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return undefined;
  return `${groups.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(":")}::/64${scope}`;
}
