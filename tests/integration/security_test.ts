/**
 * Security on loopback, real daemons: network keys keep groups apart and
 * refuse replays; node keys are pinned and forged hellos refused; the HTTP
 * API beyond loopback wants its token.
 */
import assert from "node:assert/strict";
import type { MessageJson, PeerJson } from "../../src/api/types.ts";
import { parseNetworkKey, Sealer } from "../../src/security/seal.ts";
import { encodePacket } from "../../src/wire/mod.ts";
import {
  type DaemonProcess,
  freeTcpPort,
  freeUdpPort,
  killAll,
  runCli,
  startLoopbackDaemon,
  tempDataDir,
  until,
} from "../support/daemon_process.ts";
import { encodeSigned, helloFor, newNodeKey, oneFragmentMsg, writeKeyFile } from "../support/hostile.ts";

const json = async <T>(d: DaemonProcess, path: string): Promise<T> => await (await fetch(`${d.httpUrl}${path}`)).json();
const peers = (d: DaemonProcess) => json<PeerJson[]>(d, "/peers");
// deno-lint-ignore no-explicit-any
const status = (d: DaemonProcess) => json<any>(d, "/status");

async function sendUdp(bytes: Uint8Array, port: number): Promise<void> {
  const s = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  try {
    await s.send(bytes, { transport: "udp", hostname: "127.0.0.1", port });
  } finally {
    s.close();
  }
}

Deno.test("daemons with one key see each other; another key and no key are invisible both ways", async () => {
  const port = freeUdpPort();
  const k1 = writeKeyFile();
  const k2 = writeKeyFile();
  try {
    const a = await startLoopbackDaemon(port, "a", { intervalMs: 200, extra: ["--key-file", k1] }).started();
    const b = await startLoopbackDaemon(port, "b", { intervalMs: 200, extra: ["--key-file", k1] }).started();
    const c = await startLoopbackDaemon(port, "c", { intervalMs: 200, extra: ["--key-file", k2] }).started();
    const d = await startLoopbackDaemon(port, "d", { intervalMs: 200 }).started();
    await a.joined(b.id, 2000);
    await b.joined(a.id, 2000);
    // Several announce rounds of everyone.
    await new Promise((r) => setTimeout(r, 1200));
    assert.deepEqual((await peers(a)).map((p) => p.name), ["b"]);
    assert.deepEqual((await peers(b)).map((p) => p.name), ["a"]);
    assert.deepEqual(await peers(c), []);
    assert.deepEqual(await peers(d), []);
    for (const x of [a, b, c, d]) assert.ok((await status(x)).counters.dropped.auth > 0, "foreign datagrams counted");
    const sa = await status(a);
    assert.equal(sa.security.group, "keyed");
    assert.equal((await status(d)).security.group, "open");
    assert.notEqual(sa.security.keyId, (await status(c)).security.keyId);
    // Messages flow, sealed, inside the group.
    const res = await fetch(`${a.httpUrl}/messages?wait=5`, { method: "POST", body: '{"to":"b","text":"sealed hi"}' });
    assert.equal(res.status, 200);
    await res.body?.cancel();
  } finally {
    await killAll();
  }
});

Deno.test("a sealed message sent twice is stored once; the second copy is counted as a replay", async () => {
  const port = freeUdpPort();
  const k = writeKeyFile();
  try {
    const b = await startLoopbackDaemon(port, "b", { extra: ["--key-file", k] }).started();
    const sealer = await Sealer.create(parseNetworkKey(Deno.readTextFileSync(k), k));
    const sender = newNodeKey();
    const bytes = sealer.seal(encodePacket(oneFragmentMsg(sender.id, b.id, "only once", "ab".repeat(16))), Date.now());
    await sendUdp(bytes, b.unicastPort);
    await until("the message", async () => (await json<MessageJson[]>(b, "/messages")).length === 1, 3000);
    await sendUdp(bytes, b.unicastPort);
    await until("the replay to be counted", async () => (await status(b)).counters.dropped.replay === 1, 3000);
    const inbox = await json<MessageJson[]>(b, "/messages");
    assert.deepEqual(inbox.map((m) => m.text), ["only once"]);
  } finally {
    await killAll();
  }
});

