/**
 * End-to-end sessions (src/security/e2e_sessions.ts, session.ts,
 * replay_window.ts) on a simulated link: the edges first (loss of each
 * handshake message, duplication, reordering, replays, a restarted peer, a
 * new key, a tampered byte, a member speaking under another's id), then the
 * happy paths, rekeying and bounds. Simulated time only.
 */
import assert from "node:assert/strict";
import { ReplayWindow, WINDOW } from "../../src/security/replay_window.ts";
import { QUEUE_LIMIT } from "../../src/security/e2e_sessions.ts";
import {
  dueAt,
  HANDSHAKE_RETRY_MS,
  KEEPALIVE_MS,
  nextDeadline,
  NO_REPLY_MS,
  type PeerClock,
  REKEY_ATTEMPT_TIME_MS,
  retryDelay,
} from "../../src/security/e2e_timers.ts";
import { REJECT_AFTER_TIME_MS, REKEY_AFTER_TIME_MS, REKEY_ON_RECEIVE_MS } from "../../src/security/session.ts";
import { E2eType, mac1, MAC_LEN, parseE2e } from "../../src/security/e2e_wire.ts";
import {
  type Datagram,
  drops,
  E2eLan,
  type E2eNode,
  msgDatagram,
  newNode,
  newNodeKeys,
  texts,
} from "../support/e2e_lan.ts";

const typeOf = (d: Datagram) => d.bytes[5];
const isType = (t: number) => (d: Datagram) => typeOf(d) === t;

function pair() {
  const lan = new E2eLan();
  const a = newNode(), b = newNode();
  lan.add(a, b);
  return { lan, a, b };
}

Deno.test("the replay window takes each counter once, in any order within 2,016, and refuses older ones", () => {
  const w = new ReplayWindow();
  const limit = 2 ** 33;
  assert.ok(w.accept(0, limit));
  assert.ok(!w.accept(0, limit), "a duplicate");
  assert.ok(w.accept(5, limit));
  assert.ok(w.accept(3, limit), "late but within the window");
  assert.ok(!w.accept(3, limit));
  assert.ok(w.accept(3000, limit), "a jump ahead");
  assert.ok(w.accept(3000 - WINDOW, limit), "the oldest counter still in the window");
  assert.ok(!w.accept(3000 - WINDOW - 1, limit), "one behind the window");
  assert.ok(!w.accept(5, limit), "far behind");
  for (let c = 2999; c > 3000 - WINDOW; c--) assert.ok(w.accept(c, limit), `reordered ${c}`);
  for (let c = 2999; c > 3000 - WINDOW; c -= 97) assert.ok(!w.accept(c, limit), `replayed ${c}`);
  assert.ok(w.accept(10_000_000, limit), "a jump past the whole ring clears it");
  assert.ok(!w.accept(10_000_000, limit));
  assert.ok(w.accept(10_000_000 - 64, limit), "and leaves no stale bit behind");
  assert.ok(!w.accept(limit, limit), "the limit itself is refused");
  assert.ok(!w.accept(-1, limit) && !w.accept(1.5, limit), "so is what is not a counter");
});

Deno.test("timing rules: the retry wait doubles from 1 s to 5 s", () => {
  assert.deepEqual([1, 2, 3, 4, 10].map(retryDelay), [1_000, 2_000, 4_000, 5_000, 5_000]);
});

