import assert from "node:assert/strict";
import {
  formatHostPort,
  isLinkLocal6,
  isMulticast6,
  LANCHAT_GROUP6,
  matchesEndpoint6,
  multicastTargets6,
  parseIPv6,
  scoped,
  splitHostPort,
  withoutScope,
} from "../../src/node/net_address6.ts";
import { parsePeer } from "../../src/cli/options.ts";
import { Multicast6Sockets } from "../../src/node/services/multicast6.ts";
import { Notices } from "../../src/node/notices.ts";
import { Traffic } from "../../src/node/traffic.ts";
import { MetricsWriter } from "../../src/node/metrics.ts";
import { bind } from "../../src/node/bind.ts";
import { BindError, FakeNetwork } from "../../src/node/transport.ts";
import type { DaemonIo } from "../../src/node/options.ts";

Deno.test("parseIPv6 reads every RFC 4291 text form and refuses hostile ones", () => {
  const ok: [string, number[], string?][] = [
    ["::", [0, 0, 0, 0, 0, 0, 0, 0]],
    ["::1", [0, 0, 0, 0, 0, 0, 0, 1]],
    ["fe80::1", [0xfe80, 0, 0, 0, 0, 0, 0, 1]],
    ["FE80::A:b", [0xfe80, 0, 0, 0, 0, 0, 0xa, 0xb]],
    ["fd00:198:18::11", [0xfd00, 0x198, 0x18, 0, 0, 0, 0, 0x11]],
    ["1:2:3:4:5:6:7:8", [1, 2, 3, 4, 5, 6, 7, 8]],
    ["1::8", [1, 0, 0, 0, 0, 0, 0, 8]],
    ["1:2:3:4:5:6:7::", [1, 2, 3, 4, 5, 6, 7, 0]],
    ["::ffff:198.18.0.1", [0, 0, 0, 0, 0, 0xffff, 0xc612, 0x0001]],
    ["fe80::1%eth0", [0xfe80, 0, 0, 0, 0, 0, 0, 1], "eth0"],
    ["fe80::1%2", [0xfe80, 0, 0, 0, 0, 0, 0, 1], "2"],
    ["ff02::4c4e:4348%wlp0s20f3", [0xff02, 0, 0, 0, 0, 0, 0x4c4e, 0x4348], "wlp0s20f3"],
  ];
  for (const [s, groups, scope] of ok) {
    assert.deepEqual(parseIPv6(s), scope === undefined ? { groups } : { groups, scope }, s);
  }
  const bad = [
    "",
    ":",
    ":::",
    "1:::2",
    "1::2::3",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:8::",
    "12345::",
    "g::1",
    "::1.2.3",
    "::1.2.3.256",
    "1.2.3.4::",
    "::1.2.3.4:5",
    "198.18.0.1",
    "host",
    "fe80::1%",
    "fe80::1%eth 0",
    "fe80::1%eth0]",
    "fe80::1%a%b",
    "fe80::1%" + "x".repeat(16),
    "fe80::1%../../etc",
    "[::1]",
    " ::1",
    "::1\n",
    "0".repeat(70) + "::",
  ];
  for (const s of bad) assert.equal(parseIPv6(s), undefined, JSON.stringify(s));
});

Deno.test("link-local and multicast are told by their prefix, scope or not", () => {
  const rows: [string, boolean, boolean][] = [
    ["fe80::1", true, false],
    ["fe80::1%eth0", true, false],
    ["febf:ffff::1", true, false],
    ["fec0::1", false, false],
    ["fd00:198:18::11", false, false],
    ["::1", false, false],
    ["ff02::1", false, true],
    [LANCHAT_GROUP6, false, true],
    ["198.18.0.1", false, false],
    ["fe80::zz", false, false],
  ];
  for (const [s, ll, mc] of rows) {
    assert.equal(isLinkLocal6(s), ll, s);
    assert.equal(isMulticast6(s), mc, s);
  }
});

Deno.test("a link-local source gets the scope it arrived on; other addresses stay as they are", () => {
  const rows: [string, string | undefined, string][] = [
    ["fe80::1", "eth0", "fe80::1%eth0"],
    ["fe80::1%wlan0", "eth0", "fe80::1%wlan0"],
    ["fe80::1", undefined, "fe80::1"],
    ["fd00:198:18::11", "eth0", "fd00:198:18::11"],
    ["198.18.0.11", "eth0", "198.18.0.11"],
  ];
  for (const [a, scope, want] of rows) assert.equal(scoped(a, scope), want, `${a} ${scope}`);
  assert.equal(withoutScope("fe80::1%eth0"), "fe80::1");
  assert.equal(withoutScope("198.18.0.1"), "198.18.0.1");
});

