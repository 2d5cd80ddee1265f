/**
 * The CLI meaning what it says (hardening items 5–15): flags checked in
 * words, one rule for naming a peer, offline peers queued at once, follow
 * and chat across a daemon restart, status for people, JSON logs that are
 * JSON, and a clock that is off said in words. Real daemons on loopback.
 */
import assert from "node:assert/strict";
import type { PeerJson } from "../../src/api/types.ts";
import { Sealer } from "../../src/security/seal.ts";
import { encodePacket } from "../../src/wire/mod.ts";
import {
  DAEMON_PERMISSIONS,
  freeTcpPort,
  freeUdpPort,
  killAll,
  ownerEnv,
  runCli,
  startLoopbackDaemon,
  tempDataDir,
} from "../support/daemon_process.ts";
import { writeKeyFile } from "../support/hostile.ts";

const host = (url: string) => url.replace("http://", "");

Deno.test("daemon flags are checked in words with exit 2; help shows defaults as they are typed", async () => {
  const cases: [string[], RegExp][] = [
    [["daemon", "--name", ""], /--name "": must not be empty/],
    [["daemon", "--name", "x".repeat(70)], /is 70 UTF-8 bytes; expected 1 to 64/],
    [["daemon", "--port", "0"], /discovery port cannot be 0/],
    [["daemon", "--interval", "2000"], /"2000" has no unit: write 2000ms \(2s\) or 2000s \(33m20s\)/],
    [["daemon", "--probe-timeout", "500"], /did you mean 500ms\?/],
    [["daemon", "--peer", "[ff02::1]:47475"], /a multicast address names no peer/],
    [["daemon", "--peer", "bad..name"], /is not a host name or an IPv4 address/],
    [["peers", "--http", "127.0.0.1:99999"], /is not a port/],
    [["peers", "--http", "nonsense"], /has no port: expected HOST:PORT/],
  ];
  for (const [args, message] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(" "));
    assert.doesNotMatch(r.stderr, /proto error|Err\(|Query \{/);
  }
  const env = await runCli(["peers"], { env: { LANCHAT_HTTP: "nonsense" } });
  assert.equal(env.code, 2, env.stderr);
  assert.match(env.stderr, /^lanchat: LANCHAT_HTTP: "nonsense" has no port/);
  const help = await runCli(["daemon", "--help"]);
  for (const shown of ["(default: 2s)", "(default: 500ms)", "(default: 127.0.0.1:47476)", "--http-max-connections"]) {
    assert.ok(help.stdout.replace(/\s+/g, " ").includes(shown), `help shows ${shown}`);
  }
});

Deno.test("one rule names a peer: several matches are ambiguous whether online or not; ADDRESS:PORT means that port", async () => {
  const port = freeUdpPort();
  try {
    const a = await startLoopbackDaemon(port, "alice@h1").started();
    const b2 = await startLoopbackDaemon(port, "bob@h2").started();
    const b3 = await startLoopbackDaemon(port, "bob@h3").started();
    await Promise.all([a.joined(b2.id, 2000), a.joined(b3.id, 2000)]);
    const http = host(a.httpUrl);
    b3.signal("SIGTERM");
    await a.left(b3.id, 2000);
    // bob@h2 online, bob@h3 offline: "bob" names both.
    const bob = await runCli(["send", "bob", "hi", "--http", http]);
    assert.equal(bob.code, 1, bob.stdout);
    assert.match(bob.stderr, /"bob" matches 2 peers; say which\nMatching peers:\n/);
    assert.match(bob.stderr, /\n {2}bob@h2 .* online\b/);
    assert.match(bob.stderr, /\n {2}bob@h3 .* offline\b/);
    assert.match(bob.stderr, /Name one by NAME@HOST or its id, e\.g\. id:[0-9a-f]{8}\n$/);
    // Both listen on 127.0.0.1, on different unicast ports: the port picks one.
    const at3 = await runCli(["send", `127.0.0.1:${b3.unicastPort}`, "for h3", "--http", http]);
    assert.equal(at3.code, 75, at3.stderr);
    assert.match(at3.stdout, /^queued for bob@h3/);
    const at2 = await runCli(["send", `127.0.0.1:${b2.unicastPort}`, "for h2", "--http", http]);
    assert.equal(at2.code, 0, at2.stderr);
    assert.match(at2.stdout, /^delivered to bob@h2/);
    const nowhere = await runCli(["send", "127.0.0.1:9", "x", "--http", http]);
    assert.equal(nowhere.code, 1);
    assert.match(nowhere.stderr, /No peer matches "127\.0\.0\.1:9"/);
    const any = await runCli(["send", "127.0.0.1", "x", "--http", http]);
    assert.equal(any.code, 1, "an address without a port names both bobs");
    // A peer known to be offline: queued at once, not after --wait.
    const t0 = Date.now();
    const queued = await runCli(["send", "bob@h3", "later", "--wait", "30", "--http", http]);
    assert.equal(queued.code, 75);
    assert.ok(Date.now() - t0 < 15_000, `answered in ${Date.now() - t0} ms with --wait 30`);
    const lines = await runCli(["send", "bob@h3", "-", "--lines", "--wait", "30", "--http", http], {
      stdin: "one\ntwo\n",
    });
    assert.equal(lines.code, 75);
    assert.ok(Date.now() - t0 < 25_000);
    // peers --all lists bob@h3, offline, below the online ones.
    const all = await runCli(["peers", "--all", "--http", http]);
    assert.equal(all.code, 0, all.stderr);
    const rows = all.stdout.trimEnd().split("\n").slice(1);
    assert.match(rows[0]!, /^bob@h2\s.*\salive\s/);
    assert.match(rows[1]!, /^bob@h3\s.*\soffline\s/);
    const json: PeerJson[] = JSON.parse((await runCli(["peers", "--all", "--json", "--http", http])).stdout);
    assert.deepEqual(json.map((p) => [p.name, p.state]), [["bob@h2", "alive"], ["bob@h3", "offline"]]);
    const plain: PeerJson[] = JSON.parse((await runCli(["peers", "--json", "--http", http])).stdout);
    assert.deepEqual(plain.map((p) => p.name), ["bob@h2"], "without --all, only the roster");
  } finally {
    await killAll();
  }
});

Deno.test("inbox --follow and chat carry on across a daemon restart: nothing missed, nothing twice", async () => {
  const port = freeUdpPort();
  const httpPort = freeTcpPort();
  const dataDir = tempDataDir();
  const startA = () =>
    startLoopbackDaemon(port, "alice", { dataDir, extra: ["--http", `127.0.0.1:${httpPort}`] }).started();
  let follow: Deno.ChildProcess | undefined;
  let chat: Deno.ChildProcess | undefined;
  try {
    let a = await startA();
    const b = await startLoopbackDaemon(port, "bob").started();
    await Promise.all([a.joined(b.id, 2000), b.joined(a.id, 2000)]);
    const cli = (args: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", ...DAEMON_PERMISSIONS, new URL("../../main.ts", import.meta.url).pathname, ...args],
        env: ownerEnv(args),
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    follow = cli(["inbox", "--follow", "--http", `127.0.0.1:${httpPort}`]);
    chat = cli(["chat", "bob", "--http", `127.0.0.1:${httpPort}`]);
    const collect = (stream: ReadableStream<Uint8Array>) => {
      const text = { value: "" };
      (async () => {
        for await (const c of stream.pipeThrough(new TextDecoderStream())) text.value += c;
      })();
      return text;
    };
    const followOut = collect(follow.stdout);
    const followErr = collect(follow.stderr);
    const chatOut = collect(chat.stdout);
    const until = async (what: string, pred: () => boolean) => {
      for (let i = 0; i < 300 && !pred(); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(pred(), `${what}; inbox: ${followOut.value} / ${followErr.value}; chat: ${chatOut.value}`);
    };
    await until("chat started", () => chatOut.value.includes("chatting with bob"));
    await new Promise((r) => setTimeout(r, 300));
    const sendToA = async (text: string) => {
      const r = await fetch(`${b.httpUrl}/messages`, { method: "POST", body: JSON.stringify({ to: a.id, text }) });
      await r.body?.cancel();
    };
    await sendToA("before the restart");
    await until("first message followed", () => followOut.value.includes("before the restart"));
    await until("first message in chat", () => chatOut.value.includes("bob: before the restart"));
    a.signal("SIGTERM");
    await a.wait();
    await sendToA("while it was down");
    await new Promise((r) => setTimeout(r, 500));
    a = await startA();
    await until("reconnected", () => followErr.value.includes("(reconnected to the daemon)"));
    await until("the message sent meanwhile", () => followOut.value.includes("while it was down"));
    await until("chat got it too", () => chatOut.value.includes("bob: while it was down"));
    await sendToA("after the restart");
    await until(
      "after",
      () => followOut.value.includes("after the restart") && chatOut.value.includes("after the restart"),
    );
    for (const out of [followOut.value, chatOut.value]) {
      for (const t of ["before the restart", "while it was down", "after the restart"]) {
        assert.equal(out.split(t).length - 1, 1, `"${t}" shown exactly once in:\n${out}`);
      }
    }
    assert.match(followErr.value, /the daemon went away: reconnecting/);
  } finally {
    for (const p of [follow, chat]) {
      if (!p) continue;
      try {
        p.kill("SIGKILL");
      } catch { /* gone */ }
      await p.status;
      await p.stdin.close().catch(() => {});
    }
    await killAll();
  }
});

Deno.test("status is for people; our own broadcast echo is not a drop; JSON logs are one JSON object per line", async () => {
  const port = freeUdpPort();
  const loose = writeKeyFile();
  Deno.chmodSync(loose, 0o644);
  try {
    const d = await startLoopbackDaemon(port, "bob", { extra: ["--key-file", loose] }).started();
    // An SSE client (Deno.serve used to print a plain-text warning to stderr when one connected).
    const events = await fetch(`${d.httpUrl}/events`);
    await new Promise((r) => setTimeout(r, 1500));
    await events.body?.cancel();
    const status = await runCli(["status", "--http", host(d.httpUrl)]);
    assert.equal(status.code, 0, status.stderr);
    for (
      const re of [
        /^up \d+(\.\d)? s, version/m,
        /^data directory: \//m,
        /^group: keyed \(network key id [0-9a-f]{8}\)/m,
        /^messages since start: 0 received, 0 sent; outbox: 0 waiting for delivery$/m,
      ]
    ) assert.match(status.stdout, re);
    assert.doesNotMatch(status.stdout, /self/);
    const s = await (await fetch(`${d.httpUrl}/status`)).json();
    assert.equal(s.counters.dropped.self, undefined);
    assert.ok(s.counters.ownEchoes > 0, "its own broadcasts were heard back");
    const metrics = await (await fetch(`${d.httpUrl}/metrics`)).text();
    assert.doesNotMatch(metrics, /reason="self"/);
    assert.match(metrics, /lanchat_own_echoes_total [1-9]/);
    for (const line of d.rawStderr) {
      const parsed = JSON.parse(line); // throws on a line that is not JSON
      assert.ok(parsed["@timestamp"] && parsed.level && typeof parsed.message === "string", line);
    }
    const started = d.lines.find((l) => /started as/.test(l.message))!;
    assert.match(started.message, /^lanchat \S+ started as bob \([0-9a-f]{32}, incarnation 1\); keyed group/);
    assert.doesNotMatch(started.message, /"/, "values are not quoted inside the message");
    assert.ok(
      d.lines.some((l) => l.level === "WARN" && /can be read by other users .*mode 0644.*chmod 600/.test(l.message)),
    );
  } finally {
    await killAll();
  }
});

Deno.test("a daemon names an --interface that does not exist, and a keyed peer whose clock is off", async () => {
  const port = freeUdpPort();
  const keyFile = writeKeyFile();
  try {
    const d = await startLoopbackDaemon(port, "alice", { extra: ["--key-file", keyFile, "--interface", "nosuch0"] })
      .started();
    assert.ok(
      d.lines.some((l) => l.level === "WARN" && /--interface nosuch0 names no interface of this host/.test(l.message)),
      d.rawStderr.join("\n"),
    );
    // A hello sealed 95 s ahead of this host's clock, from 127.0.0.5.
    const sealer = await Sealer.create(
      Uint8Array.from(atob(Deno.readTextFileSync(keyFile).trim()), (c) => c.charCodeAt(0)),
    );
    const hello = encodePacket({
      kind: "hello",
      id: "5".repeat(32),
      incarnation: 1,
      name: "skewed",
      hostname: "h5",
      port: 40000,
      httpPort: 0,
      version: "0.1.0",
      interval: 500,
      reply: false,
    });
    const s = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.5", port: 0 });
    for (let i = 0; i < 3; i++) {
      await s.send(sealer.seal(hello, Date.now() + 95_000), {
        transport: "udp",
        hostname: "127.0.0.1",
        port: d.unicastPort,
      });
    }
    s.close();
    const warning = await d.waitFor((l) => /Datagrams from 127\.0\.0\.5/.test(l.message), 3000, "the clock warning");
    assert.match(
      warning.message,
      /^Datagrams from 127\.0\.0\.5 are 9[45] s ahead of this host's clock; a keyed group needs clocks within 30 s: run NTP/,
    );
    assert.equal(
      d.lines.filter((l) => /Datagrams from 127\.0\.0\.5/.test(l.message)).length,
      1,
      "once, not per datagram",
    );
  } finally {
    await killAll();
  }
});
