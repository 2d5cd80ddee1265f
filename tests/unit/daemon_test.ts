/**
 * The daemon driver on a fake network: real timers (short intervals), fake
 * sockets and fake interfaces, no packets on any real interface.
 */
import assert from "node:assert/strict";
import { Daemon, type DaemonEvent } from "../../src/node/daemon.ts";
import { parseHostPort } from "../../src/node/options.ts";
import { byNameThenId } from "../../src/node/views.ts";
import { FakeNetwork } from "../../src/node/transport.ts";
import { eth0, fakeHost } from "../support/fake_host.ts";

function until(pred: () => boolean, ms: number): Promise<void> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const check = () => {
      if (pred()) resolve();
      else if (performance.now() - start > ms) reject(new Error(`condition not met within ${ms} ms`));
      else setTimeout(check, 5);
    };
    check();
  });
}

Deno.test("daemons on a fake network join, then one leaves with a goodbye on stop", async () => {
  const net = new FakeNetwork();
  const opts = { http: null, intervalMs: 200, discoveryPort: 47474, unicastPort: 47475 } as const;
  const a = await Daemon.start(
    { ...opts, dataDir: Deno.makeTempDirSync() },
    fakeHost(net, "198.18.0.1", () => [eth0("198.18.0.1")]),
  );
  const events: DaemonEvent[] = [];
  a.onEvent((e) => events.push(e));
  const b = await Daemon.start(
    { ...opts, dataDir: Deno.makeTempDirSync() },
    fakeHost(net, "198.18.0.2", () => [eth0("198.18.0.2")]),
  );
  try {
    await until(() => a.discovery.roster.size === 1 && b.discovery.roster.size === 1, 1000);
    assert.equal(a.peers()[0]!.name, "tester@host-198.18.0.2");
    assert.deepEqual(a.peers()[0]!.addresses.map((x) => [x.address, x.port]), [["198.18.0.2", 47475]]);
    await b.stop();
    await until(() => a.discovery.roster.size === 0, 1000);
    assert.deepEqual(events.map((e) => e.type === "left" ? `left:${e.reason}` : e.type), ["joined", "left:goodbye"]);
    // Every datagram sent stayed within the fake subnet.
    for (const s of net.sent) assert.match(s.to, /^198\.18\.0\.(1|2|255):4747[45]$/);
  } finally {
    await a.stop();
    await b.stop();
  }
});

Deno.test("daemon falls back to a free unicast port when its port is taken", async () => {
  const net = new FakeNetwork();
  net.bind("198.18.0.1", 47475);
  const d = await Daemon.start(
    { http: null, dataDir: Deno.makeTempDirSync(), unicastPort: 47475 },
    fakeHost(net, "198.18.0.1", () => [eth0("198.18.0.1")]),
  );
  try {
    assert.notEqual(d.ports.unicast, 47475);
    assert.equal(d.discovery.self.port, d.ports.unicast, "the hello carries the port actually bound");
  } finally {
    await d.stop();
  }
});

Deno.test("a unicast port the system picks is one free on TCP too (the file port has its number)", async () => {
  for (const unicastPort of [0, 47475]) {
    const net = new FakeNetwork();
    net.bind("198.18.0.1", 47475);
    const tried: number[] = [];
    const io = {
      ...fakeHost(net, "198.18.0.1", () => [eth0("198.18.0.1")]),
      // TCP is taken at the first two numbers the system gives for UDP.
      listenTcp: (_h: string, port: number) => {
        tried.push(port);
        if (tried.length <= 2) throw new Deno.errors.AddrInUse("taken on TCP");
        return { close() {} } as Deno.TcpListener;
      },
    };
    const d = await Daemon.start({ http: null, dataDir: Deno.makeTempDirSync(), unicastPort }, io);
    try {
      assert.equal(tried.length, 3, `port ${unicastPort}: tried ${tried}`);
      assert.equal(d.ports.unicast, tried[2]);
      assert.equal(new Set(tried).size, 3, "a socket given up was closed, not kept: each try is another port");
    } finally {
      await d.stop();
    }
  }
});

Deno.test("daemon announces to static peers and extra broadcast addresses, resolving names", async () => {
  const net = new FakeNetwork();
  const d = await Daemon.start(
    {
      http: null,
      dataDir: Deno.makeTempDirSync(),
      broadcasts: ["198.18.7.255"],
      peers: ["198.18.2.2", "198.18.3.3:40000", "peer.example:41000", "nowhere.invalid"],
    },
    fakeHost(net, "198.18.0.1", () => [eth0("198.18.0.1")]),
  );
  try {
    assert.deepEqual(d.discovery.targets.broadcast.map((t) => `${t.address}:${t.port}`), [
      "198.18.0.255:47474",
      "198.18.7.255:47474",
    ]);
    assert.deepEqual(d.discovery.targets.peers.map((t) => `${t.address}:${t.port}`), [
      "198.18.2.2:47475",
      "198.18.3.3:40000",
      "198.18.1.9:41000",
    ]);
  } finally {
    await d.stop();
  }
});

Deno.test("daemon picks up an interface that appears after start", async () => {
  const net = new FakeNetwork();
  let ifaces = [eth0("198.18.0.1")];
  const d = await Daemon.start(
    { http: null, dataDir: Deno.makeTempDirSync() },
    fakeHost(net, "198.18.0.1", () => ifaces),
  );
  try {
    ifaces = [...ifaces, { name: "eth1", family: "IPv4", address: "198.18.5.1", netmask: "255.255.255.0" }];
    await until(() => d.discovery.targets.broadcast.length === 2, 7000);
    await until(() => net.sent.some((s) => s.to === "198.18.5.255:47474"), 1000);
  } finally {
    await d.stop();
  }
});

Deno.test("parseHostPort reads HOST, HOST:PORT and [v6]:PORT", () => {
  assert.deepEqual(parseHostPort("host", 47475), { host: "host", port: 47475 });
  assert.deepEqual(parseHostPort("198.18.0.1:9", 47475), { host: "198.18.0.1", port: 9 });
  assert.deepEqual(parseHostPort("[fd00:198:18::1]:9", 1), { host: "fd00:198:18::1", port: 9 });
  assert.throws(() => parseHostPort("h:70000", 1), RangeError);
  assert.throws(() => parseHostPort("a:b:c", 1), TypeError);
  assert.throws(() => parseHostPort("", 1), TypeError);
});

Deno.test("peers are listed by name without regard to case, then by id", () => {
  const peers = [
    { name: "bob", id: "2" },
    { name: "Alice", id: "9" },
    { name: "alice", id: "1" },
    { name: "Émile", id: "3" },
    { name: "carol", id: "4" },
  ];
  assert.deepEqual(
    peers.sort(byNameThenId).map((p) => `${p.name}/${p.id}`),
    ["alice/1", "Alice/9", "bob/2", "carol/4", "Émile/3"],
  );
});
