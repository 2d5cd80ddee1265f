import assert from "node:assert/strict";
import iconv from "iconv-lite";
import {
  Ipmsg,
  type IpmsgOptions,
  ipmsgPeerId,
  ipmsgRetryDelay,
  MESSAGE_BURST,
  MESSAGE_RATE_PER_S,
} from "../../src/protocol/ipmsg.ts";
import { RateLimiter } from "../../src/security/rate_limit.ts";
import { parseSealed, sealedText } from "../../src/protocol/sealed.ts";
import {
  decodeIpmsg,
  encodeIpmsg,
  IPMSG,
  IPMSG_MAX_PACKET,
  IPMSG_OPT,
  type IpmsgPacket,
  peekIpmsgMode,
} from "../../src/wire/ipmsg.ts";

const gbk = (s: string) => new Uint8Array(iconv.encode(s, "gbk"));
const utf8 = (s: string) => new TextEncoder().encode(s);
const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const FEIQ = { address: "198.18.0.21", port: 2425 };
const IPTUX = { address: "198.18.0.22", port: 2425 };

function decoded(bytes: Uint8Array, hint?: "utf-8" | "gbk"): IpmsgPacket {
  const r = decodeIpmsg(bytes, hint);
  assert.ok(r.ok, JSON.stringify(r));
  return r.value;
}

Deno.test("ipmsg codec round-trips every command lanchat uses, in both encodings", () => {
  const commands = [
    IPMSG.BR_ENTRY | IPMSG_OPT.CAPUTF8OPT | IPMSG_OPT.UTF8OPT,
    IPMSG.ANSENTRY | IPMSG_OPT.CAPUTF8OPT,
    IPMSG.BR_EXIT,
    IPMSG.BR_ABSENCE | IPMSG_OPT.ABSENCEOPT,
    IPMSG.SENDMSG | IPMSG_OPT.SENDCHECKOPT | IPMSG_OPT.UTF8OPT,
    IPMSG.SENDMSG | IPMSG_OPT.BROADCASTOPT,
    IPMSG.SENDMSG | IPMSG_OPT.AUTORETOPT,
    IPMSG.RECVMSG,
  ];
  for (const encoding of ["utf-8", "gbk"] as const) {
    for (const cmd of commands) {
      // A GBK packet never claims UTF-8 (the sender clears those bits for GBK peers).
      const command = encoding === "gbk" ? cmd & ~(IPMSG_OPT.UTF8OPT | IPMSG_OPT.CAPUTF8OPT) : cmd;
      const p = { packetNo: "1700000000", user: "张三", host: "PC-01", command, extra: ["你好，世界", "组"], encoding };
      const d = decoded(encodeIpmsg(p), encoding);
      assert.equal(d.command, command);
      assert.equal(d.mode, command & 0xff);
      assert.equal(d.options, command & ~0xff);
      assert.deepEqual([d.user, d.host, d.packetNo, d.extra], ["张三", "PC-01", "1700000000", ["你好，世界", "组"]]);
      assert.equal(d.encoding, encoding);
    }
  }
});

Deno.test("ipmsg codec reads iptux's entry and FeiQ's GBK message as they are on the wire", () => {
  const iptux = decoded(utf8("1_iptux 0.8.3:4:root:vm:259:root\0\0icon-tux.png\0utf-8\0"));
  assert.deepEqual([iptux.version, iptux.mode, iptux.extra], ["1_iptux 0.8.3", IPMSG.ANSENTRY, [
    "root",
    "",
    "icon-tux.png",
    "utf-8",
  ]]);
  // FeiQ: GBK, no UTF-8 bits, a ':' inside the extra field.
  const feiq = decoded(
    cat(utf8("1_lbt4_0#128#000C29D8B0F6#0#0#0:1700000001:小明:XM-PC:288:"), gbk("午饭: 一起去吗？"), utf8("\0")),
  );
  assert.equal(feiq.encoding, "gbk");
  assert.equal(feiq.user, "小明");
  assert.deepEqual(feiq.extra, ["午饭: 一起去吗？"]);
});

