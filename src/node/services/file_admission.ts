/**
 * Who may hold a slot on the file port, and for how long, before proving
 * who it is. A connection that has not authenticated (pre-auth) has
 * {@link PREAUTH_MS} in all to do so; each source address holds at most
 * {@link MAX_PREAUTH_PER_SOURCE} such connections at once; and sources that
 * are not known peers (in the roster or the directory) share all but
 * {@link RESERVED_FOR_KNOWN} of the slots, so a stranger flooding the port
 * cannot keep a peer's fetch out. Every refusal and every handshake that
 * fails is counted by kind (`files.connectionsRefused` in /status,
 * `lanchat_file_connections_refused_total{reason}` in /metrics).
 *
 * @module
 */
import { StreamError } from "./file_stream.ts";

/** A connection that has not authenticated by then is closed. */
export const PREAUTH_MS = 3_000;
/** Most unauthenticated connections one source address holds at once. */
export const MAX_PREAUTH_PER_SOURCE = 8;
/** Slots only known peers' addresses may take. */
export const RESERVED_FOR_KNOWN = 8;

/** Why a connection to the file port was refused or cut before it authenticated. */
export type Refusal = "full" | "perSource" | "timeout" | "junk" | "oversized" | "vanished";

export function refusalCounters(): Record<Refusal, number> {
  return { full: 0, perSource: 0, timeout: 0, junk: 0, oversized: 0, vanished: 0 };
}

/** What the metrics say of each refusal. */
export const REFUSAL_HELP: Record<Refusal, string> = {
  full: "no slot left (for strangers, the slots kept for known peers excepted)",
  perSource: "its source already held the most unauthenticated connections",
  timeout: "it did not authenticate in time",
  junk: "it sent something that is not a handshake",
  oversized: "it announced a frame larger than allowed",
  vanished: "it closed or reset the connection mid-handshake",
};

/** One admitted connection. */
export interface Ticket {
  readonly address: string;
  readonly known: boolean;
  authed: boolean;
  timedOut: boolean;
  /** Set once its end was counted (a refusal sent by the handshake itself, say). */
  counted: boolean;
}

export class Admission {
  readonly refused = refusalCounters();
  #preauth = new Map<string, number>();
  #strangers = 0;
  #max: number;
  #isKnown: (address: string) => boolean;

  constructor(max: number, isKnown: (address: string) => boolean) {
    this.#max = max;
    this.#isKnown = isKnown;
  }

  /** A ticket for a new connection from `address` with `open` connections open, or undefined (refused, counted). */
  admit(address: string, open: number): Ticket | undefined {
    if (open >= this.#max) return void this.refused.full++;
    const pending = this.#preauth.get(address) ?? 0;
    if (pending >= MAX_PREAUTH_PER_SOURCE) return void this.refused.perSource++;
    const known = this.#isKnown(address);
    if (!known && this.#strangers >= this.#max - RESERVED_FOR_KNOWN) return void this.refused.full++;
    if (!known) this.#strangers++;
    this.#preauth.set(address, pending + 1);
    return { address, known, authed: false, timedOut: false, counted: false };
  }

  /** The connection proved who it is: no longer pre-auth. */
  authed(t: Ticket): void {
    if (t.authed) return;
    t.authed = true;
    this.#unpend(t);
  }

  /** Counts a handshake that ended in `kind` (once per connection). */
  count(t: Ticket, kind: Refusal): void {
    if (t.counted || t.authed) return;
    t.counted = true;
    this.refused[kind]++;
  }

  /** The connection ended: its slot is free; a handshake that failed with `error` is counted by kind. */
  release(t: Ticket, error?: unknown): void {
    if (!t.authed) {
      if (t.timedOut) this.count(t, "timeout");
      else if (error !== undefined) this.count(t, kindOf(error));
      this.#unpend(t);
    }
    if (!t.known) this.#strangers--;
  }

  #unpend(t: Ticket): void {
    const n = (this.#preauth.get(t.address) ?? 1) - 1;
    if (n <= 0) this.#preauth.delete(t.address);
    else this.#preauth.set(t.address, n);
  }
}

function kindOf(e: unknown): Refusal {
  if (e instanceof StreamError) {
    return e.kind === "oversized"
      ? "oversized"
      : e.kind === "closed"
      ? "vanished"
      : e.kind === "stalled"
      ? "timeout"
      : "junk";
  }
  // A write to a peer that reset or closed (the hello, an error frame).
  if (
    e instanceof Deno.errors.BrokenPipe || e instanceof Deno.errors.ConnectionReset ||
    e instanceof Deno.errors.NotConnected || e instanceof Deno.errors.BadResource
  ) return "vanished";
  return "junk";
}
