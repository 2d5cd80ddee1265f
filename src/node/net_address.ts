/**
 * Where to announce: directed broadcast addresses of the host's IPv4
 * interfaces, filtered by allow and deny lists. The address maths is pure
 * and table-tested; {@link readInterfaces} is the one call to the OS.
 *
 * @module
 */

/** An interface address as `Deno.networkInterfaces()` reports it. */
export interface InterfaceAddress {
  name: string;
  family: "IPv4" | "IPv6";
  address: string;
  netmask: string;
  /** IPv6: the scope id (the interface index for a link-local address; 0 for others). */
  scopeid?: number | null;
}

/** One place announces go: a broadcast address and the interface it belongs to. */
export interface BroadcastTarget {
  interface: string;
  address: string;
  broadcast: string;
}

/** Parses a dotted-quad IPv4 address to a 32-bit unsigned number, or undefined. */
export function parseIPv4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const octet = Number(m[i]);
    if (octet > 255) return undefined;
    n = n * 256 + octet;
  }
  return n;
}

/** Formats a 32-bit unsigned number as a dotted quad. */
export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/**
 * The directed broadcast address of `address`/`netmask` (`address | ~netmask`),
 * or undefined for /31 and /32 networks, which have none.
 */
export function directedBroadcast(address: string, netmask: string): string | undefined {
  const a = parseIPv4(address);
  const m = parseIPv4(netmask);
  if (a === undefined || m === undefined) return undefined;
  if ((~m >>> 0) <= 1) return undefined;
  return formatIPv4((a | ~m) >>> 0);
}

export interface InterfaceFilter {
  /** Only these interfaces, when non-empty. */
  include?: readonly string[];
  /** Never these interfaces. */
  exclude?: readonly string[];
  /** Interfaces known to be down (their addresses may still be listed). */
  down?: ReadonlySet<string>;
}

/** Whether an interface passes the allow and deny lists and is not known to be down. */
export function interfaceAllowed(name: string, filter: InterfaceFilter): boolean {
  if (filter.include?.length && !filter.include.includes(name)) return false;
  return !filter.exclude?.includes(name) && !filter.down?.has(name);
}

/** The broadcast targets for a list of interface addresses, one per subnet. */
export function broadcastTargets(
  addresses: readonly InterfaceAddress[],
  filter: InterfaceFilter = {},
): BroadcastTarget[] {
  const out: BroadcastTarget[] = [];
  const seen = new Set<string>();
  for (const a of addresses) {
    if (a.family !== "IPv4" || !interfaceAllowed(a.name, filter)) continue;
    const broadcast = directedBroadcast(a.address, a.netmask);
    if (!broadcast || seen.has(broadcast)) continue;
    seen.add(broadcast);
    out.push({ interface: a.name, address: a.address, broadcast });
  }
  return out;
}

/**
 * Reads the host's interface addresses, and which interfaces are down.
 * `Deno.networkInterfaces()` has no up/down flag, so on Linux the
 * operational state is read from /sys/class/net when that is allowed;
 * elsewhere every listed interface counts as up.
 */
export function readInterfaces(): { addresses: InterfaceAddress[]; down: Set<string> } {
  const addresses = Deno.networkInterfaces().map((i) => ({
    name: i.name,
    family: i.family,
    address: i.address,
    netmask: i.netmask,
    scopeid: i.scopeid,
  }));
  const down = new Set<string>();
  for (const name of new Set(addresses.map((a) => a.name))) {
    try {
      const state = Deno.readTextFileSync(`/sys/class/net/${name}/operstate`).trim();
      if (state === "down" || state === "lowerlayerdown") down.add(name);
    } catch {
      // Not Linux, or not allowed: treat as up.
    }
  }
  return { addresses, down };
}
