/**
 * A NUL in text that comes from the network (SQLite would hand the text
 * back cut at it) becomes U+FFFD before it is stored, in a message and in
 * an edit, and is counted (hostile27b M3; a local client's NUL is refused:
 * tests/integration/hostile27_words_test.ts).
 */
import assert from "node:assert/strict";
import { Messaging } from "../../src/protocol/messaging.ts";
import { Store } from "../../src/storage/store.ts";
import { decodePacket } from "../../src/wire/mod.ts";

const A = "a".repeat(32);
const B = "b".repeat(32);
const EA = { address: "198.18.0.1", port: 47475 };
const EB = { address: "198.18.0.2", port: 47475 };

async function side(id: string) {
  const store = await Store.open(Deno.makeTempDirSync({ prefix: "lanchat-nul-" }));
  return { store, m: new Messaging({ self: { id, incarnation: 1 }, store, wall: (t) => 1_800_000_000_000 + t }) };
}

Deno.test("a NUL a peer sends is stored as U+FFFD, nothing after it lost, in a message and an edit", async () => {
  const a = await side(A);
  const b = await side(B);
  try {
    a.m.peerUp(B, EB, 0);
    b.m.peerUp(A, EA, 0);
    const exchange = () => {
      for (let round = 0; round < 10; round++) {
        for (const [from, to, ep] of [[a, b, EA], [b, a, EB]] as const) {
          for (const t of from.m.drainTransmits()) {
            const p = decodePacket(t.bytes);
            assert.ok(p.ok);
            const v = p.value;
            if (v.kind === "msg" || v.kind === "ack" || v.kind === "read") to.m.handlePacket(v, ep, 0);
          }
        }
      }
    };
    const sent = a.m.send(B, "before\0after", 0);
    exchange();
    assert.deepEqual(b.store.history({ limit: 10 }).map((m) => m.text), ["before\uFFFDafter"]);
    assert.equal(b.m.counters.nulsReplaced, 1);
    a.m.send(B, "edited\0\0text", 0, undefined, { kind: "edit", id: sent.id });
    exchange();
    assert.deepEqual(b.store.history({ limit: 10 }).map((m) => m.text), ["edited\uFFFD\uFFFDtext"]);
    assert.equal(b.m.counters.nulsReplaced, 2);
  } finally {
    a.store.close();
    b.store.close();
  }
});
