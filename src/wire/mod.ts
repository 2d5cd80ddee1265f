/**
 * lanchat's datagram formats: pure encode, decode and validate, no I/O.
 *
 * @module
 */
export * from "./frame.ts";
export * from "./packets.ts";
export * from "./peer_list.ts";
export * from "./probe_packets.ts";
