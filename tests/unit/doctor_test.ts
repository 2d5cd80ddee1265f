/**
 * `lanchat doctor`'s findings from canned inputs: each finding's logic, the
 * firewall rules read from real `nft -j` output and `iptables-save` text, and
 * `ss` lines. The host is not read here (tests/lan/doctor_lan_test.ts does).
 */
import assert from "node:assert/strict";
import type { DiagnosticsJson } from "../../src/api/diagnostics_json.ts";
import { iptablesHits, nftHits, type OurPort } from "../../src/cli/doctor_firewall.ts";
import { allWell, compareVersions, type DoctorFacts, findings, inSubnet } from "../../src/cli/doctor_findings.ts";
import { parseSs } from "../../src/cli/doctor_system.ts";
import { describeDoctor, interfaceRows } from "../../src/cli/doctor.ts";
import { createHandler } from "../../src/api/http.ts";
import type { Api } from "../../src/api/api.ts";
import { buildProgram } from "../../src/cli/program.ts";

const PORTS: OurPort[] = [
  { proto: "udp", port: 47474, role: "discovery" },
  { proto: "udp", port: 47475, role: "unicast" },
  { proto: "tcp", port: 47475, role: "file" },
];

const PEER = "b".repeat(32);

function diagnostics(over: Partial<DiagnosticsJson> = {}): DiagnosticsJson {
  return {
    version: "0.1.0",
    pid: 100,
    uptimeMs: 60_000,
    dataDir: "/home/a/.local/share/lanchat",
    group: "open",
    replayWindowMs: 30_000,
    ports: { discovery: 47474, unicast: 47475, http: 47476, file: 47475 },
    announceIntervalMs: 2000,
    interfaces: [{ interface: "eth0", address: "198.18.0.11", broadcast: "198.18.0.255" }],
    broadcastTargets: ["198.18.0.255:47474"],
    staticPeers: [],
    ownEchoes: 30,
    hellosIn: 30,
    checksSent: 0,
    helloSources: [{ address: "198.18.0.12", agoMs: 500 }],
    peers: [{
      id: PEER,
      name: "bob",
      hostname: "hb",
      version: "0.1.0",
      address: "198.18.0.12",
      intervalMs: 2000,
      clockOffsetMs: 3,
      helloAgoMs: 500,
      answerAgoMs: 900,
      checksUnanswered: 0,
    }],
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
    listeners: [
      { proto: "udp", port: 47474, process: "deno", pid: 100 },
      { proto: "udp", port: 47475, process: "deno", pid: 100 },
      { proto: "tcp", port: 47475, process: "deno", pid: 100 },
    ],
    firewall: { hits: [], unread: [] },
    files: [
      { what: "network key file", path: "/k/group.key", mode: 0o600 },
      { what: "data directory", path: "/d", mode: 0o700 },
    ],
    disks: [{ what: "downloads folder", path: "/dl", freeBytes: 50 * 1024 ** 3 }],
    version: "0.1.0",
    ...over,
  };
}

const ids = (f: DoctorFacts) => findings(f).map((x) => x.id);

Deno.test("doctor: all is well on a healthy host", () => {
  const list = findings(facts());
  assert.deepEqual(list, []);
  assert.ok(allWell(list));
});

Deno.test("doctor: no daemon is said first, and the host is still checked", () => {
  const f = facts({
    daemon: undefined,
    listeners: [{ proto: "udp", port: 47474, process: "nc", pid: 77 }],
    files: [{ what: "network key file", path: "/k/group.key", mode: 0o644 }],
  });
  const list = findings(f);
  assert.deepEqual(list.map((x) => x.id), ["daemon-not-running", "port-taken", "file-open-to-others"]);
  assert.match(list[1]!.message, /^UDP port 47474 \(discovery\) is bound by nc \(pid 77\)/);
  assert.equal(list[2]!.fix, "chmod 600 /k/group.key");
  assert.ok(!allWell(list));
});

