/**
 * --peer forms that name no peer (hostile finding 7): each refused at start
 * with a reason; the forms of a real peer still accepted. The interfaces are
 * a fixed table, so the directed broadcast of "our" subnet is known.
 */
import assert from "node:assert/strict";
import { parsePeer } from "../../src/cli/options.ts";
import { type InterfaceInfo, peerAddressProblem, scopeKnown } from "../../src/node/peer_address.ts";
import type { InterfaceAddress } from "../../src/node/net_address.ts";
import { Notices } from "../../src/node/notices.ts";
import { Targets } from "../../src/node/targets.ts";
import { FakeNetwork } from "../../src/node/transport.ts";
import { eth0, fakeHost } from "../support/fake_host.ts";

const IFACES: InterfaceInfo[] = [
  { family: "IPv4", name: "eth0", address: "198.18.0.12", netmask: "255.255.255.0", scopeid: null },
  { family: "IPv4", name: "p2p", address: "198.18.0.200", netmask: "255.255.255.254", scopeid: null },
  { family: "IPv6", name: "eth0", address: "fe80::1", netmask: "ffff:ffff:ffff:ffff::", scopeid: 2 },
];

Deno.test("--peer refuses unspecified, broadcast and multicast addresses, IPv4-mapped ones too", () => {
  const refused: [string, RegExp][] = [
    ["::", /unspecified address ::/],
    ["[::]:47475", /unspecified address ::/],
    ["[::ffff:224.0.0.1]", /multicast/],
    ["::ffff:255.255.255.255", /255\.255\.255\.255 is the broadcast address/],
    ["[::ffff:0.0.0.0]:1", /unspecified address \(0\.0\.0\.0\/8\)/],
    ["255.255.255.255", /broadcast address/],
    ["0.0.0.0:47475", /unspecified/],
    ["224.0.0.251", /multicast/],
    ["239.1.2.3:47475", /multicast/],
    ["198.18.0.255", /broadcast address of eth0's subnet/],
    ["198.18.0.255:47475", /broadcast address of eth0's subnet/],
    ["[::ffff:198.18.0.255]", /broadcast address of eth0's subnet/],
    ["[ff02::1]", /multicast/],
  ];
  for (const [s, re] of refused) assert.throws(() => parsePeer(s, () => IFACES), re, s);
});

Deno.test("--peer accepts the forms of a real peer", () => {
  const accepted = [
    "198.18.0.13",
    "198.18.0.13:47475",
    "198.18.1.255", // another subnet's broadcast looks like a host from here
    "198.18.0.201", // a /31 has no broadcast address
    "[fd00::2]:47475",
    "fd00::2",
    "[::ffff:198.18.0.13]:47475",
    "[fe80::1%eth0]:47475",
    "[fe80::1%nosuch]:47475", // a warning in the daemon, not a refusal: the interface may appear later
    "host2.lan",
  ];
  for (const s of accepted) assert.equal(parsePeer(s, () => IFACES), s);
});

Deno.test("peerAddressProblem checks the broadcast of every IPv4 interface and none when interfaces are unknown", () => {
  assert.match(peerAddressProblem("198.18.0.255", IFACES)!, /eth0/);
  assert.equal(peerAddressProblem("198.18.0.255", []), undefined);
  assert.equal(peerAddressProblem("not-an-address", IFACES), undefined);
});

Deno.test("a scope names an interface by name or index", () => {
  assert.equal(scopeKnown("eth0", IFACES), true);
  assert.equal(scopeKnown("2", IFACES), true);
  assert.equal(scopeKnown("nosuch", IFACES), false);
  assert.equal(scopeKnown("3", IFACES), false);
});

Deno.test("a --peer scope naming no interface is not announced to until the interface appears", async () => {
  let ifaces: InterfaceAddress[] = [
    eth0("198.18.0.1"),
    { name: "eth0", family: "IPv6", address: "fe80::1", netmask: "ffff:ffff:ffff:ffff::", scopeid: 2 },
  ];
  const io = fakeHost(new FakeNetwork(), "198.18.0.1", () => ifaces);
  const targets = new Targets(io, {
    peers: ["[fe80::9%wlan0]:47475", "[fe80::8%eth0]:47475", "[fe80::7%2]:47475"],
    discoveryPort: 47474,
    unicastPort: 47475,
  }, new Notices(() => 0));
  await targets.refresh();
  assert.deepEqual(targets.statics.map((e) => e.address).sort(), ["fe80::7%2", "fe80::8%eth0"]);
  ifaces = [...ifaces, {
    name: "wlan0",
    family: "IPv6",
    address: "fe80::5",
    netmask: "ffff:ffff:ffff:ffff::",
    scopeid: 3,
  }];
  await targets.refresh();
  assert.deepEqual(targets.statics.map((e) => e.address).sort(), ["fe80::7%2", "fe80::8%eth0", "fe80::9%wlan0"]);
});
