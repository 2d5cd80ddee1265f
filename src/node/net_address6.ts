/**
 * IPv6 address maths, pure and table-tested: parsing a literal (with an
 * optional `%scope`), telling link-local addresses, attaching the scope a
 * link-local source arrived on (Deno reports such sources without one),
 * `[addr]:port` formatting, `HOST[:PORT]` with IPv6 literals, and the
 * link-local multicast targets of the host's interfaces.
 *
 * @module
 */
import { type InterfaceAddress, interfaceAllowed, type InterfaceFilter } from "./net_address.ts";

/**
 * lanchat's link-local multicast group: `ff02::` + "LNCH" in hex. Not an
 * IANA-assigned group (those are ff02::1 … ff02::1:ff00:0/104 and a few
 * listed ones); every daemon joins it on every IPv6 interface.
 */
export const LANCHAT_GROUP6 = "ff02::4c4e:4348";

/** A scope (interface name or number) as it may follow `%`: no spaces, no brackets, nothing a log or URL would mangle. */
const SCOPE = /^[A-Za-z0-9_.\-]{1,15}$/;

/**
 * Parses an IPv6 literal (RFC 4291 text forms: `::` once, 1–4 hex digits a
 * group, an IPv4 dotted quad in the last 32 bits, an optional `%scope`)
 * into its eight 16-bit groups and its scope, or undefined.
 */
export function parseIPv6(s: string): { groups: number[]; scope?: string } | undefined {
  if (s.length > 64) return undefined;
  let addr = s;
  let scope: string | undefined;
  const pct = s.indexOf("%");
  if (pct >= 0) {
    scope = s.slice(pct + 1);
    addr = s.slice(0, pct);
    if (!SCOPE.test(scope)) return undefined;
  }
  if (!/^[0-9A-Fa-f:.]+$/.test(addr) || !addr.includes(":")) return undefined;
  const halves = addr.split("::");
  if (halves.length > 2) return undefined;
  const parse = (part: string, last: boolean): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    const pieces = part.split(":");
    for (const [i, p] of pieces.entries()) {
      if (last && i === pieces.length - 1 && p.includes(".")) {
        const q = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(p);
        if (!q) return undefined;
        const o = q.slice(1).map(Number);
        if (o.some((x) => x > 255)) return undefined;
        out.push(o[0]! * 256 + o[1]!, o[2]! * 256 + o[3]!);
        continue;
      }
      if (!/^[0-9A-Fa-f]{1,4}$/.test(p)) return undefined;
      out.push(parseInt(p, 16));
    }
    return out;
  };
  if (halves.length === 2) {
    const head = parse(halves[0]!, false);
    const tail = parse(halves[1]!, true);
    if (!head || !tail || head.length + tail.length > 7) return undefined;
    const groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
    return scope === undefined ? { groups } : { groups, scope };
  }
  const groups = parse(addr, true);
  if (!groups || groups.length !== 8) return undefined;
  return scope === undefined ? { groups } : { groups, scope };
}

/** True for an IPv6 literal (with or without a scope). */
export function isIPv6(s: string): boolean {
  return parseIPv6(s) !== undefined;
}

/** True for an IPv6 link-local unicast address (fe80::/10), scoped or not. */
export function isLinkLocal6(s: string): boolean {
  const a = parseIPv6(s);
  return a !== undefined && (a.groups[0]! & 0xffc0) === 0xfe80;
}

/** True for an IPv6 multicast address (ff00::/8). */
export function isMulticast6(s: string): boolean {
  const a = parseIPv6(s);
  return a !== undefined && (a.groups[0]! & 0xff00) === 0xff00;
}

/** An address without its `%scope` (IPv4 and unscoped addresses unchanged). */
export function withoutScope(address: string): string {
  const pct = address.indexOf("%");
  return pct < 0 ? address : address.slice(0, pct);
}

/**
 * The address a datagram came from as this daemon keeps it: a link-local
 * source (which Deno reports without a scope) gets the interface it arrived
 * on, so that an answer to it leaves by that interface; any other address
 * is unchanged, as is one that has a scope already.
 */
export function scoped(address: string, scope: string | undefined): string {
  if (scope === undefined || address.includes("%") || !isLinkLocal6(address)) return address;
  return `${address}%${scope}`;
}