Deno.test("timing rules: what is due for a peer, and when", () => {
  const idle: PeerClock = { queued: 0, sending: true, sessionsCreatedAt: [] };
  const none = { giveUp: false, retry: false, initiate: false, keepalive: false };
  const rows: [string, PeerClock, number, Partial<typeof none>, number | undefined][] = [
    ["nothing at all", idle, 0, {}, undefined],
    ["a session expires 180 s after its handshake", { ...idle, sessionsCreatedAt: [50, 10] }, 0, {}, 180_010],
    ["a handshake before its retry time", { ...idle, handshake: { startedAt: 0, retryAt: 1_100 } }, 1_099, {}, 1_100],
    ["a handshake at its retry time", { ...idle, handshake: { startedAt: 0, retryAt: 1_100 } }, 1_100, {
      retry: true,
    }, 1_100],
    ["a handshake out of time", { ...idle, handshake: { startedAt: 0, retryAt: 90_000 } }, 90_000, {
      giveUp: true,
    }, 90_000],
    ["datagrams wait, no session, no handshake: at once", { ...idle, queued: 1, sending: false }, 7, {
      initiate: true,
    }, 0],
    [
      "datagrams wait for a responder's session to be confirmed",
      {
        ...idle,
        queued: 1,
        sending: false,
        nextCreatedAt: 100,
      },
      1_099,
      {},
      1_100,
    ],
    ["the confirmation did not come", { ...idle, queued: 1, sending: false, nextCreatedAt: 100 }, 1_100, {
      initiate: true,
    }, 1_100],
    ["data unanswered for 5 s", { ...idle, unansweredSince: 10 }, NO_REPLY_MS + 10, {
      initiate: true,
    }, NO_REPLY_MS + 10],
    [
      "data unanswered, but a handshake already runs",
      {
        ...idle,
        unansweredSince: 10,
        handshake: { startedAt: 0, retryAt: 9_000 },
      },
      6_000,
      {},
      9_000,
    ],
    ["data received and nothing sent for 3 s", { ...idle, owesKeepaliveSince: 5 }, KEEPALIVE_MS + 5, {
      keepalive: true,
    }, KEEPALIVE_MS + 5],
  ];
  for (const [what, clock, now, due, deadline] of rows) {
    assert.deepEqual(dueAt(clock, now), { ...none, ...due }, what);
    assert.equal(nextDeadline(clock), deadline, what);
  }
});

Deno.test("a lost initiation is sent again after 1 s, and the queued message then goes", () => {
  const { lan, a, b } = pair();
  let lost = 0;
  lan.fate = (d) => isType(E2eType.initiation)(d) && lost++ === 0 ? "drop" : "pass";
  lan.say(a, b, "hello");
  assert.deepEqual(texts(b), []);
  const start = lan.now;
  assert.ok(lan.runUntil(() => texts(b).length === 1, 10_000));
  assert.deepEqual(texts(b), ["hello"]);
  assert.ok(lan.now - start >= HANDSHAKE_RETRY_MS && lan.now - start < HANDSHAKE_RETRY_MS + 334);
  assert.equal(a.table.counters.initiationsSent, 2);
});

Deno.test("a lost response: the next initiation is taken (a new stamp), not refused as a replay", () => {
  const { lan, a, b } = pair();
  let lost = 0;
  lan.fate = (d) => isType(E2eType.response)(d) && lost++ === 0 ? "drop" : "pass";
  lan.say(a, b, "one");
  lan.say(a, b, "two");
  assert.ok(lan.runUntil(() => texts(b).length === 2, 10_000));
  assert.deepEqual(texts(b), ["one", "two"]);
  assert.deepEqual(drops(b), []);
  assert.deepEqual(drops(a), []);
});

Deno.test("a lost first data packet: the responder's own message still gets through", () => {
  const { lan, a, b } = pair();
  let lost = 0;
  lan.fate = (d) => d.from === a.id && isType(E2eType.data)(d) && lost++ === 0 ? "drop" : "pass";
  lan.say(a, b, "lost at the e2e layer (messaging would send it again)");
  lan.say(b, a, "from b");
  assert.ok(lan.runUntil(() => texts(a).length === 1, 10_000));
  assert.deepEqual(texts(a), ["from b"]);
  lan.say(a, b, "again");
  assert.deepEqual(texts(b), ["again"]);
});

Deno.test("every datagram delivered twice: each message arrives once, the copies are counted replays", () => {
  const { lan, a, b } = pair();
  lan.fate = () => "dup";
  for (let i = 0; i < 5; i++) lan.say(a, b, `a${i}`);
  for (let i = 0; i < 5; i++) lan.say(b, a, `b${i}`);
  assert.deepEqual(texts(b), ["a0", "a1", "a2", "a3", "a4"]);
  assert.deepEqual(texts(a), ["b0", "b1", "b2", "b3", "b4"]);
  assert.ok(drops(b).includes("replay"), "the duplicate initiation and data");
  assert.ok(drops(a).includes("unknown-session"), "the duplicate response finds no handshake");
  assert.ok(drops(a).concat(drops(b)).every((r) => r === "replay" || r === "unknown-session"));
});

