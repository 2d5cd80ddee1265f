/**
 * End-to-end encryption between daemons on loopback (docs/e2e.md): the
 * edges first (a restarted peer talks again at once, with no dead session
 * used; a member of a keyed group speaking under another member's id is
 * refused and counted), then messages, receipts and notes through the
 * sessions, open and keyed, with the marks on peers.
 */
import assert from "node:assert/strict";
import type { PeerJson } from "../../src/api/types.ts";
import { parseStaticKeyText } from "../../src/security/e2e_wire.ts";
import { parseNetworkKey, Sealer } from "../../src/security/seal.ts";
import {
  type DaemonProcess,
  freeUdpPort,
  killAll,
  runCli,
  startLoopbackDaemon,
  tempDataDir,
  until,
} from "../support/daemon_process.ts";
import { E2eMember } from "../support/e2e_member.ts";
import { writeKeyFile } from "../support/hostile.ts";

const http = (d: { httpUrl: string }) => d.httpUrl.replace("http://", "");

// deno-lint-ignore no-explicit-any
async function status(d: DaemonProcess): Promise<any> {
  return await (await fetch(`${d.httpUrl}/status`)).json();
}

async function peers(d: DaemonProcess): Promise<PeerJson[]> {
  return await (await fetch(`${d.httpUrl}/peers`)).json();
}

async function send(from: DaemonProcess, to: string, text: string): Promise<void> {
  const r = await runCli(["send", to, text, "--http", http(from)]);
  assert.equal(r.code, 0, `${to} ← ${text}: ${r.stdout}${r.stderr}`);
}

async function texts(d: DaemonProcess, peer: string): Promise<string[]> {
  const ms: { direction: string; text: string }[] = await (await fetch(`${d.httpUrl}/messages?peer=${peer}`)).json();
  return ms.filter((m) => m.direction === "in").map((m) => m.text);
}

/** Alice and bob on loopback, joined both ways; bob's data directory kept for his restart. */
async function pair(port: number, bDir: string): Promise<[DaemonProcess, DaemonProcess]> {
  const a = await startLoopbackDaemon(port, "alice").started();
  const b = await startLoopbackDaemon(port, "bob", { dataDir: bDir }).started();
  await a.joined(b.id, 5000);
  await b.joined(a.id, 5000);
  return [a, b];
}

Deno.test("a restarted peer talks again at once: its first message back opens a new session, and no datagram goes to a dead one", async () => {
  const port = freeUdpPort();
  const bDir = tempDataDir();
  try {
    const [a, first] = await pair(port, bDir);
    let b = first;
    await send(a, "bob", "before");
    await send(b, "alice", "reply before");
    // Bob dies without a goodbye and comes back with new session keys (and none of the old).
    await b.kill();
    b = await startLoopbackDaemon(port, "bob", { dataDir: bDir }).started();
    await a.waitFor(
      (l) => /^Peer restarted/.test(l.message) && l.properties?.id === b.id,
      10_000,
      "alice to see bob restart",
    );
    await b.joined(a.id, 5000);
    // Both ways at once: neither waits for the 5 s no-reply rule to notice the old session is dead.
    await send(a, "bob", "after");
    await send(b, "alice", "reply after");
    assert.deepEqual(await texts(b, "alice"), ["before", "after"]);
    assert.deepEqual(await texts(a, "bob"), ["reply before", "reply after"]);
    const [sa, sb] = [await status(a), await status(b)];
    for (const s of [sa, sb]) {
      assert.equal(s.counters.dropped["unknown-session"], 0, "nothing sent under a session its peer had lost");
      assert.equal(s.counters.dropped.unencrypted, 0);
      assert.equal(s.security.e2e.counters.handshakesFailed, 0);
      assert.ok(s.security.e2e.counters.opened > 0 && s.security.e2e.counters.sealed > 0);
      assert.equal(s.security.e2e.counters.clearSent, 0);
    }
    // lanchat forget drops bob's pin and his end-to-end state with it: the next message makes a new session.
    const initiations = sa.security.e2e.counters.initiationsSent;
    const forgot = await runCli(["forget", b.id, "--http", http(a)]);
    assert.equal(forgot.code, 0, forgot.stderr);
    assert.equal((await status(a)).security.e2e.peers, 0, "nothing kept of bob's sessions");
    await send(a, "bob", "after forget");
    assert.ok((await status(a)).security.e2e.counters.initiationsSent > initiations);
    assert.deepEqual(await texts(b, "alice"), ["before", "after", "after forget"]);
  } finally {
    await killAll();
  }
});

// The hostile tester's case: a peer that left the roster (a goodbye on a graceful restart, or a timeout after a
// crash) comes back with a higher incarnation as "joined", not "restarted"; its old session must still be dropped.
Deno.test("a peer restarted gracefully (goodbye, then a new hello) is spoken to at once, under a new session", async () => {
  const port = freeUdpPort();
  const bDir = tempDataDir();
  try {
    const [a, first] = await pair(port, bDir);
    let b = first;
    await send(a, "bob", "before");
    // A graceful restart: SIGTERM (goodbye), then the same data directory again.
    b.signal("SIGTERM");
    await b.wait();
    await a.left(b.id, 5000);
    b = await startLoopbackDaemon(port, "bob", { dataDir: bDir }).started();
    await a.joined(b.id, 5000);
    await b.joined(a.id, 5000);
    const t0 = performance.now();
    const r = await runCli(["send", "bob", "after", "--http", http(a), "--wait", "20"]);
    const ms = performance.now() - t0;
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const s = await status(b);
    assert.equal(
      s.counters.dropped["unknown-session"],
      0,
      `alice sent under a session bob had lost (delivered after ${ms.toFixed(0)} ms: ${r.stdout.trim()})`,
    );
  } finally {
    await killAll();
  }
});

