/**
 * lanchat's IPv6 discovery sockets: one per IPv6 interface, bound to the
 * group scoped to it (`[ff02::4c4e:4348%eth0]:47474`, SO_REUSEADDR so every
 * daemon of the host gets the announces) and joined to the group on that
 * interface; opened and closed as interfaces come and go.
 *
 * Why one per interface: Deno reports a link-local source without its
 * scope id (and has no IP_PKTINFO), so a single `::` socket could not tell
 * which link `fe80::1` is on, and an answer to it would leave by whichever
 * interface the routing table names first (TCP refuses an unscoped
 * link-local address outright: EINVAL). A socket bound to the group on one
 * interface receives only that interface's announces, so the interface is
 * known and the source is kept as `fe80::1%eth0`. Sending needs no socket of
 * its own: the unicast socket (dual-stack) sends to `ff02::4c4e:4348%eth0`,
 * whose scope picks the interface (there is no IP_MULTICAST_IF in Deno). It
 * also joins the group on each interface, only so that multicast loopback
 * can be turned on (Deno sets it per membership; it is off by default), so
 * that the other daemons of the host hear it.
 *
 * A link-local source on the unicast socket (a message, a reply) also comes
 * without a scope: it gets the interface its node was last heard on by
 * multicast, or the host's only IPv6 interface.
 *
 * @module
 */
import { logger } from "../../common/log.ts";
import type { Endpoint } from "../../protocol/discovery.ts";
import { isLinkLocal6, LANCHAT_GROUP6, type Multicast6Target, scoped } from "../net_address6.ts";
import type { Notices } from "../notices.ts";
import type { Service, ServiceContext } from "../service.ts";

/** Socket names: this prefix, then the interface name. */
export const DISCOVERY6_PREFIX = "discovery6%";

/** Link-local sources remembered with their interface, at most. */
const MAX_SCOPES = 4096;

export class Multicast6Sockets {
  /** Interface name → the index its socket was joined with. */
  #open = new Map<string, number>();
  #pending = new Set<string>();
  /** Interface indexes the sending socket joined the group on (for multicast loopback). */
  #looped = new Set<number>();
  /** Link-local address (bare) → the interface it was last heard on by multicast. */
  #scopes = new Map<string, string>();
  #notices: Notices;
  #log = logger("daemon");

  constructor(notices: Notices) {
    this.#notices = notices;
  }

  /** The interfaces with an open socket. */
  get interfaces(): string[] {
    return [...this.#open.keys()];
  }

  /**
   * Opens a socket for each interface newly listed, closes those of
   * interfaces gone (or whose index changed: the interface was recreated).
   * A socket that cannot be opened is said once and tried again at the next
   * refresh.
   */
  async reconcile(
    targets: readonly Multicast6Target[],
    port: number,
    ctx: ServiceContext,
    service: Service,
    sender: string,
  ): Promise<void> {
    if (!ctx.openSocket || !ctx.closeSocket) return;
    const wanted = new Map(targets.map((t) => [t.interface, t]));
    for (const [name, index] of this.#open) {
      if (wanted.get(name)?.index === index) continue;
      ctx.closeSocket(DISCOVERY6_PREFIX + name);
      this.#open.delete(name);
    }
    const opening: Promise<void>[] = [];
    for (const t of wanted.values()) {
      if (this.#open.has(t.interface) || this.#pending.has(t.interface)) continue;
      this.#pending.add(t.interface);
      opening.push(
        ctx.openSocket({
          name: DISCOVERY6_PREFIX + t.interface,
          hostname: t.group,
          port,
          reuseAddress: true,
          joinV6: { group: LANCHAT_GROUP6, index: t.index },
        }, service).then(
          async () => {
            this.#open.set(t.interface, t.index);
            this.#log.debug("Listening for IPv6 announces on {group}", { group: t.group });
            // The other daemons of this host hear this one's announces (as they hear its IPv4 broadcasts on lo).
            if (!this.#looped.has(t.index) && ctx.loopMulticastV6) {
              this.#looped.add(t.index);
              await ctx.loopMulticastV6(sender, LANCHAT_GROUP6, t.index).catch((e) =>
                this.#log.debug("No IPv6 multicast loopback on {iface}: {error}", {
                  iface: t.interface,
                  error: (e as Error).message,
                })
              );
            }
          },
          (e) =>
            this.#notices.once(
              `multicast6:${t.interface}`,
              "Cannot listen for IPv6 announces on {iface} ({error}); trying again every 5 s",
              { iface: t.interface, error: (e as Error).message },
            ),
        ).finally(() => this.#pending.delete(t.interface)),
      );
    }
    await Promise.all(opening);
  }

  /** The interface of a socket of this class, or undefined for another socket. */
  interfaceOf(socket: string): string | undefined {
    return socket.startsWith(DISCOVERY6_PREFIX) ? socket.slice(DISCOVERY6_PREFIX.length) : undefined;
  }

  /**
   * The source of a datagram as the daemon keeps it: a link-local source
   * scoped to the interface it came in on (a discovery socket's), else to the
   * interface it was last heard on by multicast, else to the only IPv6
   * interface; other addresses unchanged.
   */
  source(from: Endpoint, socket: string): Endpoint {
    if (!from.address.includes(":") || from.address.includes("%") || !isLinkLocal6(from.address)) return from;
    let scope = this.interfaceOf(socket);
    if (scope !== undefined) {
      if (!this.#scopes.has(from.address) && this.#scopes.size >= MAX_SCOPES) this.#scopes.clear();
      this.#scopes.set(from.address, scope);
    } else {
      scope = this.#scopes.get(from.address) ?? (this.#open.size === 1 ? [...this.#open.keys()][0] : undefined);
    }
    return scope === undefined ? from : { address: scoped(from.address, scope), port: from.port };
  }
}
