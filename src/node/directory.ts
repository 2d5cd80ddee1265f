/**
 * The address book: every peer seen, lanchat or IP Messenger, remembered in
 * the database so that it can be named and written to while offline; the
 * one rule that turns what a user typed into a peer (`lookup`); and the
 * pruning of peers that were never messaged and are long gone. A service
 * with no socket: it listens to the bus for peers joining and changing.
 *
 * @module
 */
import type { DaemonEvent, PeerLookup } from "../api/types.ts";
import { logger } from "../common/log.ts";
import type { IpmsgPeer } from "../protocol/ipmsg.ts";
import type { Pins } from "../security/pins.ts";
import type { KnownPeer, Store } from "../storage/store.ts";
import { parseIPv4 } from "./net_address.ts";
import { formatHostPort, matchesEndpoint6 } from "./net_address6.ts";
import { IDLE_PEER_TTL_MS, MAX_IDLE_KNOWN_PEERS, PRUNE_EVERY_MS } from "./options.ts";
import type { Outgoing, Service, ServiceContext } from "./service.ts";
import { NOTHING } from "./service.ts";
import type { OnlinePeer } from "./services/lanchat.ts";

/** Where the peers online come from (the roster, IP Messenger's users). */
export interface PeerSource {
  onlinePeers(): OnlinePeer[];
  /** The display name of a peer online, if it is one of this source's (O(1): asked for every message shown). */
  nameOf(id: string): string | undefined;
}

export class Directory implements Service {
  readonly name = "directory";
  #known = new Map<string, KnownPeer>();
  #store: Store;
  #pins: Pins;
  #sources: PeerSource[] = [];
  #ctx!: ServiceContext;
  #log = logger("daemon");

  constructor(store: Store, pins: Pins) {
    this.#store = store;
    this.#pins = pins;
    for (const k of store.knownPeers()) this.#known.set(k.id, k);
  }

  /** Adds a source of peers online. */
  addSource(source: PeerSource): void {
    this.#sources.push(source);
  }

  /** Every peer seen before, online or not. */
  known(): Iterable<KnownPeer> {
    return this.#known.values();
  }

  get(id: string): KnownPeer | undefined {
    return this.#known.get(id);
  }