/** `address:port`, with an IPv6 address in brackets: `[fe80::1%eth0]:47475`. */
export function formatHostPort(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * Splits `HOST`, `HOST:PORT`, `[IPV6]`, `[IPV6]:PORT` or a bare IPv6
 * literal (which has no port: write `[fd00::2]:47475` for one). Throws a
 * TypeError saying what is wrong for anything else (an unclosed bracket,
 * a bracketed name that is not IPv6, a port after a bare IPv6 literal that
 * makes it no address), a RangeError for a port out of 0–65535.
 */
export function splitHostPort(s: string, defaultPort: number): { host: string; port: number } {
  const t = s.trim();
  if (t === "") throw new TypeError(`Invalid address "${s}": expected HOST or HOST:PORT`);
  let host: string;
  let portText: string | undefined;
  if (t.startsWith("[")) {
    const m = /^\[([^\]]*)\](?::(\d{1,5}))?$/.exec(t);
    if (!m) {
      throw new TypeError(
        `Invalid address "${s}": expected [IPV6] or [IPV6]:PORT, e.g. [fd00::2]:47475`,
      );
    }
    host = m[1]!;
    portText = m[2];
    if (!isIPv6(host)) throw new TypeError(`Invalid address "${s}": "${host}" in brackets is not an IPv6 address`);
  } else if ((t.match(/:/g) ?? []).length > 1) {
    if (!isIPv6(t)) {
      throw new TypeError(
        `Invalid address "${s}": not an IPv6 address (an IPv6 address with a port is written [ADDR]:PORT)`,
      );
    }
    host = t;
  } else {
    const m = /^([^:\[\]%\s]+)(?::(\d{1,5}))?$/.exec(t);
    if (!m) throw new TypeError(`Invalid address "${s}": expected HOST or HOST:PORT`);
    host = m[1]!;
    portText = m[2];
  }
  const port = portText === undefined ? defaultPort : Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`Invalid port in "${s}": expected 0 to 65535`);
  }
  return { host, port };
}

/** One interface lanchat multicasts its announces on: the group, scoped to it, and its index. */
export interface Multicast6Target {
  interface: string;
  /** The interface index (the scope id of its link-local address), for joining the group. */
  index: number;
  /** Its link-local address (the source its announces carry). */
  address: string;
  /** `ff02::4c4e:4348%NAME`: where announces go, and what the interface's socket binds. */
  group: string;
}

/**
 * The interfaces to multicast on: every interface with an IPv6 link-local
 * address (it has a link where link-local multicast reaches the
 * neighbours; loopback has none), filtered as for IPv4, one per interface.
 */
export function multicastTargets6(
  addresses: readonly InterfaceAddress[],
  filter: InterfaceFilter = {},
): Multicast6Target[] {
  const out: Multicast6Target[] = [];
  const seen = new Set<string>();
  for (const a of addresses) {
    if (a.family !== "IPv6" || !isLinkLocal6(a.address) || !a.scopeid || !interfaceAllowed(a.name, filter)) continue;
    if (seen.has(a.name) || !SCOPE.test(a.name)) continue;
    seen.add(a.name);
    out.push({
      interface: a.name,
      index: a.scopeid,
      address: withoutScope(a.address),
      group: `${LANCHAT_GROUP6}%${a.name}`,
    });
  }
  return out;
}

/**
 * Whether a PEER given as an IPv6 address (`fd00::12`, `[fd00::12]`,
 * `[fd00::12]:47475`, `fe80::1`, `fe80::1%eth0`) names an endpoint written
 * `[ADDR]:PORT`: the same address (a query without a scope matches any), and
 * the same port when it gives one. False for a query that is no IPv6 address.
 */
export function matchesEndpoint6(query: string, endpoint: string): boolean {
  const q = query.trim();
  if (!q.startsWith("[") && (q.match(/:/g) ?? []).length < 2) return false;
  let want: { host: string; port: number };
  try {
    want = splitHostPort(q, 0);
  } catch {
    return false;
  }
  const a = parseIPv6(want.host);
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(endpoint);
  const b = m && parseIPv6(m[1]!);
  if (!a || !b || a.groups.join() !== b.groups.join()) return false;
  if (a.scope !== undefined && a.scope !== b.scope) return false;
  return !/^\[.*\]:\d+$/.test(q) || want.port === Number(m![2]);
}
