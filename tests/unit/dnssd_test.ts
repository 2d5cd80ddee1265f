/**
 * DNS-SD records both ways (through dns-packet's real encoder and decoder)
 * and what a hostile responder can and cannot make the browser do.
 */
import assert from "node:assert/strict";
import dnsPacket from "dns-packet";
import {
  type Advertised,
  asksForUs,
  Browser,
  claimsOurName,
  DatagramBudget,
  DATAGRAMS_OVERALL,
  DATAGRAMS_PER_SOURCE,
  type DnsMessage,
  type DnsRecord,
  instanceLabel,
  NEW_OVERALL,
  NEW_PER_SOURCE,
  PROBE_BACKOFF_MS,
  PROBE_WINDOW_MS,
  RATE_WINDOW_MS,
  readInstances,
  renamed,
  SERVICE,
  serviceRecords,
} from "../../src/protocol/dnssd.ts";

const ID_A = "a".repeat(32);
const ID_B = "b".repeat(32);
const AD: Advertised = { instance: "alice", host: "lanchat-aaaa", id: ID_A, port: 47475, discoveryPort: 47474 };

/** A response as it comes off the wire: encoded and decoded by dns-packet. */
function wire(answers: DnsRecord[], additionals: DnsRecord[] = []): DnsMessage {
  const bytes = dnsPacket.encode({ type: "response", flags: 0x400, answers, additionals } as never);
  return dnsPacket.decode(bytes) as DnsMessage;
}

function recordsOf(label: string, id: string | undefined, address: string, port = 47475): DnsRecord[] {
  const name = `${label}.${SERVICE}`;
  const host = `h-${label.replace(/[^a-z0-9]/gi, "")}.local`;
  return [
    { name: SERVICE, type: "PTR", ttl: 4500, data: name },
    { name, type: "SRV", ttl: 120, data: { target: host, port, priority: 0, weight: 0 } },
    { name, type: "TXT", ttl: 4500, data: id ? [`id=${id}`, "v=1"] : ["v=1"] },
    { name: host, type: "A", ttl: 120, data: address },
  ];
}

function browser(o: { answered?: Set<string>; known?: Set<string>; max?: number } = {}): Browser {
  return new Browser({
    selfId: ID_A,
    maxCandidates: o.max ?? 1024,
    answered: (a) => o.answered?.has(a) ?? false,
    known: (id) => o.known?.has(id) ?? false,
  });
}

Deno.test("instanceLabel makes a display name a valid DNS-SD instance label", () => {
  const rows: [string, string][] = [
    ["alice@host", "alice@host"],
    ["alice.on.a", "alice-on-a"],
    ["bob\u0007\nx", "bobx"],
    ["", "lanchat"],
    ["é".repeat(40), "é".repeat(31)], // 62 bytes: a 2-byte character is not cut
    ["back\\slash", "back-slash"],
  ];
  for (const [name, label] of rows) assert.equal(instanceLabel(name), label, name);
  for (const [name] of rows) assert.ok(new TextEncoder().encode(instanceLabel(name)).length <= 63);
});

Deno.test("our records, encoded and decoded, read back as our instance; a goodbye has TTL 0", () => {
  const got = readInstances(wire(serviceRecords(AD, ["198.18.0.11"])));
  assert.equal(got.bad, 0);
  assert.deepEqual(got.instances, [
    { instance: "alice", id: ID_A, version: 1, address: "198.18.0.11", port: 47475, ttl: 120, ptrTtl: 4500 },
  ]);
  const bye = readInstances(wire(serviceRecords(AD, ["198.18.0.11"], true)));
  assert.equal(bye.instances[0]!.ttl, 0);
});

