/**
 * Parsers for command-line values. Each throws commander's
 * `InvalidArgumentError` with a message saying what was expected, which
 * commander prints as one line before exiting with code 2.
 *
 * @module
 */
import { type Command, InvalidArgumentError, Option } from "commander";
import { textFieldProblem } from "../wire/mod.ts";
import { isMulticast6, splitHostPort } from "../node/net_address6.ts";
import { type InterfaceInfo, peerAddressProblem, readInterfaces } from "../node/peer_address.ts";

/** Exit codes shared by every subcommand. */
export const EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  noDaemon: 3,
  /** EX_TEMPFAIL: accepted and stored, not delivered yet. */
  queued: 75,
} as const;

/** The exit code a command asks for when it ends without an error (default 0). */
export const outcome = { code: EXIT.ok as number };

/** A UDP/TCP port, 0 to 65535 (0 = any free port). */
export function parsePort(s: string): number {
  if (!/^\d+$/.test(s) || Number(s) > 65535) throw new InvalidArgumentError(`"${s}" is not a port (0 to 65535).`);
  return Number(s);
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * The duration grammar: units `h`, `m`, `s`, `ms`, each at most once and in
 * that order (`1h30m`, `2m5s`, `1s500ms`; not `5s5s` nor `500ms1s`).
 */
const DURATION = /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$/;

/**
 * A duration with units, `ms`, `s`, `m`, `h`, alone or combined, each unit
 * at most once, largest first: `500ms`, `2s`, `1.5s`, `1m30s`, `1h`. Returns
 * milliseconds, or undefined for a plain number (see {@link parseDurationIn}).
 *
 * @throws {InvalidArgumentError} for anything else.
 */
export function parseDuration(s: string): number | undefined {
  const t = s.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return undefined;
  const m = DURATION.exec(t);
  if (!m || t === "") {
    throw new InvalidArgumentError(
      `"${s}" is not a duration (e.g. 500ms, 2s, 1m30s, 1h): units h, m, s, ms, each at most once, largest first.`,
    );
  }
  const [h, min, sec, ms] = m.slice(1).map((n) => Number(n ?? 0));
  return Math.round(h! * UNIT_MS.h! + min! * UNIT_MS.m! + sec! * UNIT_MS.s! + ms!);
}

/** A duration as a user types it: `500ms`, `2s`, `1m30s`, `33m20s`, `1h`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const parts: string[] = [];
  let left = ms;
  for (const [unit, size] of [["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) {
    const n = Math.floor(left / size);
    if (n > 0) parts.push(`${n}${unit}`);
    left -= n * size;
  }
  if (left > 0) parts.push(`${left}ms`);
  return parts.join("");
}

/** A bare number this large or larger is refused when it would also be a number of milliseconds in range. */
export const BARE_SECONDS_BELOW = 100;

/**
 * A duration within [minMs, maxMs], one grammar for every flag of every
 * command (the daemon's `--interval`, `send --wait`, `send-file --wait`):
 * `ms`, `s`, `m` and `h`, alone or combined (`500ms`, `30s`, `1m30s`,
 * `1.5s`). A bare number is seconds, as `sleep` takes it (`--wait 5`,
 * `--interval 0.5`), except that one of 100 or more which would also be a
 * number of milliseconds in range is refused, saying which unit to write:
 * never a silent 33 minutes for `--interval 2000`. Out of range, the error
 * says the range (and `did you mean 500ms?` when that would fit).
 */
export function parseDurationIn(minMs: number, maxMs: number): (s: string) => number {
  const range = `${formatDuration(minMs)} to ${formatDuration(maxMs)}`;
  const fits = (ms: number) => ms >= minMs && ms <= maxMs;
  return (s) => {
    const ms = parseDuration(s);
    if (ms !== undefined) {
      if (!fits(ms)) throw new InvalidArgumentError(`"${s}" is out of range (${range}).`);
      return ms;
    }
    const n = Number(s.trim());
    const asSeconds = Math.round(n * 1000);
    const asMs = Math.round(n);
    if (fits(asSeconds) && (n < BARE_SECONDS_BELOW || !fits(asMs))) return asSeconds;
    if (fits(asSeconds) && fits(asMs)) {
      throw new InvalidArgumentError(
        `"${s}" has no unit: write ${s.trim()}ms (${formatDuration(asMs)}) or ${s.trim()}s (${
          formatDuration(asSeconds)
        }).`,
      );
    }
    if (fits(asMs)) throw new InvalidArgumentError(`"${s}" has no unit: did you mean ${s.trim()}ms?`);
    throw new InvalidArgumentError(`"${s}" is out of range (${range}); write a unit: ms, s, m or h.`);
  };
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

/** A size in bytes: `0`, `4096`, `500M`, `1.5G`, `2GiB`, `10GB` (K/M/G/T alone are binary). */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(s.trim());
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new InvalidArgumentError(`"${s}" is not a size (e.g. 4096, 500M, 2G, 10GB).`);
  const n = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`"${s}" is too large.`);
  return n;
}

