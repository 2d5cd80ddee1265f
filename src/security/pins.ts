/**
 * Node keys pinned on first use (like SSH's known_hosts): the key each node
 * id was first seen with, kept in the database, checked on every hello and
 * goodbye, and the impersonation alerts that `/status` lists. `lanchat
 * trust` confirms a key (its name is then chosen by it alone), `lanchat
 * forget` drops one (pinned anew next time).
 *
 * @module
 */
import { nameKey } from "../common/name_key.ts";
import type { Pin, Store } from "../storage/store.ts";
import type { Goodbye, Hello, Suspect } from "../wire/mod.ts";
import { toHex } from "../wire/mod.ts";
import { fingerprintOf, SignatureChecker } from "./signing.ts";
import { keyChangeNote } from "./trust_words.ts";

/** A hello refused as a possible impersonation, as `/status` lists it. */
export interface ImpersonationAlert {
  at: string;
  id: string;
  name: string;
  from: string;
  detail: string;
}

/** Most impersonation alerts kept for `/status`. */
export const MAX_ALERTS = 32;

/** What pins report: a warning to log (the caller decides how often). */
export interface PinWarning {
  /** One per source address and kind: the caller logs it once. */
  key: string;
  message: string;
  properties: Record<string, unknown>;
}

/** The pinned keys, in memory and in the database. */
export class Pins {
  readonly alerts: ImpersonationAlert[] = [];
  #pins = new Map<string, Pin>();
  #store: Store;
  #checker = new SignatureChecker();
  #warn: (w: PinWarning) => void;
  /** Each pinned name's {@link nameKey}, by the name (computed once, not for every pin on every new hello). */
  #keys = new Map<string, string>();
  /** Bumped on every change, so that views of the roster (which show trust) know to rebuild. */
  #version = 0;

  constructor(store: Store, warn: (w: PinWarning) => void) {
    this.#store = store;
    this.#warn = warn;
    for (const p of store.pins()) this.#pins.set(p.id, p);
  }

  get version(): number {
    return this.#version;
  }

  get size(): number {
    return this.#pins.size;
  }

  /** The pinned key of a node, if any. */
  get(id: string): Pin | undefined {
    return this.#pins.get(id);
  }

  /**
   * What a changed key means for a peer, in words (see {@link keyChangeNote}):
   * for a key in conflict or replaced; undefined for the others.
   */
  note(id: string): string | undefined {
    const pin = this.#pins.get(id);
    if (!pin || (pin.trust !== "conflict" && pin.trust !== "replaced")) return undefined;
    let owner: Pin | undefined;
    for (const p of this.#pins.values()) {
      if (p.id === id || !this.#sameName(p.name, pin.name) || (p.trust !== "tofu" && p.trust !== "trusted")) continue;
      if (!owner || p.trust === "trusted") owner = p;
    }
    return keyChangeNote(pin, owner);
  }

  /**
   * The other keys pinned with a pin's name (as it reads, {@link nameKey}),
   * whatever their trust: a key in conflict has at least one; a replaced
   * key has the one trusted in its place.
   */
  rivals(id: string): string[] {
    const pin = this.#pins.get(id);
    if (!pin) return [];
    return [...this.#pins.values()].filter((p) => p.id !== id && this.#sameName(p.name, pin.name)).map((p) => p.id);
  }

  /** The keys in conflict (a changed key for a pinned name), newest first, at most `max`, with their notes. */
  keyChanges(max = 10): { id: string; name: string; note: string }[] {
    return [...this.#pins.values()].filter((p) => p.trust === "conflict")
      .sort((a, b) => b.firstSeen - a.firstSeen).slice(0, max)
      .map((p) => ({ id: p.id, name: p.name, note: this.note(p.id)! }));
  }

  /**
   * Lets a hello, goodbye or suspicion reach the roster only when it is signed by the
   * key its node id derives from, and that key is the one pinned for the id.
   * `at` is the wall-clock time, for the alert.
   */
  check(packet: Hello | Goodbye | Suspect, from: { address: string; port: number }, at: number) {
    const check = this.#checker.check(packet.id, packet.signed);
    if (!check.ok) {
      if (check.reason === "impersonation") this.#alert(packet, from, check.detail, at);
      return check;
    }
    const pin = this.#pins.get(packet.id);
    if (pin && pin.key !== toHex(packet.signed!.publicKey)) {
      const detail = `node id ${packet.id} is pinned to another key`;
      this.#alert(packet, from, detail, at);
      return { ok: false as const, reason: "impersonation" as const, detail };
    }
    return undefined;
  }

  #alert(packet: Hello | Goodbye | Suspect, from: { address: string; port: number }, detail: string, at: number): void {
    const name = packet.kind === "hello" ? packet.name : this.#pins.get(packet.id)?.name ?? "?";
    const alert: ImpersonationAlert = {
      at: new Date(at).toISOString(),
      id: packet.id,
      name,
      from: `${from.address}:${from.port}`,
      detail,
    };
    this.#push(alert);
    this.#warn({
      key: `impersonation:${from.address}`,
      message: "Possible impersonation: {from} claims to be {name} ({id}): {detail}; refused",
      properties: { from: alert.from, name, id: packet.id, detail },
    });
  }