Deno.test("doctor: a daemon that refuses the command or keeps no diagnostics is told apart from none", () => {
  const refused = findings(facts({ daemon: undefined, daemonStatus: 401, daemonError: "401: Unauthorized" }));
  assert.deepEqual(refused.map((x) => x.id), ["daemon-refused"]);
  assert.match(refused[0]!.fix, /^Run lanchat doctor as the user the daemon runs as/);
  assert.deepEqual(ids(facts({ daemon: undefined, daemonStatus: 404, daemonError: "404: Not found" })), [
    "daemon-outdated",
  ]);
  // Its pid is the one on the HTTP port: another process on its discovery port is named, its own sockets not.
  const withHttp = facts({
    daemon: undefined,
    daemonStatus: 401,
    ports: [...PORTS, { proto: "tcp", port: 47476, role: "http" }],
    listeners: [...facts().listeners!, { proto: "tcp", port: 47476, process: "deno", pid: 100 }, {
      proto: "udp",
      port: 47474,
      process: "python3",
      pid: 9,
    }],
  });
  assert.deepEqual(ids(withHttp), ["daemon-refused", "port-shared"]);
});

Deno.test("doctor: each interface with whether it is announced on and its last hello", () => {
  const f = facts({
    interfaces: [...facts().interfaces, {
      name: "wlan0",
      address: "10.0.0.5",
      cidr: "10.0.0.5/24",
      broadcast: "10.0.0.255",
      up: false,
    }],
    daemon: diagnostics({
      helloSources: [{ address: "198.18.0.12", agoMs: 900 }, { address: "198.18.0.13", agoMs: 300 }],
    }),
  });
  assert.deepEqual(interfaceRows(f).map((i) => [i.name, i.announced, i.lastHelloAgoMs]), [
    ["eth0", true, 300],
    ["wlan0", false, null],
  ]);
  const lines = describeDoctor(f, findings(f));
  assert.equal(lines[1], "interface eth0: 198.18.0.11/24, broadcast 198.18.0.255, announced on, last hello 300 ms ago");
  assert.equal(lines[2], "interface wlan0: 10.0.0.5/24, broadcast 10.0.0.255, down, not announced on, no hello heard");
  assert.deepEqual(interfaceRows(facts({ daemon: undefined })), facts().interfaces, "without a daemon: the host's");
  const read = describeDoctor(facts({ firewall: { hits: [], unread: [], read: "nftables" } }), []);
  assert.deepEqual(read.slice(-3), [
    "firewall: nftables rules read (a best effort: rules that could match these ports, not a simulation)",
    "",
    "All is well.",
  ]);
});

Deno.test("doctor: another process on the daemon's unicast port, and no interface", () => {
  assert.deepEqual(
    ids(facts({ listeners: [...facts().listeners!, { proto: "udp", port: 47475, process: "socat", pid: 9 }] })),
    ["port-shared"],
  );
  assert.deepEqual(ids(facts({ interfaces: [] })), ["no-interface"]);
  assert.deepEqual(ids(facts({ daemon: diagnostics({ interfaces: [] }) })), ["not-announcing"]);
  assert.deepEqual(ids(facts({ listeners: undefined })), ["ports-unread"]);
  assert.ok(allWell(findings(facts({ listeners: undefined }))), "a note, not a failure");
  const unread = findings(facts({
    firewall: { hits: [], unread: ["nft failed: Operation not permitted", "iptables-save is not installed"] },
  }));
  assert.deepEqual(unread.map((x) => [x.id, x.severity]), [["firewall-unread", "info"]]);
  assert.equal(
    unread[0]!.message,
    "Firewall not read: nft failed: Operation not permitted; iptables-save is not installed",
  );
});