Deno.test("an Avahi-style response (SRV, TXT and A in the additionals) is read; a PTR alone is not a candidate", () => {
  const [ptr, ...rest] = recordsOf("bob on b", ID_B, "198.18.0.139");
  assert.deepEqual(readInstances(wire([ptr!], rest)).instances.map((i) => [i.instance, i.id, i.address]), [
    ["bob on b", ID_B, "198.18.0.139"],
  ]);
  assert.deepEqual(readInstances(wire([ptr!])).instances, []);
});

Deno.test("asksForUs: the service type, the enumeration, our instance and host; not another service", () => {
  const q = (name: string): DnsMessage => ({ type: "query", questions: [{ name, type: "PTR" }] });
  assert.ok(asksForUs(q("_lanchat._udp.local"), AD));
  assert.ok(asksForUs(q("_LANCHAT._udp.local"), AD));
  assert.ok(asksForUs(q("_services._dns-sd._udp.local"), AD));
  assert.ok(asksForUs(q("alice._lanchat._udp.local"), AD));
  assert.ok(asksForUs(q("lanchat-aaaa.local"), AD));
  assert.ok(!asksForUs(q("_http._tcp.local"), AD));
  assert.ok(!asksForUs({ type: "query" }, AD));
});

Deno.test("hostile records are refused: bad addresses, control characters, a bad port, an oversized TXT", () => {
  const bad: DnsRecord[][] = [
    recordsOf("x1", ID_B, "224.0.0.251"),
    recordsOf("x2", ID_B, "127.0.0.1"),
    recordsOf("x3", ID_B, "255.255.255.255"),
    recordsOf("x4", ID_B, "0.0.0.0"),
    recordsOf("evil\u001b[2J", ID_B, "198.18.0.50"),
  ];
  for (const r of bad) assert.deepEqual(readInstances(wire(r)).instances, [], JSON.stringify(r[0]!.data));
  // A label over 63 bytes does not decode at all: the service counts the datagram as malformed.
  assert.throws(() => wire(recordsOf("x" + "y".repeat(70), ID_B, "198.18.0.51")), /bad label/);
  const txt = recordsOf("x5", ID_B, "198.18.0.52");
  txt[2]!.data = ["id=" + "z".repeat(200)];
  assert.equal(readInstances(wire(txt)).instances.length, 0);
  // A TXT id that is not a node id is no id (the probe decides who is there).
  const notId = recordsOf("x6", "not-an-id", "198.18.0.53");
  assert.equal(readInstances(wire(notId)).instances[0]!.id, undefined);
});

Deno.test("a response with many instances is read only up to MAX_RECORDS records", () => {
  const records: DnsRecord[] = [];
  for (let i = 0; i < 200; i++) records.push(...recordsOf(`n${i}`, undefined, `198.18.0.${(i % 200) + 20}`));
  const got = readInstances(wire(records));
  assert.ok(got.instances.length <= 16, `${got.instances.length} instances from 64 records`);
});

Deno.test("a browser probes a new instance, keeps it when it answers, gives it up unanswered and backs off", () => {
  const answered = new Set<string>();
  const b = browser({ answered });
  b.take(wire(recordsOf("bob", ID_B, "198.18.0.139")), "198.18.0.1", 0);
  assert.deepEqual(b.endpoints(), { changed: true, endpoints: [{ address: "198.18.0.139", port: 47475 }] });
  answered.add("198.18.0.139");
  b.tick(500);
  assert.equal(b.list()[0]!.state, "answered");
  b.tick(PROBE_WINDOW_MS + 1);
  assert.equal(b.size, 1);
  // A victim's address: probed for the window, then dropped and left alone.
  b.take(wire(recordsOf("victim", undefined, "198.18.0.99", 80)), "198.18.0.1", 1000);
  assert.equal(b.size, 2);
  b.tick(1000 + PROBE_WINDOW_MS);
  assert.equal(b.size, 1);
  assert.equal(b.counters.givenUp, 1);
  b.take(wire(recordsOf("victim", undefined, "198.18.0.99", 80)), "198.18.0.1", 20_000);
  assert.equal(b.size, 1, "backed off");
  assert.equal(b.counters.dropped.backoff, 1);
  b.tick(1000 + PROBE_WINDOW_MS + PROBE_BACKOFF_MS);
  b.take(
    wire(recordsOf("victim", undefined, "198.18.0.99", 80)),
    "198.18.0.1",
    1000 + PROBE_WINDOW_MS + PROBE_BACKOFF_MS,
  );
  assert.equal(b.size, 2, "probed again after the back-off");
});