  #push(alert: ImpersonationAlert): void {
    this.alerts.push(alert);
    if (this.alerts.length > MAX_ALERTS) this.alerts.shift();
  }

  /**
   * Pins a node's key the first time the roster takes it (trust on first
   * use). A new key claiming a name another pinned key has is pinned as a
   * conflict: listed, warned about, never chosen by name until trusted.
   * Names are compared as they read ({@link nameKey}): `bo\u00ADb` claims
   * `bob`. `from` lists where it was heard, for the alert.
   */
  pinOnFirstUse(hello: Hello, at: number, from: string): void {
    if (this.#pins.has(hello.id) || !hello.signed) return;
    const key = nameKey(hello.name);
    const rival = [...this.#pins.values()].find((p) =>
      (p.name === hello.name || this.#keyOf(p.name) === key) && p.id !== hello.id &&
      (p.trust === "tofu" || p.trust === "trusted")
    );
    const pin: Pin = {
      id: hello.id,
      key: toHex(hello.signed.publicKey),
      name: hello.name,
      firstSeen: at,
      trust: rival ? "conflict" : "tofu",
    };
    this.#pins.set(pin.id, pin);
    this.#version++;
    try {
      this.#store.savePins([pin]);
    } catch (e) {
      this.#warn({
        key: `store:${(e as Error).message}`,
        message: "{error}",
        properties: { error: (e as Error).message },
      });
    }
    if (!rival) return;
    this.#push({
      at: new Date(at).toISOString(),
      id: hello.id,
      name: hello.name,
      from,
      detail: `claims the name of ${rival.id} (key ${fingerprintOf(rival.id)}) with another key`,
    });
    this.#warn({
      key: `conflict:${hello.id}`,
      message: "Possible impersonation: {name} ({id}, key {fp}) claims a name pinned to {rival} (key {rivalFp}); " +
        'it is not chosen by name: if that host got a new key, run "lanchat trust {id}"',
      properties: {
        name: hello.name,
        id: hello.id,
        fp: fingerprintOf(hello.id),
        rival: rival.id,
        rivalFp: fingerprintOf(rival.id),
      },
    });
  }

  /**
   * Marks a peer's pinned key as confirmed by a person; other keys pinned
   * with the same name (as it reads, {@link nameKey}) are marked replaced
   * (no longer chosen by name).
   *
   * @throws {RangeError} when no key is pinned for `id`.
   */
  trust(id: string): Pin {
    const pin = this.#pins.get(id);
    if (!pin) throw new RangeError(`No key is pinned for ${id}: it has not been seen since it was forgotten`);
    const changed: Pin[] = [{ ...pin, trust: "trusted" }];
    for (const p of this.#pins.values()) {
      if (p.id !== id && this.#sameName(p.name, pin.name) && p.trust !== "replaced") {
        changed.push({ ...p, trust: "replaced" });
      }
    }
    this.#store.savePins(changed);
    for (const p of changed) this.#pins.set(p.id, p);
    this.#version++;
    return changed[0]!;
  }

  #keyOf(name: string): string {
    let key = this.#keys.get(name);
    if (key === undefined) {
      key = nameKey(name);
      if (this.#keys.size >= this.#pins.size + 64) this.#keys.clear(); // names of forgotten pins go too
      this.#keys.set(name, key);
    }
    return key;
  }

  /** Whether two names read as the same name ({@link nameKey}). */
  #sameName(a: string, b: string): boolean {
    return a === b || this.#keyOf(a) === this.#keyOf(b);
  }

  /** Forgets a peer's pinned key: its next hello pins a key anew (trust on first use). */
  forget(id: string): boolean {
    if (!this.#pins.has(id)) return false;
    this.#store.deletePin(id);
    this.#pins.delete(id);
    this.#version++;
    return true;
  }
}