Deno.test("formatHostPort puts IPv6 in brackets, IPv4 and names not", () => {
  const rows: [string, number, string][] = [
    ["198.18.0.11", 47475, "198.18.0.11:47475"],
    ["fd00::2", 47475, "[fd00::2]:47475"],
    ["fe80::1%eth0", 1, "[fe80::1%eth0]:1"],
    ["host2", 47475, "host2:47475"],
  ];
  for (const [a, p, want] of rows) assert.equal(formatHostPort(a, p), want);
  // Round trip through the parser.
  for (const [a, p] of rows) assert.deepEqual(splitHostPort(formatHostPort(a, p), 9), { host: a, port: p });
});

Deno.test("splitHostPort takes [v6]:port, [v6], a bare v6 literal, host:port; refuses the rest with why", () => {
  const ok: [string, string, number][] = [
    ["[fd00::2]:47475", "fd00::2", 47475],
    ["[fd00::2]", "fd00::2", 9],
    ["fd00::2", "fd00::2", 9],
    ["fd00:198:18::12", "fd00:198:18::12", 9],
    ["  fd00::2 ", "fd00::2", 9],
    ["[fe80::1%eth0]:1", "fe80::1%eth0", 1],
    ["198.18.0.12:47475", "198.18.0.12", 47475],
    ["host2", "host2", 9],
    ["host2:0", "host2", 0],
  ];
  for (const [s, host, port] of ok) assert.deepEqual(splitHostPort(s, 9), { host, port }, s);
  const bad: [string, RegExp][] = [
    ["", /expected HOST or HOST:PORT/],
    ["[fd00::2", /expected \[IPV6\] or \[IPV6\]:PORT/],
    ["[fd00::2]:", /expected \[IPV6\] or \[IPV6\]:PORT/],
    ["[fd00::2]47475", /expected \[IPV6\] or \[IPV6\]:PORT/],
    ["[fd00::2]:123456", /expected \[IPV6\] or \[IPV6\]:PORT/],
    ["[]:1", /in brackets is not an IPv6 address/],
    ["[host2]:1", /in brackets is not an IPv6 address/],
    ["[198.18.0.1]:1", /in brackets is not an IPv6 address/],
    ["[[::1]]:1", /expected \[IPV6\]/],
    ["fd00::2:47475:x", /not an IPv6 address \(an IPv6 address with a port is written \[ADDR\]:PORT\)/],
    ["a:b:c", /not an IPv6 address/],
    ["host:port", /expected HOST or HOST:PORT/],
    ["ho st:1", /expected HOST or HOST:PORT/],
    ["fe80::1%eth0;rm", /not an IPv6 address/],
  ];
  for (const [s, re] of bad) assert.throws(() => splitHostPort(s, 9), re, s);
  assert.throws(() => splitHostPort("[fd00::2]:70000", 9), RangeError);
  assert.throws(() => splitHostPort("host:70000", 9), RangeError);
});

Deno.test("--peer takes [v6]:port and a bare v6 literal; a bad or multicast one is a usage error that says why", () => {
  for (const s of ["[fd00::2]:47475", "fd00::2", "[fe80::1%eth0]:47475", "[fd00::2]"]) assert.equal(parsePeer(s), s);
  const bad: [string, RegExp][] = [
    ["[fd00::2", /"\[fd00::2": expected \[IPV6\] or \[IPV6\]:PORT, e\.g\. \[fd00::2\]:47475\./],
    ["[nothost]:1", /"nothost" in brackets is not an IPv6 address/],
    ["fd00::2::3", /not an IPv6 address \(an IPv6 address with a port is written \[ADDR\]:PORT\)/],
    ["[ff02::1]:47475", /a multicast address names no peer/],
    ["[fd00::2]:0", /port 0 names no peer/],
    ["[fd00::2]:99999", /expected 0 to 65535/],
  ];
  for (const [s, re] of bad) assert.throws(() => parsePeer(s), re, s);
});

