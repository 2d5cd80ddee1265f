/**
 * Helpers for tests on the namespace LAN (scripts/lan.ts): a lab that is
 * always torn down, and a daemon's roster and status read through the CLI
 * inside a host.
 */
import assert from "node:assert/strict";
import { createLan, type Lan } from "../../scripts/lan.ts";
import { createHash } from "node:crypto";
import { DaemonProcess, killAll, runCli, tempDataDir, until } from "./daemon_process.ts";
import type { PeerJson, TransferJson } from "../../src/api/types.ts";

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

/** A daemon in namespace `ns` named `name`, announcing every 500 ms, probing for 500 ms, with `extra` flags. */
export function lanDaemon(ns: string, name: string, extra: string[] = []): DaemonProcess {
  return new DaemonProcess(
    ["--name", name, "--data-dir", tempDataDir(), "--interval", "500ms", "--probe-timeout", "500ms", ...extra],
    { netns: ns },
  );
}

/** `lanchat send TO TEXT` inside namespace `ns`: delivered (exit 0), or the assertion says what it printed. */
export async function sendIn(ns: string, to: string, text: string): Promise<void> {
  const r = await runCli(["send", to, text, "--wait", "10"], { netns: ns });
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
}

/**
 * `lanchat send-file TO PATH` from namespace `from`; waits until the daemon in
 * `to` says the transfer is done and checks what landed in `downloads` is
 * the file, byte for byte (SHA-256). Returns the seconds send-file took.
 */
export async function sendFileIn(
  o: { from: string; to: string; peer: string; path: string; downloads: string },
): Promise<number> {
  const t0 = Date.now();
  const sent = await runCli(["send-file", o.peer, o.path, "--json", "--wait", "60"], { netns: o.from });
  const seconds = (Date.now() - t0) / 1000;
  assert.equal(sent.code, 0, `${sent.stdout}${sent.stderr}`);
  const t = JSON.parse(sent.stdout) as TransferJson;
  assert.equal(t.state, "done");
  await until("the receiver to say done", async () => {
    const r = await runCli(["transfers", "--json"], { netns: o.to });
    return (JSON.parse(r.stdout) as TransferJson[]).some((x) => x.id === t.id && x.state === "done");
  }, 10_000);
  const sha = async (path: string) => createHash("sha256").update(await Deno.readFile(path)).digest("hex");
  assert.equal(await sha(`${o.downloads}/${o.path.slice(o.path.lastIndexOf("/") + 1)}`), await sha(o.path));
  return seconds;
}
