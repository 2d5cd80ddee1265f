/**
 * Desktop notifications on a real session bus: a private `dbus-daemon
 * --session`, a notification server that prints what it is asked to show
 * (tests/support/notify_server.py, python3-gi), `dbus-monitor` where no
 * server owns the name, and real daemons on loopback. Hostile text, a
 * flood, a page open then closed, busy, and every way the bus can be
 * missing. Ignored, with the reason, without dbus-daemon, gdbus or
 * python3-gi.
 */
import assert from "node:assert/strict";
import { freeUdpPort, type LogLine, startLoopbackDaemon, until } from "../support/daemon_process.ts";
import { alicePair, busTest, notificationMonitor, NOTIFY_SERVER, shown } from "../support/session_bus.ts";
import { sessionValue } from "../../src/api/web_link.ts";
import { NOTIFY_BURST, NOTIFY_EVERY_MS } from "../../src/node/notify_policy.ts";

async function post(url: string, body: unknown, method = "POST"): Promise<Response> {
  const res = await fetch(url, { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  assert.ok(res.ok, `${method} ${url}: ${res.status} ${await res.clone().text()}`);
  return res;
}

async function notifications(httpUrl: string): Promise<Record<string, number | boolean | string>> {
  return (await (await fetch(`${httpUrl}/status`)).json()).notifications;
}

busTest(
  "a peer's hostile message pops up as text; a flood is a few notifications; none while a page is open or busy",
  async ({ address, run }) => {
    const server = run("/usr/bin/python3", [NOTIFY_SERVER, "body,body-markup"]);
    await server.waitFor((l) => l === "ready", "the notification server");
    const monitor = await notificationMonitor(run);
    const { alice, bob } = await alicePair(address, "bob\u202Egnp.exe");
    const send = (text: string) => post(`${bob.httpUrl}/messages?wait=5`, { to: alice.id, text });

    // Markup, entities, controls, bidi and length: shown as typed, cut short, one line.
    const hostile = `<b>bold</b> &amp; <a href="file:///etc">x</a>\n\u001b[2J\u0007 invoice_\u202Efdp.exe ` +
      "y".repeat(5000);
    await send(hostile);
    await server.waitFor((l) => l.startsWith("{"), "the first notification");
    const first = shown(server)[0]!;
    assert.equal(first.app, "lanchat");
    assert.equal(first.summary, "bob<U+202E>gnp.exe");
    assert.ok(
      first.body.startsWith(
        '&lt;b&gt;bold&lt;/b&gt; &amp;amp; &lt;a href="file:///etc"&gt;x&lt;/a&gt; ^[[2J^G invoice_&lt;U+202E&gt;fdp.exe yyy',
      ),
      first.body,
    );
    assert.ok(first.body.endsWith("…") && [...first.body].length < 200, "cut short");
    assert.equal(first.hints["category"], "im.received");
    // As the bus carried it.
    await monitor.waitFor((l) => l.includes("member=Notify"), "the Notify call on the bus");
    const call = monitor.lines.slice(monitor.lines.findIndex((l) => l.includes("member=Notify")));
    assert.deepEqual(call.slice(1, 5).map((l) => l.trim()), [
      `string "lanchat"`,
      "uint32 0",
      `string "mail-message-new"`,
      `string "bob<U+202E>gnp.exe"`,
    ]);

    // A page open (the event stream with the page's cookie): the page notifies, the daemon does not.
    const controller = new AbortController();
    const stream = await fetch(`${alice.httpUrl}/events`, {
      headers: { cookie: `lanchat_session=${sessionValue(alice.token!)}` },
      signal: controller.signal,
    });
    assert.equal(stream.status, 200);
    const reader = stream.body!.getReader();
    await reader.read();
    // The CLI's stream (bearer token) is not a page.
    const cli = await fetch(`${alice.httpUrl}/events`);
    const cliReader = cli.body!.getReader();
    await cliReader.read();
    await send("while the page is open");
    await until("the message skipped", async () => (await notifications(alice.httpUrl)).skippedPageOpen === 1, 10_000);

    // The tab closed: notifications resume.
    await reader.cancel().catch(() => {});
    controller.abort();
    const before = shown(server).length;
    await until("a notification after the page closed", async () => {
      if (shown(server).length > before) return true;
      await send("after the page closed");
      await new Promise((r) => setTimeout(r, 500));
      return shown(server).length > before;
    }, 20_000);
    assert.match(shown(server).at(-1)!.body, /after the page closed/);
    assert.equal(shown(server).at(-1)!.replaces, first.id, "bob's notification replaced, not stacked");
    await cliReader.cancel().catch(() => {});

    // A flood: 300 messages are a handful of notifications; the last says how many and the newest text.
    const t0 = Date.now();
    const floodStart = shown(server).length;
    await post(`${bob.httpUrl}/messages?wait=10`, {
      messages: Array.from({ length: 300 }, (_, i) => ({ to: alice.id, text: `flood ${i}` })),
    });
    await server.waitFor((l) => l.includes("flood 299"), "the newest flood message shown", 30_000);
    const elapsed = Date.now() - t0;
    const during = shown(server).slice(floodStart);
    assert.ok(
      during.length <= NOTIFY_BURST + Math.ceil(elapsed / NOTIFY_EVERY_MS) + 1,
      `${during.length} notifications in ${elapsed} ms`,
    );
    assert.match(during.at(-1)!.body, /^\d+ new: flood 299$/);
    console.log(`300 messages: ${during.length} notifications in ${elapsed} ms`);

    // Busy: quiet.
    await post(`${alice.httpUrl}/presence`, { presence: "busy" }, "PUT");
    const quiet = shown(server).length;
    await send("while busy");
    await until("the message skipped", async () => (await notifications(alice.httpUrl)).skippedBusy === 1, 10_000);
    await new Promise((r) => setTimeout(r, NOTIFY_EVERY_MS + 500));
    assert.equal(shown(server).length, quiet, "nothing shown while busy");

    // Online again: a file offer pops up as the line a person reads.
    await post(`${alice.httpUrl}/presence`, { presence: "online" }, "PUT");
    const dir = await Deno.makeTempDir();
    const file = `${dir}/report-<b>-x.pdf`;
    await Deno.writeTextFile(file, "not really a pdf");
    await post(`${bob.httpUrl}/files`, { to: alice.id, paths: [file] });
    const offer = await server.waitFor((l) => l.includes("Files offered"), "the offer's notification", 15_000);
    assert.match(JSON.parse(offer).body, /^Files offered: report-&lt;b&gt;-x\.pdf \(1 file, 16 B\)$/);
    await Deno.remove(dir, { recursive: true });
    const st = await notifications(alice.httpUrl);
    assert.equal(st.enabled, true);
    assert.equal(st.failed, 0);
  },
);

busTest(
  "no notification server on the bus: dbus-monitor sees the call, the daemon warns and goes on",
  async ({ address, run }) => {
    const monitor = await notificationMonitor(run);
    const { alice, bob } = await alicePair(address);
    await post(`${bob.httpUrl}/messages?wait=5`, { to: alice.id, text: `"quoted" \\n <i>x</i>` });
    // The server's capabilities are asked first (does it read markup?): no one answers.
    await monitor.waitFor((l) => l.includes("member=GetCapabilities"), "the call on the bus", 15_000);
    await alice.waitFor(
      (l: LogLine) =>
        /Cannot show a desktop notification/.test(l.message) && /ServiceUnknown|not provided/.test(
          JSON.stringify(l.properties),
        ),
      15_000,
      "the warning",
    );
    await post(`${bob.httpUrl}/messages?wait=5`, { to: alice.id, text: "still alive" });
    assert.equal((await fetch(`${alice.httpUrl}/healthz`)).status, 200);
    assert.equal((await notifications(alice.httpUrl)).enabled, true, "tried again at the next message");
  },
);

busTest("no session bus, a dead bus, gdbus missing, --no-notify: the daemon says so and never fails", async () => {
  const port = freeUdpPort();
  const bob = await startLoopbackDaemon(port, "bob").started();
  // The test's own environment may have a session bus: then this daemon has it too, and says nothing of it.
  const inherited = Deno.env.get("DBUS_SESSION_BUS_ADDRESS") !== undefined;
  const noBus = await startLoopbackDaemon(port, "nobus", { extra: inherited ? ["--no-notify"] : [] }).started();
  if (!inherited) {
    await noBus.waitFor((l) => /no session bus \(DBUS_SESSION_BUS_ADDRESS is not set\)/.test(l.message), 5000);
  }
  const dead = await startLoopbackDaemon(port, "dead", {
    env: { DBUS_SESSION_BUS_ADDRESS: `unix:path=/nonexistent/lanchat-test-bus` },
  }).started();
  const noGdbus = await startLoopbackDaemon(port, "nogdbus", {
    env: { DBUS_SESSION_BUS_ADDRESS: `unix:path=/nonexistent/lanchat-test-bus`, PATH: "/nonexistent" },
  }).started();
  const off = await startLoopbackDaemon(port, "off", {
    env: { DBUS_SESSION_BUS_ADDRESS: `unix:path=/nonexistent/lanchat-test-bus` },
    extra: ["--no-notify"],
  }).started();
  for (const d of [noBus, dead, noGdbus, off]) {
    await d.joined(bob.id, 5000);
    await post(`${bob.httpUrl}/messages?wait=5`, { to: d.id, text: "hello" });
  }
  await dead.waitFor((l) => /Cannot show a desktop notification/.test(l.message), 15_000);
  await noGdbus.waitFor(
    (l) =>
      /Desktop notifications are off/.test(l.message) && /gdbus is not installed/.test(String(l.properties?.error)),
    15_000,
  );
  assert.equal((await notifications(noGdbus.httpUrl)).enabled, false);
  assert.equal(await notifications(noBus.httpUrl), undefined);
  assert.equal(await notifications(off.httpUrl), undefined);
  for (const d of [noBus, dead, noGdbus, off]) assert.equal((await fetch(`${d.httpUrl}/healthz`)).status, 200);
});