Deno.test("ipmsg codec drops malformed packets by reason and never throws", () => {
  const cases: [Uint8Array, string][] = [
    [utf8(""), "truncated"],
    [utf8("1:2:3:4"), "truncated"],
    [utf8("1:abc:u:h:32:x"), "bad-field"],
    [utf8("1:1:u:h:0x20:x"), "bad-field"],
    [utf8("1:1:u:h:99999999999:x"), "bad-field"],
    [utf8("1:1:u:h::x"), "bad-field"],
    [new Uint8Array(IPMSG_MAX_PACKET + 1).fill(0x3a), "oversize"],
    [cat(utf8("1:1:u:h:" + (0x20 | IPMSG_OPT.UTF8OPT) + ":"), new Uint8Array([0xff, 0xfe, 0x80])), "bad-text"],
  ];
  for (const [bytes, reason] of cases) {
    const r = decodeIpmsg(bytes);
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.reason, reason);
  }
  let seed = 9;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let i = 0; i < 10_000; i++) {
    const b = new Uint8Array(Math.floor(rnd() * 300)).map(() => (rnd() < 0.1 ? 0x3a : rnd() * 256));
    assert.equal(typeof decodeIpmsg(b).ok, "boolean");
  }
  assert.throws(
    () =>
      encodeIpmsg({ packetNo: "1", user: "u", host: "h", command: 32, extra: ["x".repeat(9000)], encoding: "utf-8" }),
    RangeError,
  );
});

function machine(now = 0, options: Partial<IpmsgOptions> = {}) {
  const m = new Ipmsg({
    user: "alice",
    host: "h1",
    nickname: "Alice",
    group: "lanchat",
    intervalMs: 2000,
    firstPacketNo: 1000,
    wall: (t) => 1_800_000_000_000 + t,
    ...options,
  });
  m.setBroadcasts(["198.18.0.255"]);
  m.start(now);
  return m;
}

const out = (m: Ipmsg) => m.drainTransmits().map((t) => ({ to: t.to, p: decoded(t.bytes) }));

Deno.test("ipmsg announces with BR_ENTRY, answers a BR_ENTRY with ANSENTRY, and lists the peer", () => {
  const m = machine();
  m.handleTimeout(0);
  const [entry] = out(m);
  assert.equal(entry!.p.mode, IPMSG.BR_ENTRY);
  assert.ok(entry!.p.options & IPMSG_OPT.CAPUTF8OPT);
  assert.deepEqual(entry!.p.extra, ["Alice", "lanchat"]);
  assert.deepEqual(entry!.to, { address: "198.18.0.255", port: 2425 });
  // Our own broadcast comes back: not a peer.
  m.handleDatagram(encodeIpmsg({ ...entry!.p, extra: entry!.p.extra }), { address: "198.18.0.1", port: 2425 }, 1);
  assert.equal(m.peers().length, 0);
  m.handleDatagram(
    cat(utf8("1_lbt4_0:5:"), gbk("小明"), utf8(":XM-PC:1:"), gbk("小明\0财务部\0")),
    FEIQ,
    2,
  );
  const [ans] = out(m);
  assert.equal(ans!.p.mode, IPMSG.ANSENTRY);
  assert.deepEqual(ans!.to, FEIQ);
  assert.equal(ans!.p.options & IPMSG_OPT.UTF8OPT, 0, "no UTF-8 claim to a GBK peer");
  const [peer] = m.peers();
  assert.deepEqual([peer!.user, peer!.nickname, peer!.group, peer!.encoding], ["小明", "小明", "财务部", "gbk"]);
  assert.equal(peer!.id, ipmsgPeerId("小明", FEIQ.address));
  assert.deepEqual(m.drainEvents().map((e) => e.type), ["joined"]);
});

Deno.test("ipmsg answers SENDMSG|SENDCHECKOPT with RECVMSG, delivers once, and keeps quiet for broadcast and auto-reply", () => {
  const m = machine();
  m.handleDatagram(utf8("1_iptux 0.8.3:1:root:vm:259:root\0\0icon-tux.png\0utf-8\0"), IPTUX, 0);
  m.drainEvents();
  m.drainTransmits();
  const msg = utf8(`1_iptux 0.8.3:7:root:vm:${IPMSG.SENDMSG | IPMSG_OPT.SENDCHECKOPT}:hello 你好\0`);
  m.handleDatagram(msg, IPTUX, 10);
  m.handleDatagram(msg, IPTUX, 20); // a retry
  const acks = out(m);
  assert.equal(acks.length, 2, "each copy is answered");
  for (const a of acks) assert.deepEqual([a.p.mode, a.p.extra], [IPMSG.RECVMSG, ["7"]]);
  const events = m.drainEvents();
  assert.deepEqual(events.map((e) => e.type === "message" ? e.text : e.type), ["hello 你好"]);
  for (const opt of [IPMSG_OPT.BROADCASTOPT, IPMSG_OPT.AUTORETOPT]) {
    m.handleDatagram(utf8(`1:${opt}:root:vm:${IPMSG.SENDMSG | IPMSG_OPT.SENDCHECKOPT | opt}:x\0`), IPTUX, 30);
    assert.equal(m.drainTransmits().length, 0);
  }
});

