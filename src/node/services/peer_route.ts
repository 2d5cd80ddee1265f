/**
 * Which of a dual-stack peer's addresses messages go to. The roster lists a
 * peer's addresses most recently heard first, and multicast hellos keep its
 * IPv6 link-local address fresh even where IPv6 unicast to it is blocked:
 * sending only to the first stalled messages there while IPv4 worked. So a
 * message goes to the address that last acknowledged one, and after
 * {@link ROTATE_AFTER} datagrams with no ack each next one goes to the next
 * of its addresses, in turn (counted, not timed: retransmissions back off
 * exponentially, and turns by time fell on the same address each time).
 *
 * @module
 */
import type { Endpoint } from "../../protocol/transmit.ts";

/** Message datagrams sent with no ack (the first and two retransmissions, ~0.6 s) before the next address is tried. */
export const ROTATE_AFTER = 3;

/** An address as compared here: no scope, IPv4-mapped as IPv4. */
function key(e: Endpoint): string {
  const pct = e.address.indexOf("%");
  const a = (pct < 0 ? e.address : e.address.slice(0, pct)).toLowerCase().replace(/^::ffff:(?=\d+\.)/, "");
  return `${a}|${e.port}`;
}

export class PeerRoutes {
  #routes = new Map<string, { preferred?: string; start?: string; unacked: number }>();

  /** Where the next message datagram to `peer` goes, among `addresses` (any order); undefined if none. */
  pick(peer: string, addresses: readonly Endpoint[]): Endpoint | undefined {
    if (addresses.length === 0) return undefined;
    if (addresses.length === 1) return addresses[0];
    let r = this.#routes.get(peer);
    if (!r) this.#routes.set(peer, r = { unacked: 0 });
    // A stable order, so that turns go round all addresses whatever order hellos came in.
    const sorted = [...addresses].sort((a, b) => key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
    // Where this run of unacknowledged datagrams began, kept for the run: the roster's order changes with every
    // packet heard from the peer (the failure detector's pings, three a second), and a start that moved with it
    // made the turns fall on the blocked address again and again.
    if (r.unacked === 0 || r.start === undefined) r.start = r.preferred ?? key(addresses[0]!);
    const first = r.start;
    const start = Math.max(0, sorted.findIndex((a) => key(a) === first));
    const turns = r.unacked < ROTATE_AFTER ? 0 : 1 + r.unacked - ROTATE_AFTER;
    r.unacked++;
    return sorted[(start + turns) % sorted.length];
  }

  /** An ack from `peer` came from `from`: that address works; it is used first from now on. */
  acked(peer: string, from: Endpoint): void {
    this.#routes.set(peer, { preferred: key(from), unacked: 0 });
  }

  /** The peer left: nothing kept. */
  forget(peer: string): void {
    this.#routes.delete(peer);
  }

  /** Peers with a route kept. */
  get size(): number {
    return this.#routes.size;
  }
}
