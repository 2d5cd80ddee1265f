import assert from "node:assert/strict";
import {
  type Ack,
  decodeFrame,
  decodePacket,
  encodePacket,
  fitTextField,
  fragmentCount,
  fragmentSpan,
  type Hello,
  MAGIC,
  MAX_DATAGRAM,
  MAX_TEXT_BYTES,
  type Msg,
  type Packet,
  PROTOCOL_VERSION,
} from "../../src/wire/mod.ts";

const ID = "0123456789abcdef0123456789abcdef";
const hello: Hello = {
  kind: "hello",
  id: ID,
  incarnation: 7,
  name: "alice@host1",
  hostname: "host1",
  port: 47475,
  httpPort: 47476,
  version: "0.1.0",
  interval: 2000,
  reply: false,
};

/** A frame by hand; hello (1), goodbye (2) and msg (5) carry a 2-byte JSON length before the JSON. */
function frame(type: number, body: unknown, version = PROTOCOL_VERSION): Uint8Array {
  const json = new TextEncoder().encode(typeof body === "string" ? body : JSON.stringify(body));
  const len = [1, 2, 5].includes(type) ? [json.length >> 8, json.length & 0xff] : [];
  return new Uint8Array([...MAGIC, version, type, ...len, ...json]);
}

function rawHello(overrides: Record<string, unknown>): Uint8Array {
  const body: Record<string, unknown> = {
    id: ID,
    inc: 7,
    name: "a",
    host: "h",
    port: 47475,
    http: 0,
    ver: "1",
    ivl: 2000,
    ...overrides,
  };
  for (const [k, v] of Object.entries(overrides)) if (v === undefined) delete body[k];
  return frame(1, body);
}

Deno.test("wire round-trips every packet kind", () => {
  const packets: Packet[] = [
    hello,
    { ...hello, reply: true, name: "Zoë 🚀 用户", httpPort: 0 },
    { kind: "goodbye", id: ID, incarnation: 3 },
    { kind: "ping", id: ID, incarnation: 3, nonce: 0xffff_ffff },
    { kind: "pong", id: ID, incarnation: 0, nonce: 0 },
  ];
  for (const p of packets) {
    const decoded = decodePacket(encodePacket(p));
    assert.deepEqual(decoded, { ok: true, value: p });
  }
});

Deno.test("wire hello with the longest fields stays within the datagram limit", () => {
  const long = "界".repeat(21); // 63 bytes
  const bytes = encodePacket({
    ...hello,
    name: long,
    hostname: long,
    version: long,
    incarnation: Number.MAX_SAFE_INTEGER,
  });
  assert.ok(bytes.length <= MAX_DATAGRAM);
  assert.equal(decodePacket(bytes).ok, true);
});

Deno.test("wire rejects datagrams by reason and never throws", () => {
  const cases: [string, Uint8Array, string][] = [
    ["empty", new Uint8Array(0), "truncated"],
    ["short magic", MAGIC.subarray(0, 3), "truncated"],
    ["short junk", new Uint8Array([1, 2]), "bad-magic"],
    ["other magic", new Uint8Array([0x4c, 0x4e, 0x43, 0x49, 1, 1, 0x7b, 0x7d]), "bad-magic"],
    ["oversize", new Uint8Array(MAX_DATAGRAM + 1), "oversize"],
    ["version 2", frame(1, {}, 2), "bad-version"],
    ["version 0", frame(1, {}, 0), "bad-version"],
    ["type 0", frame(0, {}), "unknown-type"],
    ["type 200", frame(200, {}), "unknown-type"],
    ["bad utf-8", new Uint8Array([...MAGIC, 1, 3, 0xff, 0xfe]), "bad-utf8"],
    ["JSON length past the end", new Uint8Array([...MAGIC, 1, 1, 0xff, 0xfe, 0x7b]), "truncated"],
    ["not json", frame(1, "{nope"), "bad-json"],
    ["json array", frame(1, "[1,2]"), "bad-json"],
    ["json null", frame(1, "null"), "bad-json"],
    ["json number", frame(1, "42"), "bad-json"],
    ["header only", frame(1, ""), "bad-json"],
  ];
  for (const [name, bytes, reason] of cases) {
    const r = decodePacket(bytes);
    assert.equal(r.ok, false, name);
    if (!r.ok) assert.equal(r.reason, reason, name);
  }
});