Deno.test("ipmsg re-sends a message with the same packet number until RECVMSG names it", () => {
  const m = machine();
  m.handleDatagram(utf8("1_iptux 0.8.3:1:root:vm:259:root\0\0icon-tux.png\0utf-8\0"), IPTUX, 0);
  m.drainTransmits();
  const id = ipmsgPeerId("root", IPTUX.address);
  m.send("msg-1", id, "lunch? 午饭", 100);
  const [first] = out(m);
  assert.equal(first!.p.mode, IPMSG.SENDMSG);
  assert.ok(first!.p.options & IPMSG_OPT.SENDCHECKOPT);
  assert.ok(first!.p.options & IPMSG_OPT.UTF8OPT, "iptux said utf-8 in its entry");
  assert.deepEqual(first!.p.extra, ["lunch? 午饭"]);
  m.handleTimeout(100 + ipmsgRetryDelay(0));
  const [again] = out(m).filter((t) => t.p.mode === IPMSG.SENDMSG);
  assert.equal(again!.p.packetNo, first!.p.packetNo);
  m.handleDatagram(utf8(`1_iptux 0.8.3:9:root:vm:${IPMSG.RECVMSG}:${first!.p.packetNo}\0`), IPTUX, 1500);
  const delivered = m.drainEvents().filter((e) => e.type === "delivered");
  assert.equal(delivered.length, 1);
  assert.equal(delivered[0]!.type === "delivered" && delivered[0]!.messageId, "msg-1");
  assert.deepEqual(m.pending(), []);
});

Deno.test("ipmsg writes GBK to a peer that did not say it reads UTF-8", () => {
  const m = machine();
  m.handleDatagram(cat(utf8("1_lbt4_0:5:"), gbk("小明"), utf8(":XM-PC:1:"), gbk("小明\0\0")), FEIQ, 0);
  m.drainTransmits();
  m.send("m", ipmsgPeerId("小明", FEIQ.address), "下午开会", 10);
  const [t] = m.drainTransmits();
  const text = "下午开会";
  assert.ok(new TextDecoder("latin1").decode(t!.bytes).length > 0);
  const p = decoded(t!.bytes, "gbk");
  assert.equal(p.extra[0], text);
  assert.equal(p.options & IPMSG_OPT.UTF8OPT, 0);
  // The bytes are GBK, not UTF-8.
  assert.throws(() => new TextDecoder("utf-8", { fatal: true }).decode(t!.bytes));
});

Deno.test("ipmsg removes a peer on BR_EXIT, and one silent for five announces; queued messages wait", () => {
  const m = machine();
  m.handleDatagram(utf8("1_iptux 0.8.3:1:root:vm:259:root\0\0icon-tux.png\0utf-8\0"), IPTUX, 0);
  m.handleDatagram(cat(utf8("1_lbt4_0:5:"), gbk("小明"), utf8(":XM-PC:1:"), gbk("小明\0\0")), FEIQ, 0);
  m.handleDatagram(utf8(`1_iptux 0.8.3:2:root:vm:${IPMSG.BR_EXIT}:root\0`), IPTUX, 10);
  assert.deepEqual(m.peers().map((p) => p.user), ["小明"]);
  const id = ipmsgPeerId("root", IPTUX.address);
  m.send("later", id, "when you are back", 20);
  assert.equal(m.drainTransmits().filter((t) => decoded(t.bytes).mode === IPMSG.SENDMSG).length, 0);
  for (let t = 2000; t <= 14_000; t += 2000) m.handleTimeout(t);
  assert.deepEqual(m.peers(), [], "FeiQ never answered our BR_ENTRY: expired");
  const left = m.drainEvents().filter((e) => e.type === "left");
  assert.deepEqual(left.map((e) => e.type === "left" && e.reason), ["goodbye", "timeout"]);
  // iptux comes back: the queued message goes at once.
  m.drainTransmits();
  m.handleDatagram(utf8("1_iptux 0.8.3:1:root:vm:259:root\0\0icon-tux.png\0utf-8\0"), IPTUX, 15_000);
  assert.ok(out(m).some((t) => t.p.mode === IPMSG.SENDMSG && t.p.extra[0] === "when you are back"));
});