Deno.test("reordered data: all taken once, in whatever order; a counter behind the window is refused", () => {
  const { lan, a, b } = pair();
  lan.say(a, b, "first");
  lan.hold = true;
  for (let i = 0; i < 300; i++) lan.say(a, b, `m${i}`);
  lan.hold = false;
  const held = lan.held.splice(0);
  for (let i = held.length - 1; i >= 0; i -= 2) lan.deliver(held[i]!);
  for (let i = held.length - 2; i >= 0; i -= 2) lan.deliver(held[i]!);
  assert.equal(texts(b).length, 301);
  assert.deepEqual(new Set(texts(b)).size, 301);
  lan.hold = true;
  for (let i = 0; i < WINDOW + 10; i++) lan.say(a, b, `n${i}`);
  lan.hold = false;
  const late = lan.held.splice(0);
  lan.deliver(late.at(-1)!);
  assert.equal(lan.deliver(late[0]!).kind, "drop");
  assert.deepEqual(drops(b), ["replay"]);
});

Deno.test("a replayed data packet or initiation is refused, and the session goes on", () => {
  const { lan, a, b } = pair();
  lan.say(a, b, "x");
  lan.say(a, b, "y");
  const initiation = lan.log.find(isType(E2eType.initiation))!;
  const data = lan.log.filter((d) => isType(E2eType.data)(d) && d.from === a.id);
  lan.advance(10_000);
  for (const d of data) assert.equal((lan.deliver(d) as { reason: string }).reason, "replay");
  assert.equal((lan.deliver(initiation) as { reason: string }).reason, "replay");
  lan.say(a, b, "z");
  lan.say(b, a, "back");
  assert.deepEqual(texts(b), ["x", "y", "z"]);
  assert.deepEqual(texts(a), ["back"]);
  assert.equal(a.table.counters.initiationsSent, 1, "the replays changed nothing");
});

Deno.test("a restarted peer (same key, new incarnation) talks again at once: its initiation replaces the session", () => {
  const { lan, a, b } = pair();
  lan.say(b, a, "before");
  lan.say(a, b, "before too");
  const old = lan.log.find(isType(E2eType.initiation))!;
  lan.advance(1_000); // b restarts
  const b2 = newNode(b.keys, 2);
  lan.nodes.set(b.id, b2);
  const at = lan.now;
  lan.hold = true;
  lan.say(b2, a, "I am back");
  lan.deliver(lan.held.shift()!); // a takes the initiation; its response is held
  // a writes meanwhile: not under the old session (b2 lost its keys) but queued for the new one.
  a.table.send(b2.peerKey, msgDatagram(a.id, b2.id, "welcome back"), lan.now);
  lan.pump();
  assert.equal(lan.held.length, 1, "only the response is on the link");
  lan.hold = false;
  lan.deliver(lan.held.shift()!);
  lan.pump();
  assert.deepEqual(texts(a), ["before", "I am back"]);
  assert.deepEqual(texts(b2), ["welcome back"]);
  assert.deepEqual(drops(b2), []);
  assert.equal(lan.now, at, "no timeout waited");
  assert.equal((lan.deliver(old) as { reason: string }).reason, "replay", "the old incarnation's initiation");
  assert.deepEqual(drops(a), ["replay"]);
});

Deno.test("an initiation captured before a restart, replayed to the restarted node, displaces nothing", () => {
  const { lan, a, b } = pair();
  lan.say(a, b, "before");
  const captured = lan.log.find(isType(E2eType.initiation))!;
  const b2 = newNode(b.keys, 2);
  lan.nodes.set(b.id, b2);
  lan.say(b2, a, "I am back");
  // b2 has no memory of a's stamps: it takes the copy (as WireGuard would after a restart) and answers it,
  // but the answer opens nothing for the sender of the copy, and b2's own session with a stays current.
  assert.equal(lan.deliver(captured).kind, "handshake");
  lan.say(b2, a, "still here");
  lan.say(a, b2, "me too");
  assert.deepEqual(texts(a), ["I am back", "still here"]);
  assert.deepEqual(texts(b2), ["me too"]);
});