Deno.test("wire rejects every malformed hello field", () => {
  const bad: Record<string, unknown>[] = [
    { id: undefined },
    { id: "ABCDEF0123456789abcdef0123456789" }, // upper case
    { id: ID.slice(1) }, // 31 chars
    { id: 42 },
    { inc: -1 },
    { inc: 1.5 },
    { inc: "7" },
    { inc: 2 ** 60 },
    { name: "" },
    { name: "x".repeat(65) },
    { name: "界".repeat(22) }, // 66 bytes
    { name: "bad\nname" },
    { name: 5 },
    { host: undefined },
    { port: 0 },
    { port: -1 },
    { port: 65536 },
    { port: "47475" },
    { http: -5 },
    { http: 70000 },
    { ver: null },
    { ivl: 10 },
    { ivl: 3_600_001 },
    { re: "yes" },
  ];
  for (const o of bad) {
    const r = decodePacket(rawHello(o));
    assert.equal(r.ok, false, JSON.stringify(o));
    if (!r.ok) assert.equal(r.reason, "bad-field", JSON.stringify(o));
  }
  // Unknown fields are ignored (a newer minor version may add some).
  assert.equal(decodePacket(rawHello({ future: [1, 2, 3] })).ok, true);
});

Deno.test("wire rejects ping and pong without a valid nonce", () => {
  for (const type of [3, 4]) {
    for (const n of [undefined, -1, 2 ** 32, "1", 0.5]) {
      const r = decodePacket(frame(type, { id: ID, inc: 1, n }));
      assert.equal(r.ok, false);
      if (!r.ok) assert.equal(r.reason, "bad-field");
    }
  }
});

Deno.test("wire decodes the header before the body", () => {
  const r = decodeFrame(frame(3, { anything: true }));
  assert.deepEqual(r, { ok: true, value: { type: 3, body: { anything: true } } });
});

Deno.test("wire encoder refuses a datagram above the limit", () => {
  assert.throws(() => encodePacket({ ...hello, name: "x".repeat(2000) }), RangeError);
});

Deno.test("wire fitTextField cuts to 64 UTF-8 bytes without splitting a character", () => {
  const s = fitTextField("界".repeat(40));
  assert.equal(new TextEncoder().encode(s).length, 63);
  assert.equal(fitTextField("a\tb"), "a?b");
  assert.equal(fitTextField("short"), "short");
});

Deno.test("wire decoding random junk never throws", () => {
  let seed = 42;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const base = encodePacket(hello);
  for (let i = 0; i < 20_000; i++) {
    const bytes = i % 2 === 0 ? new Uint8Array(Math.floor(rnd() * 1300)).map(() => rnd() * 256) : base.slice();
    if (i % 2 === 1) {
      for (let k = 0; k < 1 + rnd() * 4; k++) bytes[Math.floor(rnd() * bytes.length)] = Math.floor(rnd() * 256);
    }
    const r = decodePacket(bytes);
    assert.equal(typeof r.ok, "boolean");
  }
});

const msgBase = {
  kind: "msg" as const,
  id: ID,
  incarnation: 1,
  to: "f".repeat(32),
  messageId: "0".repeat(31) + "1",
  seq: 5,
  base: 3,
  sentAt: 1_800_000_000_000,
  retry: 0,
  end: false,
};

Deno.test("wire round-trips message fragments and acks, payload bytes exact", () => {
  const text = new TextEncoder().encode("héllo 界 🚀".repeat(200));
  const count = 3;
  for (let i = 0; i < count; i++) {
    const [s, e] = fragmentSpan(text.length, count, i);
    const m: Msg = {
      ...msgBase,
      length: text.length,
      count,
      index: i,
      retry: i,
      end: i === count - 1,
      payload: text.slice(s, e),
    };
    const bytes = encodePacket(m);
    assert.ok(bytes.length <= MAX_DATAGRAM);
    assert.deepEqual(decodePacket(bytes), { ok: true, value: m });
  }
  const empty: Msg = { ...msgBase, length: 0, count: 1, index: 0, payload: new Uint8Array() };
  assert.deepEqual(decodePacket(encodePacket(empty)), { ok: true, value: empty });
  const acks: Ack[] = [
    {
      kind: "ack",
      id: ID,
      incarnation: 2,
      messageId: msgBase.messageId,
      count: 10,
      received: new Uint8Array([0xff, 0x02]),
      done: false,
    },
    {
      kind: "ack",
      id: ID,
      incarnation: 2,
      messageId: msgBase.messageId,
      count: 1,
      received: new Uint8Array(1),
      done: true,
    },
    {
      kind: "ack",
      id: ID,
      incarnation: 2,
      messageId: msgBase.messageId,
      count: 1,
      received: new Uint8Array(1),
      done: true,
      rejected: "bad-utf8",
    },
  ];
  for (const a of acks) assert.deepEqual(decodePacket(encodePacket(a)), { ok: true, value: a });
});