Deno.test("ipmsg takes at most 16 peers from one address and counts lanchat's roster in --max-peers", () => {
  const m = machine();
  const entry = (user: string, address: string) =>
    m.handleDatagram(utf8(`1:${user.length}:${user}:host:1:${user}\0g\0`), { address, port: 2425 }, 1);
  for (let i = 0; i < 100; i++) entry(`user${i}`, "198.18.0.30");
  assert.equal(m.peers().length, 16, "16 ids per address");
  assert.equal(m.countAt("198.18.0.30"), 16);
  assert.equal(m.counters.dropped["roster-full"], 84);
  const refused = m.drainEvents().filter((e) => e.type === "refused");
  assert.equal(refused.length, 84);
  assert.equal(out(m).length, 16, "only admitted entries are answered");

  // lanchat peers count too: 1,020 of them leave room for 4 of 1,024.
  const shared = machine(0, {
    maxPeers: 1024,
    others: { count: () => 1020, countAt: (a) => a === "198.18.0.40" ? 15 : 0 },
  });
  for (let i = 0; i < 10; i++) {
    shared.handleDatagram(utf8(`1:${i}:u${i}:h:1:u${i}\0\0`), { address: `198.18.0.${50 + i}`, port: 2425 }, 1);
  }
  assert.equal(shared.size, 4);
  // An address where lanchat already has 15 ids takes one more, from either protocol.
  const tight = machine(0, { others: { count: () => 15, countAt: (a) => a === "198.18.0.40" ? 15 : 0 } });
  for (const u of ["x", "y"]) {
    tight.handleDatagram(utf8(`1:1:${u}:h:1:${u}\0\0`), { address: "198.18.0.40", port: 2425 }, 1);
  }
  assert.equal(tight.countAt("198.18.0.40"), 1);
});

Deno.test("ipmsg stores at most 120 messages a minute from one address; the rest go unanswered, duplicates are still answered", () => {
  // The budget the daemon gives it (node/services/ipmsg.ts).
  const budget = new RateLimiter({ rate: MESSAGE_RATE_PER_S, burst: MESSAGE_BURST });
  const m = machine(0, { allowMessage: (address, now) => budget.allow(address, now) });
  const send = (n: number, t: number) =>
    m.handleDatagram(
      utf8(`1:${n}:flooder:host:${IPMSG.SENDMSG | IPMSG_OPT.SENDCHECKOPT}:message ${n}\0`),
      FEIQ,
      t,
    );
  for (let n = 1; n <= 500; n++) send(n, 10);
  const stored = m.drainEvents().filter((e) => e.type === "message").length;
  const acks = out(m).filter((t) => t.p.mode === IPMSG.RECVMSG).length;
  assert.equal(stored, 120);
  assert.equal(acks, 120, "only what was stored is answered");
  assert.equal(m.counters.messagesRefused, 380);
  send(5, 20); // a retransmission of one already stored
  assert.equal(out(m).filter((t) => t.p.mode === IPMSG.RECVMSG).length, 1);
  assert.equal(m.drainEvents().filter((e) => e.type === "message").length, 0);
  // A minute later there is room again (2 a second).
  for (let n = 1000; n < 1200; n++) send(n, 60_010);
  assert.equal(m.drainEvents().filter((e) => e.type === "message").length, 120);
});

Deno.test("ipmsg peek reads a datagram's command mode without decoding it", () => {
  assert.equal(peekIpmsgMode(utf8("1:2:u:h:1:x\0")), IPMSG.BR_ENTRY);
  assert.equal(peekIpmsgMode(utf8("1_lbt4:2:u:h:288:text")), IPMSG.SENDMSG);
  assert.equal(peekIpmsgMode(utf8(`1:2:u:h:${IPMSG.ANSENTRY | IPMSG_OPT.UTF8OPT}:`)), IPMSG.ANSENTRY);
  assert.equal(peekIpmsgMode(utf8("1:2:u:h:x:")), undefined);
  assert.equal(peekIpmsgMode(utf8("1:2:u:h")), undefined);
  assert.equal(peekIpmsgMode(new Uint8Array(0)), undefined);
});