for (const keyed of [false, true]) {
  Deno.test(`${keyed ? "keyed" : "open"} group: a member speaking under another member's id is refused and counted, clear or inside its own session`, async () => {
    const port = freeUdpPort();
    const keyFile = keyed ? writeKeyFile() : undefined;
    const extra = keyFile ? ["--key-file", keyFile] : [];
    const sealer = keyFile ? await Sealer.create(parseNetworkKey(Deno.readTextFileSync(keyFile), keyFile)) : undefined;
    const mallory = new E2eMember(sealer);
    try {
      const a = await startLoopbackDaemon(port, "alice", { extra }).started();
      const b = await startLoopbackDaemon(port, "bob", { extra }).started();
      await a.joined(b.id, 5000);
      await send(b, "alice", "genuine");
      // Mallory, a member (it has the network key, if any), joins alice's roster and gets a session with her.
      await mallory.hello(a.unicastPort);
      await a.joined(mallory.id, 5000);
      const aKey = parseStaticKeyText((await status(a)).security.e2e.staticKey)!;
      await mallory.sendInSession(a.id, aKey, E2eMember.msg(mallory.id, a.id, "from mallory"), a.unicastPort);
      await until("mallory's own message", async () => (await texts(a, mallory.id)).includes("from mallory"), 5000);
      // Now as bob: a clear message (bob speaks end-to-end), then one inside mallory's own session.
      await mallory.sendClear(E2eMember.msg(b.id, a.id, "forged clear"), a.unicastPort);
      await mallory.sendInSession(a.id, aKey, E2eMember.msg(b.id, a.id, "forged inside"), a.unicastPort);
      await until("both forgeries counted", async () => {
        const d = (await status(a)).counters.dropped;
        return d.unencrypted >= 1 && d.impersonation >= 1;
      }, 5000);
      assert.deepEqual(await texts(a, "bob"), ["genuine"], "no forged message stored under bob");
      const metrics = await (await fetch(`${a.httpUrl}/metrics`)).text();
      assert.match(metrics, /lanchat_datagrams_dropped_total\{reason="unencrypted"\} [1-9]/);
      assert.match(metrics, /lanchat_datagrams_dropped_total\{reason="impersonation"\} [1-9]/);
    } finally {
      await mallory.close();
      await killAll();
    }
  });

  Deno.test(`${keyed ? "keyed" : "open"} group of three: messages, read receipts and a group go end to end; peers are marked encrypted`, async () => {
    const port = freeUdpPort();
    const extra = keyed ? ["--key-file", writeKeyFile()] : [];
    try {
      const a = await startLoopbackDaemon(port, "alice", { extra }).started();
      const b = await startLoopbackDaemon(port, "bob", { extra }).started();
      const c = await startLoopbackDaemon(port, "carol", { extra }).started();
      for (const [x, y] of [[a, b], [a, c], [b, c]] as const) await x.joined(y.id, 5000);
      await send(a, "bob", "hi bob");
      await send(c, "bob", "hi from carol");
      const made = await runCli(["group", "create", "lab", "bob", "carol", "--http", http(a)]);
      assert.equal(made.code, 0, made.stderr);
      await send(a, "@lab", "to the lab");
      for (const d of [b, c]) {
        await until("the group line", async () => {
          const ms: { text: string }[] = await (await fetch(`${d.httpUrl}/messages?group=lab`)).json();
          return ms.some((m) => m.text === "to the lab");
        }, 5000);
      }
      // Bob reads alice's message: the receipt comes back to alice through the session.
      assert.equal((await runCli(["inbox", "--http", http(b)])).code, 0);
      await until("alice's message marked read", async () => {
        const ms: { direction: string; readAt?: string }[] = await (await fetch(`${a.httpUrl}/messages?peer=bob`))
          .json();
        return ms.some((m) => m.direction === "out" && m.readAt);
      }, 5000);
      for (const d of [a, b, c]) {
        const s = await status(d);
        assert.equal(s.counters.dropped.unencrypted, 0);
        assert.equal(s.security.e2e.counters.clearSent, 0, "nothing clear between new versions");
        assert.ok(s.security.e2e.sessions >= 1);
        for (const p of await peers(d)) assert.equal(p.encrypted, true, `${p.name} marked encrypted`);
      }
      // Every message, both sides, group copies included: marked encrypted.
      for (const d of [a, b, c]) {
        const all: { text: string; encrypted?: boolean }[] = await (await fetch(`${d.httpUrl}/messages?limit=100`))
          .json();
        assert.ok(all.length >= 2);
        for (const m of all) assert.equal(m.encrypted, true, `“${m.text}” marked encrypted`);
      }
      const listed = await runCli(["peers", "--http", http(a)]);
      assert.doesNotMatch(listed.stdout, /unencrypted/);
    } finally {
      await killAll();
    }
  });
}
