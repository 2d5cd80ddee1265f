/**
 * `lanchat verify PEER` against real daemons on loopback: the safety number
 * is the same on both sides, `--yes` and a "y" on a terminal mark the key
 * trusted, unknown, ambiguous and IP Messenger peers get no number, and a
 * changed key is shown in words in `peers`, `status` and `verify`.
 */
import assert from "node:assert/strict";
import type { PeerJson, VerifyJson } from "../../src/api/types.ts";
import {
  type DaemonProcess,
  freeUdpPort,
  killAll,
  runCli,
  startLoopbackDaemon,
  until,
} from "../support/daemon_process.ts";
import { newNodeKey, sendHello } from "../support/hostile.ts";

const NUMBER = /^\d{5}( \d{5}){11}$/;
const http = (d: DaemonProcess) => d.httpUrl.replace("http://", "");

/** The CLI on a terminal, `input` typed: its exit code and what the terminal showed. */
async function onTerminal(args: string[], input: string): Promise<{ code: number; out: string }> {
  const r = await runCli(args, { terminal: true, stdin: input });
  return { code: r.code, out: r.stdout };
}

/** Alice and bob on loopback, each in the other's roster. */
async function aliceAndBob(): Promise<{ a: DaemonProcess; b: DaemonProcess }> {
  const port = freeUdpPort();
  const a = await startLoopbackDaemon(port, "alice").started();
  const b = await startLoopbackDaemon(port, "bob").started();
  await a.joined(b.id, 5000);
  await b.joined(a.id, 5000);
  return { a, b };
}

async function cli(d: DaemonProcess, ...args: string[]) {
  return await runCli([...args, "--http", http(d)]);
}

async function verifyJson(d: DaemonProcess, peer: string): Promise<{ code: number; v: VerifyJson }> {
  const r = await cli(d, "verify", peer, "--json");
  assert.ok(r.code === 0 || r.code === 1, r.stderr);
  return { code: r.code, v: JSON.parse(r.stdout) };
}