Deno.test("ipmsg answers GETINFO with SENDINFO, GETABSENCEINFO with SENDABSENCEINFO, and an opened sealed message with ANSREADMSG when asked", () => {
  const m = machine(0, { software: "lanchat 0.1.0" });
  m.handleDatagram(utf8("1_iptux 0.8.3:1:root:vm:259:root\0\0icon-tux.png\0utf-8\0"), IPTUX, 0);
  m.drainTransmits();
  m.handleDatagram(utf8(`1:5:root:vm:${IPMSG.GETINFO}:\0`), IPTUX, 10);
  m.handleDatagram(utf8(`1:6:root:vm:${IPMSG.GETABSENCEINFO}:\0`), IPTUX, 20);
  m.handleDatagram(utf8(`1:7:root:vm:${IPMSG.READMSG | IPMSG_OPT.READCHECKOPT}:1001\0`), IPTUX, 30);
  m.handleDatagram(utf8(`1:8:root:vm:${IPMSG.READMSG}:1002\0`), IPTUX, 40); // not asked: no answer
  const answers = out(m);
  assert.deepEqual(answers.map((a) => [a.to.address, a.p.mode, a.p.extra]), [
    [IPTUX.address, IPMSG.SENDINFO, ["lanchat 0.1.0"]],
    [IPTUX.address, IPMSG.SENDABSENCEINFO, ["Not absence mode"]],
    [IPTUX.address, IPMSG.ANSREADMSG, ["7"]],
  ]);
  assert.equal(m.counters.dropped.unsupported, 0);
});

Deno.test("ipmsg absence: BR_ABSENCE with ABSENCEOPT goes out at once, entries carry it, GETABSENCEINFO gets the note", () => {
  const m = machine();
  m.handleDatagram(utf8("1_iptux 0.8.3:1:root:vm:259:root\0\0icon-tux.png\0utf-8\0"), IPTUX, 0);
  m.drainTransmits();
  m.setAbsence("at lunch");
  const sent = out(m);
  assert.ok(sent.length >= 2, "to the broadcast address and to the peer");
  for (const s of sent) {
    assert.equal(s.p.mode, IPMSG.BR_ABSENCE);
    assert.ok(s.p.options & IPMSG_OPT.ABSENCEOPT);
  }
  // Its name carries the note, as IP Messenger's does: clients without absence (iptux) show that.
  for (const s of sent) assert.equal(s.p.extra[0], "Alice[at lunch]");
  m.handleDatagram(utf8(`1:9:root:vm:${IPMSG.GETABSENCEINFO}:\0`), IPTUX, 10);
  assert.deepEqual(out(m).map((a) => [a.p.mode, a.p.extra]), [[IPMSG.SENDABSENCEINFO, ["at lunch"]]]);
  m.setAbsence(undefined);
  for (const s of out(m)) assert.equal(s.p.options & IPMSG_OPT.ABSENCEOPT, 0);
});

Deno.test("ipmsg: another lanchat daemon's IP Messenger side is not listed (it is a lanchat peer already); ours says lanchat in the version field", () => {
  const m = machine();
  m.handleDatagram(utf8(`1_lanchat:1:bob:h2:${IPMSG.BR_ENTRY | IPMSG_OPT.CAPUTF8OPT}:bob\0lanchat\0`), FEIQ, 0);
  assert.equal(m.size, 0);
  assert.equal(m.counters.dropped.lanchat, 1);
  assert.equal(m.drainTransmits().filter((t) => t.to.address === FEIQ.address).length, 0, "not answered either");
  m.handleTimeout(0);
  const [entry] = out(m);
  assert.equal(entry!.p.version, "1_lanchat");
});

Deno.test("ipmsg: bytes that are no GBK character are left out and counted, not stored as U+FFFD", () => {
  const m = machine();
  // 0xFF is no lead byte in GBK or GB18030.
  m.handleDatagram(
    cat(utf8(`1:7:xm:PC:${IPMSG.SENDMSG}:`), gbk("你好"), new Uint8Array([0xff]), gbk("世界\0")),
    FEIQ,
    0,
  );
  const [e] = m.drainEvents().filter((x) => x.type === "message");
  assert.equal(e?.type === "message" ? e.text : "", "你好世界");
  assert.equal(m.counters.undecodable, 1);
});