Deno.test("a browser ignores itself, a node id already in the roster (a TXT pointing elsewhere) and goodbyes", () => {
  const b = browser({ known: new Set([ID_B]) });
  b.take(wire(recordsOf("me", ID_A, "198.18.0.11")), "198.18.0.11", 0);
  // A record claiming a known peer's id at another address is not probed: the peer stays where it is.
  b.take(wire(recordsOf("bob", ID_B, "198.18.0.66")), "198.18.0.1", 0);
  assert.equal(b.size, 0);
  b.take(wire(recordsOf("carol", undefined, "198.18.0.140")), "198.18.0.1", 0);
  assert.equal(b.size, 1);
  const bye = recordsOf("carol", undefined, "198.18.0.140").map((r) => ({ ...r, ttl: 0 }));
  b.take(wire(bye), "198.18.0.1", 10);
  assert.equal(b.size, 0);
});

Deno.test("a flood of instances is bounded: per responder, overall, and at --max-peers", () => {
  const b = browser({ max: 1000 });
  const flood = (source: string, from: number, n: number, now: number) => {
    for (let i = from; i < from + n; i++) {
      b.take(wire(recordsOf(`f${i}`, undefined, `198.18.${Math.floor(i / 250)}.${(i % 250) + 1}`)), source, now);
    }
  };
  flood("198.18.0.200", 0, 100, 0);
  assert.equal(b.size, NEW_PER_SOURCE);
  for (let s = 0; s < 10; s++) flood(`198.18.0.${201 + s}`, 100 + s * 20, 20, 0);
  assert.equal(b.size, NEW_OVERALL);
  assert.ok(b.counters.dropped["rate-limit"] > 0);
  // After the window, more are let in, but never past the bound.
  const small = browser({ max: 3 });
  for (let i = 0; i < 10; i++) {
    small.take(wire(recordsOf(`g${i}`, undefined, `198.18.0.${i + 20}`)), "198.18.0.1", i * RATE_WINDOW_MS);
  }
  assert.equal(small.size, 3);
  assert.ok(small.counters.dropped.full > 0);
});

Deno.test("known-answer suppression: a query that lists our PTR with half its TTL left is not answered", () => {
  const q = (ttl: number): DnsMessage =>
    dnsPacket.decode(dnsPacket.encode({
      type: "query",
      questions: [{ name: SERVICE, type: "PTR" }],
      answers: [{ name: SERVICE, type: "PTR", ttl, data: `alice.${SERVICE}` }],
    } as never)) as DnsMessage;
  assert.ok(!asksForUs(q(4500), AD));
  assert.ok(!asksForUs(q(2250), AD));
  assert.ok(asksForUs(q(2249), AD), "a PTR about to expire is refreshed");
  // The browser lists what it knows, with the PTR's TTL left.
  const b = browser({ answered: new Set(["198.18.0.139"]) });
  b.take(wire(recordsOf("bob", ID_B, "198.18.0.139")), "198.18.0.1", 0);
  assert.deepEqual(b.knownAnswers(1000), [{ name: SERVICE, type: "PTR", ttl: 4499, data: `bob.${SERVICE}` }]);
  assert.deepEqual(b.knownAnswers(2_300_000), []);
});

