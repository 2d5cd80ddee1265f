/**
 * A deterministic simulated LAN for the sans-I/O discovery code: N nodes on
 * one broadcast domain, with latency, random loss, crashes and cut links, on
 * a simulated clock. Nothing here sleeps: {@link SimLan.runFor} jumps time to
 * the next event (a datagram arriving or a node's timer), as quinn's test
 * `Pair.step()` does, so an hour of peer life takes milliseconds.
 *
 * @module
 */
import TinyQueue from "tinyqueue";
import { Discovery, type DiscoveryOptions, type Endpoint } from "../protocol/discovery.ts";
import type { RosterEvent } from "../protocol/roster.ts";
import { decodePacket, encodePacket, type Packet } from "../wire/mod.ts";

/** A small, fast, seedable PRNG (mulberry32) returning numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const SIM_DISCOVERY_PORT = 47474;
export const SIM_UNICAST_PORT = 47475;
const SUBNET = "198.18.";

/** One simulated host running one daemon's discovery state. */
export interface SimNode {
  index: number;
  address: string;
  discovery: Discovery;
  /** False after a crash or stop: the node neither sends nor receives. */
  running: boolean;
  /** False while its cable is cut: it runs but nothing gets in or out. */
  linkUp: boolean;
  /** Roster events with the simulated time they happened at. */
  events: { at: number; event: RosterEvent }[];
  /** Datagrams this node received (delivered to it), for rate figures. */
  received: number;
  /** Of those, announces (hellos that are not replies), counted from {@link SimLan.countFrom}. */
  announcesReceived: number;
  /** When the node's pending wake-up is due, and the token that marks it current. */
  wakeAt: number | undefined;
  wakeToken: number;
  /** While paused (SIGSTOP): what its socket buffer holds, read on resume; and when it was paused. */
  paused?: { since: number; buffered: { packet: Packet; size: number; from: Endpoint }[] };
}

interface InFlight {
  at: number;
  seq: number;
  from: SimNode;
  fromPort: number;
  to: Endpoint;
  /** Decoded once for every receiver (a broadcast reaches them all). */
  packet: Packet;
  size: number;
}

interface Wake {
  at: number;
  node: SimNode;
  token: number;
}

export interface SimLanOptions {
  seed?: number;
  /** Probability in [0, 1] that any one delivery is lost. */
  loss?: number;
  /** One-way latency in ms (plus up to 10 % random). */
  latencyMs?: number;
}

/** A simulated broadcast domain; addresses are 198.18.x.y/16. */
export class SimLan {
  now = 0;
  readonly nodes: SimNode[] = [];
  readonly random: () => number;
  loss: number;
  readonly latencyMs: number;
  #queue = new TinyQueue<InFlight>([], (a, b) => a.at - b.at || a.seq - b.seq);
  #wakes = new TinyQueue<Wake>([], (a, b) => a.at - b.at || a.node.index - b.node.index);
  #seq = 0;
  #byAddress = new Map<string, SimNode>();
  #strings = new Map<string, string>();
  /** Announces are counted from this simulated time on (after a warm-up). */
  countFrom = Infinity;
  /**
   * A cut between two running nodes: datagrams from `from` do not reach `to`
   * (one direction: a one-way link; both: a partition). Undefined: none.
   */
  cut: ((from: SimNode, to: SimNode, packet: Packet) => boolean) | undefined;
  /** Removals (reason timeout) of a node that was running and reachable from the remover at the time. */
  readonly falseRemovals: { at: number; by: SimNode; peer: SimNode }[] = [];
  #byId = new Map<string, SimNode>();

  constructor(options: SimLanOptions = {}) {
    this.random = seededRandom(options.seed ?? 1);
    this.loss = options.loss ?? 0;
    this.latencyMs = options.latencyMs ?? 0.2;
  }

  /** The broadcast address of the simulated subnet. */
  get broadcast(): Endpoint {
    return { address: `${SUBNET}255.255`, port: SIM_DISCOVERY_PORT };
  }

