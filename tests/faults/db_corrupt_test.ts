/**
 * A database damaged in the middle while the daemon was stopped (8 KiB of
 * random bytes over two pages of its history): the daemon starts, finds the
 * damage by itself, says so in words with what to do (log, `/healthz` 503,
 * `/status`, `lanchat status`), stores nothing more and acknowledges no
 * message it could not keep: the sender keeps it queued, and once the file
 * is moved away and the daemon started again, it arrives, once. The same
 * for an IP Messenger message: no RECVMSG for what could not be kept.
 */
import assert from "node:assert/strict";
import type { MessageJson } from "../../src/api/types.ts";
import { IPMSG } from "../../src/wire/ipmsg.ts";
import { craftedClient } from "../support/ipmsg_client.ts";
import { freeUdpPort, killAll, runCli, startLoopbackDaemon, tempDataDir, until } from "../support/daemon_process.ts";

const FILL = new URL("../../scripts/history_fill.ts", import.meta.url).pathname;

/** Writes `n` bytes of random data into the middle of the file at `path`. */
async function damage(path: string, n: number): Promise<number> {
  const size = (await Deno.stat(path)).size;
  const at = Math.floor(size / 2);
  const file = await Deno.open(path, { write: true });
  try {
    await file.seek(at, Deno.SeekMode.Start);
    const bytes = crypto.getRandomValues(new Uint8Array(n));
    let done = 0;
    while (done < n) done += await file.write(bytes.subarray(done));
  } finally {
    file.close();
  }
  return at;
}

/** 3,000 messages of history (about a megabyte) in `dir`, as a daemon stores them, then 8 KiB of it damaged. */
async function damagedHistory(dir: string): Promise<string> {
  const fill = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", FILL, dir, "3000"],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(fill.success, new TextDecoder().decode(fill.stderr));
  const db = `${dir}/lanchat.db`;
  await damage(db, 8192);
  return db;
}

const json = async (url: string) => await (await fetch(url)).json();

Deno.test("a database damaged in the middle is reported at start, nothing is acknowledged, and nothing is lost", async () => {
  const dir = tempDataDir();
  const port = freeUdpPort();
  let bobLog: string[] = [];
  try {
    const db = await damagedHistory(dir);

    const a = await startLoopbackDaemon(port, "alice@h1").started();
    const b = await startLoopbackDaemon(port, "bob@h2", { dataDir: dir }).started();
    bobLog = b.rawStderr;

    // Found by itself, soon after start, and said in words.
    await until("bob's /healthz to report the damage", async () => {
      const res = await fetch(`${b.httpUrl}/healthz`);
      await res.body?.cancel();
      return res.status !== 200;
    }, 60_000);
    const health = await fetch(`${b.httpUrl}/healthz`);
    assert.equal(health.status, 503);
    const reason = await health.text();
    assert.match(reason, /^The database is damaged \(.+\): stop lanchat and move it away \(mv .*lanchat\.db /);
    assert.match(reason, /\.recover/);
    const status = await json(`${b.httpUrl}/status`);
    assert.equal(status.storage.integrity, "damaged");
    assert.deepEqual(status.problems, [reason.trim()]);
    const cli = await runCli(["status", "--http", b.httpUrl.replace("http://", "")]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /^PROBLEM: The database is damaged .*move it away/m);
    await b.waitFor((l) => /^The database is damaged/.test(l.message), 1000, "the damage in the log");

    // A peer's message is received but not acknowledged: the sender keeps it.
    await a.joined(b.id, 15_000);
    const text = `after the damage ${crypto.randomUUID()}`;
    const sent = await fetch(`${a.httpUrl}/messages`, { method: "POST", body: JSON.stringify({ to: b.id, text }) });
    assert.equal(sent.status, 202, await sent.text());
    await until(
      "bob to refuse to store it",
      async () => (await json(`${b.httpUrl}/status`)).messaging.storeErrors > 0,
      30_000,
    );
    const mine = async () =>
      ((await json(`${a.httpUrl}/messages?peer=${b.id}&limit=10`)) as MessageJson[]).find((m) => m.text === text);
    assert.notEqual((await mine())?.status, "delivered", "what bob could not keep is not acknowledged");
    assert.equal((await json(`${a.httpUrl}/status`)).messaging.outbox, 1);
    assert.equal(b.lines.filter((l) => /^The database is damaged/.test(l.message)).length, 1, "said once");
    assert.ok(!b.lines.some((l) => /^Storage error/.test(l.message)), "not again at every refused message");

    // Moved away as the advice says, and started again: it arrives, once.
    await b.kill();
    await Deno.rename(db, `${db}.damaged`);
    await Deno.rename(`${db}-wal`, `${db}.damaged-wal`).catch(() => {});
    const b2 = await startLoopbackDaemon(port, "bob@h2", { dataDir: dir }).started();
    await until("alice's message to be delivered", async () => (await mine())?.status === "delivered", 60_000);
    const inbox = (await json(`${b2.httpUrl}/messages?limit=100`)) as MessageJson[];
    assert.deepEqual(inbox.filter((m) => m.direction === "in").map((m) => m.text), [text]);
    const healthy = await fetch(`${b2.httpUrl}/healthz`);
    assert.equal([healthy.status, await healthy.text()].join(" "), "200 ok\n");
  } catch (e) {
    console.log(bobLog.join("\n"));
    throw e;
  } finally {
    await killAll();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("an IP Messenger message that a damaged database cannot keep is not acknowledged (RECVMSG), and arrives once it can be kept", async () => {
  const dir = tempDataDir();
  const ipmsgPort = freeUdpPort();
  const client = craftedClient(ipmsgPort);
  const recvmsgs = (n: number) => client.got.filter((p) => p.mode === IPMSG.RECVMSG && p.extra[0] === String(n)).length;
  try {
    const db = await damagedHistory(dir);
    const extra = ["--ipmsg", "--ipmsg-port", String(ipmsgPort)];
    const b = await startLoopbackDaemon(freeUdpPort(), "bob@h2", { dataDir: dir, extra }).started();
    await until("bob's /healthz to report the damage", async () => {
      const res = await fetch(`${b.httpUrl}/healthz`);
      await res.body?.cancel();
      return res.status === 503;
    }, 60_000);
    await client.entry(1);
    // Sent, and its retransmission: bob takes each in (counted) but keeps neither, so answers neither.
    for (let i = 1; i <= 2; i++) {
      await client.post(5, "kept or unanswered");
      await until("bob to take it in", async () => (await json(`${b.httpUrl}/status`)).ipmsg.messagesIn >= i, 10_000);
    }
    await new Promise((r) => setTimeout(r, 500)); // a RECVMSG on loopback would be here by now
    assert.equal(recvmsgs(5), 0, "a message bob could not keep is not acknowledged");

    // Moved away and started again: the sender's next retransmission is kept, and answered.
    await b.kill();
    await Deno.rename(db, `${db}.damaged`);
    await Deno.rename(`${db}-wal`, `${db}.damaged-wal`).catch(() => {});
    const b2 = await startLoopbackDaemon(freeUdpPort(), "bob@h2", { dataDir: dir, extra }).started();
    await client.entry(1);
    await client.message(5, "kept or unanswered");
    const inbox = (await json(`${b2.httpUrl}/messages?limit=100`)) as MessageJson[];
    assert.deepEqual(inbox.filter((m) => m.direction === "in").map((m) => m.text), ["kept or unanswered"]);
  } finally {
    client.sock.close();
    await killAll();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
