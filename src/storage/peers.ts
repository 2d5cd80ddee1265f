/**
 * Peers and node keys (the `peers` and `pins` tables): every peer this
 * node has seen, so it can be addressed while offline (and the idle ones a
 * flood leaves behind forgotten), and the node keys pinned on first use.
 *
 * @module
 */
import type { Connection } from "./connection.ts";

/**
 * A node key pinned on first use (like SSH's known_hosts): the key a node id
 * was first seen with, and the name it had then.
 * - `tofu`: pinned when first seen, not checked by a person;
 * - `trusted`: a person confirmed it (`lanchat trust`);
 * - `conflict`: first seen claiming a name already pinned to another key: a
 *   possible impersonation, never chosen by name until trusted;
 * - `replaced`: its name was handed to another key by `lanchat trust`.
 */
export interface Pin {
  id: string;
  /** Raw Ed25519 public key, hex. */
  key: string;
  name: string;
  firstSeen: number;
  trust: "tofu" | "trusted" | "conflict" | "replaced";
}

/** A peer this node has seen, remembered so it can be addressed while offline. */
export interface KnownPeer {
  id: string;
  /** "lanchat", or "ipmsg" for IP Messenger, FeiQ and iptux users. */
  protocol: "lanchat" | "ipmsg";
  name: string;
  hostname: string;
  address: string;
  port: number;
  lastSeen: number;
}

/** The peers-and-pins room of the store. */
export class Peers {
  readonly #c: Connection;

  constructor(c: Connection) {
    this.#c = c;
  }

  /** Remembers a peer (on join or restart), so it can be addressed while offline. */
  rememberPeer(p: KnownPeer): void {
    this.#c.transaction("remember peer", () => {
      this.#c.q(
        `INSERT INTO peers (id, name, hostname, address, port, last_seen, protocol) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, hostname = excluded.hostname,
           address = excluded.address, port = excluded.port, last_seen = excluded.last_seen,
           protocol = excluded.protocol`,
      ).run(p.id, p.name, p.hostname, p.address, p.port, p.lastSeen, p.protocol);
    });
  }

  /** Every peer ever seen. */
  knownPeers(): KnownPeer[] {
    return (this.#c.q("SELECT id, name, hostname, address, port, last_seen, protocol FROM peers").all() as Record<
      string,
      unknown
    >[])
      .map((r) => ({
        id: String(r.id),
        protocol: r.protocol === "ipmsg" ? "ipmsg" as const : "lanchat" as const,
        name: String(r.name),
        hostname: String(r.hostname),
        address: String(r.address),
        port: Number(r.port),
        lastSeen: Number(r.last_seen),
      }));
  }

  /**
   * Forgets peers no message was ever exchanged with that were last seen
   * before `seenBefore` (ms since the epoch), and of the rest of those the
   * least recently seen beyond `keep`: what a flood of made-up peers leaves
   * behind does not stay forever. Returns the ids forgotten.
   */
  pruneKnownPeers(seenBefore: number, keep: number): string[] {
    const idle = this.#c.q(
      `SELECT id, last_seen FROM peers p
       WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.peer = p.id)
         AND NOT EXISTS (SELECT 1 FROM held h WHERE h.peer = p.id)
       ORDER BY last_seen DESC`,
    ).all() as { id: string; last_seen: number }[];
    const gone = idle.filter((r, i) => i >= keep || Number(r.last_seen) < seenBefore).map((r) => String(r.id));
    if (gone.length === 0) return gone;
    this.#c.transaction("forget idle peers", () => {
      for (const id of gone) this.#c.q("DELETE FROM peers WHERE id = ?").run(id);
    });
    return gone;
  }

  /** Every pinned node key. */
  pins(): Pin[] {
    return (this.#c.q("SELECT id, key, name, first_seen, trust FROM pins").all() as Record<string, unknown>[])
      .map((r) => ({
        id: String(r.id),
        key: String(r.key),
        name: String(r.name),
        firstSeen: Number(r.first_seen),
        trust: String(r.trust) as Pin["trust"],
      }));
  }

  /** Writes (inserts or replaces) pins in one transaction. */
  savePins(pins: Pin[]): void {
    this.#c.transaction("save node key pins", () => {
      for (const p of pins) {
        this.#c.q("INSERT OR REPLACE INTO pins (id, key, name, first_seen, trust) VALUES (?, ?, ?, ?, ?)")
          .run(p.id, p.key, p.name, p.firstSeen, p.trust);
      }
    });
  }

  /** Forgets a node's pinned key: the next hello pins it anew. */
  deletePin(id: string): void {
    this.#c.transaction("forget the node key", () => {
      this.#c.q("DELETE FROM pins WHERE id = ?").run(id);
    });
  }
}