Deno.test("doctor: nobody heard, a quiet interface, a one-way peer", () => {
  assert.deepEqual(ids(facts({ daemon: diagnostics({ peers: [], helloSources: [] }) })), ["no-peers"]);
  assert.deepEqual(
    ids(facts({ daemon: diagnostics({ peers: [], helloSources: [], uptimeMs: 1000 }) })),
    [],
    "too early to say",
  );
  const twoNets = facts({
    interfaces: [...facts().interfaces, {
      name: "wlan0",
      address: "10.0.0.5",
      cidr: "10.0.0.5/24",
      broadcast: "10.0.0.255",
      up: true,
    }],
    daemon: diagnostics({
      interfaces: [...diagnostics().interfaces, { interface: "wlan0", address: "10.0.0.5", broadcast: "10.0.0.255" }],
    }),
  });
  assert.deepEqual(ids(twoNets), ["quiet-interface"]);
  const oneWay = facts({
    daemon: diagnostics({
      peers: [{ ...diagnostics().peers[0]!, answerAgoMs: null, checksUnanswered: 3, name: "bob\x1b[31m" }],
    }),
  });
  const list = findings(oneWay);
  assert.deepEqual(list.map((x) => x.id), ["one-way"]);
  assert.match(
    list[0]!.message,
    /^One-way link: this host hears bob\^\[\[31m \(198\.18\.0\.12\) but it does not answer/,
  );
  assert.match(list[0]!.fix, /^Run lanchat doctor on hb too/);
  const gone = diagnostics({
    peers: [{ ...diagnostics().peers[0]!, helloAgoMs: 60_000, checksUnanswered: 3 }],
  });
  assert.ok(!ids(facts({ daemon: gone })).includes("one-way"), "its hellos stopped too: not a one-way link");
});

Deno.test("doctor: clocks in a keyed group, refused for skew and close to the window", () => {
  const keyed = diagnostics({
    group: "keyed",
    peers: [{ ...diagnostics().peers[0]!, clockOffsetMs: 20_000 }],
    skewRejected: [{ address: "198.18.0.13", count: 7, aheadMs: -95_000, agoMs: 1000 }],
  });
  const list = findings(facts({ daemon: keyed }));
  assert.deepEqual(list.map((x) => x.id), ["clock-skew-refused", "clock-skew"]);
  assert.match(list[0]!.message, /^7 datagram\(s\) from 198\.18\.0\.13 refused: its clock is 95 s behind this host's/);
  assert.match(list[1]!.message, /clock is 20 s ahead of this host's/);
  const open = diagnostics({ peers: [{ ...diagnostics().peers[0]!, clockOffsetMs: 20_000 }] });
  assert.deepEqual(ids(facts({ daemon: open })), [], "an open group has no window");
});

Deno.test("doctor: versions, files and disks", () => {
  const d = diagnostics({ peers: [{ ...diagnostics().peers[0]!, version: "0.2.0" }] });
  assert.deepEqual(ids(facts({ daemon: d })), ["version-behind"]);
  const old = diagnostics({ peers: [{ ...diagnostics().peers[0]!, version: "0.0.9" }] });
  assert.deepEqual(ids(facts({ daemon: old })), ["version-ahead"]);
  assert.ok(allWell(findings(facts({ daemon: old }))), "older peers are a note");
  assert.equal(compareVersions("0.10.0", "0.9.1"), 1);
  assert.equal(compareVersions("1.0", "1.0.0"), 0);
  const f = findings(facts({
    files: [{ what: "node key file", path: "/d/node_key.json", mode: 0o640 }, {
      what: "data directory",
      path: "/d",
      mode: 0o755,
    }],
    disks: [
      { what: "data directory", path: "/d", freeBytes: 10 * 1024 },
      { what: "downloads folder", path: "/dl", freeBytes: 500 * 1024 ** 2 },
      { what: "downloads folder", path: "/gone", error: "ENOENT" },
    ],
  }));
  assert.deepEqual(f.map((x) => x.id), ["file-open-to-others", "file-open-to-others", "disk-full", "disk-low"]);
  assert.equal(f[1]!.fix, "chmod 700 /d");
  assert.match(f[2]!.message, /^The data directory \/d has 10\.2 kB free: messages cannot be stored/);
});

Deno.test("doctor: inSubnet", () => {
  assert.ok(inSubnet("198.18.0.12", "198.18.0.11/24"));
  assert.ok(inSubnet("::ffff:198.18.0.12", "198.18.0.11/24"));
  assert.ok(!inSubnet("198.18.1.12", "198.18.0.11/24"));
  assert.ok(inSubnet("8.8.8.8", "0.0.0.0/0"));
  assert.ok(!inSubnet("junk", "198.18.0.11/24"));
});

/** Real output of `nft -j list ruleset` (nftables 1.0.6) for the rules in its comments. */
const NFT = JSON.stringify({
  nftables: [
    { metainfo: { version: "1.0.6", json_schema_version: 1 } },
    { table: { family: "inet", name: "t", handle: 1 } },
    {
      chain: {
        family: "inet",
        table: "t",
        name: "input",
        handle: 1,
        type: "filter",
        hook: "input",
        prio: 0,
        policy: "accept",
      },
    },
    // udp dport 47474 counter drop
    {
      rule: {
        family: "inet",
        table: "t",
        chain: "input",
        handle: 2,
        expr: [{ match: { op: "==", left: { payload: { protocol: "udp", field: "dport" } }, right: 47474 } }, {
          counter: { packets: 0, bytes: 0 },
        }, { drop: null }],
      },
    },
    // ip saddr 198.18.0.12 drop
    {
      rule: {
        family: "inet",
        table: "t",
        chain: "input",
        handle: 3,
        expr: [{ match: { op: "==", left: { payload: { protocol: "ip", field: "saddr" } }, right: "198.18.0.12" } }, {
          drop: null,
        }],
      },
    },
    // udp dport { 47474, 47475 } reject
    {
      rule: {
        family: "inet",
        table: "t",
        chain: "input",
        handle: 6,
        expr: [{
          match: {
            op: "==",
            left: { payload: { protocol: "udp", field: "dport" } },
            right: { set: [47474, 47475] },
          },
        }, { reject: { type: "icmpx", expr: "port-unreachable" } }],
      },
    },
    // tcp dport 47000-48000 drop
    {
      rule: {
        family: "inet",
        table: "t",
        chain: "input",
        handle: 7,
        expr: [{
          match: { op: "==", left: { payload: { protocol: "tcp", field: "dport" } }, right: { range: [47000, 48000] } },
        }, { drop: null }],
      },
    },
    // tcp dport 22 drop; ct state invalid drop: not ours
    {
      rule: {
        family: "inet",
        table: "t",
        chain: "input",
        handle: 8,
        expr: [{ match: { op: "==", left: { payload: { protocol: "tcp", field: "dport" } }, right: 22 } }, {
          drop: null,
        }],
      },
    },
    {
      rule: {
        family: "inet",
        table: "t",
        chain: "input",
        handle: 9,
        expr: [{ match: { op: "in", left: { ct: { key: "state" } }, right: "invalid" } }, { drop: null }],
      },
    },
  ],
});

Deno.test("doctor: nftables rules that drop our ports are named, others not", () => {
  const hits = nftHits(NFT, PORTS);
  assert.deepEqual(hits.map((h) => [h.rule, h.ports.map((p) => p.role)]), [
    ["nftables inet t input (handle 2): udp dport 47474 counter drop", ["discovery"]],
    ["nftables inet t input (handle 3): ip saddr 198.18.0.12 drop", []],
    ["nftables inet t input (handle 6): udp dport { 47474, 47475 } reject", ["discovery", "unicast"]],
    ["nftables inet t input (handle 7): tcp dport 47000-48000 drop", ["file"]],
  ]);
  const list = findings(facts({ firewall: { hits, unread: [] } }));
  assert.deepEqual(list.map((x) => [x.id, x.severity]), [
    ["firewall-drop", "error"],
    ["firewall-drop", "error"],
    ["firewall-drop", "error"],
    ["firewall-drop", "warning"],
  ]);
  assert.match(list[0]!.message, /^Firewall rule drops lanchat's udp 47474 \(discovery\): nftables inet t input/);
  assert.deepEqual(nftHits("not json", PORTS), []);
  assert.deepEqual(nftHits(JSON.stringify({ nftables: [] }), PORTS), []);
});

Deno.test("doctor: a chain whose policy drops, unless our ports are accepted", () => {
  const policy = (accept: number[]) =>
    JSON.stringify({
      nftables: [
        { chain: { family: "ip", table: "f", name: "in", hook: "input", policy: "drop" } },
        {
          rule: {
            family: "ip",
            table: "f",
            chain: "in",
            handle: 4,
            expr: [{
              match: { op: "==", left: { payload: { protocol: "udp", field: "dport" } }, right: { set: accept } },
            }, { accept: null }],
          },
        },
      ],
    });
  const hits = nftHits(policy([47474]), PORTS);
  assert.deepEqual(hits.map((h) => [h.rule, h.ports.map((p) => p.role), h.policy]), [
    ["nftables ip f in: hook input, policy drop", ["unicast", "file"], true],
  ]);
  assert.equal(nftHits(policy([47474, 47475, 1]), PORTS.slice(0, 2)).length, 0);
});

Deno.test("doctor: rules of forward chains, and of chains only they jump to, are not ours; others still are", () => {
  const rule = (chain: string, handle: number, expr: unknown[]) => ({
    rule: { family: "ip", table: "filter", chain, handle, expr },
  });
  const udpDrop = [{ match: { op: "==", left: { payload: { protocol: "udp", field: "dport" } }, right: 47474 } }, {
    drop: null,
  }];
  const ruleset = JSON.stringify({
    nftables: [
      { chain: { family: "ip", table: "filter", name: "FORWARD", hook: "forward", policy: "drop" } },
      { chain: { family: "ip", table: "filter", name: "INPUT", hook: "input", policy: "accept" } },
      { chain: { family: "ip", table: "filter", name: "DOCKER-USER" } },
      { chain: { family: "ip", table: "filter", name: "MINE" } },
      { chain: { family: "ip", table: "filter", name: "LOOSE" } },
      rule("FORWARD", 1, [{ jump: { target: "DOCKER-USER" } }]),
      rule("FORWARD", 2, udpDrop),
      rule("DOCKER-USER", 3, udpDrop),
      rule("INPUT", 4, [{ jump: { target: "MINE" } }]),
      rule("MINE", 5, udpDrop),
      rule("LOOSE", 6, udpDrop),
      { chain: { family: "ip", table: "raw", name: "PREROUTING", hook: "prerouting", policy: "drop" } },
    ],
  });
  assert.deepEqual(nftHits(ruleset, PORTS).map((h) => h.rule), [
    "nftables ip filter MINE (handle 5): udp dport 47474 drop",
    "nftables ip filter LOOSE (handle 6): udp dport 47474 drop",
    "nftables ip raw PREROUTING: hook prerouting, policy drop",
  ]);
  const saved = [
    "*filter",
    ":INPUT ACCEPT [0:0]",
    ":FORWARD DROP [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    ":DOCKER-USER - [0:0]",
    ":MINE - [0:0]",
    "-A INPUT -j MINE",
    "-A FORWARD -j DOCKER-USER",
    "-A FORWARD -p udp --dport 47474 -j DROP",
    "-A DOCKER-USER -p udp --dport 47474 -j DROP",
    "-A MINE -p udp --dport 47475 -j DROP",
    "COMMIT",
  ].join("\n");
  assert.deepEqual(iptablesHits(saved, PORTS).map((h) => h.rule), [
    "iptables filter: -A MINE -p udp --dport 47475 -j DROP",
  ]);
});

Deno.test("doctor: iptables-save rules", () => {
  const text = [
    "*filter",
    ":INPUT DROP [0:0]",
    ":FORWARD ACCEPT [0:0]",
    "-A INPUT -m conntrack --ctstate INVALID -j DROP",
    "-A INPUT -p udp -m udp --dport 47474 -j ACCEPT",
    "-A INPUT -p udp -m multiport --dports 47470:47480 -j DROP",
    "-A INPUT -p tcp -m tcp --dport 22 -j DROP",
    "-A INPUT -s 198.18.0.12/32 -j REJECT --reject-with icmp-port-unreachable",
    "-A INPUT -p udp -m udp ! --dport 47475 -j DROP",
    "COMMIT",
  ].join("\n");
  const hits = iptablesHits(text, PORTS);
  assert.deepEqual(hits.map((h) => [h.rule, h.ports.map((p) => p.role)]), [
    ["iptables filter: -A INPUT -p udp -m multiport --dports 47470:47480 -j DROP", ["discovery", "unicast"]],
    ["iptables filter: -A INPUT -s 198.18.0.12/32 -j REJECT --reject-with icmp-port-unreachable", []],
    ["iptables filter: -A INPUT -p udp -m udp ! --dport 47475 -j DROP", ["discovery"]],
    ["iptables filter INPUT: policy DROP", ["unicast", "file"]],
  ]);
});

Deno.test("doctor: ss lines", () => {
  const udp = [
    `UNCONN 0      0            0.0.0.0:47474      0.0.0.0:*    users:(("deno",pid=1234,fd=12))`,
    `UNCONN 0      0               [::]:47475         [::]:*    users:(("deno",pid=1234,fd=13),("nc",pid=9,fd=3))`,
    `UNCONN 0      0      127.0.0.1%lo:5353      0.0.0.0:*`,
  ].join("\n");
  assert.deepEqual(parseSs(udp, "udp"), [
    { proto: "udp", port: 47474, process: "deno", pid: 1234 },
    { proto: "udp", port: 47475, process: "deno", pid: 1234 },
    { proto: "udp", port: 47475, process: "nc", pid: 9 },
    { proto: "udp", port: 5353 },
  ]);
});

Deno.test("GET /diagnostics is the owner's: 401 without the token, the JSON with it", async () => {
  const d = diagnostics();
  const api = { diagnostics: () => d } as unknown as Api;
  const handler = createHandler(api, { token: "secret" });
  const no = await handler(new Request("http://127.0.0.1:47476/diagnostics", { headers: { host: "127.0.0.1:47476" } }));
  assert.equal(no.status, 401);
  await no.body?.cancel();
  const yes = await handler(
    new Request("http://127.0.0.1:47476/diagnostics", {
      headers: { host: "127.0.0.1:47476", authorization: "Bearer secret" },
    }),
  );
  assert.equal(yes.status, 200);
  assert.deepEqual(await yes.json(), d);
  const post = await handler(
    new Request("http://127.0.0.1:47476/diagnostics", {
      method: "POST",
      headers: { host: "127.0.0.1:47476", authorization: "Bearer secret" },
    }),
  );
  assert.equal(post.status, 405, "read-only");
  await post.body?.cancel();
});

/** Another user's daemon on the default ports, as root sees it (ss -p -e): pid and uid of every socket. */
const NOBODYS = [
  { proto: "tcp" as const, port: 47476, process: "deno", pid: 500, uid: 65534, user: "nobody" },
  { proto: "udp" as const, port: 47474, process: "deno", pid: 500, uid: 65534, user: "nobody" },
  { proto: "udp" as const, port: 47475, process: "deno", pid: 500, uid: 65534, user: "nobody" },
  { proto: "tcp" as const, port: 47475, process: "deno", pid: 500, uid: 65534, user: "nobody" },
];

Deno.test("doctor: another user's daemon on the default ports is daemon-refused, its ports not 'taken'", () => {
  const f = facts({
    daemon: undefined,
    daemonStatus: 401,
    daemonError: "401: Missing or wrong bearer token: this lanchat answers its owner only",
    ports: [...PORTS, { proto: "tcp", port: 47476, role: "http" }],
    listeners: NOBODYS,
    uid: 0,
  });
  const list = findings(f);
  assert.deepEqual(list.map((x) => x.id), ["daemon-refused"]);
  assert.match(
    list[0]!.message,
    /^The daemon at 127\.0\.0\.1:47476 is another user's \(nobody \(uid 65534\), pid 500\)/,
  );
  assert.match(list[0]!.fix, /sudo -u nobody lanchat doctor/);
  const header = describeDoctor(f, list)[0]!;
  assert.doesNotMatch(header, /none answers/, header);
  assert.match(header, /another user's daemon answers at 127\.0\.0\.1:47476 but not this command \(status 401\)/);
  // The same daemon seen by the owner's own CLI (no uid difference): the token is the fix.
  const own = findings({ ...f, uid: 65534 });
  assert.match(own[0]!.fix, /^Run lanchat doctor as the user the daemon runs as/);
  // A program of another user that took the port but answers no HTTP: nothing answers, its port is taken.
  const squatFacts = { ...f, daemonStatus: undefined, daemonError: "127.0.0.1:47476 is listened on by another" };
  const squat = findings(squatFacts);
  assert.equal(
    describeDoctor(squatFacts, squat)[0],
    "daemon: no lanchat daemon answers at 127.0.0.1:47476 (127.0.0.1:47476 is listened on by another); checking the host only",
  );
  assert.deepEqual(squat.map((x) => x.id), ["daemon-not-running", ...PORTS.map(() => "port-taken"), "port-taken"]);
  assert.match(squat[1]!.message, /is bound by deno \(pid 500\)/);
  const unseen = findings({ ...f, daemonStatus: undefined, listeners: [{ proto: "udp", port: 47474, uid: 1001 }] });
  assert.match(unseen[1]!.message, /bound by a process of uid 1001/);
});

Deno.test("doctor: no peers now tells 'heard, all gone' from 'never heard' and from 'hellos that made no peer'", () => {
  const gone = findings(facts({
    daemon: diagnostics({
      peers: [],
      peersJoined: 2,
      peersLeft: { goodbye: 1, timeout: 1 },
      helloSources: [{ address: "198.18.0.13", agoMs: 9_000 }, { address: "198.18.0.12", agoMs: 6_700 }],
    }),
  }));
  assert.deepEqual(gone.map((x) => x.id), ["no-peers"]);
  assert.equal(
    gone[0]!.message,
    "2 peer(s) heard since the daemon started, all gone now (1 said goodbye, 1 stopped answering); " +
      "the last hello came 7 s ago from 198.18.0.12",
  );
  const never = findings(facts({
    daemon: diagnostics({
      peers: [],
      peersJoined: 0,
      peersLeft: { goodbye: 0, timeout: 0 },
      hellosIn: 0,
      helloSources: [],
    }),
  }));
  assert.match(never[0]!.message, /^No lanchat peer heard in the 60 s the daemon has run; it announces on eth0/);
  assert.doesNotMatch(never[0]!.message, /hellos came/);
  const refused = findings(
    facts({ daemon: diagnostics({ peers: [], peersJoined: 0, hellosIn: 4, helloSources: [] }) }),
  );
  assert.match(refused[0]!.message, /\(4 hellos came but made no peer: see lanchat status for drops\)$/);
});

Deno.test("doctor: a peer's version is a note (exit 0), ordered as semver", () => {
  const newer = findings(
    facts({ daemon: diagnostics({ peers: [{ ...diagnostics().peers[0]!, version: "99.0.0" }] }) }),
  );
  assert.deepEqual(newer.map((x) => [x.id, x.severity]), [["version-behind", "info"]]);
  assert.ok(allWell(newer), "a peer's self-reported version never fails doctor");
  assert.ok(compareVersions("0.1.0-rc.1", "0.1.0") < 0);
  assert.ok(compareVersions("0.1.0", "0.1.0-rc.1") > 0);
  assert.ok(compareVersions("0.1.0-alpha", "0.1.0-alpha.1") < 0);
  assert.ok(compareVersions("0.1.0-alpha.1", "0.1.0-alpha.beta") < 0, "numbers below words");
  assert.ok(compareVersions("0.1.0-rc.2", "0.1.0-rc.10") < 0, "numerically");
  assert.equal(compareVersions("1.0.0+build.5", "1.0.0"), 0, "build metadata ignored");
  assert.ok(Number.isNaN(compareVersions("junk", "0.1.0")), "not a version: neither");
  const junk = findings(
    facts({ daemon: diagnostics({ peers: [{ ...diagnostics().peers[0]!, version: "x\x1b[2J" }] }) }),
  );
  assert.deepEqual(junk, []);
});

Deno.test("doctor: --json carries what came from elsewhere exactly; the text shows its control characters", () => {
  const evil = "bob\u202e\x1b]0;PWNED\x07";
  const f = facts({
    daemon: diagnostics({
      peers: [{ ...diagnostics().peers[0]!, name: evil, answerAgoMs: null, checksUnanswered: 3 }],
    }),
  });
  const raw = findings(f, (s) => s);
  assert.ok(raw[0]!.message.includes(evil), raw[0]!.message);
  const text = findings(f);
  assert.ok(!["\u202e", "\x1b", "\x07"].some((c) => text[0]!.message.includes(c)), text[0]!.message);
  assert.match(text[0]!.message, /bob<U\+202E>\^\[\]0;PWNED\^G/);
});

/** Every command path of the program: `doctor`, `service install`, … */
function commandPaths(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const c of buildProgram().commands) out.set(c.name(), c.commands.map((s) => s.name()));
  return out;
}

Deno.test("doctor: every fix names only commands that exist, and every id in docs/cli.md is made by some facts", () => {
  const commands = commandPaths();
  const nftFailed = { hits: [], unread: ["nft failed: Operation not permitted"] };
  const hit = { rule: "nftables inet t input (handle 2): udp dport 47474 drop", ports: [PORTS[0]!] };
  const keyed = diagnostics({
    group: "keyed",
    peers: [{ ...diagnostics().peers[0]!, clockOffsetMs: 20_000, version: "0.2.0" }, {
      ...diagnostics().peers[0]!,
      name: "carol",
      version: "0.0.1",
      answerAgoMs: null,
      checksUnanswered: 3,
    }],
    skewRejected: [{ address: "198.18.0.13", count: 7, aheadMs: -95_000, agoMs: 1000 }],
  });
  const all = [
    facts({ daemon: undefined, listeners: [{ proto: "udp", port: 47474, process: "nc", pid: 7 }] }),
    facts({ daemon: undefined, daemonStatus: 404, daemonError: "404: Not found" }),
    facts({ daemon: undefined, daemonStatus: 401, daemonError: "401: no", listeners: [] }),
    facts({
      daemon: undefined,
      daemonStatus: 401,
      uid: 0,
      ports: [...PORTS, { proto: "tcp", port: 47476, role: "http" }],
      listeners: NOBODYS,
    }),
    facts({ interfaces: [] }),
    facts({ daemon: diagnostics({ interfaces: [] }) }),
    facts({ daemon: diagnostics({ peers: [], helloSources: [] }) }),
    facts({ daemon: diagnostics({ peers: [], peersJoined: 1, peersLeft: { goodbye: 1, timeout: 0 } }) }),
    facts({
      interfaces: [...facts().interfaces, {
        name: "w",
        address: "10.0.0.5",
        cidr: "10.0.0.5/24",
        broadcast: "",
        up: true,
      }],
      daemon: diagnostics({
        interfaces: [...diagnostics().interfaces, { interface: "w", address: "10.0.0.5", broadcast: "" }],
      }),
    }),
    facts({ daemon: keyed }),
    facts({ listeners: [...facts().listeners!, { proto: "udp", port: 47475, process: "socat", pid: 9 }] }),
    facts({ listeners: undefined }),
    facts({ firewall: { hits: [hit, { ...hit, ports: [], policy: true }], unread: [] } }),
    facts({ firewall: nftFailed }),
    facts({ firewall: nftFailed, uid: 0 }),
    facts({ firewall: { hits: [], unread: ["nft is not installed"] } }),
    facts({ files: [{ what: "network key file", path: "/k", mode: 0o644 }] }),
    facts({
      disks: [{ what: "data directory", path: "/d", freeBytes: 1 }, {
        what: "downloads folder",
        path: "/dl",
        freeBytes: 1e8,
      }],
    }),
  ].flatMap((f) => findings(f));
  for (const x of all) {
    for (const m of x.fix.matchAll(/\blanchat ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?/g)) {
      const subs = commands.get(m[1]!);
      assert.ok(subs, `${x.id}: "${m[0]}" is not a command: ${x.fix}`);
      if (subs.length && m[2]) assert.ok(subs.includes(m[2]), `${x.id}: "${m[0]}" is not a command: ${x.fix}`);
    }
  }
  const docs = Deno.readTextFileSync(new URL("../../docs/cli.md", import.meta.url));
  const section = docs.slice(
    docs.indexOf("## lanchat doctor"),
    docs.indexOf("\n## ", docs.indexOf("## lanchat doctor")),
  );
  const documented = [...section.matchAll(/^\| (`[a-z-]+`(?:, `[a-z-]+`)*)(?: \(info\))? +\|/gm)]
    .flatMap((m) => m[1]!.split(", ").map((id) => id.slice(1, -1)));
  assert.ok(documented.includes("daemon-refused") && documented.includes("port-shared"), String(documented));
  assert.deepEqual([...new Set(all.map((x) => x.id))].sort(), [...new Set(documented)].sort());
});

Deno.test("doctor: firewall-unread's fix fits why: tools missing, not root, or root and still refused", () => {
  const fix = (unread: string[], uid?: number) =>
    findings(facts({ firewall: { hits: [], unread }, uid })).find((x) => x.id === "firewall-unread")!.fix;
  assert.equal(
    fix(["nft is not installed", "iptables-save is not installed"], 0),
    "Install nftables (the nft command) to have the firewall checked",
  );
  assert.match(
    fix(["nft failed: Operation not permitted"], 1000),
    /^Run lanchat doctor as root \(sudo lanchat doctor\)/,
  );
  assert.doesNotMatch(fix(["nft failed: Operation not permitted"], 0), /as root/);
});

Deno.test("doctor: ss -e lines carry the socket's owner (none printed: root)", () => {
  const tcp = [
    `LISTEN 0 128 127.0.0.1:47476 0.0.0.0:* users:(("deno",pid=500,fd=3)) uid:65534 ino:4726954 sk:1111 cgroup:/ <->`,
    `LISTEN 0 128 0.0.0.0:47475 0.0.0.0:* ino:641 sk:105b cgroup:/ <->`,
  ].join("\n");
  assert.deepEqual(parseSs(tcp, "tcp"), [
    { proto: "tcp", port: 47476, process: "deno", pid: 500, uid: 65534 },
    { proto: "tcp", port: 47475, uid: 0 },
  ]);
});