Deno.test("node keys are pinned: a hello forging a known id is refused and reported, trust and forget manage pins", async () => {
  const port = freeUdpPort();
  try {
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob").started();
    await a.joined(b.id, 2000);
    const pb = (await peers(a)).find((p) => p.id === b.id)!;
    assert.equal(pb.trust, "tofu");
    assert.match(pb.fingerprint!, /^[0-9a-f]{4}(:[0-9a-f]{4}){3}$/);
    assert.equal(pb.fingerprint, (await status(b)).security.fingerprint);
    // Mallory claims bob's id with her own key: refused, reported, bob untouched.
    const mallory = newNodeKey();
    await sendUdp(encodeSigned(helloFor(b.id, "bob", 40000), mallory.signer), a.unicastPort);
    await until("the impersonation", async () => (await status(a)).counters.dropped.impersonation === 1, 3000);
    const alerts = (await status(a)).security.impersonations;
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0].id, b.id);
    await a.waitFor((l) => l.level === "WARN" && /Possible impersonation/.test(l.message), 2000, "warning");
    assert.deepEqual((await peers(a)).map((p) => [p.id, p.addresses.length]), [[b.id, 1]]);
    // An unsigned hello is refused too.
    await sendUdp(encodePacket(helloFor(mallory.id, "mallory", 40000)), a.unicastPort);
    await until("the unsigned hello", async () => (await status(a)).counters.dropped["bad-signature"] === 1, 3000);
    // Mallory with her own key but bob's name: joins, as a conflict, never chosen by name.
    await sendUdp(encodeSigned(helloFor(mallory.id, "bob", 40000), mallory.signer), a.unicastPort);
    await a.joined(mallory.id, 2000);
    const m = (await peers(a)).find((p) => p.id === mallory.id)!;
    assert.equal(m.trust, "conflict");
    const http = a.httpUrl.replace("http://", "");
    const byName = await runCli(["send", "bob", "hi", "--http", http]);
    assert.equal(byName.code, 1);
    assert.match(byName.stderr, /claimed by more than one node key/);
    // The user checks fingerprints and trusts the real bob: the name is his again.
    const t = await runCli(["trust", b.id, "--http", http]);
    assert.equal(t.code, 0, t.stderr);
    assert.equal((await peers(a)).find((p) => p.id === b.id)!.trust, "trusted");
    const sent = await runCli(["send", "bob", "hi", "--http", http]);
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stdout, /delivered to bob/);
    const f = await runCli(["forget", mallory.id, "--http", http]);
    assert.equal(f.code, 0, f.stderr);
    assert.equal((await peers(a)).find((p) => p.id === mallory.id)!.trust, undefined);
    const table = await runCli(["peers", "--http", http]);
    assert.match(table.stdout, new RegExp(`${pb.fingerprint} \\(trusted\\)`));
  } finally {
    await killAll();
  }
});

Deno.test("HTTP beyond loopback needs the token from the data directory; the CLI on the host finds it", async () => {
  const port = freeUdpPort();
  const dir = tempDataDir();
  const httpPort = freeTcpPort();
  try {
    const a = await startLoopbackDaemon(port, "a", { dataDir: dir, extra: ["--http", `0.0.0.0:${httpPort}`] })
      .started();
    const token = Deno.readTextFileSync(`${dir}/http_token`).trim();
    assert.equal(Deno.statSync(`${dir}/http_token`).mode! & 0o777, 0o600);
    const base = `http://127.0.0.1:${httpPort}`;
    for (const path of ["/peers", "/status", "/messages"]) {
      const r = await fetch(`${base}${path}`);
      assert.equal(r.status, 401, path);
      await r.body?.cancel();
    }
    const bad = await fetch(`${base}/messages`, { method: "POST", body: "{}", headers: { authorization: "Bearer x" } });
    assert.equal(bad.status, 401);
    await bad.body?.cancel();
    assert.equal(await (await fetch(`${base}/healthz`)).text(), "ok\n");
    const ok = await fetch(`${base}/status`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200);
    assert.equal((await ok.json()).id, a.id);
    // With the right token: bad JSON and a huge body change nothing.
    const auth = { authorization: `Bearer ${token}` };
    const badJson = await fetch(`${base}/messages`, { method: "POST", body: "{nope", headers: auth });
    assert.equal(badJson.status, 400);
    await badJson.body?.cancel();
    const huge = await fetch(`${base}/messages`, { method: "POST", body: "x".repeat(200_000), headers: auth });
    assert.equal(huge.status, 413);
    await huge.body?.cancel();
    const history = await fetch(`${base}/messages`, { headers: auth });
    assert.deepEqual(await history.json(), []);
    // The CLI sends the token in LANCHAT_HTTP_TOKEN.
    const cli = await runCli(["status", "--http", `127.0.0.1:${httpPort}`], {
      env: { LANCHAT_HTTP_TOKEN: token },
    });
    assert.equal(cli.code, 0, cli.stderr);
    const without = await runCli(["status", "--http", `127.0.0.1:${httpPort}`], { env: { HOME: tempDataDir() } });
    assert.equal(without.code, 1);
    assert.match(without.stderr, /bearer token/);
  } finally {
    await killAll();
  }
});
