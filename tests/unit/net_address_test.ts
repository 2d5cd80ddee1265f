import assert from "node:assert/strict";
import { broadcastTargets, directedBroadcast, type InterfaceAddress, parseIPv4 } from "../../src/node/net_address.ts";

Deno.test("directedBroadcast is address | ~netmask, and none for /31 and /32", () => {
  const rows: [string, string, string | undefined][] = [
    ["198.18.0.11", "255.255.255.0", "198.18.0.255"],
    ["172.16.32.33", "255.255.255.128", "172.16.32.127"],
    ["10.1.2.3", "255.0.0.0", "10.255.255.255"],
    ["127.0.0.1", "255.0.0.0", "127.255.255.255"],
    ["192.168.1.77", "255.255.252.0", "192.168.3.255"],
    ["198.18.0.1", "255.255.255.254", undefined],
    ["198.18.0.1", "255.255.255.255", undefined],
    ["not-an-ip", "255.255.255.0", undefined],
    ["300.1.1.1", "255.255.255.0", undefined],
  ];
  for (const [a, m, expected] of rows) assert.equal(directedBroadcast(a, m), expected, `${a}/${m}`);
});

Deno.test("parseIPv4 accepts dotted quads only", () => {
  assert.equal(parseIPv4("1.2.3.4"), 0x01020304);
  assert.equal(parseIPv4("255.255.255.255"), 0xffffffff);
  for (const bad of ["1.2.3", "1.2.3.4.5", "256.0.0.1", "a.b.c.d", " 1.2.3.4", ""]) {
    assert.equal(parseIPv4(bad), undefined, bad);
  }
});

const IFACES: InterfaceAddress[] = [
  { name: "lo", family: "IPv4", address: "127.0.0.1", netmask: "255.0.0.0" },
  { name: "lo", family: "IPv6", address: "::1", netmask: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
  { name: "eth0", family: "IPv4", address: "198.18.0.11", netmask: "255.255.255.0" },
  { name: "eth0", family: "IPv4", address: "198.18.0.12", netmask: "255.255.255.0" }, // second address, same subnet
  { name: "docker0", family: "IPv4", address: "172.17.0.1", netmask: "255.255.0.0" },
  { name: "wg0", family: "IPv4", address: "10.9.0.2", netmask: "255.255.255.255" },
];

Deno.test("broadcastTargets lists one target per IPv4 subnet, loopback included", () => {
  assert.deepEqual(broadcastTargets(IFACES).map((t) => `${t.interface} ${t.broadcast}`), [
    "lo 127.255.255.255",
    "eth0 198.18.0.255",
    "docker0 172.17.255.255",
  ]);
});

Deno.test("broadcastTargets honours allow and deny lists and skips interfaces that are down", () => {
  assert.deepEqual(broadcastTargets(IFACES, { include: ["eth0"] }).map((t) => t.interface), ["eth0"]);
  assert.deepEqual(broadcastTargets(IFACES, { exclude: ["docker0", "lo"] }).map((t) => t.interface), ["eth0"]);
  assert.deepEqual(broadcastTargets(IFACES, { down: new Set(["eth0"]) }).map((t) => t.interface), ["lo", "docker0"]);
});