Deno.test("talking first to a restarted peer: told of the restart, a new handshake at once; not told, after 5 s", () => {
  for (const told of [true, false]) {
    const { lan, a, b } = pair();
    lan.say(a, b, "before");
    lan.say(b, a, "ack");
    const b2 = newNode(b.keys, 2);
    lan.nodes.set(b.id, b2);
    const at = lan.now;
    if (told) a.table.peerRestarted(b.id, lan.now);
    lan.say(a, b2, "are you there");
    if (told) assert.deepEqual(texts(b2), ["are you there"]);
    else {
      assert.deepEqual(drops(b2), ["unknown-session"], "the old session's packet");
      assert.ok(lan.runUntil(() => a.table.counters.initiationsSent === 2, NO_REPLY_MS + 1_000));
      assert.ok(lan.now - at >= NO_REPLY_MS && lan.now - at < NO_REPLY_MS + 1_000);
      lan.say(a, b2, "are you there now");
      assert.deepEqual(texts(b2), ["are you there now"]);
    }
  }
});

Deno.test("an impostor holding its own static key cannot speak under a pinned node key", () => {
  const lan = new E2eLan();
  const victim = newNodeKeys(), b = newNode();
  const impostorKeys = newNodeKeys();
  // Its own X25519 key under the victim's Ed25519 key, with a binding it signed itself, then the victim's own binding.
  for (const binding of [impostorKeys.identity.binding, victim.identity.binding]) {
    const forged = newNode({
      ...impostorKeys,
      identity: { ...impostorKeys.identity, id: victim.identity.id, edPublic: victim.edPublic, binding },
    });
    lan.add(b, forged);
    lan.say(forged, b, "I am the victim");
    assert.equal(drops(b).at(-1), "bad-signature");
  }
  assert.deepEqual(texts(b), []);
});

Deno.test("a node its pin refuses (a new key for a pinned name) gets no session", () => {
  const lan = new E2eLan();
  const stranger = newNode();
  const b = newNode(newNodeKeys(), 1, { authorize: (id) => id !== stranger.id });
  lan.add(stranger, b);
  lan.say(stranger, b, "hi");
  assert.deepEqual(drops(b), ["refused"]);
  assert.deepEqual(texts(b), []);
});

Deno.test("a peer answering with another static key than its signed hello's: refused, then given up after 90 s", () => {
  const lan = new E2eLan();
  const a = newNode(), reinstalled = newNode();
  const oldHello = { id: reinstalled.id, staticKey: newNodeKeys().identity.dh.publicKey };
  lan.add(a, reinstalled);
  for (let i = 0; i < 3; i++) a.table.send(oldHello, msgDatagram(a.id, reinstalled.id, `m${i}`), lan.now);
  lan.pump();
  assert.deepEqual(drops(reinstalled), ["auth"], "its mac1 is for the other key");
  lan.advance(REKEY_ATTEMPT_TIME_MS + 10_000);
  assert.deepEqual(a.table.drainEvents().at(-1), { kind: "handshake-failed", peerId: reinstalled.id, dropped: 3 });
  assert.deepEqual(texts(reinstalled), []);
  assert.equal(a.table.status().peers, 0, "nothing left of it");
});

