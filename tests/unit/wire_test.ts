import assert from "node:assert/strict";
import {
  decodeFrame,
  decodePacket,
  encodePacket,
  fitTextField,
  type Hello,
  MAGIC,
  MAX_DATAGRAM,
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

function frame(type: number, body: unknown, version = PROTOCOL_VERSION): Uint8Array {
  const json = new TextEncoder().encode(typeof body === "string" ? body : JSON.stringify(body));
  return new Uint8Array([...MAGIC, version, type, ...json]);
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
    ["bad utf-8", new Uint8Array([...MAGIC, 1, 1, 0xff, 0xfe]), "bad-utf8"],
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
  const r = decodeFrame(frame(2, { anything: true }));
  assert.deepEqual(r, { ok: true, value: { type: 2, body: { anything: true } } });
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
