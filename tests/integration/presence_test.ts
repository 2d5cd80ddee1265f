/**
 * Presence between two daemons on loopback: away with a note is seen by the
 * other at once (not at the next announce), kept across a restart, and
 * back online; the web API refuses a state it does not know.
 */
import assert from "node:assert/strict";
import type { PeerJson } from "../../src/api/types.ts";
import { freeUdpPort, killAll, runCli, startLoopbackDaemon, tempDataDir, until } from "../support/daemon_process.ts";

async function peerIn(httpUrl: string, id: string): Promise<PeerJson | undefined> {
  const peers: PeerJson[] = await (await fetch(`${httpUrl}/peers`)).json();
  return peers.find((p) => p.id === id);
}

Deno.test("away with a note reaches the other daemon at once, survives a restart, and online clears it", async () => {
  const port = freeUdpPort();
  const aDir = tempDataDir();
  try {
    // A long announce interval: what arrives within a second came with the change, not with the next hello.
    let a = await startLoopbackDaemon(port, "alice", { dataDir: aDir, intervalMs: 20_000, probeMs: 5000 }).started();
    const b = await startLoopbackDaemon(port, "bob", { intervalMs: 20_000, probeMs: 5000 }).started();
    await b.joined(a.id, 5000);
    const events = new AbortController();
    const seen: string[] = [];
    const stream = fetch(`${b.httpUrl}/events`, { signal: events.signal }).then(async (r) => {
      for await (const chunk of r.body!.pipeThrough(new TextDecoderStream())) seen.push(chunk);
    }).catch(() => {});
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    const away = await runCli(["away", "at", "lunch", "until", "14:00", "--http", a.httpUrl.replace("http://", "")]);
    assert.equal(away.code, 0, away.stderr);
    assert.equal(away.stdout.trim(), "You are away: at lunch until 14:00");
    await until("bob to see alice away", async () => (await peerIn(b.httpUrl, a.id))?.presence === "away", 2000);
    assert.ok(Date.now() - t0 < 2000);
    assert.equal((await peerIn(b.httpUrl, a.id))?.note, "at lunch until 14:00");
    await until("the peer-presence event", () => Promise.resolve(seen.join("").includes("event: peer-presence")), 2000);
    const mine = await runCli(["status", "--http", a.httpUrl.replace("http://", "")]);
    assert.match(mine.stdout, /^presence: away: at lunch until 14:00$/m);
    const peers = await runCli(["peers", "--http", b.httpUrl.replace("http://", "")]);
    assert.match(peers.stdout, /alice .*alive, away: at lunch until 14:00/);
    // Kept across a restart: alice's first hellos say away.
    await a.kill();
    a = await startLoopbackDaemon(port, "alice", { dataDir: aDir, intervalMs: 20_000, probeMs: 5000 }).started();
    const status = await (await fetch(`${a.httpUrl}/status`)).json();
    assert.deepEqual([status.presence, status.note], ["away", "at lunch until 14:00"]);
    await until("bob to see the restarted alice, still away", async () => {
      const p = await peerIn(b.httpUrl, a.id);
      return p?.incarnation === 2 && p.presence === "away";
    }, 5000);
    // Back.
    const back = await runCli(["online", "--http", a.httpUrl.replace("http://", "")]);
    assert.equal(back.code, 0, back.stderr);
    await until("bob to see alice online", async () => (await peerIn(b.httpUrl, a.id))?.presence === "online", 2000);
    assert.equal((await peerIn(b.httpUrl, a.id))?.note, undefined);
    const bad = await fetch(`${a.httpUrl}/presence`, { method: "PUT", body: JSON.stringify({ presence: "asleep" }) });
    assert.equal(bad.status, 400);
    events.abort();
    await stream;
  } finally {
    await killAll();
  }
});

Deno.test("away with --away-reply: each peer that writes gets the reply once per absence, and an auto-reply is never answered", async () => {
  const port = freeUdpPort();
  try {
    const a = await startLoopbackDaemon(port, "alice", { extra: ["--away-reply", "Back at 14:00"] }).started();
    const b = await startLoopbackDaemon(port, "bob", { extra: ["--away-reply", "Bob is out too"] }).started();
    await a.joined(b.id, 3000);
    const http = (d: { httpUrl: string }) => d.httpUrl.replace("http://", "");
    for (const d of [a, b]) assert.equal((await runCli(["away", "--http", http(d)])).code, 0);
    for (const text of ["hi alice", "still there?"]) {
      const r = await runCli(["send", "alice", text, "--http", http(b)]);
      assert.equal(r.code, 0, r.stderr);
    }
    await new Promise((r) => setTimeout(r, 1500));
    type M = { direction: string; text: string; autoReply?: boolean };
    const atB: M[] = await (await fetch(`${b.httpUrl}/messages?peer=alice`)).json();
    const replies = atB.filter((m) => m.direction === "in" && m.autoReply);
    assert.deepEqual(replies.map((m) => m.text), ["Back at 14:00"], "one reply for two messages");
    // Bob is away too, yet alice's auto-reply got no auto-reply back.
    const atA: M[] = await (await fetch(`${a.httpUrl}/messages?peer=bob`)).json();
    assert.equal(atA.filter((m) => m.direction === "in" && m.autoReply).length, 0);
    // A new absence, a new reply.
    assert.equal((await runCli(["online", "--http", http(a)])).code, 0);
    assert.equal((await runCli(["away", "--http", http(a)])).code, 0);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await runCli(["send", "alice", "and now?", "--http", http(b)])).code, 0);
    await until("a second reply, for the second absence", async () => {
      const ms: M[] = await (await fetch(`${b.httpUrl}/messages?peer=alice`)).json();
      return ms.filter((m) => m.autoReply).length === 2;
    }, 3000);
  } finally {
    await killAll();
  }
});

Deno.test("busy, among three daemons: both others see it at once, messages are stored and acknowledged as always, and no away reply goes out", async () => {
  const port = freeUdpPort();
  try {
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob").started();
    const c = await startLoopbackDaemon(port, "carol", { extra: ["--away-reply", "Out of office"] }).started();
    for (const [x, y] of [[a, b], [a, c], [b, c]] as const) await x.joined(y.id, 5000);
    const http = (d: { httpUrl: string }) => d.httpUrl.replace("http://", "");
    const busy = await runCli(["busy", "in", "a", "meeting", "--http", http(c)]);
    assert.equal(busy.stdout.trim(), "You are busy: in a meeting");
    for (const d of [a, b]) {
      await until("carol to be busy", async () => (await peerIn(d.httpUrl, c.id))?.presence === "busy", 2000);
      assert.equal((await peerIn(d.httpUrl, c.id))?.note, "in a meeting");
    }
    for (const d of [a, b]) {
      const r = await runCli(["send", "carol", `from ${d === a ? "alice" : "bob"}`, "--http", http(d)]);
      assert.equal(r.code, 0, `delivered while busy: ${r.stdout}${r.stderr}`);
    }
    const atC: { direction: string; text: string }[] = await (await fetch(`${c.httpUrl}/messages`)).json();
    assert.deepEqual(atC.filter((m) => m.direction === "in").map((m) => m.text).sort(), ["from alice", "from bob"]);
    await new Promise((r) => setTimeout(r, 500));
    for (const d of [a, b]) {
      const got: { direction: string }[] = await (await fetch(`${d.httpUrl}/messages?peer=carol`)).json();
      assert.equal(got.filter((m) => m.direction === "in").length, 0, "busy is not away: no away reply");
    }
  } finally {
    await killAll();
  }
});