Deno.test("a tampered byte anywhere, mac1 recomputed or not, is refused, and the genuine datagram still works", () => {
  const { lan, a, b } = pair();
  lan.hold = true;
  lan.say(a, b, "genuine");
  const [initiation] = lan.held.splice(0);
  const flips = (d: Datagram, staticKey: Uint8Array) =>
    [...d.bytes.keys()].flatMap((i) => {
      const bad = d.bytes.slice();
      bad[i]! ^= 0x04;
      const refit = bad.slice();
      refit.set(mac1(staticKey, refit.subarray(0, refit.length - MAC_LEN)), refit.length - MAC_LEN);
      return i < d.bytes.length - MAC_LEN ? [bad, refit] : [bad];
    });
  for (const bad of flips(initiation!, b.peerKey.staticKey)) {
    assert.equal(b.table.receive(bad, lan.now).kind, "drop");
  }
  lan.deliver(initiation!);
  const response = lan.held.splice(0)[0]!;
  assert.equal(typeOf(response), E2eType.response);
  for (const bad of flips(response, a.peerKey.staticKey)) assert.equal(a.table.receive(bad, lan.now).kind, "drop");
  lan.deliver(response);
  lan.pump();
  const data = lan.held.splice(0)[0]!;
  assert.equal(typeOf(data), E2eType.data);
  lan.hold = false;
  for (let i = 0; i < data.bytes.length; i++) {
    const bad = data.bytes.slice();
    bad[i]! ^= 0x20;
    assert.equal(b.table.receive(bad, lan.now).kind, "drop", `data byte ${i}`);
  }
  lan.deliver(data);
  assert.deepEqual(texts(b), ["genuine"]);
});

Deno.test("a member cannot send under another member's id: not inside its own session, nor in the victim's", () => {
  const lan = new E2eLan();
  const a = newNode(), victim = newNode(), member = newNode();
  lan.add(a, victim, member);
  lan.say(victim, a, "the real one");
  lan.say(member, a, "hello, as myself");
  member.table.send(a.peerKey, msgDatagram(victim.id, a.id, "give the member the files"), lan.now);
  lan.pump();
  assert.equal(drops(a).at(-1), "impersonation");
  // The victim's session index is on the wire; the member seals with its own keys under it.
  const victimData = lan.log.filter((d) => d.from === victim.id && isType(E2eType.data)(d)).at(-1)!;
  const forged = lan.log.filter((d) => d.from === member.id && isType(E2eType.data)(d)).at(-1)!.bytes.slice();
  forged.set(victimData.bytes.subarray(6, 10), 6);
  assert.equal((a.table.receive(forged, lan.now) as { reason: string }).reason, "auth");
  assert.deepEqual(texts(a), ["the real one", "hello, as myself"]);
});

Deno.test("both sides start a handshake at once: both sessions work and every message arrives", () => {
  const { lan, a, b } = pair();
  lan.hold = true;
  lan.say(a, b, "from a");
  lan.say(b, a, "from b");
  lan.hold = false;
  for (const d of lan.held.splice(0)) lan.deliver(d);
  lan.pump();
  assert.deepEqual(texts(b), ["from a"]);
  assert.deepEqual(texts(a), ["from b"]);
  for (let i = 0; i < 3; i++) {
    lan.say(a, b, `a${i}`);
    lan.say(b, a, `b${i}`);
  }
  assert.deepEqual(texts(b), ["from a", "a0", "a1", "a2"]);
  assert.deepEqual(texts(a), ["from b", "b0", "b1", "b2"]);
  assert.deepEqual(drops(a).concat(drops(b)), []);
});

Deno.test("a one-way conversation stays on one session: a keepalive answers, no needless handshake", () => {
  const { lan, a, b } = pair();
  lan.say(a, b, "one");
  lan.advance(1_000);
  lan.say(b, a, "ack");
  lan.advance(KEEPALIVE_MS + NO_REPLY_MS);
  assert.ok(b.got.some((r) => r.kind === "keepalive"));
  assert.equal(a.table.counters.initiationsSent + b.table.counters.initiationsSent, 1);
});

