/**
 * What makes a `--peer` address name no peer: an unspecified, broadcast or
 * multicast address (IPv4, or IPv4-mapped IPv6), the directed broadcast of
 * one of this host's subnets (the node would broadcast to every host's
 * unicast port each interval). A scope naming no interface is not refused:
 * the interface may appear later (targets.ts warns). Pure: the interfaces are passed in (table-tested).
 *
 * @module
 */
import { parseIPv6 } from "./net_address6.ts";

/** The fields of `Deno.networkInterfaces()` used here. */
export interface InterfaceInfo {
  family: "IPv4" | "IPv6";
  name: string;
  address: string;
  netmask: string;
  scopeid: number | null;
}

/** True when `scope` (after `%`) names one of `interfaces`, by name or by index. */
export function scopeKnown(scope: string, interfaces: readonly { name: string; scopeid?: number | null }[]): boolean {
  return interfaces.some((i) => i.name === scope || (i.scopeid != null && String(i.scopeid) === scope));
}

function v4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const o = m.slice(1).map(Number);
  if (o.some((x) => x > 255)) return undefined;
  return ((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) >>> 0;
}

function v4Problem(a: number, interfaces: readonly InterfaceInfo[]): string | undefined {
  if (a >>> 24 === 0) return "an unspecified address (0.0.0.0/8) names no peer";
  if (a === 0xffffffff) return "255.255.255.255 is the broadcast address, not a peer";
  if (a >>> 28 === 0xe) return "a multicast address names no peer";
  for (const i of interfaces) {
    if (i.family !== "IPv4") continue;
    const addr = v4(i.address);
    const mask = v4(i.netmask);
    if (addr === undefined || mask === undefined || mask >>> 0 >= 0xfffffffe) continue; // /31, /32: no broadcast
    if (a === ((addr | ~mask) >>> 0)) return `the broadcast address of ${i.name}'s subnet names no peer`;
  }
  return undefined;
}

/**
 * Why `host` (an IPv4 address, an IPv6 literal with or without `%scope`, or
 * a host name) names no peer, or undefined when it may. Host names are not
 * resolved here.
 */
export function peerAddressProblem(host: string, interfaces: readonly InterfaceInfo[]): string | undefined {
  const four = v4(host);
  if (four !== undefined) return v4Problem(four, interfaces);
  const six = parseIPv6(host);
  if (!six) return undefined;
  const g = six.groups;
  if (g.every((x) => x === 0)) return "the unspecified address :: names no peer";
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) {
    return v4Problem(((g[6]! << 16) | g[7]!) >>> 0, interfaces);
  }
  if ((g[0]! & 0xff00) === 0xff00) return "a multicast address names no peer";
  return undefined;
}

/** This host's interfaces, or none when they cannot be read (then only the checks that need none are made). */
export function readInterfaces(): InterfaceInfo[] {
  try {
    return Deno.networkInterfaces();
  } catch {
    return [];
  }
}