  /** Adds a node and starts it at the current time. */
  addNode(options: Partial<Omit<DiscoveryOptions, "self">> & { incarnation?: number; name?: string } = {}): SimNode {
    const index = this.nodes.length;
    // 254 hosts per /24 (.1 to .254): no address ends in .0 or .255, which are no host's.
    const address = `${SUBNET}${Math.floor(index / 254)}.${(index % 254) + 1}`;
    const id = (index + 1).toString(16).padStart(32, "0");
    const discovery = new Discovery({
      intervalMs: options.intervalMs,
      probeTimeoutMs: options.probeTimeoutMs,
      random: options.random ?? this.random,
      failureDetector: options.failureDetector ?? true,
      self: {
        id,
        incarnation: options.incarnation ?? 1,
        name: options.name ?? `node${index + 1}`,
        hostname: `host${index + 1}`,
        version: "sim",
        port: SIM_UNICAST_PORT,
        httpPort: 0,
      },
    });
    const node: SimNode = {
      index,
      address,
      discovery,
      running: true,
      linkUp: true,
      events: [],
      received: 0,
      announcesReceived: 0,
      wakeAt: undefined,
      wakeToken: 0,
    };
    this.nodes.push(node);
    this.#byAddress.set(address, node);
    this.#byId.set(id, node);
    discovery.setTargets([this.broadcast], []);
    discovery.start(this.now);
    this.#pump(node);
    return node;
  }

  /** Restarts a stopped or crashed node with a higher incarnation. */
  restart(node: SimNode): SimNode {
    const old = node.discovery;
    node.discovery = new Discovery({
      intervalMs: old.intervalMs,
      probeTimeoutMs: old.roster.probeTimeoutMs,
      random: this.random,
      failureDetector: old.detector !== undefined,
      self: { ...old.self, incarnation: old.self.incarnation + 1 },
    });
    node.running = true;
    node.wakeAt = undefined;
    node.discovery.setTargets([this.broadcast], []);
    node.discovery.start(this.now);
    this.#pump(node);
    return node;
  }

  /** Stops a node cleanly: it says goodbye, then stops. */
  stop(node: SimNode): void {
    node.discovery.shutdown();
    this.#pump(node);
    node.running = false;
    node.wakeAt = undefined;
  }

  /**
   * Pauses a node as SIGSTOP does: it sends nothing and its timers do not
   * fire, while what reaches it waits in its socket buffer.
   */
  pause(node: SimNode): void {
    node.paused = { since: this.now, buffered: [] };
    node.wakeToken++;
  }

  /** Resumes a paused node (SIGCONT): it reads what waited, then its timers fire, late by the pause. */
  resume(node: SimNode): void {
    const p = node.paused;
    if (!p) return;
    node.paused = undefined;
    for (const b of p.buffered) node.discovery.handlePacket(b.packet, b.size, b.from, this.now);
    const due = node.wakeAt ?? this.now;
    node.wakeAt = undefined;
    node.discovery.handleTimeout(this.now, Math.max(0, this.now - due));
    this.#pump(node);
  }

