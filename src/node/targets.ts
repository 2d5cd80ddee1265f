/**
 * Where announces go, re-read every few seconds: the directed broadcast of
 * every IPv4 interface that is up and lanchat's link-local multicast group
 * on every IPv6 interface (with `--interface`/`--exclude-interface`
 * applied; no IPv6 with `--no-ipv6`), the extra `--broadcast` addresses, and the `--peer` hosts
 * (host names resolved each time). Discovery announces to them; IP
 * Messenger broadcasts its entries to the same addresses.
 *
 * @module
 */
import { logger } from "../common/log.ts";
import type { Endpoint } from "../protocol/discovery.ts";
import { isOutOfFds } from "./http_server.ts";
import { type BroadcastTarget, broadcastTargets, parseIPv4 } from "./net_address.ts";
import { isIPv6, type Multicast6Target, multicastTargets6, parseIPv6 } from "./net_address6.ts";
import { scopeKnown } from "./peer_address.ts";
import type { Notices } from "./notices.ts";
import { type DaemonIo, dnsProblem, parseHostPort } from "./options.ts";

export interface TargetOptions {
  /** Allow list of interface names (empty: all). */
  interfaces?: string[];
  excludeInterfaces?: string[];
  /** Extra broadcast addresses. */
  broadcasts?: string[];
  /** Static unicast peers, `HOST[:PORT]`. */
  peers?: string[];
  /** Port broadcasts go to (the discovery port). */
  discoveryPort: number;
  /** Default port of a static peer (the unicast port). */
  unicastPort: number;
  /** Multicast on IPv6 interfaces and announce to IPv6 static peers (default true; false: `--no-ipv6`). */
  ipv6?: boolean;
}

/** The announce targets, as last read. */
export class Targets {
  /** The interfaces announced on (for `/status`). */
  interfaces: BroadcastTarget[] = [];
  broadcast: Endpoint[] = [];
  /** The IPv6 interfaces announced on by link-local multicast (their group endpoints are in {@link broadcast}). */
  multicast6: Multicast6Target[] = [];
  statics: Endpoint[] = [];
  #io: DaemonIo;
  #o: TargetOptions;
  #notices: Notices;
  #log = logger("daemon");
  #listeners: ((t: Targets) => void)[] = [];
  /** `--peer` hosts as last resolved, and the endpoints DNS-SD found (see {@link setDiscovered}). */
  #configured: Endpoint[] = [];
  #discovered = new Map<string, Endpoint[]>();

  constructor(io: DaemonIo, options: TargetOptions, notices: Notices) {
    this.#io = io;
    this.#o = options;
    this.#notices = notices;
  }

  /** The discovery port (announces go to it, the IPv6 discovery sockets bind it). */
  get discoveryPort(): number {
    return this.#o.discoveryPort;
  }

  /** Calls `listener` after every refresh. */
  onRefresh(listener: (t: Targets) => void): void {
    this.#listeners.push(listener);
  }

  /** Reads interfaces and resolves static peers again. */
  async refresh(): Promise<void> {
    const o = this.#o;
    let interfaces: BroadcastTarget[] = [];
    let multicast6: Multicast6Target[] = [];
    const ipv6 = o.ipv6 ?? true;
    const known = new Set<string>();
    let addresses: readonly { name: string; scopeid?: number | null }[] = [];
    try {
      const read = this.#io.readInterfaces();
      const down = read.down;
      addresses = read.addresses;
      for (const a of addresses) known.add(a.name);
      const filter = { include: o.interfaces, exclude: o.excludeInterfaces, down };
      interfaces = broadcastTargets(read.addresses, filter);
      if (ipv6) multicast6 = multicastTargets6(read.addresses, filter);
    } catch (e) {
      if (isOutOfFds(e)) this.#notices.outOfFds("reading network interfaces", e);
      else this.#log.warn("Cannot read network interfaces: {error}", { error: (e as Error).message });
    }
    for (const name of known.size > 0 ? o.interfaces ?? [] : []) {
      if (!known.has(name)) {
        this.#notices.once(
          `interface:${name}`,
          "--interface {name} names no interface of this host (it has {names}); nothing is announced there until it appears",
          { name, names: [...known].join(", ") || "none" },
        );
      }
    }
    if (
      JSON.stringify(interfaces) !== JSON.stringify(this.interfaces) ||
      JSON.stringify(multicast6) !== JSON.stringify(this.multicast6)
    ) {
      const all = [
        ...interfaces.map((i) => `${i.interface} ${i.broadcast}`),
        ...multicast6.map((m) => `${m.interface} ${m.group}`),
      ];
      this.#log.info("Announcing on {targets}", { targets: all.length ? all.join(", ") : "no interface" });
    }
    const port = o.discoveryPort;
    const broadcast: Endpoint[] = interfaces.map((i) => ({ address: i.broadcast, port }));
    for (const m of multicast6) broadcast.push({ address: m.group, port });
    for (const b of o.broadcasts ?? []) broadcast.push({ address: b, port });
    const statics: Endpoint[] = [];
    for (const spec of o.peers ?? []) {
      const { host, port: p } = parseHostPort(spec, o.unicastPort);
      if (isIPv6(host)) {
        const scope = parseIPv6(host)?.scope;
        if (ipv6 && scope !== undefined && known.size > 0 && !scopeKnown(scope, addresses)) {
          this.#notices.once(
            `peer-scope:${host}`,
            "--peer {host} names interface {scope}, which this host does not have (it has {names}); not announced to until it appears",
            { host, scope, names: [...known].join(", ") },
          );
        } else if (ipv6) statics.push({ address: host, port: p });
        else {
          this.#notices.once(
            `no-ipv6:${host}`,
            "--peer {host} is an IPv6 address and --no-ipv6 is given: not announced to",
            {
              host,
            },
          );
        }
        continue;
      }
      if (parseIPv4(host) !== undefined) {
        statics.push({ address: host, port: p });
        continue;
      }
      try {
        for (const a of await this.#io.resolve(host)) statics.push({ address: a, port: p });
      } catch (e) {
        if (isOutOfFds(e)) this.#notices.outOfFds("resolving a --peer host name", e);
        else {
          this.#notices.once(`resolve:${host}`, "Cannot resolve --peer {host}: {error}; will try again every 5 s", {
            host,
            error: dnsProblem(e),
          });
        }
      }
    }
    this.interfaces = interfaces;
    this.multicast6 = multicast6;
    this.broadcast = broadcast;
    this.#configured = statics;
    this.#publish();
  }

  /**
   * Endpoints found by `source` (DNS-SD, peer exchange, the known-peer
   * cache): announced to like `--peer` hosts, so that a node found there
   * gets this node's signed hello and answers with its own.
   */
  setDiscovered(source: string, endpoints: Endpoint[]): void {
    this.#discovered.set(source, endpoints);
    this.#publish();
  }

  #publish(): void {
    const seen = new Set<string>();
    const statics: Endpoint[] = [];
    for (const e of [...this.#configured, ...[...this.#discovered.values()].flat()]) {
      const key = `${e.address}:${e.port}`;
      if (seen.has(key)) continue;
      seen.add(key);
      statics.push(e);
    }
    this.statics = statics;
    for (const l of this.#listeners) l(this);
  }
}
