/**
 * Parsers for command-line values. Each throws commander's
 * `InvalidArgumentError` with a message saying what was expected, which
 * commander prints as one line before exiting with code 2.
 *
 * @module
 */
import { InvalidArgumentError } from "commander";
import { parseHostPort } from "../daemon.ts";

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

/**
 * A duration: `500ms`, `2s`, `1.5s`, `1m`, or a plain number of seconds.
 * Returns milliseconds.
 */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s.trim());
  if (!m) throw new InvalidArgumentError(`"${s}" is not a duration (e.g. 500ms, 2s, 1m).`);
  const n = Number(m[1]);
  const ms = m[2] === "ms" ? n : m[2] === "m" ? n * 60_000 : n * 1000;
  return Math.round(ms);
}

/** `HOST:PORT` for --http. */
export function parseHttp(s: string): { hostname: string; port: number } {
  try {
    const { host, port } = parseHostPort(s, 47476);
    return { hostname: host, port };
  } catch (e) {
    throw new InvalidArgumentError(`${(e as Error).message}.`);
  }
}

/** An IPv4 address. */
export function parseIPv4Arg(s: string): string {
  if (!/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(s) || s.split(".").some((o) => Number(o) > 255)) {
    throw new InvalidArgumentError(`"${s}" is not an IPv4 address.`);
  }
  return s;
}

/** `HOST[:PORT]` for --peer, checked now so a typo fails at start. */
export function parsePeer(s: string): string {
  try {
    parseHostPort(s, 47475);
  } catch (e) {
    throw new InvalidArgumentError(`${(e as Error).message}.`);
  }
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

/** A duration within [minMs, maxMs]. */
export function parseDurationIn(minMs: number, maxMs: number): (s: string) => number {
  return (s) => {
    const ms = parseDuration(s);
    if (ms < minMs || ms > maxMs) {
      throw new InvalidArgumentError(`"${s}" is out of range (${minMs} ms to ${maxMs} ms).`);
    }
    return ms;
  };
}

/** Seconds to wait, 0 to 60. */
export function parseWaitSeconds(s: string): number {
  const n = Number(s);
  if (!/^\d+(\.\d+)?$/.test(s) || n > 60) {
    throw new InvalidArgumentError(`"${s}" is not a number of seconds from 0 to 60.`);
  }
  return n;
}

/** A count from 1 to 10000. */
export function parseLimit(s: string): number {
  if (!/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 10_000) {
    throw new InvalidArgumentError(`"${s}" is not a whole number from 1 to 10000.`);
  }
  return Number(s);
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
