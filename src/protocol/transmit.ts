/**
 * What a protocol state machine hands its driver to send: a datagram, the
 * endpoint it goes to and the socket it leaves from. Discovery, messaging and
 * IP Messenger all give back these from `drainTransmits()`.
 *
 * @module
 */
import type { Packet } from "../wire/mod.ts";

/** A UDP endpoint. */
export interface Endpoint {
  address: string;
  port: number;
}

/**
 * Which socket a datagram leaves from: `broadcast` = the shared discovery
 * socket, `unicast` = this daemon's own unicast socket.
 */
export type Via = "broadcast" | "unicast";

/** A datagram the driver must send. */
export interface Transmit {
  via: Via;
  to: Endpoint;
  bytes: Uint8Array;
  kind: Packet["kind"];
  /**
   * The node it is for, when the sender knows it (messaging): the lanchat
   * link sends it over that peer's end-to-end session.
   */
  peer?: string;
}
