/**
 * DNS-SD over mDNS: this node advertised as `_lanchat._udp.local` (Avahi's
 * and Bonjour's browsers list it) and the same service browsed, so that a
 * node whose broadcasts do not reach us (another VLAN behind an mDNS
 * reflector, a record published by Avahi) is sent our signed hello and
 * joins when it answers with its own. The records and the bounds on what a
 * responder can make us do are protocol/dnssd.ts; here are the sockets and
 * the schedule.
 *
 * One socket per IPv4 interface announced on (loopback left out), bound to
 * 0.0.0.0:5353 with SO_REUSEADDR beside an Avahi daemon, a member of
 * 224.0.0.251 on that interface and sending through it (IP_MULTICAST_IF):
 * node:dgram, whose setMulticastInterface Deno implements, where
 * Deno.listenDatagram has no IP_MULTICAST_IF and would send by the routing
 * table (a host's default route) whatever `--interface` says.
 *
 * @module
 */
import type dgram from "node:dgram";
import dnsPacket from "dns-packet";
import { logger } from "../../common/log.ts";
import {
  type Advertised,
  ANNOUNCE_AT_MS,
  asksForUs,
  Browser,
  claimsOurName,
  DatagramBudget,
  type DnsMessage,
  MAX_MDNS_BYTES,
  MAX_REQUERY_MS,
  MDNS_GROUP,
  MDNS_PORT,
  QUERY_AT_MS,
  renamed,
  REQUERY_MS,
  SERVICE,
  serviceRecords,
} from "../../protocol/dnssd.ts";
import { LegacyAnswers, type LegacyRefusal } from "../../protocol/legacy_answers.ts";
import type { Roster } from "../../protocol/roster.ts";
import type { MetricsWriter } from "../metrics.ts";
import type { BroadcastTarget } from "../net_address.ts";
import { OnLink } from "../on_link.ts";
import type { Service, ServiceContext } from "../service.ts";
import type { Targets } from "../targets.ts";
import type { Traffic } from "../traffic.ts";

/** Least time between two multicast answers on one interface (RFC 6762 §6: once a second). */
const ANSWER_GAP_MS = 1000;

interface Link {
  target: BroadcastTarget;
  socket: dgram.Socket;
  lastAnswer: number;
  /** A query came within the gap: answered at this time. */
  answerDue?: number;
  closed: boolean;
}