/** A usage error found outside commander's parsing (an environment variable): exit 2, one line. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** True for a dotted-quad IPv4 address. */
export function isIPv4(s: string): boolean {
  return /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(s) && s.split(".").every((o) => Number(o) <= 255);
}

/** True for a DNS host name (letters, digits and hyphens in dot-separated labels of up to 63). */
export function isHostName(s: string): boolean {
  return s.length <= 253 && /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i.test(s);
}

/** Splits `HOST[:PORT]`, with the host checked; a message in words when it is not one. */
function hostPort(s: string, what: string, portRequired: boolean): { host: string; port: number | undefined } {
  const m = /^(\[[^\]]*\]|[^:\[\]]+)(?::(\d*))?$/.exec(s.trim());
  if (!m) {
    throw new InvalidArgumentError(
      `"${s}" is not ${what}: expected HOST${portRequired ? ":PORT" : "[:PORT]"}, e.g. 127.0.0.1:47476.`,
    );
  }
  const host = m[1]!;
  if (m[2] === undefined && portRequired) {
    throw new InvalidArgumentError(`"${s}" has no port: expected HOST:PORT, e.g. ${host}:47476.`);
  }
  if (host.startsWith("[")) {
    const inner = host.slice(1, -1);
    if (!/^[0-9a-f:.]+$/i.test(inner) || !inner.includes(":")) {
      throw new InvalidArgumentError(`"${host}" is not an IPv6 address.`);
    }
  } else if (!isIPv4(host) && !isHostName(host)) {
    throw new InvalidArgumentError(`"${host}" is not a host name or an IPv4 address.`);
  }
  let port: number | undefined;
  if (m[2] !== undefined) {
    port = Number(m[2]);
    if (m[2] === "" || port > 65535) throw new InvalidArgumentError(`"${m[2]}" in "${s}" is not a port (0 to 65535).`);
  }
  return { host, port };
}

/** `HOST:PORT` (or HOST) the daemon serves HTTP on; port 0 picks a free one. */
export function parseHttp(s: string): { hostname: string; port: number } {
  const { host, port } = hostPort(s, "an address to serve HTTP on", false);
  return { hostname: host.replace(/^\[|\]$/g, ""), port: port ?? 47476 };
}

/**
 * The daemon a command talks to: `HOST:PORT`, or an `http://` URL with one.
 * Anything else is a usage error (exit 2), not "no daemon" (exit 3).
 */
export function parseDaemonAddress(s: string): string {
  const raw = s.trim().replace(/\/+$/, "");
  const url = /^https?:\/\//i.exec(raw);
  const { host, port } = hostPort(url ? raw.slice(url[0].length) : raw, "a daemon address", true);
  if (port === 0) throw new InvalidArgumentError(`"${s}": port 0 names no daemon; give the port it listens on.`);
  return `${url ? url[0].toLowerCase() : "http://"}${host}:${port}`;
}

/** The client's `--http <host:port>` option. */
export function httpOption(): Option {
  return new Option("--http <host:port>", "the daemon's HTTP endpoint (default: $LANCHAT_HTTP or 127.0.0.1:47476)")
    .argParser(parseDaemonAddress);
}

/** An IPv4 address. */
export function parseIPv4Arg(s: string): string {
  if (!/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(s) || s.split(".").some((o) => Number(o) > 255)) {
    throw new InvalidArgumentError(`"${s}" is not an IPv4 address.`);
  }
  return s;
}

/** `HOST[:PORT]`, `[IPV6]:PORT` or a bare IPv6 literal for --peer, checked now so a typo fails at start. */
export function parsePeer(s: string, interfaces: () => readonly InterfaceInfo[] = readInterfaces): string {
  const t = s.trim();
  let host: string;
  let port: number | undefined;
  if (t.startsWith("[") || (t.match(/:/g) ?? []).length > 1) {
    try {
      ({ host, port } = splitHostPort(t, 47475));
    } catch (e) {
      throw new InvalidArgumentError(`${(e as Error).message.replace(/^Invalid address "[^"]*": /, `"${s}": `)}.`);
    }
    if (isMulticast6(host)) throw new InvalidArgumentError(`"${s}": a multicast address names no peer.`);
  } else {
    ({ host, port } = hostPort(s, "a peer address", false));
  }
  if (port === 0) throw new InvalidArgumentError(`"${s}": port 0 names no peer; give its unicast port (47475).`);
  const problem = peerAddressProblem(host.replace(/^\[|\]$/g, ""), interfaces());
  if (problem) throw new InvalidArgumentError(`"${s}": ${problem}.`);
  return s;
}

/**
 * The discovery port: every daemon of a LAN must use the same one, so 0
 * (any free port) is refused.
 */
export function parseDiscoveryPort(s: string): number {
  const port = parsePort(s);
  if (port === 0) {
    throw new InvalidArgumentError(
      "the discovery port cannot be 0: every host of the LAN must use the same one (default 47474).",
    );
  }
  return port;
}

