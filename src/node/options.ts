/**
 * What a daemon is started with: its options and their defaults, the
 * operating-system calls it makes (replaceable in tests by a fake network),
 * and the daemon's own timing constants.
 *
 * @module
 */
import dgram from "node:dgram";
import { bindUdp, connectTcp, listenTcp, type Transport } from "./transport.ts";
import { type InterfaceAddress, readInterfaces } from "./net_address.ts";
import { splitHostPort } from "./net_address6.ts";
import type { DesktopBus } from "./desktop_bus.ts";

export const DEFAULT_DISCOVERY_PORT = 47474;
export const DEFAULT_UNICAST_PORT = 47475;
export const DEFAULT_HTTP = { hostname: "127.0.0.1", port: 47476 } as const;

/** How often delivery-status updates are written to the database. */
export const STATUS_FLUSH_MS = 250;
/** How often interfaces are re-read, to pick up a new DHCP address or interface. */
export const INTERFACE_REFRESH_MS = 5000;
/**
 * Known peers (remembered so they can be addressed offline) that no message
 * was ever exchanged with are forgotten after this long unseen, and beyond
 * {@link MAX_IDLE_KNOWN_PEERS} of them, the least recently seen first.
 */
export const IDLE_PEER_TTL_MS = 7 * 24 * 3600_000;
export const MAX_IDLE_KNOWN_PEERS = 10_000;
/** How often known peers are pruned (and once at start). */
export const PRUNE_EVERY_MS = 3600_000;

export interface DaemonOptions {
  dataDir?: string;
  name?: string;
  discoveryPort?: number;
  unicastPort?: number;
  /** Where to serve HTTP; null for none. */
  http?: { hostname: string; port: number } | null;
  intervalMs?: number;
  probeTimeoutMs?: number;
  /** Allow list of interface names (empty: all). */
  interfaces?: string[];
  /** Deny list of interface names. */
  excludeInterfaces?: string[];
  /** Extra broadcast addresses. */
  broadcasts?: string[];
  /** Static unicast peers: `HOST[:PORT]`, `[IPV6]:PORT`, PORT being their unicast port. */
  peers?: string[];
  /**
   * Speak IPv6 (default true): the unicast and file sockets dual-stack, and
   * announces multicast on every IPv6 interface. False (`--no-ipv6`): IPv4 only.
   */
  ipv6?: boolean;
  /**
   * File holding the bearer token the HTTP API requires, on loopback too
   * (the API is its owner's); created (0600) if absent. Default
   * `<data-dir>/http_token`.
   */
  httpTokenFile?: string;
  /** The group's network key (32 bytes): every datagram sealed with it. */
  networkKey?: Uint8Array;
  /** Where the network key was read from (for `lanchat doctor`). */
  keyFilePath?: string;
  /** Bound on the roster (default 1024). */
  maxPeers?: number;
  /** Hellos a second each host may receive from all others (default 50): scales the announce interval. */
  announceBudget?: number;
  /** Also speak IP Messenger (IP Messenger, FeiQ, iptux) on this UDP port. */
  ipmsg?: { port: number; group: string };
  /** Most HTTP connections open at once (default 256, lowered to fit the open-file limit). */
  httpMaxConnections?: number;
  /**
   * Refuse peers of a version without end-to-end encryption (their hellos
   * carry no `nk`): nothing is sent to them, their clear packets are dropped.
   * Default false: they are spoken to in the clear, marked unencrypted.
   */
  requireEncryption?: boolean;
  /** Send read receipts (default true; `--no-read-receipts`). */
  readReceipts?: boolean;
  /** While away, the text each peer that writes gets once (an automatic reply). */
  awayReply?: string;
  /** File transfer: where received files go, and which offers are accepted without asking. */
  files?: FileOptions;
  /**
   * Desktop notifications (freedesktop, on the session bus) for messages
   * that come while no web page is open; default true, where
   * `DBUS_SESSION_BUS_ADDRESS` is set (`--no-notify`).
   */
  notify?: boolean;
  /** Advertise and browse `_lanchat._udp.local` by mDNS (default true; `--no-mdns`). */
  mdns?: boolean;
  /** The notifier (tests: a fake bus, or gdbus by another path); default `gdbus` on the session bus. */
  desktopBus?: DesktopBus;
}

export interface FileOptions {
  /** Where received files go (default: the XDG download directory, or ~/Downloads, then lanchat/). */
  downloads?: string;
  /** `ask`: an offer waits for `lanchat accept`; `trusted`: accepted from peers whose key is trusted; `always`. */
  accept?: "ask" | "trusted" | "always";
  /** Offers larger than this (bytes) always wait to be accepted (default 1 GiB). */
  autoAcceptMaxBytes?: number;
  /** --auto-accept-images: replaces the stored setting at start (pictures from verified peers, see files_media.ts). */
  autoAcceptImages?: { enabled: boolean; maxBytes: number };
  /** Bytes always kept free on the downloads' file system: an offer that would not leave them is refused (default 1 GiB). */
  keepFreeBytes?: number;
  /** First wait before a stalled download is tried again, doubling up to 30 times it (default 2 s; tests shorten it). */
  retryFirstMs?: number;
}

/** The OS-facing calls, replaceable in tests. */
export interface DaemonIo {
  bindUdp(hostname: string, port: number, options: { reuseAddress?: boolean }): Transport;
  /** TCP for file transfer; a fake network without it runs no file service. */
  listenTcp?(hostname: string, port: number): Deno.TcpListener;
  connectTcp?(hostname: string, port: number): Promise<Deno.TcpConn>;
  readInterfaces(): { addresses: InterfaceAddress[]; down: Set<string> };
  /** An IPv4 UDP socket that can join multicast groups (mDNS); a fake network without it runs no mDNS. */
  openMulticast4?(): dgram.Socket;
  resolve(host: string): Promise<string[]>;
  now(): number;
  hostname(): string;
  env(name: string): string | undefined;
}

/** The real OS. */
export const realIo: DaemonIo = {
  bindUdp,
  listenTcp,
  connectTcp,
  readInterfaces,
  openMulticast4: () => dgram.createSocket({ type: "udp4", reuseAddr: true }),
  resolve: (host) => Deno.resolveDns(host, "A"),
  now: () => performance.now(),
  hostname: () => Deno.hostname(),
  env: (name) => Deno.env.get(name),
};

/** Parses `HOST[:PORT]`, `[IPV6]:PORT` or a bare IPv6 literal; PORT defaults to `defaultPort`. */
export function parseHostPort(s: string, defaultPort: number): { host: string; port: number } {
  return splitHostPort(s, defaultPort);
}

/** Why a host name could not be resolved, in words (the resolver's own errors dump its query structure). */
export function dnsProblem(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such host (no DNS A record)";
  if (e instanceof Deno.errors.TimedOut) return "the DNS server did not answer in time";
  if (e instanceof Deno.errors.ConnectionRefused) return "the DNS server refused the query";
  const message = (e as Error)?.message ?? String(e);
  if (/invalid characters|malformed label/i.test(message)) return "not a valid host name";
  if (/no connections available|network is unreachable/i.test(message)) return "no DNS server can be reached";
  return "the lookup failed";
}