/** The mDNS service. */
export class MdnsService implements Service {
  readonly name = "mdns";
  readonly browser: Browser;
  #ad: Advertised;
  #targets: Targets;
  #ctx!: ServiceContext;
  #links = new Map<string, Link>();
  #queryAt: number[] = [];
  #announceAt: number[] = [];
  #nextQuery: number | undefined;
  #requeryGap = REQUERY_MS;
  /** Our subnets (to tell a node our broadcasts reach from one they do not). */
  #onLink = new OnLink();
  #stopped = false;
  #budget = new DatagramBudget();
  #legacy = new LegacyAnswers();
  #lastAddressQuery = -Infinity;
  #log = logger("mdns");
  /** lanchat's traffic counters, where mDNS is the mechanism `mdns`. */
  #traffic?: Traffic;
  #c = {
    datagramsIn: 0,
    datagramsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    queriesAnswered: 0,
    sendErrors: 0,
    legacyRefused: { "off-link": 0, "rate-limit": 0 } as Record<LegacyRefusal, number>,
  };

  constructor(o: { ad: Advertised; targets: Targets; roster: Roster; maxPeers: number; traffic?: Traffic }) {
    this.#ad = o.ad;
    this.#traffic = o.traffic;
    this.#targets = o.targets;
    this.browser = new Browser({
      selfId: o.ad.id,
      maxCandidates: o.maxPeers,
      answered: (address) => o.roster.countAt(address) > 0,
      known: (id) => o.roster.get(id) !== undefined,
      onLink: (address) => this.#onLink.has(address),
      subnetEdge: (address) => this.#onLink.edge(address),
    });
  }

  start(ctx: ServiceContext, now: number): void {
    this.#ctx = ctx;
    this.#queryAt = QUERY_AT_MS.map((t) => now + t);
    this.#announceAt = ANNOUNCE_AT_MS.map((t) => now + t);
    this.#nextQuery = this.#queryAt.shift();
    this.#reconcile(this.#targets.interfaces);
    this.#targets.onRefresh((t) => this.#reconcile(t.interfaces));
  }

  /** Opens a socket on each interface announced on, closes those of interfaces gone. */
  #reconcile(interfaces: BroadcastTarget[]): void {
    if (this.#stopped) return;
    const want = new Map(interfaces.filter((t) => !t.address.startsWith("127.")).map((t) => [t.address, t]));
    this.#onLink.refresh(this.#ctx.io, interfaces);
    for (const [address, link] of this.#links) {
      if (!want.has(address)) {
        this.#close(link);
        this.#links.delete(address);
      }
    }
    for (const [address, target] of want) {
      if (this.#links.has(address)) continue;
      const socket = this.#ctx.io.openMulticast4!();
      const link: Link = { target, socket, lastAnswer: -Infinity, closed: false };
      this.#links.set(address, link);
      socket.on("error", (e) => this.#log.warn("mDNS on {address}: {error}", { address, error: e.message }));
      socket.on("message", (bytes, rinfo) => this.#onMessage(link, bytes, rinfo.address, rinfo.port));
      socket.bind(MDNS_PORT, "0.0.0.0", () => {
        try {
          socket.addMembership(MDNS_GROUP, address);
          socket.setMulticastInterface(address);
          socket.setMulticastTTL(255);
          socket.setMulticastLoopback(true); // an Avahi daemon on this host sees us
          this.#log.info("mDNS on {interface} {address}: advertising {service}", {
            interface: target.interface,
            address,
            service: SERVICE,
          });
          // Announced (and asked) at once on a link that came later than the start.
          if (this.#announceAt.length === 0) this.#send(link, this.#response(link));
        } catch (e) {
          this.#log.warn("Cannot join mDNS group on {address}: {error}", { address, error: (e as Error).message });
        }
      });
    }
  }

  #close(link: Link): void {
    if (link.closed) return;
    link.closed = true;
    try {
      link.socket.close();
    } catch { /* closed already */ }
  }

  #onMessage(link: Link, bytes: Uint8Array, from: string, port: number): void {
    if (this.#stopped) return;
    const now = this.#ctx.io.now();
    this.#c.datagramsIn++;
    this.#c.bytesIn += bytes.length;
    this.#traffic?.count("received", "mdns", bytes.length);
    if (!this.#budget.allow(from, now)) {
      this.browser.counters.dropped.flood++;
      return;
    }
    if (bytes.length > MAX_MDNS_BYTES) {
      this.browser.counters.dropped.oversize++;
      return;
    }
    let msg: DnsMessage;
    try {
      msg = dnsPacket.decode(bytes as unknown as Parameters<typeof dnsPacket.decode>[0]) as DnsMessage;
    } catch {
      this.browser.counters.dropped.malformed++;
      return;
    }
    if (msg.type === "query") {
      if (!asksForUs(msg, this.#ad)) return;
      if (port !== MDNS_PORT) {
        // A one-shot (legacy unicast) query: answered to its port, with its id (RFC 6762 §6.7), if its source is
        // on this link (§11) and not answered within the last second.
        const ok = this.#legacy.allow(from, this.#onLink.within(from, link.target.address), now);
        if (ok !== true) {
          this.#c.legacyRefused[ok]++;
          return;
        }
        this.#send(link, { ...this.#response(link), id: msg.id, questions: msg.questions }, { address: from, port });
      } else if (now - link.lastAnswer >= ANSWER_GAP_MS) {
        this.#send(link, this.#response(link));
        link.lastAnswer = now;
      } else {
        link.answerDue ??= link.lastAnswer + ANSWER_GAP_MS;
      }
      this.#c.queriesAnswered++;
    } else {
      if (claimsOurName(msg, this.#ad)) {
        const before = this.#ad.instance;
        this.#ad.instance = renamed(before, this.#ad.id);
        if (this.#ad.instance !== before) {
          this.#log.info("mDNS: another node is advertised as {before}: this one is {after} now", {
            before,
            after: this.#ad.instance,
          });
          for (const l of this.#links.values()) this.#send(l, this.#response(l));
        }
      }
      this.browser.take(msg, from, now);
      this.browser.tick(now);
      this.#sync();
      this.#askAddresses(now);
    }
    this.#ctx.changed();
  }

  /** Asks for the A records of SRV targets that came without one (at most once a second). */
  #askAddresses(now: number): void {
    if (now - this.#lastAddressQuery < 1000) return;
    const targets = this.browser.unresolvedTargets(now).slice(0, 16);
    if (targets.length === 0) return;
    this.#lastAddressQuery = now;
    const query: DnsMessage = { type: "query", questions: targets.map((name) => ({ name, type: "A" })) };
    for (const link of this.#links.values()) this.#send(link, query);
  }

  #response(link: Link, goodbye = false): DnsMessage {
    return { type: "response", flags: 0x400, answers: serviceRecords(this.#ad, [link.target.address], goodbye) };
  }

  #send(link: Link, msg: DnsMessage, to = { address: MDNS_GROUP, port: MDNS_PORT }): void {
    if (link.closed) return;
    let bytes: Uint8Array;
    try {
      bytes = dnsPacket.encode(msg as Parameters<typeof dnsPacket.encode>[0]);
    } catch (e) {
      this.#log.warn("Cannot encode mDNS message: {error}", { error: (e as Error).message });
      return;
    }
    this.#c.datagramsOut++;
    this.#c.bytesOut += bytes.length;
    this.#traffic?.count("sent", "mdns", bytes.length);
    link.socket.send(bytes, to.port, to.address, (e) => {
      if (!e) return;
      this.#c.sendErrors++;
      this.#log.debug("mDNS send to {to} failed: {error}", { to: to.address, error: e.message });
    });
  }

  #sync(): void {
    const { changed, endpoints } = this.browser.endpoints();
    if (changed) this.#targets.setDiscovered("mdns", endpoints);
  }

  handleTimeout(now: number): void {
    if (this.#stopped) return;
    if (this.#nextQuery !== undefined && now >= this.#nextQuery) {
      const query: DnsMessage = {
        type: "query",
        questions: [{ name: SERVICE, type: "PTR" }],
        answers: this.browser.knownAnswers(now),
      };
      for (const link of this.#links.values()) this.#send(link, query);
      this.#nextQuery = this.#queryAt.shift();
      if (this.#nextQuery === undefined) {
        this.#nextQuery = now + this.#requeryGap;
        this.#requeryGap = Math.min(this.#requeryGap * 2, MAX_REQUERY_MS);
      }
    }
    while (this.#announceAt[0] !== undefined && now >= this.#announceAt[0]) {
      this.#announceAt.shift();
      for (const link of this.#links.values()) this.#send(link, this.#response(link));
    }
    for (const link of this.#links.values()) {
      if (link.answerDue !== undefined && now >= link.answerDue) {
        link.answerDue = undefined;
        link.lastAnswer = now;
        this.#send(link, this.#response(link));
      }
    }
    this.browser.tick(now);
    this.#sync();
  }

  pollTimeout(): number | undefined {
    if (this.#stopped) return undefined;
    let next = Math.min(this.#nextQuery ?? Infinity, this.#announceAt[0] ?? Infinity);
    for (const link of this.#links.values()) next = Math.min(next, link.answerDue ?? Infinity);
    next = Math.min(next, this.browser.nextWake(this.#ctx.io.now()) ?? Infinity);
    return next === Infinity ? undefined : next;
  }

  shutdown(): void {
    if (this.#stopped) return;
    for (const link of this.#links.values()) this.#send(link, this.#response(link, true));
    this.#stopped = true;
    // Closed once the goodbyes are out (a send queued on a closed socket is lost).
    const links = [...this.#links.values()];
    setTimeout(() => links.forEach((l) => this.#close(l)), 200);
  }

  status(): Record<string, unknown> {
    return {
      mdns: {
        service: SERVICE,
        instance: this.#ad.instance,
        interfaces: [...this.#links.keys()],
        candidates: this.browser.list(),
        counters: { ...this.#c, ...this.browser.counters },
      },
    };
  }

  metrics(m: MetricsWriter): void {
    const c = this.#c;
    const b = this.browser.counters;
    m.metric("lanchat_mdns_datagrams_total", "counter", "mDNS datagrams received and sent.", [
      ['{direction="in"}', c.datagramsIn],
      ['{direction="out"}', c.datagramsOut],
    ]);
    m.metric("lanchat_mdns_bytes_total", "counter", "mDNS bytes received and sent.", [
      ['{direction="in"}', c.bytesIn],
      ['{direction="out"}', c.bytesOut],
    ]);
    m.single(
      "lanchat_mdns_queries_answered_total",
      "counter",
      "mDNS queries for our service answered.",
      c.queriesAnswered,
    );
    m.metric(
      "lanchat_mdns_legacy_refused_total",
      "counter",
      "One-shot mDNS queries not answered: source off the link, or answered within the last second.",
      Object.entries(c.legacyRefused).map(([r, v]) => [`{reason="${r}"}`, v]),
    );
    m.single(
      "lanchat_mdns_instances_seen_total",
      "counter",
      "_lanchat._udp instances read from responses.",
      b.instancesSeen,
    );
    m.single("lanchat_mdns_probed_total", "counter", "Endpoints found by DNS-SD sent our hello.", b.probed);
    m.single("lanchat_mdns_answered_total", "counter", "Endpoints found by DNS-SD that answered.", b.answered);
    m.single("lanchat_mdns_given_up_total", "counter", "Endpoints found by DNS-SD that never answered.", b.givenUp);
    m.single("lanchat_mdns_candidates", "gauge", "Endpoints found by DNS-SD kept now.", this.browser.size);
    m.metric(
      "lanchat_mdns_dropped_total",
      "counter",
      "mDNS responses or records not used, by reason.",
      Object.entries(b.dropped).map(([r, v]) => [`{reason="${r}"}`, v]),
    );
  }
}
