/**
 * Peers shared across subnets (as IP Messenger's GETLIST does): a node asks
 * each peer that joins for the lanchat nodes it knows (`peers` with `ask`,
 * over the end-to-end session), and answers such a request with up to 12
 * of its own, those it reaches beyond its subnet first. And at start it
 * probes the peers it knew from earlier contacts that its broadcasts do not
 * reach (LocalSend's known-peer cache). Either way an entry is only a
 * candidate (protocol/dnssd.ts `Browser`: bounded, rate-limited per source,
 * backed off when unanswered): it is sent this node's signed hello and joins
 * only by answering with its own.
 *
 * @module
 */
import type { DaemonEvent } from "../../api/types.ts";
import { ANSWER_GAP_MS, AskSchedule } from "../../protocol/ask_schedule.ts";
import { Browser, type Instance } from "../../protocol/dnssd.ts";
import type { Transmit } from "../../protocol/transmit.ts";
import { encodePacket, MAX_PEER_ENTRIES, type PeerEntry, type PeerList } from "../../wire/mod.ts";
import type { KnownPeer } from "../../storage/peers.ts";
import type { MetricsWriter } from "../metrics.ts";
import { OnLink } from "../on_link.ts";
import { NOTHING, type Outgoing, type Service, type ServiceContext } from "../service.ts";
import type { Targets } from "../targets.ts";
import type { LanchatService } from "./lanchat.ts";

/** Known peers from earlier contacts probed at start, most recently seen first. */
const CACHE_PROBES = 32;
/** How long an entry stays a candidate (it joins by answering well before). */
const ENTRY_TTL_S = 600;

export class PeerExchangeService implements Service {
  readonly name = "peer-exchange";
  readonly browser: Browser;
  #lanchat: LanchatService;
  #targets: Targets;
  #known: () => Iterable<KnownPeer>;
  #self: { id: string; incarnation: number };
  #ctx!: ServiceContext;
  #onLink = new OnLink();
  #out: Transmit[] = [];
  #answered = new Map<string, number>();
  /** When each peer is asked (protocol/ask_schedule.ts): at its join, soon after, then rarely; retried unanswered. */
  #asks = new AskSchedule();
  #c = { asked: 0, answers: 0, requests: 0, entriesIn: 0, fromCache: 0, refused: 0 };

  constructor(o: {
    lanchat: LanchatService;
    targets: Targets;
    known: () => Iterable<KnownPeer>;
    self: { id: string; incarnation: number };
    maxPeers: number;
  }) {
    this.#lanchat = o.lanchat;
    this.#targets = o.targets;
    this.#known = o.known;
    this.#self = o.self;
    const roster = o.lanchat.discovery.roster;
    this.browser = new Browser({
      selfId: o.self.id,
      maxCandidates: o.maxPeers,
      answered: (address) => roster.countAt(address) > 0,
      known: (id) => roster.get(id) !== undefined,
      onLink: (address) => this.#onLink.has(address),
      subnetEdge: (address) => this.#onLink.edge(address),
    });
    o.lanchat.route(["peers"], (packet, _from, now) => {
      if (packet.kind === "peers") return this.#onPeers(packet, now);
      return undefined;
    });
  }