Deno.test("multicastTargets6: one per interface with a link-local address, filtered, its index from the scope id", () => {
  const a = (name: string, address: string, scopeid: number | null, family: "IPv4" | "IPv6" = "IPv6") => ({
    name,
    family,
    address,
    netmask: family === "IPv6" ? "ffff:ffff:ffff:ffff::" : "255.255.255.0",
    scopeid,
  });
  const addresses = [
    a("lo", "::1", 0),
    a("lo", "127.0.0.1", null, "IPv4"),
    a("eth0", "198.18.0.11", null, "IPv4"),
    a("eth0", "fd00:198:18::11", 0),
    a("eth0", "fe80::1", 2),
    a("eth0", "fe80::2", 2),
    a("wlan0", "fe80::3", 3),
    a("docker0", "fe80::4", 4),
    a("down0", "fe80::5", 5),
    a("odd", "fe80::6", 0),
    a("bad name", "fe80::7", 7),
  ];
  const got = multicastTargets6(addresses, { exclude: ["docker0"], down: new Set(["down0"]) });
  assert.deepEqual(got, [
    { interface: "eth0", index: 2, address: "fe80::1", group: `${LANCHAT_GROUP6}%eth0` },
    { interface: "wlan0", index: 3, address: "fe80::3", group: `${LANCHAT_GROUP6}%wlan0` },
  ]);
  assert.deepEqual(multicastTargets6(addresses, { include: ["wlan0"] }).map((t) => t.interface), ["wlan0"]);
});

Deno.test("a link-local source on the unicast socket gets the interface it was heard on by multicast", () => {
  const m = new Multicast6Sockets(new Notices(() => 0));
  const ll = { address: "fe80::1", port: 47475 };
  // Heard on eth1's discovery socket: remembered there.
  assert.deepEqual(m.source(ll, "discovery6%eth1"), { address: "fe80::1%eth1", port: 47475 });
  assert.deepEqual(m.source(ll, "unicast"), { address: "fe80::1%eth1", port: 47475 });
  // Unknown, and no single IPv6 interface open: left as it is.
  assert.deepEqual(m.source({ address: "fe80::9", port: 1 }, "unicast"), { address: "fe80::9", port: 1 });
  // IPv4, ULA and already scoped addresses are untouched.
  for (const address of ["198.18.0.1", "fd00::1", "fe80::1%eth0"]) {
    assert.deepEqual(m.source({ address, port: 1 }, "discovery6%eth1"), { address, port: 1 });
  }
  assert.equal(m.interfaceOf("discovery6%eth0"), "eth0");
  assert.equal(m.interfaceOf("unicast"), undefined);
});

Deno.test("traffic counts by mechanism both ways; a new mechanism adds its own rows", () => {
  const t = new Traffic();
  t.count("sent", "ipv6-multicast", 300);
  t.count("sent", "ipv6-multicast", 200);
  t.count("received", "unicast", 50);
  t.count("received", "mdns", 90);
  const j = t.json();
  assert.deepEqual(j.sent["ipv6-multicast"], { datagrams: 2, bytes: 500 });
  assert.deepEqual(j.sent["ipv4-broadcast"], { datagrams: 0, bytes: 0 });
  assert.deepEqual(j.received.mdns, { datagrams: 1, bytes: 90 });
  const m = new MetricsWriter();
  t.metrics(m);
  const text = m.toString();
  assert.match(text, /lanchat_traffic_datagrams_total\{direction="sent",mechanism="ipv6-multicast"\} 2/);
  assert.match(text, /lanchat_traffic_bytes_total\{direction="received",mechanism="mdns"\} 90/);
  assert.match(text, /lanchat_traffic_datagrams_total\{direction="received",mechanism="ipv4-broadcast"\} 0/);
});

