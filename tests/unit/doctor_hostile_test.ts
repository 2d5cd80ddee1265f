/**
 * Hostile tests for issue 27 item 9 (lanchat doctor's findings), pure parts. Each test fails on
 * a5b7e8c (main at the time of writing). Copy into tests/unit/.
 */
import assert from "node:assert/strict";
import type { DiagnosticsJson } from "../../src/api/diagnostics_json.ts";
import { nftHits, type OurPort } from "../../src/cli/doctor_firewall.ts";
import { compareVersions, type DoctorFacts, findings } from "../../src/cli/doctor_findings.ts";

const PORTS: OurPort[] = [
  { proto: "udp", port: 47474, role: "discovery" },
  { proto: "udp", port: 47475, role: "unicast" },
  { proto: "tcp", port: 47475, role: "file" },
];

function diagnostics(over: Partial<DiagnosticsJson> = {}): DiagnosticsJson {
  return {
    version: "0.1.0",
    pid: 100,
    uptimeMs: 60_000,
    dataDir: "/d",
    group: "open",
    replayWindowMs: 30_000,
    ports: { discovery: 47474, unicast: 47475, http: 47476, file: 47475 },
    announceIntervalMs: 1000,
    interfaces: [{ interface: "eth0", address: "198.18.0.11", broadcast: "198.18.0.255" }],
    broadcastTargets: ["198.18.0.255:47474"],
    staticPeers: [],
    ownEchoes: 30,
    hellosIn: 30,
    checksSent: 0,
    helloSources: [{ address: "198.18.0.12", agoMs: 500 }],
    peers: [],
    skewRejected: [],
    ...over,
  };
}

function facts(over: Partial<DoctorFacts> = {}): DoctorFacts {
  return {
    daemon: diagnostics(),
    daemonUrl: "127.0.0.1:47476",
    interfaces: [{ name: "eth0", address: "198.18.0.11", cidr: "198.18.0.11/24", broadcast: "198.18.0.255", up: true }],
    ports: PORTS,
    listeners: [],
    firewall: { hits: [], unread: [] },
    files: [],
    disks: [],
    version: "0.1.0",
    ...over,
  };
}

Deno.test("hostile27: doctor does not call a forward chain's drop policy a drop of lanchat's traffic", () => {
  // Every Docker host has this (iptables-nft: FORWARD policy DROP); it filters routed packets, not ours.
  const ruleset = JSON.stringify({
    nftables: [
      {
        chain: {
          family: "ip",
          table: "filter",
          name: "FORWARD",
          handle: 1,
          type: "filter",
          hook: "forward",
          prio: 0,
          policy: "drop",
        },
      },
      {
        chain: {
          family: "ip",
          table: "filter",
          name: "INPUT",
          handle: 2,
          type: "filter",
          hook: "input",
          prio: 0,
          policy: "accept",
        },
      },
    ],
  });
  assert.deepEqual(nftHits(ruleset, PORTS), []);
});

Deno.test("hostile27: doctor does not say no peer was ever heard when one was heard and left", () => {
  // bob was a peer until it was killed 6 s ago: its hellos were taken (it joined), then it timed out.
  const f = facts({
    daemon: diagnostics({
      uptimeMs: 14_000,
      hellosIn: 10,
      peers: [],
      helloSources: [{ address: "198.18.0.12", agoMs: 6_700 }],
    }),
  });
  const noPeers = findings(f).find((x) => x.id === "no-peers");
  assert.ok(noPeers);
  assert.doesNotMatch(noPeers.message, /none was taken/, noPeers.message);
  assert.doesNotMatch(noPeers.message, /No lanchat peer heard in the/, noPeers.message);
});

Deno.test("hostile27: a pre-release of the same version is not newer (no 'update this host' for 0.1.0-rc.1)", () => {
  assert.ok(compareVersions("0.1.0-rc.1", "0.1.0") < 0, "semver: 0.1.0-rc.1 < 0.1.0");
  const f = facts({
    daemon: diagnostics({
      peers: [{
        id: "b".repeat(32),
        name: "bob",
        hostname: "hb",
        version: "0.1.0-dev",
        address: "198.18.0.12",
        intervalMs: 1000,
        helloAgoMs: 500,
        answerAgoMs: 500,
        checksUnanswered: 0,
      }],
    }),
  });
  assert.ok(!findings(f).some((x) => x.id === "version-behind"), "0.1.0-dev is older than 0.1.0, not newer");
});

Deno.test("hostile27: what another process on the HTTP port answers is printed with its control characters shown", () => {
  // Another user listens on 127.0.0.1:47476 (no daemon of ours runs) and answers 401 with terminal escapes.
  const f = facts({
    daemon: undefined,
    daemonStatus: 401,
    daemonError: "401: \u001b]0;PWNED\u0007\u001b[2J\u202eevil",
  });
  for (const x of findings(f)) {
    assert.ok(!["\u001b", "\u0007", "\u202e"].some((c) => x.message.includes(c)), JSON.stringify(x.message));
  }
  // And its version, when it answers /diagnostics itself.
  const g = facts({
    daemon: diagnostics({
      version: "0.1.0\u001b[31m",
      peers: [{
        id: "b".repeat(32),
        name: "bob",
        hostname: "hb",
        version: "9.0.0",
        address: "198.18.0.12",
        intervalMs: 1000,
        helloAgoMs: 500,
        answerAgoMs: 500,
        checksUnanswered: 0,
      }],
    }),
  });
  for (const x of findings(g)) assert.ok(!x.message.includes("\u001b"), JSON.stringify(x.message));
});

Deno.test("hostile27: doctor's fixes name only commands that exist (lanchat service restart does not)", () => {
  const f = facts({ daemon: undefined, daemonStatus: 404, daemonError: "404: Not found" });
  for (const x of findings(f)) assert.doesNotMatch(x.fix, /lanchat service restart/, x.fix);
});

Deno.test("hostile27: with no firewall tool installed, doctor does not tell root to run it as root", () => {
  const f = facts({
    firewall: {
      hits: [],
      unread: ["nft is not installed", "iptables-save is not installed", "ip6tables-save is not installed"],
    },
  });
  const x = findings(f).find((y) => y.id === "firewall-unread")!;
  assert.doesNotMatch(x.fix, /as root/, x.fix);
});