Deno.test("wire a fragment of the largest text with the longest header fits one datagram", () => {
  const length = MAX_TEXT_BYTES;
  const count = fragmentCount(length);
  assert.ok(count <= 128);
  const [s, e] = fragmentSpan(length, count, 0);
  const m: Msg = {
    ...msgBase,
    seq: Number.MAX_SAFE_INTEGER,
    base: Number.MAX_SAFE_INTEGER,
    sentAt: Number.MAX_SAFE_INTEGER,
    length,
    count,
    index: count - 1,
    retry: 1_000_000,
    payload: new Uint8Array(e - s),
  };
  assert.ok(encodePacket(m).length <= MAX_DATAGRAM);
});

Deno.test("wire rejects malformed message fragments and acks", () => {
  const good = encodePacket({ ...msgBase, length: 10, count: 2, index: 1, payload: new Uint8Array(5) });
  const frameOf = (meta: Record<string, unknown>, payload: Uint8Array) => {
    const json = new TextEncoder().encode(JSON.stringify(meta));
    return new Uint8Array([...MAGIC, 1, 5, json.length >> 8, json.length & 255, ...json, ...payload]);
  };
  const meta = { id: ID, inc: 1, to: msgBase.to, m: msgBase.messageId, seq: 5, base: 3, ts: 1, len: 10, n: 2, i: 1 };
  assert.equal(decodePacket(frameOf(meta, new Uint8Array(5))).ok, true);
  const bad: [string, Uint8Array, string][] = [
    ["payload too short", frameOf(meta, new Uint8Array(4)), "bad-field"],
    ["payload too long", frameOf(meta, new Uint8Array(6)), "bad-field"],
    ["index past count", frameOf({ ...meta, i: 2 }, new Uint8Array(5)), "bad-field"],
    ["base above seq", frameOf({ ...meta, base: 6 }, new Uint8Array(5)), "bad-field"],
    ["seq 0", frameOf({ ...meta, seq: 0, base: 0 }, new Uint8Array(5)), "bad-field"],
    ["text over 64 KiB", frameOf({ ...meta, len: 65_537, n: 128, i: 0 }, new Uint8Array(513)), "bad-field"],
    ["more fragments than bytes", frameOf({ ...meta, len: 1, n: 2, i: 0 }, new Uint8Array(1)), "bad-field"],
    ["empty last fragment", frameOf({ ...meta, len: 4, n: 3, i: 0 }, new Uint8Array(2)), "bad-field"],
    ["bad recipient", frameOf({ ...meta, to: "x" }, new Uint8Array(5)), "bad-field"],
    ["JSON length past end", good.slice(0, 10), "truncated"],
    ["no JSON length", good.slice(0, 7), "truncated"],
  ];
  for (const [name, bytes, reason] of bad) {
    const r = decodePacket(bytes);
    assert.equal(r.ok, false, name);
    if (!r.ok) assert.equal(r.reason, reason, name);
  }
  const ackFrame = (body: Record<string, unknown>) => frame(6, { id: ID, inc: 1, m: msgBase.messageId, ...body });
  for (
    const body of [{ n: 0 }, { n: 129 }, { n: 10, got: "ff" }, { n: 10, got: "zzzz" }, { n: 1, got: 5 }, {
      n: 1,
      done: "y",
    }]
  ) {
    const r = decodePacket(ackFrame(body));
    assert.equal(r.ok, false, JSON.stringify(body));
    if (!r.ok) assert.equal(r.reason, "bad-field");
  }
});

Deno.test("wire: a read receipt and its answer round-trip; a hello's presence too, and an unknown presence reads as online", () => {
  const id = "a".repeat(32);
  for (const ack of [false, true]) {
    const p = { kind: "read" as const, id, incarnation: 3, to: "b".repeat(32), messageId: "c".repeat(32), ack };
    const d = decodePacket(encodePacket(p));
    assert.ok(d.ok);
    assert.deepEqual(d.value, p);
  }
  const bad = encodePacket({ kind: "read", id, incarnation: 1, to: "nope", messageId: "c".repeat(32), ack: false });
  assert.equal(decodePacket(bad).ok, false);
  const hello = {
    kind: "hello" as const,
    id,
    incarnation: 1,
    name: "alice",
    hostname: "h",
    port: 47475,
    httpPort: 0,
    version: "0.1.0",
    interval: 2000,
    reply: false,
    presence: "away" as const,
    note: "at lunch",
  };
  const h = decodePacket(encodePacket(hello));
  assert.ok(h.ok && h.value.kind === "hello");
  assert.deepEqual([h.value.presence, h.value.note], ["away", "at lunch"]);
  const future = decodePacket(encodePacket({ ...hello, presence: "dancing" as unknown as "away" }));
  assert.ok(future.ok && future.value.kind === "hello");
  assert.equal(future.value.presence, undefined);
});