Deno.test("the IPv6 discovery sockets follow the interfaces: opened, closed when gone or recreated, retried on failure", async () => {
  const log: string[] = [];
  const warnings: string[] = [];
  let failNext = false;
  const ctx = {
    openSocket: (spec: { name: string; hostname: string; port: number; joinV6?: { group: string; index: number } }) => {
      if (failNext) {
        failNext = false;
        return Promise.reject(new Error("No such device (os error 19)"));
      }
      log.push(`open ${spec.name} ${spec.hostname}:${spec.port} join ${spec.joinV6?.group} #${spec.joinV6?.index}`);
      return Promise.resolve();
    },
    closeSocket: (name: string) => void log.push(`close ${name}`),
    loopMulticastV6: (socket: string, group: string, index: number) => {
      log.push(`loop ${socket} ${group} #${index}`);
      return Promise.resolve();
    },
  } as unknown as Parameters<Multicast6Sockets["reconcile"]>[2];
  const notices = new Notices(() => 0);
  const once = notices.once.bind(notices);
  notices.once = (key, message, props) => {
    warnings.push(key);
    return once(key, message, props);
  };
  const m = new Multicast6Sockets(notices);
  const t = (name: string, index: number) => ({
    interface: name,
    index,
    address: "fe80::1",
    group: `${LANCHAT_GROUP6}%${name}`,
  });
  const service = {} as Parameters<Multicast6Sockets["reconcile"]>[3];
  await m.reconcile([t("eth0", 2)], 47474, ctx, service, "unicast");
  await m.reconcile([t("eth0", 2)], 47474, ctx, service, "unicast"); // unchanged: nothing done
  assert.deepEqual(log.splice(0), [
    `open discovery6%eth0 ${LANCHAT_GROUP6}%eth0:47474 join ${LANCHAT_GROUP6} #2`,
    `loop unicast ${LANCHAT_GROUP6} #2`,
  ]);
  assert.deepEqual(m.interfaces, ["eth0"]);
  // Recreated (a new index): closed and opened again; gone: closed.
  await m.reconcile([t("eth0", 7)], 47474, ctx, service, "unicast");
  assert.deepEqual(log.splice(0), [
    "close discovery6%eth0",
    `open discovery6%eth0 ${LANCHAT_GROUP6}%eth0:47474 join ${LANCHAT_GROUP6} #7`,
    `loop unicast ${LANCHAT_GROUP6} #7`,
  ]);
  await m.reconcile([], 47474, ctx, service, "unicast");
  assert.deepEqual(log.splice(0), ["close discovery6%eth0"]);
  assert.deepEqual(m.interfaces, []);
  // A socket that cannot be opened is said once and tried again at the next refresh.
  failNext = true;
  await m.reconcile([t("wlan0", 3)], 47474, ctx, service, "unicast");
  assert.deepEqual(log.splice(0), []);
  assert.deepEqual(warnings, ["multicast6:wlan0"]);
  assert.deepEqual(m.interfaces, []);
  await m.reconcile([t("wlan0", 3)], 47474, ctx, service, "unicast");
  assert.deepEqual(log.splice(0), [
    `open discovery6%wlan0 ${LANCHAT_GROUP6}%wlan0:47474 join ${LANCHAT_GROUP6} #3`,
    `loop unicast ${LANCHAT_GROUP6} #3`,
  ]);
  // With one IPv6 interface open, an unknown link-local source on the unicast socket is on it.
  assert.deepEqual(m.source({ address: "fe80::9", port: 1 }, "unicast"), { address: "fe80::9%wlan0", port: 1 });
});

Deno.test("a PEER given as an IPv6 address matches the endpoints it was heard on, scope and port as given", () => {
  const rows: [string, string, boolean][] = [
    ["fd00::12", "[fd00::12]:47475", true],
    ["fd00:0:0::12", "[fd00::12]:47475", true],
    ["[fd00::12]", "[fd00::12]:47475", true],
    ["[fd00::12]:47475", "[fd00::12]:47475", true],
    ["[fd00::12]:47476", "[fd00::12]:47475", false],
    ["fd00::13", "[fd00::12]:47475", false],
    ["fe80::1", "[fe80::1%eth0]:47475", true],
    ["fe80::1%eth0", "[fe80::1%eth0]:47475", true],
    ["[fe80::1%eth0]:47475", "[fe80::1%eth0]:47475", true],
    ["fe80::1%wlan0", "[fe80::1%eth0]:47475", false],
    ["198.18.0.12", "198.18.0.12:47475", false],
    ["bob", "[fd00::12]:47475", false],
    ["[fd00::12", "[fd00::12]:47475", false],
    ["fd00::12", "fd00::12:47475", false],
  ];
  for (const [q, e, want] of rows) assert.equal(matchesEndpoint6(q, e), want, `${q} ~ ${e}`);
});

Deno.test("a dual-stack socket that cannot be bound (no IPv6 on the host) is bound 0.0.0.0; a port in use is not", () => {
  const net = new FakeNetwork();
  const tried: string[] = [];
  const io = {
    bindUdp: (hostname: string, port: number) => {
      tried.push(`${hostname}:${port}`);
      if (hostname === "::") {
        throw new BindError(hostname, port, new Error("Address family not supported by protocol (os error 97)"));
      }
      return net.bind(hostname, port);
    },
  } as unknown as DaemonIo;
  const s = bind(io, { name: "unicast", hostname: "::", port: 47475 });
  assert.deepEqual(s.addr, { transport: "udp", hostname: "0.0.0.0", port: 47475 });
  assert.deepEqual(tried, [":::47475", "0.0.0.0:47475"]);
  // In use on [::]: the usual rules (here: an error), not a silent move to IPv4.
  const busy = {
    bindUdp: (hostname: string, port: number) => {
      throw new BindError(hostname, port, new Deno.errors.AddrInUse("in use"));
    },
  } as unknown as DaemonIo;
  assert.throws(() => bind(busy, { name: "unicast", hostname: "::", port: 47475 }), /address already in use/);
});