  start(ctx: ServiceContext): void {
    this.#ctx = ctx;
    this.#prune();
    ctx.every(PRUNE_EVERY_MS, () => this.#prune());
  }

  onEvent(event: DaemonEvent, now: number): void {
    const wall = this.#ctx.wall(now);
    if (event.type === "joined" || event.type === "restarted") {
      const p = event.peer;
      const first = p.addresses[0];
      if (!first) return;
      this.#remember({
        id: p.id,
        protocol: "lanchat",
        name: p.name,
        hostname: p.hostname,
        address: first.address,
        port: first.port,
        lastSeen: wall,
      });
    } else if (event.type === "left" || event.type === "ipmsg-left") {
      // Last seen when it left: at its goodbye (now), or at the last packet heard before it timed out.
      const had = this.#known.get(event.peer.id);
      const seen = event.reason === "goodbye" ? wall : this.#ctx.wall(event.peer.lastSeen);
      if (had && seen > had.lastSeen) this.#remember({ ...had, lastSeen: seen });
    } else if (event.type === "ipmsg-joined" || event.type === "ipmsg-updated") {
      const known = ipmsgKnown(event.peer, wall);
      const had = this.#known.get(known.id);
      // An update that changes nothing (a message from a peer already known) is not written again.
      const same = had && had.name === known.name && had.hostname === known.hostname &&
        had.address === known.address && had.port === known.port;
      if (event.type === "ipmsg-joined" || !same) this.#remember(known);
    }
  }

  /** Remembers a peer (in memory and in the database), so that it can be addressed while offline. */
  #remember(known: KnownPeer): void {
    this.#known.set(known.id, known);
    try {
      this.#store.rememberPeer(known);
    } catch (e) {
      this.#log.warn("{error}", { error: (e as Error).message });
    }
  }

  /** Forgets known peers never messaged and long unseen (see {@link IDLE_PEER_TTL_MS}). */
  #prune(): void {
    const now = this.#ctx.wall(this.#ctx.io.now());
    try {
      const gone = this.#store.pruneKnownPeers(now - IDLE_PEER_TTL_MS, MAX_IDLE_KNOWN_PEERS);
      for (const id of gone) this.#known.delete(id);
      if (gone.length > 0) {
        this.#log.info("Forgot {count} peers never messaged and not seen for 7 days", { count: gone.length });
      }
    } catch (e) {
      this.#log.warn("{error}", { error: (e as Error).message });
    }
  }

  /** A peer's display name: online, else as last seen; else its short id. */
  peerName(id: string): string {
    for (const s of this.#sources) {
      const name = s.nameOf(id);
      if (name !== undefined) return name;
    }
    return this.#known.get(id)?.name ?? id.slice(0, 12);
  }

  /** Whether a peer is online now (in the roster, or an IP Messenger user heard from). */
  isOnline(id: string): boolean {
    return this.#sources.some((s) => s.nameOf(id) !== undefined);
  }

  /** Every peer online, for a broadcast. */
  onlinePeers(): { id: string; name: string }[] {
    return this.#sources.flatMap((s) => s.onlinePeers()).map((p) => ({ id: p.id, name: p.name }));
  }

  /**
   * Finds the peer a user means by `query`, online or seen before, by the
   * first of these rules that matches anything:
   *
   * 1. its node id;
   * 2. its display name, exactly, or `NAME@HOST`: a peer named NAME (or,
   *    an IP Messenger user, with the login NAME) on the host HOST (split at
   *    the last `@`, so a name holding `@` itself is written in full before
   *    it; the host name without regard to case, as DNS has it); both forms
   *    together, so a peer whose name is `bob@host2` and a peer `bob` on
   *    host2 are two matches (ambiguous), not the first one found; a key
   *    whose name is pinned to another (in conflict, or replaced) is chosen
   *    by `NAME@HOST` when every other key holding the name is a peer known
   *    on another host (two bobs on two hosts), else refused as by name;
   *    3. the same without regard to case;
   * 4. an IPv4 address it was heard on (`A.B.C.D`), and with `:PORT` also
   *    that port (its unicast port, or 2425 for IP Messenger);
   * 5. an unambiguous id prefix (4+ hex characters); one that is also a
   *    name (rules 2 and 3) is ambiguous, both listed, never the name;
   * 6. its hostname, the user part of a `user@host` name, or its IP
   *    Messenger login name.
   *
   * `id:HEX` is an id prefix and only that (the form the CLI suggests: no
   * name can capture it, not even a peer named `id:…`).
   *
   * Exactly one match is the answer, whether online or not; more than one is
   * ambiguous, listed, never guessed (not even by preferring the one online:
   * a message meant for someone offline must not go to their namesake).
   */
  lookup(query: string): PeerLookup {
    const q = query.trim();
    /** A candidate, with the `address:port` endpoints it was heard on. */
    type Cand = OnlinePeer & { online: boolean };
    const cands = new Map<string, Cand>();
    for (const k of this.#known.values()) {
      cands.set(k.id, {
        id: k.id,
        name: k.name,
        hostname: k.hostname,
        online: false,
        endpoints: [formatHostPort(k.address, k.port)],
        protocol: k.protocol,
      });
    }
    for (const p of this.#sources.flatMap((s) => s.onlinePeers())) {
      const before = cands.get(p.id);
      cands.set(p.id, {
        ...p,
        online: true,
        endpoints: p.endpoints.concat(before?.endpoints ?? []),
      });
    }
    const all = [...cands.values()];
    const lower = q.toLowerCase();
    const at = /^(\d+\.\d+\.\d+\.\d+)(?::(\d+))?$/.exec(q);
    const atAddress = (c: Cand) =>
      at !== null && parseIPv4(at[1]!) !== undefined &&
      c.endpoints.some((e) => at[2] === undefined ? e.startsWith(`${at[1]}:`) : e === `${at[1]}:${Number(at[2])}`);
    // Or an IPv6 address it was heard on (`fd00::12`, `[fe80::1%eth0]:47475`).
    const atAddress6 = (c: Cand) => c.endpoints.some((e) => matchesEndpoint6(q, e));
    // A name picks a node only by a key pinned for it: not a key that claimed
    // a pinned name (a possible impersonation), not one whose name was handed
    // to another key. Ids, id prefixes and addresses are explicit enough.
    const trust = (c: Cand) => this.#pins.get(c.id)?.trust;
    const onHost = nameOnHost(q);
    // NAME@HOST names the one on that host: a key whose name another key holds (in conflict, or replaced)
    // is still chosen by it when every such other key is a peer known on another host (two people called
    // bob on two hosts), never when one is on the same host or not known (a new key for bob on host2).
    const hostClear = (c: Cand) =>
      onHost !== undefined && onHost.matches(c, true) && this.#pins.rivals(c.id).every((r) => {
        const rival = cands.get(r);
        return rival !== undefined && rival.hostname.toLowerCase() !== onHost.host;
      });
    const byName = (f: (c: Cand) => boolean) => (c: Cand) => f(c) && (trust(c) !== "replaced" || hostClear(c));
    const view = (c: Cand) => {
      const t = trust(c);
      return { id: c.id, name: c.name, hostname: c.hostname, online: c.online, ...(t ? { trust: t } : {}) };
    };
    // `id:HEX` is an id prefix and nothing else: no name can take it (the CLI suggests this form).
    const explicit = ID_FORM.exec(lower);
    if (explicit) {
      const hits = all.filter((c) => c.id.startsWith(explicit[1]!));
      if (hits.length === 1) return { ok: true, peer: view(hits[0]!) };
      if (hits.length > 1) return { ok: false, reason: "ambiguous", candidates: hits.map(view) };
      return { ok: false, reason: "unknown", candidates: all.map(view) };
    }
    // A bare id prefix a name also takes (a peer named like another's id prefix) is ambiguous: never the name.
    const prefixHits = /^[0-9a-f]{4,}$/.test(lower) ? all.filter((c) => c.id.startsWith(lower)) : [];
    const rules: ((c: Cand) => boolean)[] = [
      (c) => c.id === lower,
      byName((c) => c.name === q || (onHost !== undefined && onHost.matches(c, false))),
      byName((c) => c.name.toLowerCase() === lower || (onHost !== undefined && onHost.matches(c, true))),
      (c) => atAddress(c) || atAddress6(c),
      (c) => /^[0-9a-f]{4,}$/.test(lower) && c.id.startsWith(lower),
      byName((c) => c.hostname === q || c.name.split("@")[0] === q || c.user === q),
    ];
    for (const [i, rule] of rules.entries()) {
      let hits = all.filter(rule);
      const byNameRule = i === 1 || i === 2 || i === 5;
      if (byNameRule && hits.some((h) => trust(h) === "conflict" && !hostClear(h))) {
        return { ok: false, reason: "conflict", candidates: hits.map(view) };
      }
      if ((i === 1 || i === 2) && hits.length > 0 && prefixHits.some((p) => !hits.includes(p))) {
        hits = [...new Set([...hits, ...prefixHits])];
      }
      if (hits.length === 1) return { ok: true, peer: view(hits[0]!) };
      if (hits.length > 1) return { ok: false, reason: "ambiguous", candidates: hits.map(view) };
    }
    return { ok: false, reason: "unknown", candidates: all.map(view) };
  }

  handleTimeout(): void {}

  pollTimeout(): undefined {
    return undefined;
  }

  drainTransmits(): readonly Outgoing[] {
    return NOTHING;
  }

  drainEvents(): readonly DaemonEvent[] {
    return NOTHING;
  }
}

