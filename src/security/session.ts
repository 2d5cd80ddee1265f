/**
 * One transport session: the two keys a finished Noise handshake split off,
 * the counter that numbers what this side sends (the AEAD nonce), and the
 * sliding window of what it has received. Pure; the time is passed in.
 * The table of sessions, the handshakes and the timers are `e2e_sessions.ts`.
 *
 * The rules, WireGuard's (its whitepaper §6) scaled to a LAN messenger:
 * a session is used to send for {@link REKEY_AFTER_TIME_MS} and then its
 * initiator starts a new handshake; past {@link REJECT_AFTER_TIME_MS} or
 * {@link REJECT_AFTER_MESSAGES} it neither sends nor receives, so a session
 * key stolen opens at most three minutes of one peer's traffic.
 *
 * @module
 */
import { aeadOpen, aeadSeal, type TransportKeys } from "./noise.ts";
import { DATA_HEADER, dataHeader, type E2ePacket } from "./e2e_wire.ts";
import { ReplayWindow } from "./replay_window.ts";

/** The initiator of a session starts a new handshake when it sends with one this old. */
export const REKEY_AFTER_TIME_MS = 120_000;
/** A session this old is not used at all. */
export const REJECT_AFTER_TIME_MS = 180_000;
/** The initiator starts a new handshake when it receives on a session this old (it may have nothing to send). */
export const REKEY_ON_RECEIVE_MS = REJECT_AFTER_TIME_MS - 15_000;
/**
 * Messages a session sends before its initiator rekeys. WireGuard's 2^60 is
 * out of reach of a JavaScript number's exact integers; 2^32 is too: at the
 * ~100,000 datagrams a second lanchat reads, two minutes carry 12 million.
 */
export const REKEY_AFTER_MESSAGES = 2 ** 32;
/** Counters at or past this are refused both ways. */
export const REJECT_AFTER_MESSAGES = 2 ** 33;

export class TransportSession {
  readonly localIndex: number;
  readonly remoteIndex: number;
  /** True on the side that sent the initiation: only it rekeys by time. */
  readonly initiator: boolean;
  readonly createdAt: number;
  #send: Uint8Array;
  #receive: Uint8Array;
  #counter = 0;
  #window = new ReplayWindow();

  constructor(keys: TransportKeys, localIndex: number, remoteIndex: number, initiator: boolean, now: number) {
    this.#send = keys.send;
    this.#receive = keys.receive;
    this.localIndex = localIndex;
    this.remoteIndex = remoteIndex;
    this.initiator = initiator;
    this.createdAt = now;
  }

  /** Messages sent so far. */
  get sent(): number {
    return this.#counter;
  }

  /** True while this session may send and receive at `now`. */
  usable(now: number): boolean {
    return now - this.createdAt < REJECT_AFTER_TIME_MS && this.#counter < REJECT_AFTER_MESSAGES;
  }

  /** True when its initiator should start the next handshake before sending at `now`. */
  wantsRekey(now: number): boolean {
    return this.initiator && (now - this.createdAt >= REKEY_AFTER_TIME_MS || this.#counter >= REKEY_AFTER_MESSAGES);
  }

  /** A data packet carrying `inner` (empty: a keepalive). The caller checks {@link usable} first. */
  seal(inner: Uint8Array): Uint8Array {
    if (this.#counter >= REJECT_AFTER_MESSAGES) throw new RangeError("Session used up: a new handshake is needed");
    const n = this.#counter++;
    const header = dataHeader(this.remoteIndex, n);
    const sealed = aeadSeal(this.#send, n, header, inner);
    const out = new Uint8Array(DATA_HEADER + sealed.length);
    out.set(header);
    out.set(sealed, DATA_HEADER);
    return out;
  }

  /**
   * The inner datagram of a data packet for this session; `auth` when it does
   * not open (tampered, another key), `replay` when its counter was already
   * taken or is behind the window.
   */
  open(packet: Extract<E2ePacket, { type: "data" }>): Uint8Array | "auth" | "replay" {
    if (packet.counter >= REJECT_AFTER_MESSAGES) return "replay";
    const inner = aeadOpen(this.#receive, packet.counter, packet.header, packet.sealed);
    if (!inner) return "auth";
    return this.#window.accept(packet.counter, REJECT_AFTER_MESSAGES) ? inner : "replay";
  }

  /** Drops the keys (overwritten with zeros), as WireGuard does with a keypair it deletes. */
  wipe(): void {
    this.#send.fill(0);
    this.#receive.fill(0);
  }
}

/**
 * A peer's sessions in WireGuard's three slots: `current` sends; `previous`
 * (the one before) and `next` (a responder's newest, not yet confirmed by a
 * packet under it) are still read. Each session dropped from the slots goes
 * to `discard` (the table forgets its index and wipes it).
 */
export class Keypairs {
  current?: TransportSession;
  previous?: TransportSession;
  next?: TransportSession;
  #discard: (s: TransportSession) => void;

  constructor(discard: (s: TransportSession) => void) {
    this.#discard = discard;
  }

  #drop(s: TransportSession | undefined): void {
    if (s) this.#discard(s);
  }

  /** Our initiation was answered: the new session sends at once. */
  completedAsInitiator(s: TransportSession): void {
    this.#drop(this.previous);
    if (this.next) {
      this.previous = this.next;
      this.next = undefined;
      this.#drop(this.current);
    } else this.previous = this.current;
    this.current = s;
  }

  /** We answered an initiation: the new session waits for the initiator's first packet under it. */
  answeredAsResponder(s: TransportSession): void {
    this.#drop(this.next);
    this.#drop(this.previous);
    this.previous = undefined;
    this.next = s;
  }

  /** A packet came under `s`; true when that confirmed `next`, which now sends. */
  receivedWith(s: TransportSession): boolean {
    if (s !== this.next) return false;
    this.#drop(this.previous);
    this.previous = this.current;
    this.current = s;
    this.next = undefined;
    return true;
  }

  /** Drops the sessions past {@link REJECT_AFTER_TIME_MS} at `now`. */
  expire(now: number): void {
    for (const slot of ["previous", "current", "next"] as const) {
      const s = this[slot];
      if (s && now - s.createdAt >= REJECT_AFTER_TIME_MS) {
        this.#discard(s);
        this[slot] = undefined;
      }
    }
  }

  clear(): void {
    for (const s of this.all()) this.#discard(s);
    this.previous = this.current = this.next = undefined;
  }

  all(): TransportSession[] {
    return [this.previous, this.current, this.next].filter((s) => s !== undefined);
  }
}