  /**
   * Puts a datagram on the wire as if `from` sent it (to the broadcast
   * address unless `to` is given): what a hostile or confused host would send.
   */
  inject(from: SimNode, packet: Packet, to: Endpoint = this.broadcast): void {
    const bytes = encodePacket(packet);
    this.#queue.push({
      at: this.now + this.latencyMs,
      seq: this.#seq++,
      from,
      fromPort: to === this.broadcast ? SIM_DISCOVERY_PORT : SIM_UNICAST_PORT,
      to,
      packet: this.#canonical(packet),
      size: bytes.length,
    });
  }

  /** Kills a node: it falls silent without a goodbye. */
  crash(node: SimNode): void {
    node.running = false;
    node.wakeAt = undefined;
  }

  /** Advances simulated time by `ms`, processing every event on the way. */
  runFor(ms: number): void {
    this.runUntil(this.now + ms);
  }

  /** Processes events until `t` or until `done()` holds; returns whether it held. */
  runUntil(t: number, done?: () => boolean): boolean {
    // Time never runs backwards: a `t` already past returns at once.
    if (t < this.now) return done?.() ?? false;
    while (true) {
      if (done?.()) return true;
      const next = this.#nextEventTime();
      if (next === undefined || next > t) {
        this.now = t;
        return done?.() ?? false;
      }
      this.now = Math.max(this.now, next);
      this.#step();
    }
  }

  /** True when every running node lists every other running node. */
  converged(): boolean {
    const running = this.nodes.filter((n) => n.running);
    return running.every((n) =>
      running.every((m) => m === n || n.discovery.roster.get(m.discovery.self.id) !== undefined)
    );
  }

  #nextEventTime(): number | undefined {
    // Drop wake-ups that were superseded or whose node stopped.
    while (this.#wakes.length > 0) {
      const w = this.#wakes.peek()!;
      if (w.token === w.node.wakeToken && w.node.running) break;
      this.#wakes.pop();
    }
    const next = Math.min(this.#queue.peek()?.at ?? Infinity, this.#wakes.peek()?.at ?? Infinity);
    return next === Infinity ? undefined : next;
  }

  /** Processes every datagram and wake-up due at `now`: datagrams first, in send order. */
  #step(): void {
    const now = this.now;
    while (this.#queue.length > 0 && this.#queue.peek()!.at <= now) this.#deliver(this.#queue.pop()!);
    while (this.#wakes.length > 0 && this.#wakes.peek()!.at <= now) {
      const w = this.#wakes.pop()!;
      const n = w.node;
      if (w.token !== n.wakeToken || !n.running) continue;
      n.wakeAt = undefined;
      n.discovery.handleTimeout(now);
      this.#pump(n);
    }
  }

  #deliver(d: InFlight): void {
    const isBroadcast = d.to.address === this.broadcast.address;
    const receivers = isBroadcast
      ? (d.to.port === SIM_DISCOVERY_PORT ? this.nodes : [])
      : (d.to.port === SIM_UNICAST_PORT ? [this.#byAddress.get(d.to.address)].filter((n) => n !== undefined) : []);
    const from = { address: d.from.address, port: d.fromPort };
    const announce = d.packet.kind === "hello" && !d.packet.reply && this.now >= this.countFrom;
    for (const r of receivers) {
      if (!r.running || !r.linkUp) continue;
      if (this.cut && r !== d.from && this.cut(d.from, r, d.packet)) continue;
      // A node hears its own broadcasts (as a socket bound to 0.0.0.0 does).
      if (r !== d.from && this.random() < this.loss) continue;
      r.received++;
      if (announce && r !== d.from) r.announcesReceived++;
      if (r.paused) {
        r.paused.buffered.push({ packet: d.packet, size: d.size, from });
        continue;
      }
      r.discovery.handlePacket(d.packet, d.size, from, this.now);
      this.#pump(r);
    }
  }

  /**
   * Makes a decoded packet's strings the one copy of each: a real daemon
   * decodes every datagram anew, but 1,000 simulated rosters that each keep
   * and compare their own copies of every id and name would spend the run on
   * cache misses. The roster code is the same either way.
   */
  #canonical(packet: Packet): Packet {
    packet.id = this.#intern(packet.id);
    if (packet.kind === "hello") {
      packet.name = this.#intern(packet.name);
      packet.hostname = this.#intern(packet.hostname);
      packet.version = this.#intern(packet.version);
    }
    return packet;
  }

  #intern(s: string): string {
    const known = this.#strings.get(s);
    if (known !== undefined) return known;
    this.#strings.set(s, s);
    return s;
  }

  /** Moves a node's outputs onto the wire and its events into its log; re-arms its wake-up. */
  #pump(node: SimNode): void {
    for (const event of node.discovery.drainEvents()) {
      node.events.push({ at: this.now, event });
      if (event.type === "left" && event.reason === "timeout") {
        const peer = this.#byId.get(event.peer.id);
        const ping: Packet = { kind: "ping", id: event.peer.id, incarnation: 0, nonce: 0 };
        if (
          peer?.running && !peer.paused && peer.linkUp &&
          !(this.cut?.(peer, node, ping) || this.cut?.(node, peer, ping))
        ) {
          this.falseRemovals.push({ at: this.now, by: node, peer });
        }
      }
    }
    for (const t of node.discovery.drainTransmits()) {
      if (!node.linkUp) continue;
      const decoded = decodePacket(t.bytes);
      if (!decoded.ok) throw new Error(`node ${node.index} sent an undecodable datagram: ${decoded.detail}`);
      const fromPort = t.via === "broadcast" ? SIM_DISCOVERY_PORT : SIM_UNICAST_PORT;
      const jitter = this.latencyMs * 0.1 * this.random();
      this.#queue.push({
        at: this.now + this.latencyMs + jitter,
        seq: this.#seq++,
        from: node,
        fromPort,
        to: t.to,
        packet: this.#canonical(decoded.value),
        size: t.bytes.length,
      });
    }
    const want = node.running ? node.discovery.pollTimeout() : undefined;
    if (want !== undefined && want !== node.wakeAt) {
      node.wakeAt = want;
      this.#wakes.push({ at: want, node, token: ++node.wakeToken });
    }
  }
}
