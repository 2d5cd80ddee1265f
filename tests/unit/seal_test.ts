import assert from "node:assert/strict";
import {
  newNetworkKeyText,
  parseNetworkKey,
  REPLAY_WINDOW_MS,
  ReplayGuard,
  SEAL_OVERHEAD,
  Sealer,
} from "../../src/security/seal.ts";

const T0 = Date.UTC(2026, 10, 24, 9, 0, 0);
const text = (s: string) => new TextEncoder().encode(s);
const keyA = parseNetworkKey(newNetworkKeyText(), "a");
const keyB = parseNetworkKey(newNetworkKeyText(), "b");

Deno.test("a sealed datagram opens with the same key and hides its contents", async () => {
  const a = await Sealer.create(keyA);
  const b = await Sealer.create(keyA);
  const inner = text("LNCH hello, this is secret text");
  const sealed = await a.seal(inner, T0);
  assert.equal(sealed.length, inner.length + SEAL_OVERHEAD);
  assert.ok(!new TextDecoder().decode(sealed).includes("secret"), "plaintext must not appear on the wire");
  const r = await b.open(sealed, T0 + 5);
  assert.ok(r.ok);
  assert.deepEqual(r.inner, inner);
});

Deno.test("a datagram sealed with another key, or not sealed, is refused as auth", async () => {
  const a = await Sealer.create(keyA);
  const b = await Sealer.create(keyB);
  const other = await b.open(await a.seal(text("x"), T0), T0);
  assert.deepEqual([other.ok, !other.ok && other.reason], [false, "auth"]);
  const plain = await a.open(text("LNCH\x01 an unsealed hello with enough bytes to pass the length"), T0);
  assert.deepEqual([plain.ok, !plain.ok && plain.reason], [false, "auth"]);
});

Deno.test("any flipped bit in a sealed datagram makes it fail authentication", async () => {
  const a = await Sealer.create(keyA);
  const sealed = await a.seal(text("hello there"), T0);
  for (let i = 0; i < sealed.length; i++) {
    const copy = sealed.slice();
    copy[i] = copy[i]! ^ 0x01;
    const fresh = await Sealer.create(keyA); // its own replay guard: only authentication can refuse
    const r = await fresh.open(copy, T0);
    assert.equal(r.ok, false, `flip at byte ${i} was accepted`);
  }
});

Deno.test("a replayed datagram is refused, at once or outside the time window", async () => {
  const a = await Sealer.create(keyA);
  const b = await Sealer.create(keyA);
  const sealed = await a.seal(text("ack"), T0);
  assert.ok((await b.open(sealed, T0)).ok);
  const again = await b.open(sealed, T0 + 1000);
  assert.deepEqual([again.ok, !again.ok && again.reason], [false, "replay"]);
  // Hours later, after the receiver forgot the nonce, the send time refuses it.
  const c = await Sealer.create(keyA);
  const late = await c.open(sealed, T0 + 3 * 3600_000);
  assert.deepEqual([late.ok, !late.ok && late.reason], [false, "replay"]);
  const early = await c.open(await a.seal(text("from the future"), T0 + REPLAY_WINDOW_MS + 1), T0);
  assert.equal(early.ok, false);
});

Deno.test("the replay guard forgets nonces once they are older than the window", () => {
  const g = new ReplayGuard();
  assert.ok(g.check("n1", T0, T0).ok);
  assert.ok(g.check("n2", T0 + 10_000, T0 + 10_000).ok);
  g.prune(T0 + REPLAY_WINDOW_MS + 1);
  assert.equal(g.size, 1);
});

Deno.test("a key file that is not 32 bytes of base64 is refused with a clear message", () => {
  assert.throws(() => parseNetworkKey("not base64 !!", "k"), /not base64/);
  assert.throws(() => parseNetworkKey(btoa("short"), "k"), /holds 5 bytes, not 32/);
  assert.equal(parseNetworkKey(newNetworkKeyText(), "k").length, 32);
});