Deno.test("rekey after 2 minutes; the old session stays readable; everything expires when idle", () => {
  const { lan, a, b } = pair();
  lan.say(a, b, "start");
  lan.advance(REKEY_AFTER_TIME_MS);
  lan.hold = true;
  lan.say(a, b, "rekeyed");
  assert.equal(a.table.counters.initiationsSent, 2);
  const [data, initiation] = lan.held.splice(0);
  assert.deepEqual([typeOf(data!), typeOf(initiation!)], [E2eType.data, E2eType.initiation]);
  lan.deliver(initiation!);
  lan.deliver(lan.held.shift()!); // the response: a's new session is current, the old one previous
  lan.say(b, a, "b has not heard a on the new session yet, so it sends on the old one");
  lan.hold = false;
  for (const d of [...lan.held.splice(0), data!]) lan.deliver(d);
  assert.deepEqual(texts(b), ["start", "rekeyed"]);
  lan.say(b, a, "b uses the new session");
  assert.deepEqual(texts(a), [
    "b has not heard a on the new session yet, so it sends on the old one",
    "b uses the new session",
  ]);
  assert.deepEqual(drops(a).concat(drops(b)), []);
  lan.advance(REJECT_AFTER_TIME_MS + 1_000);
  assert.deepEqual(a.table.status(), { peers: 0, sessions: 0, handshakes: 0, queued: 0 });
  assert.deepEqual(b.table.status(), { peers: 0, sessions: 0, handshakes: 0, queued: 0 });
  assert.equal(a.table.pollTimeout(), undefined);
  lan.say(b, a, "and a new one when they talk again");
  assert.deepEqual(texts(a).at(-1), "and a new one when they talk again");
});

Deno.test("an initiator that only receives rekeys at 165 s; a late packet on the old session asks for nothing", () => {
  const { lan, a, b } = pair();
  lan.say(a, b, "a opens the session and then only listens");
  lan.advance(REKEY_ON_RECEIVE_MS - 1_000);
  lan.say(b, a, "before 165 s");
  assert.equal(a.table.counters.initiationsSent, 1);
  lan.advance(1_000);
  lan.hold = true;
  lan.say(b, a, "late, on the old session");
  const late = lan.held.splice(0);
  lan.hold = false;
  lan.say(b, a, "after 165 s");
  assert.equal(a.table.counters.initiationsSent, 2, "a rekeys from receiving");
  lan.advance(HANDSHAKE_RETRY_MS);
  for (const d of late) lan.deliver(d);
  lan.pump();
  assert.equal(a.table.counters.initiationsSent, 2, "the late packet on the previous session changes nothing");
  assert.deepEqual(texts(a), ["before 165 s", "after 165 s", "late, on the old session"]);
});

Deno.test("bounds: 128 datagrams queued per peer, and the least recently used peer leaves a full table", () => {
  const lan = new E2eLan();
  const a = newNode(newNodeKeys(), 1, { maxPeers: 3 }), b = newNode();
  lan.add(a, b);
  lan.fate = () => "drop";
  for (let i = 0; i < QUEUE_LIMIT + 10; i++) a.table.send(b.peerKey, msgDatagram(a.id, b.id, `q${i}`), lan.now);
  lan.pump();
  assert.equal(a.table.status().queued, QUEUE_LIMIT);
  assert.equal(a.table.counters.queueDropped, 10);
  lan.fate = () => "pass";
  lan.advance(HANDSHAKE_RETRY_MS + 400);
  assert.equal(texts(b).length, QUEUE_LIMIT);
  assert.equal(texts(b)[0], "q10", "the oldest were dropped");
  const others = [newNode(), newNode(), newNode()];
  lan.add(...others);
  for (const o of others) {
    lan.now += 10;
    lan.say(a, o, "hi");
  }
  assert.equal(a.table.status().peers, 3);
  assert.equal(a.table.counters.evicted, 1);
  assert.ok(!a.table.hasSession(b.id, lan.now), "b was used least recently");
});

/**
 * a sends the messages `ids` as lanchat's messaging would: up to 20 unanswered at a time, again every
 * 300 ms until b's answer arrives; b answers each message it has seen, every round, until a has the answer.
 * Returns when all are answered, or false after `rounds` rounds.
 */
