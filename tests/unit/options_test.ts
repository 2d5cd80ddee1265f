import assert from "node:assert/strict";
import {
  formatDuration,
  parseDaemonAddress,
  parseDiscoveryPort,
  parseDurationIn,
  parseHttp,
  parseName,
  parsePeer,
  shellWord,
} from "../../src/cli/options.ts";
import { humanDuration } from "../../src/cli/status.ts";
import { stateCell } from "../../src/cli/peers.ts";
import { dnsProblem } from "../../src/node/options.ts";
import type { PeerJson } from "../../src/api/types.ts";

Deno.test("durations take ms, s, m and h, alone or combined, and a plain number only when it cannot mean ms", () => {
  const interval = parseDurationIn(50, 3_600_000);
  const ok: [string, number][] = [
    ["2s", 2000],
    ["500ms", 500],
    ["1.5s", 1500],
    ["1m30s", 90_000],
    ["1h", 3_600_000],
    ["1m", 60_000],
    ["2s500ms", 2500],
    ["5", 5000], // 5 ms would be out of range: 5 seconds
    ["0.5", 500],
  ];
  for (const [s, ms] of ok) assert.equal(interval(s), ms, s);
  const bad: [string, RegExp][] = [
    ["2000", /"2000" has no unit: write 2000ms \(2s\) or 2000s \(33m20s\)/],
    ["soon", /"soon" is not a duration/],
    ["10ms", /"10ms" is out of range \(50ms to 1h\)/],
    ["2h", /out of range/],
    ["1h1s", /out of range/],
    ["-1s", /not a duration/],
    ["0.01", /out of range \(50ms to 1h\); write a unit/],
  ];
  for (const [s, re] of bad) assert.throws(() => interval(s), re, s);
  const probe = parseDurationIn(10, 60_000);
  assert.throws(() => probe("500"), /"500" has no unit: did you mean 500ms\?/);
  assert.equal(probe("2"), 2000);
  const rows: [number, string][] = [[500, "500ms"], [2000, "2s"], [90_000, "1m30s"], [3_600_000, "1h"], [
    2_000_000,
    "33m20s",
  ]];
  for (const [ms, s] of rows) assert.equal(formatDuration(ms), s);
});

Deno.test("a name is checked as the wire checks it: 1 to 64 UTF-8 bytes, no control characters", () => {
  assert.equal(parseName("小明"), "小明");
  assert.equal(parseName("a".repeat(64)), "a".repeat(64));
  assert.throws(() => parseName(""), /--name "": must not be empty/);
  assert.throws(() => parseName("a".repeat(65)), /is 65 UTF-8 bytes; expected 1 to 64/);
  assert.throws(() => parseName("好".repeat(22)), /is 66 UTF-8 bytes/);
  assert.throws(() => parseName("bell\x07"), /contains control characters/);
});

Deno.test("addresses are checked at the flag, in words: the daemon's, a client's, a peer's, the discovery port", () => {
  assert.deepEqual(parseHttp("127.0.0.1:0"), { hostname: "127.0.0.1", port: 0 });
  assert.deepEqual(parseHttp("[::1]:8080"), { hostname: "::1", port: 8080 });
  assert.deepEqual(parseHttp("0.0.0.0"), { hostname: "0.0.0.0", port: 47476 });
  assert.equal(parseDaemonAddress("127.0.0.1:47476"), "http://127.0.0.1:47476");
  assert.equal(parseDaemonAddress("http://localhost:47476/"), "http://localhost:47476");
  assert.equal(parseDaemonAddress("[::1]:47476"), "http://[::1]:47476");
  const badClient: [string, RegExp][] = [
    ["127.0.0.1:99999", /"99999" in "127\.0\.0\.1:99999" is not a port/],
    ["nonsense", /"nonsense" has no port: expected HOST:PORT/],
    ["127.0.0.1:0", /port 0 names no daemon/],
    ["bad host:1", /not a daemon address|not a host name/],
    ["[zz]:1", /is not an IPv6 address/],
  ];
  for (const [s, re] of badClient) assert.throws(() => parseDaemonAddress(s), re, s);
  assert.equal(parsePeer("nosuchhost.invalid"), "nosuchhost.invalid");
  assert.equal(parsePeer("198.18.0.12:47475"), "198.18.0.12:47475");
  // Issue 28: IPv6 peers are accepted now (this asserted the IPv4-only refusal before).
  assert.equal(parsePeer("[fe80::1]:47475"), "[fe80::1]:47475");
  assert.throws(() => parsePeer("a..b"), /"a\.\.b" is not a host name or an IPv4 address/);
  assert.throws(() => parseDiscoveryPort("0"), /cannot be 0: every host of the LAN must use the same one/);
  assert.equal(parseDiscoveryPort("47474"), 47474);
});

Deno.test("status shows durations for people, and peers show a clock that is off", () => {
  const rows: [number, string][] = [
    [500, "500 ms"],
    [2000, "2 s"],
    [1500, "1.5 s"],
    [303_000, "5m 3s"],
    [11_520_000, "3h 12m"],
    [10_800_000, "3h"],
    [187_200_000, "2d 4h"],
  ];
  for (const [ms, s] of rows) assert.equal(humanDuration(ms), s, String(ms));
  const peer = (clockOffsetMs?: number) => ({ state: "alive", clockOffsetMs }) as PeerJson;
  assert.equal(stateCell(peer()), "alive");
  assert.equal(stateCell(peer(300)), "alive", "under a second is noise");
  assert.equal(stateCell(peer(95_000)), "alive, clock 95s ahead");
  assert.equal(stateCell(peer(-3_600_000)), "alive, clock 60m behind");
});

Deno.test("DNS failures are said in words, not as the resolver's query dump", () => {
  assert.equal(
    dnsProblem(new Deno.errors.NotFound("proto error: no records found for Query { … }")),
    "no such host (no DNS A record)",
  );
  assert.equal(
    dnsProblem(new Error("proto error: Label contains invalid characters: Err(Errors)")),
    "not a valid host name",
  );
  assert.equal(dnsProblem(new Deno.errors.TimedOut("x")), "the DNS server did not answer in time");
  assert.doesNotMatch(dnsProblem(new Error('proto error: something Query { name: Name("x") }')), /Query|Name\(/);
});

Deno.test("hints print commands that paste into a shell as they were meant: words with spaces, quotes or $ are quoted", () => {
  assert.equal(shellWord("bob@host-1.lan"), "bob@host-1.lan");
  assert.equal(shellWord("line 2"), "'line 2'");
  assert.equal(shellWord("it's $HOME"), `'it'\\''s $HOME'`);
  assert.equal(shellWord("午饭"), "'午饭'");
  assert.equal(shellWord(""), "''");
});