Deno.test("ipmsg: a GBK-only client gets our Chinese nickname in GBK after each UTF-8 broadcast entry", () => {
  const m = machine(0, { nickname: "小李" });
  m.handleDatagram(cat(utf8(`1_lbt4_0:1:xm:PC:${IPMSG.BR_ENTRY}:`), gbk("小明\0财务部\0")), FEIQ, 0);
  m.drainTransmits();
  m.handleTimeout(10_000);
  const sent = m.drainTransmits();
  const toFeiq = sent.filter((t) => t.to.address === FEIQ.address).map((t) => decodeIpmsg(t.bytes, "gbk"));
  const entry = toFeiq.find((d) => d.ok && d.value.mode === IPMSG.BR_ENTRY);
  assert.ok(entry?.ok);
  assert.equal(entry.value.encoding, "gbk");
  assert.equal(entry.value.extra[0], "小李");
  assert.equal(entry.value.options & IPMSG_OPT.UTF8OPT, 0);
  // The raw bytes are GBK (小 = 0xD0 0xA1), not UTF-8.
  const raw = sent.find((t) => t.to.address === FEIQ.address)!.bytes;
  assert.ok(raw.some((b, i) => b === 0xd0 && raw[i + 1] === 0xa1));
});

Deno.test("ipmsg sealed messages: one received is stored sealed; opening it sends READMSG, again until ANSREADMSG when asked", () => {
  const m = machine();
  m.handleDatagram(utf8("1_iptux 0.8.3:1:root:vm:259:root\0\0icon-tux.png\0utf-8\0"), IPTUX, 0);
  m.drainTransmits();
  m.drainEvents();
  const sealed = IPMSG.SENDMSG | IPMSG_OPT.SENDCHECKOPT | IPMSG_OPT.SECRETOPT | IPMSG_OPT.READCHECKOPT;
  m.handleDatagram(utf8(`1:4242:root:vm:${sealed}:for your eyes\0`), IPTUX, 10);
  const [msg] = m.drainEvents().filter((e) => e.type === "message");
  const text = msg!.type === "message" ? msg!.text : "";
  assert.deepEqual(parseSealed(text), { text: "for your eyes", info: { packetNo: "4242", readCheck: true } });
  m.drainTransmits();
  const id = ipmsgPeerId("root", IPTUX.address);
  m.openedSealed(id, "4242", true, 100);
  const [read] = out(m);
  assert.deepEqual([read!.p.mode, read!.p.extra], [IPMSG.READMSG, ["4242"]]);
  assert.ok(read!.p.options & IPMSG_OPT.READCHECKOPT);
  // Unanswered: sent again, with the same packet number.
  m.handleTimeout(100 + ipmsgRetryDelay(0));
  const [again] = out(m);
  assert.deepEqual([again!.p.mode, again!.p.packetNo], [IPMSG.READMSG, read!.p.packetNo]);
  // Answered (the client names our READMSG): no more.
  m.handleDatagram(utf8(`1:4243:root:vm:${IPMSG.ANSREADMSG}:${read!.p.packetNo}\0`), IPTUX, 1200);
  m.handleTimeout(10_000);
  assert.deepEqual(out(m).filter((t) => t.p.mode === IPMSG.READMSG), []);
  // Not asked for an answer: sent once.
  m.openedSealed(id, "4250", false, 20_000);
  assert.equal(out(m).length, 1);
  m.handleTimeout(30_000);
  assert.deepEqual(out(m).filter((t) => t.p.mode === IPMSG.READMSG), []);
});

