/**
 * Hostile finding 6: /metrics counted 6 unicast datagrams sent where tcpdump
 * saw 10 (messages, acks, handshakes and peer-exchange packets went out
 * through outgoingAll uncounted). On a fake network, every lanchat datagram
 * a daemon sent is in its traffic counters, datagram for datagram and byte
 * for byte, after discovery, an end-to-end handshake, messages and acks.
 */
import assert from "node:assert/strict";
import { Daemon } from "../../src/node/daemon.ts";
import { FakeNetwork } from "../../src/node/transport.ts";
import { eth0, fakeHost } from "../support/fake_host.ts";

async function until(pred: () => boolean, ms: number, what: () => string): Promise<void> {
  const start = performance.now();
  while (!pred()) {
    if (performance.now() - start > ms) throw new Error(`not within ${ms} ms: ${what()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("every lanchat datagram a daemon sends is in its traffic counters (messages and acks too)", async () => {
  const net = new FakeNetwork();
  const opts = { http: null, intervalMs: 5000, discoveryPort: 47474, unicastPort: 47475 } as const;
  const a = await Daemon.start(
    { ...opts, dataDir: Deno.makeTempDirSync() },
    fakeHost(net, "198.18.0.1", () => [eth0("198.18.0.1")]),
  );
  const b = await Daemon.start(
    { ...opts, dataDir: Deno.makeTempDirSync() },
    fakeHost(net, "198.18.0.2", () => [eth0("198.18.0.2")]),
  );
  try {
    await until(() => a.discovery.roster.size === 1 && b.discovery.roster.size === 1, 3000, () => "join");
    const bId = b.discovery.self.id;
    for (let i = 0; i < 5; i++) await a.parts.conversations.sendMessage(bId, `counted ${i}`);
    const sentBy = (host: string) => net.sent.filter((s) => s.from.startsWith(`${host}:`));
    const counted = (d: Daemon) => {
      const t = d.parts.lanchat.traffic.json().sent;
      return Object.values(t).reduce((x, c) => ({ datagrams: x.datagrams + c.datagrams, bytes: x.bytes + c.bytes }), {
        datagrams: 0,
        bytes: 0,
      });
    };
    const wire = (host: string) => {
      const s = sentBy(host);
      return { datagrams: s.length, bytes: s.reduce((n, x) => n + x.bytes.length, 0) };
    };
    // The messages acknowledged: b sent acks, a sent messages (through their end-to-end session).
    await until(
      () => b.parts.lanchat.traffic.json().received.unicast!.datagrams >= 5 && sentBy("198.18.0.2").length > 3,
      5000,
      () => "messages and acks",
    );
    // Between announces (every 5 s) nothing is in flight: the sums meet.
    await until(
      () =>
        JSON.stringify(counted(a)) === JSON.stringify(wire("198.18.0.1")) &&
        JSON.stringify(counted(b)) === JSON.stringify(wire("198.18.0.2")),
      3000,
      () =>
        `a counted ${JSON.stringify(counted(a))}, sent ${JSON.stringify(wire("198.18.0.1"))}; b counted ${
          JSON.stringify(counted(b))
        }, sent ${JSON.stringify(wire("198.18.0.2"))}`,
    );
    assert.ok(counted(a).datagrams > 5);
  } finally {
    await a.stop();
    await b.stop();
  }
});