Deno.test("an answered node on our own subnet is not sent unicast hellos besides the broadcast; one beyond it is", () => {
  const answered = new Set<string>();
  const b = new Browser({
    selfId: ID_A,
    maxCandidates: 10,
    answered: (a) => answered.has(a),
    known: () => false,
    onLink: (a) => a.startsWith("198.18.0.") && Number(a.split(".")[3]) < 128,
  });
  b.take(wire(recordsOf("near", undefined, "198.18.0.12")), "198.18.0.12", 0);
  b.take(wire(recordsOf("far", undefined, "198.18.0.139")), "198.18.0.1", 0);
  assert.equal(b.endpoints().endpoints.length, 2, "both probed");
  answered.add("198.18.0.12");
  answered.add("198.18.0.139");
  b.tick(100);
  assert.deepEqual(b.endpoints(), { changed: true, endpoints: [{ address: "198.18.0.139", port: 47475 }] });
});

Deno.test("a browser wakes twice a second while it probes, else at its next deadline, else never", () => {
  const answered = new Set<string>();
  const b = browser({ answered });
  assert.equal(b.nextWake(0), undefined);
  b.take(wire(recordsOf("bob", ID_B, "198.18.0.139")), "198.18.0.1", 0);
  assert.equal(b.nextWake(100), 600);
  answered.add("198.18.0.139");
  b.tick(200);
  assert.equal(b.nextWake(300), 120_000, "the SRV's TTL");
});

Deno.test("two nodes with one display name: the SRV of another host under our name is a claim; we rename once", () => {
  const other = wire(serviceRecords({ ...AD, host: "lanchat-bbbb", id: ID_B }, ["198.18.0.12"]));
  assert.ok(claimsOurName(other, AD));
  assert.ok(!claimsOurName(wire(serviceRecords(AD, ["198.18.0.11"])), AD), "our own records, looped back");
  assert.ok(
    !claimsOurName(wire(serviceRecords({ ...AD, host: "lanchat-bbbb" }, ["198.18.0.12"], true)), AD),
    "a goodbye",
  );
  const label = renamed("alice", ID_A);
  assert.equal(label, "alice (aaaa)");
  assert.equal(renamed(label, ID_A), label, "not again");
  assert.ok(new TextEncoder().encode(renamed("é".repeat(31), ID_A)).length <= 63);
});

Deno.test("mDNS datagrams are read at most 100 a second from one source (a reflector: a whole VLAN) and 1,000 from all", () => {
  const b = new DatagramBudget();
  let fromOne = 0;
  for (let i = 0; i < 200; i++) if (b.allow("198.18.0.66", 10)) fromOne++;
  assert.equal(fromOne, DATAGRAMS_PER_SOURCE);
  let fromMany = fromOne;
  for (let s = 0; s < 20; s++) for (let i = 0; i < 100; i++) if (b.allow(`198.18.1.${s}`, 20)) fromMany++;
  assert.equal(fromMany, DATAGRAMS_OVERALL);
  assert.ok(b.allow("198.18.0.66", 1000), "the next second");
});

Deno.test("an SRV whose A record comes in a later message (Avahi publishes them apart) is resolved then, not before", () => {
  const [ptr, srv, txt, a] = recordsOf("bob", ID_B, "198.18.0.139");
  const b = browser();
  b.take(wire([ptr!, srv!, txt!]), "198.18.0.1", 0);
  assert.equal(b.size, 0);
  assert.deepEqual(b.unresolvedTargets(0), ["h-bob.local"]);
  b.take(wire([a!]), "198.18.0.1", 1000);
  assert.deepEqual(b.list().map((c) => [c.address, c.id]), [["198.18.0.139", ID_B]]);
  assert.deepEqual(b.unresolvedTargets(1000), []);
  // One that waited past PENDING_MS is dropped.
  const late = browser();
  late.take(wire([ptr!, srv!, txt!]), "198.18.0.1", 0);
  late.take(wire([a!]), "198.18.0.1", 31_000);
  assert.equal(late.size, 0);
});
