/**
 * Nodes with end-to-end session tables (src/security/e2e_sessions.ts) on an
 * in-memory link with a simulated clock, as quinn's `Pair`: a test drops,
 * duplicates, reorders or tampers with datagrams by a line of code and steps
 * the clock to the next deadline instead of sleeping.
 */
import { generateKeyPairSync } from "node:crypto";
import { type E2eOptions, E2eSessions, type PeerKey, type Received } from "../../src/security/e2e_sessions.ts";
import { type StaticIdentity, staticIdentityOf } from "../../src/security/e2e_wire.ts";
import { NodeSigner } from "../../src/security/signing.ts";
import { encodePacket } from "../../src/wire/mod.ts";

export interface NodeKeys {
  edPublic: Uint8Array;
  pkcs8: Uint8Array;
  signer: NodeSigner;
  identity: StaticIdentity;
}

/** A fresh Ed25519 node key and the e2e identity derived from it. */
export function newNodeKeys(): NodeKeys {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const edPublic = new Uint8Array(publicKey.export({ format: "der", type: "spki" }).subarray(12));
  const pkcs8 = new Uint8Array(privateKey.export({ format: "der", type: "pkcs8" }));
  const signer = new NodeSigner(pkcs8, edPublic);
  return { edPublic, pkcs8, signer, identity: staticIdentityOf(pkcs8, edPublic, signer.sign) };
}

export interface E2eNode {
  id: string;
  keys: NodeKeys;
  table: E2eSessions;
  /** What the table returned for each datagram delivered to it. */
  got: Received[];
  /** The id and static key its signed hello would carry. */
  peerKey: PeerKey;
}

export function newNode(
  keys = newNodeKeys(),
  incarnation = 1,
  options: Partial<E2eOptions> = {},
): E2eNode {
  const table = new E2eSessions({ identity: keys.identity, incarnation, authorize: () => true, ...options });
  const id = keys.identity.id;
  return { id, keys, table, got: [], peerKey: { id, staticKey: keys.identity.dh.publicKey } };
}

let messageIds = 0;

/** A one-fragment lanchat message datagram from `from` to `to` (the inner datagram of a data packet). */
export function msgDatagram(from: string, to: string, text: string): Uint8Array {
  const payload = new TextEncoder().encode(text);
  return encodePacket({
    kind: "msg",
    id: from,
    incarnation: 1,
    to,
    messageId: (++messageIds).toString(16).padStart(32, "0"),
    seq: 1,
    base: 1,
    sentAt: 0,
    length: payload.length,
    count: 1,
    index: 0,
    retry: 0,
    end: true,
    payload,
  });
}

export interface Datagram {
  from: string;
  to: string;
  bytes: Uint8Array;
}

/** What the link does with a datagram: deliver it, lose it, or deliver it twice. */
export type Fate = "pass" | "drop" | "dup";

export class E2eLan {
  now = 1_000_000;
  readonly nodes = new Map<string, E2eNode>();
  /** Every datagram put on the link, delivered or not, in order. */
  readonly log: Datagram[] = [];
  fate: (d: Datagram) => Fate = () => "pass";
  /** Held back instead of delivered (for reordering): deliver with {@link deliver}. */
  held: Datagram[] = [];
  hold = false;

  add(...nodes: E2eNode[]): void {
    for (const n of nodes) this.nodes.set(n.id, n);
  }

  /** `from` sends a message datagram to `to`, and the link runs until quiet. */
  say(from: E2eNode, to: E2eNode, text: string): void {
    from.table.send(to.peerKey, msgDatagram(from.id, to.id, text), this.now);
    this.pump();
  }

  /** Moves every table's datagrams across the link (and the replies they cause) until none is left. */
  pump(): void {
    for (let rounds = 0; rounds < 1000; rounds++) {
      const out: Datagram[] = [];
      for (const n of this.nodes.values()) {
        for (const t of n.table.drainTransmits()) out.push({ from: n.id, to: t.peerId, bytes: t.bytes });
      }
      if (!out.length) return;
      for (const d of out) this.#put(d);
    }
    throw new Error("the link never went quiet");
  }

  #put(d: Datagram): void {
    this.log.push(d);
    const fate = this.fate(d);
    if (fate === "drop") return;
    if (this.hold) {
      this.held.push(d);
      return;
    }
    this.deliver(d);
    if (fate === "dup") this.deliver(d);
  }

  /** Delivers one datagram now (a handshake's reply goes back at once, through the same fate). */
  deliver(d: Datagram): Received {
    const node = this.nodes.get(d.to);
    if (!node) throw new Error(`no node ${d.to}`);
    const r = node.table.receive(d.bytes, this.now);
    node.got.push(r);
    if (r.kind === "handshake" && r.reply) this.#put({ from: d.to, to: d.from, bytes: r.reply });
    return r;
  }

  /** Jumps the clock to the earliest deadline (no later than `until`), fires it, and pumps. */
  step(until = Infinity): boolean {
    const due = [...this.nodes.values()].map((n) => n.table.pollTimeout()).filter((t) => t !== undefined);
    const at = Math.min(...due);
    if (!due.length || at > until) return false;
    this.now = Math.max(this.now, at);
    for (const n of this.nodes.values()) n.table.handleTimeout(this.now);
    this.pump();
    return true;
  }

  /** Steps until `done()` or `ms` of simulated time pass; true when done. */
  runUntil(done: () => boolean, ms: number): boolean {
    const until = this.now + ms;
    while (!done()) if (!this.step(until)) return done();
    return true;
  }

  /** Advances the clock by `ms`, firing every deadline on the way. */
  advance(ms: number): void {
    const until = this.now + ms;
    while (this.step(until));
    this.now = until;
    for (const n of this.nodes.values()) n.table.handleTimeout(this.now);
    this.pump();
  }
}

/** The texts of the message datagrams a node received, in order. */
export function texts(node: E2eNode): string[] {
  return node.got.flatMap((r) =>
    r.kind === "data" ? r.packets.flatMap((p) => p.kind === "msg" ? [new TextDecoder().decode(p.payload)] : []) : []
  );
}

/** The drop reasons a node returned, in order. */
export function drops(node: E2eNode): string[] {
  return node.got.flatMap((r) => r.kind === "drop" ? [r.reason] : []);
}
