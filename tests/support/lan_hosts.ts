/**
 * Helpers for tests on the namespace LAN (scripts/lan.ts): a lab that is
 * always torn down, and a daemon's roster and status read through the CLI
 * inside a host.
 */
import assert from "node:assert/strict";
import { createLan, type Lan } from "../../scripts/lan.ts";
import { killAll, runCli } from "./daemon_process.ts";
import type { PeerJson } from "../../src/api/types.ts";

/** Builds a LAN of `n` hosts, runs `body`, then kills every daemon and deletes the lab, even on failure. */
export async function withLan(n: number, body: (lan: Lan) => Promise<void>): Promise<void> {
  const lan = await createLan(n);
  try {
    await body(lan);
  } finally {
    await killAll();
    await lan.destroy();
  }
}

/** `lanchat peers --json` inside namespace `ns`. */
export function peersIn(ns: string): Promise<PeerJson[]> {
  return cliJson(ns, ["peers", "--json"]);
}

/** `lanchat status --json` inside namespace `ns`. */
// deno-lint-ignore no-explicit-any
export function statusIn(ns: string): Promise<any> {
  return cliJson(ns, ["status", "--json"]);
}

async function cliJson<T>(ns: string, args: string[]): Promise<T> {
  const r = await runCli(args, { netns: ns });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}
