/**
 * Real daemons, real sockets, on loopback only (--interface lo): three
 * daemons on one host find each other, a stopped one leaves at once, a
 * killed one is expired after 3 intervals and a probe.
 */
import assert from "node:assert/strict";
import { DaemonProcess, freeUdpPort, killAll, startLoopbackDaemon, tempDataDir } from "../support/daemon_process.ts";
import type { PeerJson } from "../../src/api/types.ts";

const INTERVAL_MS = 500;
const PROBE_MS = 500;

function startLocal(port: number, name: string, dataDir?: string): DaemonProcess {
  return startLoopbackDaemon(port, name, { dataDir, intervalMs: INTERVAL_MS, probeMs: PROBE_MS });
}

async function peersOf(d: DaemonProcess): Promise<PeerJson[]> {
  const res = await fetch(`${d.httpUrl}/peers`);
  assert.equal(res.status, 200);
  return await res.json();
}

Deno.test("three daemons on one host list each other, then see a stop at once and a kill after expiry", async () => {
  const port = freeUdpPort();
  try {
    const ds = await Promise.all(["one", "two", "three"].map((n) => startLocal(port, n).started()));
    const [a, b, c] = ds as [DaemonProcess, DaemonProcess, DaemonProcess];
    // Every daemon logs the other two joining within 1 s.
    for (const d of ds) for (const o of ds) if (o !== d) await d.joined(o.id, 1000);
    for (const d of ds) {
      const peers = await peersOf(d);
      assert.deepEqual(peers.map((p) => p.id).sort(), ds.filter((o) => o !== d).map((o) => o.id).sort());
      for (const p of peers) {
        assert.equal(p.state, "alive");
        assert.equal(p.addresses[0]!.address, "127.0.0.1");
        assert.ok(p.addresses[0]!.port > 0);
      }
    }
    // SIGTERM: goodbye, gone from the others within 1 s, exit code 0.
    a.signal("SIGTERM");
    const [lb, lc] = await Promise.all([b.left(a.id, 1000), c.left(a.id, 1000)]);
    assert.equal(lb.properties.reason, "goodbye");
    assert.equal(lc.properties.reason, "goodbye");
    assert.equal((await a.wait()).code, 0);
    assert.equal((await peersOf(b)).length, 1);
    // kill -9: no goodbye; expired after 3 intervals (+25 % jitter) and the probe.
    await c.kill();
    const bound = 3 * INTERVAL_MS * 1.25 + PROBE_MS;
    const left = await b.left(c.id, bound + 1000);
    assert.equal(left.properties.reason, "timeout");
    assert.deepEqual(await peersOf(b), []);
  } finally {
    await killAll();
  }
});

Deno.test("a restarted daemon is seen as the same peer with a higher incarnation", async () => {
  const port = freeUdpPort();
  const dir = tempDataDir();
  try {
    const a = await startLocal(port, "a").started();
    const b1 = await startLocal(port, "b", dir).started();
    await a.joined(b1.id, 1000);
    await b1.kill();
    const b2 = await startLocal(port, "b", dir).started();
    assert.equal(b2.id, b1.id, "the node id survives a restart");
    await a.waitFor((l) => /^Peer restarted/.test(l.message) && l.properties.id === b2.id, 1000, "restart");
    const peers = await peersOf(a);
    assert.equal(peers.length, 1);
    assert.equal(peers[0]!.incarnation, 2);
  } finally {
    await killAll();
  }
});

Deno.test("a second daemon on the same data directory refuses to start", async () => {
  const port = freeUdpPort();
  const dir = tempDataDir();
  try {
    await startLocal(port, "first", dir).started();
    const second = startLocal(port, "second", dir);
    const status = await second.wait();
    assert.equal(status.code, 1);
    assert.match(second.rawStderr.join("\n"), /in use by another lanchat daemon/);
  } finally {
    await killAll();
  }
});

Deno.test("a daemon survives junk datagrams on both ports and counts them by reason", async () => {
  const port = freeUdpPort();
  try {
    const d = await startLocal(port, "target").started();
    const sock = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    try {
      const junk = [
        new Uint8Array(0),
        new Uint8Array([1, 2, 3]),
        new Uint8Array(5000),
        new TextEncoder().encode("LNCH\x01\x03{not json"),
        new Uint8Array([0x4c, 0x4e, 0x43, 0x48, 9, 1, 0x7b, 0x7d]),
      ];
      for (const target of [port, d.unicastPort]) {
        for (const j of junk) await sock.send(j, { transport: "udp", hostname: "127.0.0.1", port: target });
      }
    } finally {
      sock.close();
    }
    // Give the daemon a moment to read them, then look at its counters.
    let status: { counters: { dropped: Record<string, number> } } | undefined;
    for (let i = 0; i < 50; i++) {
      status = await (await fetch(`${d.httpUrl}/status`)).json();
      if (status!.counters.dropped["bad-version"] === 2) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const dropped = status!.counters.dropped;
    assert.equal(dropped["bad-magic"], 2);
    assert.equal(dropped.oversize, 2);
    assert.equal(dropped["bad-json"], 2);
    assert.equal(dropped["bad-version"], 2);
    assert.equal(dropped.truncated, 2); // the empty datagrams
    assert.equal((await fetch(`${d.httpUrl}/healthz`)).status, 200);
    const metrics = await (await fetch(`${d.httpUrl}/metrics`)).text();
    assert.match(metrics, /lanchat_datagrams_dropped_total\{reason="oversize"\} 2/);
  } finally {
    await killAll();
  }
});
