/**
 * The one interface between the driver (node/daemon.ts) and what runs on
 * it: discovery, messaging, IP Messenger, and whatever comes next (files,
 * presence) as more services, without the driver's loop changing.
 *
 * A service is a sans-I/O state machine with a thin adapter: the driver
 * hands it the datagrams of the sockets it declared, tells it the time
 * (`handleTimeout(now)`), asks when to wake it (`pollTimeout()`), sends what
 * it has to send (`drainTransmits()`) and passes its events to the others
 * and to listeners (`drainEvents()`, `onEvent()`). The driver owns the
 * sockets, the clock, the one timer, the group commit and the event bus.
 *
 * @module
 */
import type { DaemonEvent } from "../api/types.ts";
import type { Endpoint } from "../protocol/discovery.ts";
import type { MetricsWriter } from "./metrics.ts";
import type { DaemonIo } from "./options.ts";

/** A datagram to send on one of the driver's sockets. */
export interface Outgoing {
  /** The name of the socket to send it from (see {@link SocketSpec}). */
  socket: string;
  to: Endpoint;
  bytes: Uint8Array;
  /** What it is, for the log when sending fails. */
  kind: string;
}

/** A UDP socket the driver opens. */
export interface SocketSpec {
  name: string;
  hostname: string;
  port: number;
  /** SO_REUSEADDR: every daemon on the host receives the broadcasts. */
  reuseAddress?: boolean;
  /** When the port is taken, bind a free one instead (and log it). */
  fallBackToFreePort?: boolean;
  /**
   * The same number is also a TCP port (the file port): a port chosen here
   * (port 0, or the fallback) is one free on TCP too, or peers could not
   * fetch this node's files.
   */
  sameTcpPort?: boolean;
  /** The error to give when the port is taken, in words. */
  inUse?: string;
  /** Join this IPv6 multicast group on the interface of this index once bound (a per-interface discovery socket). */
  joinV6?: { group: string; index: number };
}

/** What the driver lends a service. */
export interface ServiceContext {
  readonly io: DaemonIo;
  /** Wall-clock time (ms since the epoch) of a monotonic time. */
  wall(now: number): number;
  /** Runs `fn` every `ms` until the daemon stops. */
  every(ms: number, fn: () => void | Promise<void>): void;
  /** Says that state changed outside a driver call (after async work): the driver drains and re-arms. */
  changed(): void;
  /** Resolves once everything written so far is committed (see Store group commit). */
  durable(): Promise<void>;
  /**
   * Asks for a group commit at the end of this turn of the event loop though
   * nothing may be written yet: the service writes what waited in its
   * {@link Service.beforeCommit}. Absent in a driver without group commit.
   */
  commitSoon?(): void;
  /**
   * Opens a socket while running (one per IPv6 interface, as interfaces
   * come and go): its datagrams come to `service.onDatagram` under
   * `spec.name`, and `Outgoing.socket` may name it. Throws when it cannot be
   * bound or the group joined (nothing is left open then). Absent on a
   * driver that opens none (tests).
   */
  openSocket?(spec: SocketSpec, service: Service): Promise<void>;
  /** Closes a socket opened by {@link openSocket}. */
  closeSocket?(name: string): void;
  /**
   * Joins an IPv6 multicast group on a socket that sends to it, with
   * multicast loopback on (Deno's default is off, and it has no other way to
   * set IPV6_MULTICAST_LOOP): what it sends reaches the other daemons of the
   * host too.
   */
  loopMulticastV6?(socket: string, group: string, index: number): Promise<void>;
}

/** A protocol (or other long-lived part) the driver runs. */
export interface Service {
  readonly name: string;
  /** Names of the sockets whose datagrams come to {@link onDatagram}. */
  readonly sockets?: readonly string[];
  /**
   * True when what it drains (acks of stored messages, events about them)
   * must wait until the open group transaction has committed.
   */
  readonly waitsForCommit?: boolean;
  /** Called once, after every socket is bound, with the context to keep. */
  start(ctx: ServiceContext, now: number): void | Promise<void>;
  onDatagram?(socket: string, bytes: Uint8Array, from: Endpoint, now: number): void;
  /**
   * What is due at `now` (a service with no deadline of its own has none).
   * `late`: how long after the earliest time asked for (by any service's
   * pollTimeout) the driver's timer fired, i.e. how long the event loop was
   * too busy or starved to look; a deadline that waits for an answer from
   * the network need not count that time.
   */
  handleTimeout?(now: number, late?: number): void;
  pollTimeout?(): number | undefined;
  drainTransmits?(): readonly Outgoing[];
  drainEvents?(): readonly DaemonEvent[];
  /** Every event on the bus, its own included. */
  onEvent?(event: DaemonEvent, now: number): void;
  /** The group commit is about to happen: write what waited for it (see {@link ServiceContext.commitSoon}). */
  beforeCommit?(now: number): void;
  /** The open group transaction committed: what was written is durable. */
  onCommitted?(now: number): void;
  /** The group commit failed: what was written since the last one is gone; start over from the store. */
  onCommitFailed?(now: number): void;
  /** The daemon stops: say goodbye (drained and sent before the sockets close). */
  shutdown?(now: number): void;
  /** Its part of `/status`, merged into the top level. */
  status?(): Record<string, unknown>;
  /** What is wrong that a user must act on, in words; any makes `/healthz` answer 503. */
  problems?(): string[];
  /** Its counters and gauges for `/metrics`. */
  metrics?(m: MetricsWriter): void;
}

/** What every drain returns when there is nothing: no allocation per call. */
export const NOTHING: readonly never[] = Object.freeze([]);