/** `id:HEX`: an id prefix (4+ hex digits) that no name can take. */
export const ID_FORM = /^id:([0-9a-f]{4,64})$/;

/**
 * The `NAME@HOST` form of a query, split at its last `@` (a name may hold
 * one; a host name cannot): `matches` a peer named NAME (or whose IP
 * Messenger login is NAME) whose hostname is HOST, without regard to the
 * host's case, and to the name's when `anyCase`. Undefined when the query
 * has no `@` with something on both sides.
 */
export function nameOnHost(
  query: string,
): {
  name: string;
  host: string;
  matches(c: { name: string; hostname: string; user?: string }, anyCase: boolean): boolean;
} | undefined {
  const at = query.lastIndexOf("@");
  if (at <= 0 || at === query.length - 1) return undefined;
  const name = query.slice(0, at);
  const host = query.slice(at + 1).toLowerCase();
  const same = (a: string | undefined, anyCase: boolean) =>
    a !== undefined && (anyCase ? a.toLowerCase() === name.toLowerCase() : a === name);
  return {
    name,
    host,
    matches: (c, anyCase) => c.hostname.toLowerCase() === host && (same(c.name, anyCase) || same(c.user, anyCase)),
  };
}

/** An IP Messenger peer as a known peer. */
function ipmsgKnown(p: IpmsgPeer, lastSeen: number): KnownPeer {
  return {
    id: p.id,
    protocol: "ipmsg",
    name: p.nickname,
    hostname: p.host,
    address: p.address,
    port: p.port,
    lastSeen,
  };
}