Deno.test("ipmsg sealed messages: one sent goes with SECRETOPT|READCHECKOPT, and the reader's READMSG makes it read", () => {
  const m = machine();
  m.handleDatagram(utf8("1_iptux 0.8.3:1:root:vm:259:root\0\0icon-tux.png\0utf-8\0"), IPTUX, 0);
  m.drainTransmits();
  m.drainEvents();
  const id = ipmsgPeerId("root", IPTUX.address);
  m.send("msg-sealed", id, sealedText("the code is 1234"), 10);
  const [sent] = out(m);
  assert.ok(sent!.p.options & IPMSG_OPT.SECRETOPT);
  assert.ok(sent!.p.options & IPMSG_OPT.READCHECKOPT);
  assert.deepEqual(sent!.p.extra, ["the code is 1234"], "the line stays home");
  m.handleDatagram(utf8(`1:77:root:vm:${IPMSG.RECVMSG}:${sent!.p.packetNo}\0`), IPTUX, 20);
  // Someone else's READMSG naming that number is not this peer's.
  m.handleDatagram(utf8(`1:78:mallory:evil:${IPMSG.READMSG}:${sent!.p.packetNo}\0`), FEIQ, 25);
  assert.deepEqual(m.drainEvents().filter((e) => e.type === "read"), []);
  m.handleDatagram(utf8(`1:79:root:vm:${IPMSG.READMSG | IPMSG_OPT.READCHECKOPT}:${sent!.p.packetNo}\0`), IPTUX, 30);
  assert.deepEqual(m.drainEvents().filter((e) => e.type === "read"), [
    { type: "read", messageId: "msg-sealed", peerId: id },
  ]);
  assert.deepEqual(out(m).map((t) => [t.p.mode, t.p.extra]), [[IPMSG.ANSREADMSG, ["79"]]]);
});

Deno.test("ipmsg: a client's BR_ABSENCE with ABSENCEOPT makes it absent and one without makes it back; iptux's flag (on every entry) is ignored", () => {
  const m = machine();
  const absent = (address: string) => m.peers().find((p) => p.address === address)?.absent;
  // IP Messenger for Windows (version field "1"): away, then back.
  m.handleDatagram(utf8(`1:1:taro:pc:${IPMSG.BR_ENTRY | IPMSG_OPT.UTF8OPT}:Taro\0\0`), FEIQ, 0);
  assert.equal(absent(FEIQ.address), false);
  m.handleDatagram(utf8(`1:2:taro:pc:${IPMSG.BR_ABSENCE | IPMSG_OPT.ABSENCEOPT}:Taro[Lunch]\0\0`), FEIQ, 10);
  assert.equal(absent(FEIQ.address), true);
  const taro = () => m.peers().find((p) => p.address === FEIQ.address)!;
  assert.deepEqual([taro().nickname, taro().absenceNote], ["Taro", "Lunch"], "its name, and the note apart");
  m.handleDatagram(utf8(`1:3:taro:pc:${IPMSG.BR_ABSENCE}:Taro\0\0`), FEIQ, 20);
  assert.equal(absent(FEIQ.address), false);
  assert.deepEqual([taro().nickname, taro().absenceNote], ["Taro", undefined]);
  // iptux 0.8.3 sets ABSENCEOPT on every BR_ENTRY, ANSENTRY and BR_ABSENCE it sends.
  const tux = IPMSG_OPT.ABSENCEOPT | IPMSG_OPT.UTF8OPT;
  m.handleDatagram(utf8(`1_iptux 0.8.3:1:root:vm:${IPMSG.BR_ENTRY | tux}:root\0\0icon-tux.png\0utf-8\0`), IPTUX, 30);
  m.handleDatagram(utf8(`1_iptux 0.8.3:2:root:vm:${IPMSG.BR_ABSENCE | tux}:root\0\0icon-tux.png\0utf-8\0`), IPTUX, 40);
  assert.equal(absent(IPTUX.address), false);
});

Deno.test("ipmsg: a restarted client's packet numbers start again; its messages are stored, not taken for duplicates", () => {
  const m = machine();
  const entry = (n: number, t: number) =>
    m.handleDatagram(utf8(`1_iptux 0.8.3:${n}:root:vm:${IPMSG.BR_ENTRY}:root\0\0icon-tux.png\0utf-8\0`), IPTUX, t);
  const msg = (n: number, text: string, t: number, options = 0, attach?: string) =>
    m.handleDatagram(
      utf8(
        `1_iptux 0.8.3:${n}:root:vm:${IPMSG.SENDMSG | IPMSG_OPT.SENDCHECKOPT | options}:${text}\0${
          attach ? `${attach}\0` : ""
        }`,
      ),
      IPTUX,
      t,
    );
  const acks = () => out(m).filter((t) => t.p.mode === IPMSG.RECVMSG).map((t) => t.p.extra[0]);
  const texts = () => m.drainEvents().flatMap((e) => e.type === "message" ? [e.text] : []);
  entry(1, 0);
  msg(21, "first instance", 10);
  msg(21, "first instance", 20); // its retransmission: answered, stored once
  assert.deepEqual(acks(), ["21", "21"]);
  assert.deepEqual(texts(), ["first instance"]);
  // A refresh of a running client's entry (numbered after its messages) keeps the window.
  entry(30, 30);
  msg(21, "first instance", 40);
  assert.deepEqual([acks(), texts()], [["21"], []]);
  assert.equal(m.counters.restarts, 0);
  // kill -9, start again: BR_ENTRY numbered from the start, then packet 21 offers a file.
  entry(2, 50);
  assert.equal(m.counters.restarts, 1);
  msg(21, "", 60, IPMSG_OPT.FILEATTACHOPT, "0:a.txt:5:6500000:1:");
  assert.deepEqual(acks(), ["21"]);
  const [offer] = texts();
  assert.match(offer!, /Files offered: a\.txt/);
  // The second instance's packet 21 again (its retry) is a duplicate in the new window.
  msg(21, "", 70, IPMSG_OPT.FILEATTACHOPT, "0:a.txt:5:6500000:1:");
  assert.deepEqual([acks(), texts()], [["21"], []]);
  assert.equal(m.counters.duplicates, 3);
});

