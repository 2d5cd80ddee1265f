/**
 * The `peers` packet (type 9): peer exchange. `{ask: true}` asks a peer for
 * the lanchat nodes it knows; the answer lists up to {@link MAX_PEER_ENTRIES}
 * of them, each a node id, an IPv4 address and its unicast port. It travels
 * over the end-to-end session (authenticated to its sender) like a note; a
 * receiver only sends its own hello to an entry, which joins by answering.
 *
 * @module
 */
import { isUnicastV4 } from "../common/unicast.ts";

/** Entries one answer carries at most (so it stays within one datagram). */
export const MAX_PEER_ENTRIES = 12;

/** One node a peer knows. */
export interface PeerEntry {
  id: string;
  address: string;
  port: number;
}

export interface PeerList {
  kind: "peers";
  id: string;
  incarnation: number;
  /** A request for the sender's known peers (then `entries` is empty). */
  ask: boolean;
  entries: PeerEntry[];
}

/** The JSON fields of a `peers` packet. */
export function peerListFields(p: PeerList): Record<string, unknown> {
  return {
    id: p.id,
    inc: p.incarnation,
    ...(p.ask ? { ask: true } : {}),
    e: p.entries.slice(0, MAX_PEER_ENTRIES).map((e) => [e.id, e.address, e.port]),
  };
}

const ID = /^[0-9a-f]{32}$/;
const V4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** A `peers` packet from its fields, or what is wrong with them. */
export function validatePeerList(b: Record<string, unknown>, id: string, incarnation: number): PeerList | string {
  const ask = b.ask === undefined ? false : b.ask;
  if (typeof ask !== "boolean") return "ask: expected a boolean";
  const e = b.e ?? [];
  if (!Array.isArray(e) || e.length > MAX_PEER_ENTRIES) return `e: expected at most ${MAX_PEER_ENTRIES} entries`;
  const entries: PeerEntry[] = [];
  for (const x of e) {
    if (!Array.isArray(x) || x.length !== 3) return "e: an entry is [id, address, port]";
    const [eid, address, port] = x;
    if (typeof eid !== "string" || !ID.test(eid)) return "e: an entry's id is 32 lowercase hex characters";
    if (typeof address !== "string" || !V4.test(address)) return "e: an entry's address is IPv4";
    if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
      return "e: an entry's port is 1 to 65535";
    }
    if (!isUnicastV4(address)) continue; // broadcast, multicast, loopback, 0/8: never probed
    entries.push({ id: eid, address, port });
  }
  return { kind: "peers", id, incarnation, ask, entries };
}