/** A display name, checked as the wire checks it: 1 to 64 UTF-8 bytes, no control characters. */
export function parseName(s: string): string {
  const problem = textFieldProblem(s, 1);
  if (problem) throw new InvalidArgumentError(`--name ${JSON.stringify(s)}: ${problem}.`);
  return s;
}

/** Collects a repeatable option into an array. */
export function collect<T>(parse: (s: string) => T): (value: string, previous: T[] | undefined) => T[] {
  return (value, previous) => [...(previous ?? []), parse(value)];
}

/** Wraps a parser that throws plain errors so commander reports them as usage errors (exit 2). */
export function usage<T>(parse: (s: string) => T): (s: string) => T {
  return (s) => {
    try {
      return parse(s);
    } catch (e) {
      if (e instanceof InvalidArgumentError) throw e;
      throw new InvalidArgumentError(`${(e as Error).message}.`);
    }
  };
}

const waitDuration = parseDurationIn(0, 60_000);

/**
 * `--wait DURATION` of send, broadcast and send-file, 0 to 60 s, in the
 * grammar of every duration ({@link parseDurationIn}: `30s`, `500ms`, `5`);
 * returns seconds, as the API's `?wait=` takes them.
 */
export function parseWaitSeconds(s: string): number {
  return waitDuration(s) / 1000;
}

/** `--wait DURATION` (0 to 60 s, {@link parseWaitSeconds}) with its default shown as typed: `5s`. */
export function waitOption(help: string, defaultSeconds: number): Option {
  return new Option("--wait <duration>", `${help}, 0 to 60s (e.g. 30s, 500ms; a bare number is seconds)`)
    .argParser(parseWaitSeconds)
    .default(defaultSeconds, `${defaultSeconds}s`);
}

/** A count from 1 to 10000. */
export function parseLimit(s: string): number {
  if (!/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 10_000) {
    throw new InvalidArgumentError(`"${s}" is not a whole number from 1 to 10000.`);
  }
  return Number(s);
}

/** A word for a POSIX shell, quoted when it needs to be (for commands printed as hints). */
export function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** A place in history: a cursor (a whole number) or an ISO 8601 time. */
export function parsePlace(s: string): string {
  const v = s.trim();
  if (/^\d+$/.test(v) || !Number.isNaN(Date.parse(v))) return v;
  throw new InvalidArgumentError(`"${s}" is not a cursor (a number) or an ISO 8601 time (e.g. 2026-12-01T09:00).`);
}

/** A roster bound, 1 to 100000. */
export function parseMaxPeers(s: string): number {
  if (!/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 100_000) {
    throw new InvalidArgumentError(`"${s}" is not a number of peers from 1 to 100000.`);
  }
  return Number(s);
}

/** `--http-max-connections`: 1 to 100000. */
export function parseMaxConnections(s: string): number {
  if (!/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 100_000) {
    throw new InvalidArgumentError(`"${s}" is not a number of connections from 1 to 100000.`);
  }
  return Number(s);
}

/** `--announce-budget`: a whole number of hellos a second, 1 to 10000. */
export function parseBudget(s: string): number {
  if (!/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 10_000) {
    throw new InvalidArgumentError(`"${s}" is not a number of hellos a second from 1 to 10000.`);
  }
  return Number(s);
}

/**
 * Refuses an empty value where something must be named (a required
 * argument: PEER, ID, GROUP, PATH; an option's value: `--peer ""`) as a
 * usage error (exit 2) before the daemon is asked, for every command but
 * `daemon` (whose flags each have a parser) and the arguments a command
 * words itself (TEXT, a group's NAME). Run as commander's preAction hook.
 *
 * @throws {UsageError} naming the argument or option.
 */
export function refuseEmpty(command: Command): void {
  if (command.name() === "daemon") return;
  const worded = new Set(["text", "name"]);
  for (const [i, arg] of command.registeredArguments.entries()) {
    if (!arg.required || worded.has(arg.name())) continue;
    const given = command.processedArgs[i] as string | string[] | undefined;
    const empty = Array.isArray(given) ? given.some((v) => v.trim() === "") : given?.trim() === "";
    if (!empty) continue;
    const what = arg.variadic ? `One of the ${arg.name().toUpperCase()}` : arg.name().toUpperCase();
    throw new UsageError(`${what} is empty (expected: ${arg.description})`);
  }
  // `@` alone (or `@ `) names no group: a usage error too, not an unknown group.
  for (const [i, arg] of command.registeredArguments.entries()) {
    if (!["peer", "group", "peers"].includes(arg.name())) continue;
    const given = command.processedArgs[i] as string | string[] | undefined;
    const at = [given ?? []].flat().some((v) => v.startsWith("@") && v.slice(1).trim() === "");
    if (at) throw new UsageError("The group is an empty name: name it by @NAME, its name or its id");
  }
  const opts = command.opts() as Record<string, unknown>;
  for (const o of command.options) {
    const v = opts[o.attributeName()];
    if (typeof v === "string" && v.trim() === "") {
      throw new UsageError(`${o.long ?? o.flags} is empty: give it a value`);
    }
  }
}