Deno.test("ipmsg: a same-numbered packet that says something else is a new message, even with no BR_ENTRY between", () => {
  const m = machine();
  m.handleDatagram(utf8("1_iptux 0.8.3:1:root:vm:259:root\0\0icon-tux.png\0utf-8\0"), IPTUX, 0);
  m.drainEvents();
  const msg = (text: string, t: number, retry = 0) =>
    m.handleDatagram(utf8(`1:21:root:vm:${IPMSG.SENDMSG | IPMSG_OPT.SENDCHECKOPT | retry}:${text}\0`), IPTUX, t);
  msg("one", 10);
  msg("two", 20); // its BR_ENTRY was lost
  msg("two", 30, 0x4000); // a retry flagged IPMSG_RETRYOPT: the same message
  msg("one", 40); // the first again: a new message too (the window holds the latest)
  assert.deepEqual(
    m.drainEvents().flatMap((e) => e.type === "message" ? [e.text] : []),
    ["one", "two", "one"],
  );
  assert.equal(out(m).filter((t) => t.p.mode === IPMSG.RECVMSG).length, 4, "every copy is answered");
});

Deno.test("ipmsg: a client that said goodbye and enters again starts a new window (same number, same text is stored)", () => {
  const m = machine();
  const entry = (n: number, t: number) => m.handleDatagram(utf8(`1:${n}:bob:pc:${IPMSG.BR_ENTRY}:Bob\0\0`), FEIQ, t);
  const hi = (t: number) =>
    m.handleDatagram(utf8(`1:900:bob:pc:${IPMSG.SENDMSG | IPMSG_OPT.SENDCHECKOPT}:hi\0`), FEIQ, t);
  entry(800, 0);
  hi(10);
  m.handleDatagram(utf8(`1:901:bob:pc:${IPMSG.BR_EXIT}:Bob\0\0`), FEIQ, 20);
  // IP Messenger numbers from the clock: a higher number, yet a new instance (it had left).
  entry(950, 30);
  hi(40);
  assert.equal(m.drainEvents().filter((e) => e.type === "message").length, 2);
});

Deno.test("ipmsg: a message that could not be kept is not acknowledged: its queued RECVMSGs are withdrawn and its retransmission is new", () => {
  const m = machine();
  m.handleDatagram(utf8("1_iptux 0.8.3:1:root:vm:259:root\0\0icon-tux.png\0utf-8\0"), IPTUX, 0);
  m.drainEvents();
  m.drainTransmits();
  const msg = utf8(`1_iptux 0.8.3:7:root:vm:${IPMSG.SENDMSG | IPMSG_OPT.SENDCHECKOPT}:keep me\0`);
  m.handleDatagram(msg, IPTUX, 10);
  m.handleDatagram(msg, IPTUX, 20); // a retry while the first is not committed yet
  const [first] = m.drainEvents();
  assert.ok(first?.type === "message");
  m.unstored(first.receipt); // the store refused it, or its commit failed
  assert.deepEqual(out(m).map((t) => t.p.mode), [], "no RECVMSG for what was not kept");
  m.handleDatagram(msg, IPTUX, 30); // the sender, unanswered, tries again
  assert.deepEqual(m.drainEvents().flatMap((e) => e.type === "message" ? [e.text] : []), ["keep me"]);
  assert.deepEqual(out(m).map((t) => [t.p.mode, t.p.extra[0]]), [[IPMSG.RECVMSG, "7"]]);
});