  start(ctx: ServiceContext, now: number): void {
    this.#ctx = ctx;
    this.#onLink.refresh(ctx.io, this.#targets.interfaces);
    this.#targets.onRefresh((t) => this.#onLink.refresh(ctx.io, t.interfaces));
    // Known peers beyond our subnets, from earlier contacts: probed once at start.
    const cached = [...this.#known()]
      .filter((k) => k.protocol === "lanchat" && !this.#onLink.has(k.address))
      .sort((a, b) => b.lastSeen - a.lastSeen)
      .slice(0, CACHE_PROBES);
    for (const k of cached) {
      this.browser.offer([instanceOf({ id: k.id, address: k.address, port: k.port })], `cache:${k.address}`, now);
    }
    this.#c.fromCache = cached.length;
    this.#sync();
  }

  /** A request answered (at most every 10 s per peer), or an answer's entries taken as candidates. */
  #onPeers(p: PeerList, now: number): undefined {
    const roster = this.#lanchat.discovery.roster;
    const peer = roster.get(p.id);
    const to = peer?.addresses[0];
    if (!peer || !to) {
      this.#c.refused++; // not from a peer in the roster
      return undefined;
    }
    if (p.ask) {
      this.#c.requests++;
      if (now - (this.#answered.get(p.id) ?? -Infinity) < ANSWER_GAP_MS) return undefined;
      this.#answered.set(p.id, now);
      const entries: PeerEntry[] = [];
      const others = roster.peers().filter((o) => o.id !== p.id && o.addresses[0] !== undefined);
      // Those beyond this node's subnets first: the asker most likely shares them.
      others.sort((a, b) =>
        Number(this.#onLink.has(a.addresses[0]!.address)) - Number(this.#onLink.has(b.addresses[0]!.address))
      );
      for (const o of others.slice(0, MAX_PEER_ENTRIES)) {
        entries.push({ id: o.id, address: o.addresses[0]!.address, port: o.addresses[0]!.port });
      }
      this.#send(p.id, to, { ask: false, entries });
      this.#c.answers++;
      return undefined;
    }
    this.#asks.answered(p.id);
    this.#c.entriesIn += p.entries.length;
    this.browser.offer(p.entries.map(instanceOf), `peer:${p.id}`, now);
    this.browser.tick(now);
    this.#sync();
    return undefined;
  }

  #send(peer: string, to: { address: string; port: number }, body: Pick<PeerList, "ask" | "entries">): void {
    const bytes = encodePacket({ kind: "peers", id: this.#self.id, incarnation: this.#self.incarnation, ...body });
    this.#out.push({ via: "unicast", to: { address: to.address, port: to.port }, bytes, kind: "peers", peer });
  }

  onEvent(event: DaemonEvent, now: number): void {
    if (event.type === "left") {
      this.#asks.left(event.peer.id);
      return;
    }
    if (event.type !== "joined" && event.type !== "restarted") return;
    this.#asks.joined(event.peer.id, now);
    this.#askDue(now);
    this.browser.tick(now);
    this.#sync();
  }

  /** Sends the requests due at `now`. */
  #askDue(now: number): void {
    for (const id of this.#asks.due(now)) {
      const to = this.#lanchat.discovery.roster.get(id)?.addresses[0];
      if (!to) {
        this.#asks.left(id);
        continue;
      }
      this.#send(id, to, { ask: true, entries: [] });
      this.#c.asked++;
    }
  }

  #sync(): void {
    const { changed, endpoints } = this.browser.endpoints();
    if (changed) this.#targets.setDiscovered("peer-exchange", endpoints);
  }

  handleTimeout(now: number): void {
    this.#askDue(now);
    this.browser.tick(now);
    this.#sync();
  }

  pollTimeout(): number | undefined {
    const next = Math.min(this.#asks.next() ?? Infinity, this.browser.nextWake(this.#ctx.io.now()) ?? Infinity);
    return next === Infinity ? undefined : next;
  }

  drainTransmits(): readonly Outgoing[] {
    if (this.#out.length === 0) return NOTHING;
    return this.#lanchat.outgoingAll(this.#out.splice(0), this.#ctx.io.now());
  }

  status(): Record<string, unknown> {
    return { peerExchange: { candidates: this.browser.list() } };
  }

  metrics(m: MetricsWriter): void {
    const c = this.#c;
    const b = this.browser.counters;
    m.metric("lanchat_peer_exchange_total", "counter", "Peer exchange: requests sent and received, answers sent.", [
      ['{what="asked"}', c.asked],
      ['{what="requests"}', c.requests],
      ['{what="answers"}', c.answers],
      ['{what="retried"}', this.#asks.retried],
    ]);
    m.single("lanchat_peer_exchange_entries_total", "counter", "Entries received in peers' answers.", c.entriesIn);
    m.single(
      "lanchat_known_peers_probed_at_start",
      "gauge",
      "Known peers beyond our subnets probed at start.",
      c.fromCache,
    );
    m.metric(
      "lanchat_peer_exchange_candidates_total",
      "counter",
      "Entries and cached peers probed, answered, given up.",
      [
        ['{outcome="probed"}', b.probed],
        ['{outcome="answered"}', b.answered],
        ['{outcome="given-up"}', b.givenUp],
        ['{outcome="rate-limit"}', b.dropped["rate-limit"]],
        ['{outcome="full"}', b.dropped.full],
      ],
    );
  }
}

function instanceOf(e: PeerEntry): Instance {
  return { instance: e.id.slice(0, 12), id: e.id, address: e.address, port: e.port, ttl: ENTRY_TTL_S, ptrTtl: 0 };
}