async function peersOf(d: DaemonProcess): Promise<PeerJson[]> {
  const r = await cli(d, "peers", "--json");
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** The three lines of 4 groups of five digits `verify` prints. */
function numberIn(stdout: string): string {
  const lines = stdout.split("\n").filter((l) => /^\s+\d{5}(\s+\d{5}){3}\s*$/.test(l));
  assert.equal(lines.length, 3, stdout);
  return lines.map((l) => l.trim().split(/\s+/).join(" ")).join(" ");
}

Deno.test("verify shows the same safety number on both daemons; not confirmed exits 1, --yes trusts the key", async () => {
  try {
    const { a, b } = await aliceAndBob();
    const onA = await verifyJson(a, b.id);
    const onB = await verifyJson(b, a.id);
    assert.equal(onA.code, 1, "not verified yet");
    assert.match(onA.v.safetyNumber, NUMBER);
    assert.equal(onA.v.safetyNumber, onB.v.safetyNumber, "the same number on both sides");
    assert.deepEqual([onA.v.state, onA.v.trust, onA.v.peer.id, onA.v.self.id], ["not verified", "tofu", b.id, a.id]);
    // Without a terminal and without --yes: the number, and nothing changed.
    const plain = await cli(a, "verify", "bob");
    assert.equal(plain.code, 1, plain.stderr);
    assert.equal(numberIn(plain.stdout), onA.v.safetyNumber);
    assert.match(plain.stdout, /Not confirmed: standard input is not a terminal/);
    assert.equal((await peersOf(a)).find((p) => p.id === b.id)!.trust, "tofu");
    // They matched.
    const yes = await cli(a, "verify", "bob", "--yes");
    assert.equal(yes.code, 0, yes.stderr);
    assert.match(yes.stdout, /Verified: bob's key \([0-9a-f:]+\) is trusted/);
    assert.equal((await peersOf(a)).find((p) => p.id === b.id)!.trust, "trusted");
    const table = await cli(a, "peers");
    assert.match(table.stdout, /\(trusted\)/);
    const again = await verifyJson(a, "bob");
    assert.deepEqual([again.code, again.v.state, again.v.safetyNumber], [0, "verified", onA.v.safetyNumber]);
    // On a terminal: the question, and "y" trusts.
    const tty = await onTerminal(["verify", "alice", "--http", http(b)], "y\n");
    assert.equal(tty.code, 0, tty.out);
    assert.match(tty.out, /Does alice's screen show the same number\? \[y\/N\]/);
    assert.match(tty.out, /Verified: alice's key/);
    assert.equal((await peersOf(b)).find((p) => p.id === a.id)!.trust, "trusted");
  } finally {
    await killAll();
  }
});

Deno.test("verify on a terminal answered no (or nothing) changes nothing and exits 1", async () => {
  try {
    const { a, b } = await aliceAndBob();
    for (const answer of ["n\n", "\n"]) {
      const tty = await onTerminal(["verify", "bob", "--http", http(a)], answer);
      assert.equal(tty.code, 1, tty.out);
      assert.match(tty.out, /Not confirmed: bob's key stays not verified/);
    }
    assert.equal((await peersOf(a)).find((p) => p.id === b.id)!.trust, "tofu");
  } finally {
    await killAll();
  }
});

Deno.test("verify refuses an unknown, an ambiguous and an IP Messenger peer without making up a number", async () => {
  const port = freeUdpPort();
  const ipmsgPort = freeUdpPort();
  const feiq = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  try {
    const a = await startLoopbackDaemon(port, "alice", { extra: ["--ipmsg", "--ipmsg-port", String(ipmsgPort)] })
      .started();
    const unknown = await cli(a, "verify", "nobody");
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /No peer matches "nobody"/);
    assert.doesNotMatch(unknown.stdout, /\d{5}/);
    // Two signed peers whose names differ only in case: "CAROL" is ambiguous.
    const c1 = newNodeKey();
    const c2 = newNodeKey();
    await sendHello(c1, "Carol", a.unicastPort);
    await sendHello(c2, "carol", a.unicastPort);
    await a.joined(c1.id, 3000);
    await a.joined(c2.id, 3000);
    const ambiguous = await cli(a, "verify", "CAROL");
    assert.equal(ambiguous.code, 1);
    assert.match(ambiguous.stderr, /matches 2 peers/);
    assert.doesNotMatch(ambiguous.stdout, /\d{5}/);
    // An IP Messenger user enters: no node key, no number.
    const entry = new TextEncoder().encode("1:1700000002:dave:DAVE-PC:1:dave\0\0");
    await feiq.send(entry, { transport: "udp", hostname: "127.0.0.1", port: ipmsgPort });
    await until("the IP Messenger user", async () => (await peersOf(a)).some((p) => p.protocol === "ipmsg"), 5000);
    const ipmsg = await cli(a, "verify", "dave");
    assert.equal(ipmsg.code, 1);
    assert.match(ipmsg.stderr, /dave is an IP Messenger user: that protocol has no node key/);
    assert.doesNotMatch(ipmsg.stdout, /\d{5}/);
    const json = await cli(a, "verify", "dave", "--json");
    assert.equal(json.code, 1);
    assert.equal(json.stdout, "");
  } finally {
    feiq.close();
    await killAll();
  }
});

Deno.test("a changed key is shown in words in peers, status and verify; verifying the new key hands it the name", async () => {
  try {
    const { a, b } = await aliceAndBob();
    const before = await verifyJson(a, "bob");
    // Another key says it is bob (bob's host with a new key, or someone else).
    const newBob = newNodeKey();
    await sendHello(newBob, "bob", a.unicastPort);
    await a.joined(newBob.id, 3000);
    const np = (await peersOf(a)).find((p) => p.id === newBob.id)!;
    assert.equal(np.trust, "conflict");
    assert.match(np.keyNote!, /^bob's key changed: this key \([0-9a-f:]+\) is not the one pinned for bob/);
    assert.match(np.keyNote!, /Messages to "bob" are refused until you compare safety numbers/);
    assert.match(np.keyNote!, new RegExp(`lanchat verify ${newBob.id.slice(0, 8)}`));
    const table = await cli(a, "peers");
    assert.match(table.stdout, /\(KEY CHANGED\)/);
    assert.match(table.stdout, new RegExp(`KEY CHANGED \\(${newBob.id.slice(0, 12)}\\): bob's key changed`));
    const status = await cli(a, "status");
    assert.match(status.stdout, /KEY CHANGED \([0-9a-f]{12}\): bob's key changed/);
    const byName = await cli(a, "verify", "bob");
    assert.equal(byName.code, 1);
    assert.match(byName.stderr, /claimed by more than one node key/);
    const changed = await verifyJson(a, newBob.id);
    assert.equal(changed.code, 1);
    assert.equal(changed.v.state, "key changed");
    assert.equal(changed.v.keyNote, np.keyNote);
    assert.notEqual(changed.v.safetyNumber, before.v.safetyNumber, "another key, another number");
    const words = await cli(a, "verify", newBob.id);
    assert.match(words.stdout, /^KEY CHANGED: bob's key changed/m);
    // The person compared numbers with bob: the new key is his.
    const yes = await cli(a, "verify", newBob.id, "--yes");
    assert.equal(yes.code, 0, yes.stderr);
    const after = await peersOf(a);
    assert.equal(after.find((p) => p.id === newBob.id)!.trust, "trusted");
    const old = after.find((p) => p.id === b.id)!;
    assert.equal(old.trust, "replaced");
    assert.match(old.keyNote!, /^bob's name went to another key you verified/);
    assert.doesNotMatch((await cli(a, "status")).stdout, /KEY CHANGED/);
  } finally {
    await killAll();
  }
});