function converse(lan: E2eLan, a: E2eNode, b: E2eNode, ids: number[], rounds = 2_000): boolean {
  const answered = new Set<number>(), seen = new Set<number>();
  const collect = () => {
    for (const t of texts(a)) if (/^ok m\d+$/.test(t)) answered.add(Number(t.slice(4)));
    for (const t of texts(b)) if (/^m\d+$/.test(t)) seen.add(Number(t.slice(1)));
  };
  const done = () => ids.every((i) => answered.has(i));
  for (let r = 0; r < rounds && !done(); r++) {
    for (const i of ids.filter((i) => !answered.has(i)).slice(0, 20)) lan.say(a, b, `m${i}`);
    collect();
    for (const i of ids) if (seen.has(i) && !answered.has(i)) lan.say(b, a, `ok m${i}`);
    collect();
    lan.advance(300);
    collect();
  }
  return done();
}

Deno.test("30 % loss both ways, 10 seeds, 8 minutes each: every message answered, no handshake given up", () => {
  let initiations = 0, completed = 0;
  for (let seed = 1; seed <= 10; seed++) {
    const { lan, a, b } = pair();
    let x = seed;
    lan.fate = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 < 0.3 ? "drop" : "pass");
    assert.ok(converse(lan, a, b, [...Array(200).keys()]), `seed ${seed}: the first 200`);
    // Then one message a minute for 8 minutes, across rekeys (2 min) and expiries (3 min), in either direction.
    for (let minute = 0; minute < 8; minute++) {
      lan.advance(60_000);
      const [from, to] = minute % 2 ? [b, a] : [a, b];
      assert.ok(converse(lan, from, to, [1_000 + minute]), `seed ${seed}: minute ${minute}`);
    }
    const events = [a, b].flatMap((n) => n.table.drainEvents().map((e) => e.kind));
    assert.ok(!events.includes("handshake-failed"), `seed ${seed}: ${events.join()}`);
    for (const n of [a, b]) {
      initiations += n.table.counters.initiationsSent;
      completed += n.table.counters.handshakesCompleted;
    }
  }
  assert.ok(initiations > completed / 2 + 10, `the loss hit handshakes too: ${initiations} initiations`);
});

Deno.test("5,000 mutated, cut, spliced and random datagrams: never a throw, and the session still works", () => {
  const { lan, a, b } = pair();
  lan.say(a, b, "first");
  lan.say(b, a, "back");
  const captured = lan.log.map((d) => d.bytes);
  let seed = 7;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  const kinds = new Map<string, number>();
  for (let i = 0; i < 5_000; i++) {
    const base = captured[rand(captured.length)]!;
    let bytes: Uint8Array;
    switch (rand(4)) {
      case 0:
        bytes = base.slice();
        for (let f = 0; f <= rand(4); f++) bytes[rand(bytes.length)] = rand(256);
        break;
      case 1:
        bytes = base.slice(0, rand(base.length + 1));
        break;
      case 2:
        bytes = new Uint8Array([...base.subarray(0, rand(base.length)), ...captured[rand(captured.length)]!]);
        break;
      default:
        bytes = Uint8Array.from({ length: rand(300) }, () => rand(256));
        if (rand(2)) bytes.set([0x4c, 0x4e, 0x43, 0x45, 1, rand(4)].slice(0, bytes.length));
    }
    const target = rand(2) ? a : b;
    const r = target.table.receive(bytes, lan.now);
    const kind = r.kind === "drop" ? r.reason : r.kind;
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  assert.ok((kinds.get("auth") ?? 0) > 0 && (kinds.get("malformed") ?? 0) > 0, JSON.stringify([...kinds]));
  lan.say(a, b, "still here");
  lan.say(b, a, "me too");
  assert.deepEqual(texts(b).at(-1), "still here");
  assert.deepEqual(texts(a).at(-1), "me too");
});

Deno.test("a non-e2e or malformed datagram is a drop with a reason, never a throw", () => {
  const { a } = pair();
  for (const bytes of [new Uint8Array(0), new TextEncoder().encode("LNCH\x01\x01{}"), new Uint8Array(230)]) {
    assert.equal((a.table.receive(bytes, 0) as { reason: string }).reason, "malformed");
  }
  const parsed = parseE2e(new Uint8Array(0));
  assert.equal(typeof parsed, "string");
  assert.throws(() => a.table.send(a.peerKey, new Uint8Array(1199), 0), RangeError);
});
