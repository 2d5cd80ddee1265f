/**
 * The address book (src/node/directory.ts): what `peers --all` shows of a
 * peer that is gone is when it was last seen, at its goodbye or its last
 * packet, not when it joined.
 */
import assert from "node:assert/strict";
import type { DaemonEvent } from "../../src/api/types.ts";
import { Directory } from "../../src/node/directory.ts";
import type { ServiceContext } from "../../src/node/service.ts";
import type { IpmsgPeer } from "../../src/protocol/ipmsg.ts";
import type { Peer } from "../../src/protocol/roster.ts";
import { Pins } from "../../src/security/pins.ts";
import { Store } from "../../src/storage/store.ts";

const T0 = 1_800_000_000_000;

async function directory() {
  const dir = Deno.makeTempDirSync({ prefix: "lanchat-directory-" });
  const store = await Store.open(dir);
  const d = new Directory(store, new Pins(store, () => {}));
  let clock = 0;
  const ctx = {
    io: { now: () => clock },
    wall: (t: number) => T0 + t,
    every: () => {},
    changed: () => {},
    durable: () => Promise.resolve(),
  } as unknown as ServiceContext;
  d.start(ctx);
  return {
    d,
    store,
    dir,
    at: (t: number, e: DaemonEvent) => {
      clock = t;
      d.onEvent(e, t);
    },
  };
}

const bob = (lastSeen: number) =>
  ({
    id: "b".repeat(32),
    name: "bob",
    hostname: "bob-pc",
    addresses: [{ address: "198.18.0.2", port: 7000, lastSeen }],
    lastSeen,
    firstSeen: 0,
  }) as unknown as Peer;
const tux = (lastSeen: number) =>
  ({
    id: "c".repeat(32),
    user: "root",
    host: "vm",
    nickname: "tux",
    address: "198.18.0.3",
    port: 2425,
    lastSeen,
    firstSeen: 0,
  }) as unknown as IpmsgPeer;

Deno.test("directory: a peer that left is last seen at its goodbye, or at its last packet when it timed out, not at its join", async () => {
  const { d, store, dir, at } = await directory();
  try {
    at(1_000, { type: "joined", peer: bob(1_000) });
    at(1_000, { type: "ipmsg-joined", peer: tux(1_000) });
    assert.equal(d.get("b".repeat(32))!.lastSeen, T0 + 1_000);
    // Four minutes later bob says goodbye; tux went silent at 200 s and timed out at 240 s.
    at(241_000, { type: "left", peer: bob(239_500), reason: "goodbye" });
    at(242_000, { type: "ipmsg-left", peer: tux(200_000), reason: "timeout" });
    assert.equal(d.get("b".repeat(32))!.lastSeen, T0 + 241_000);
    assert.equal(d.get("c".repeat(32))!.lastSeen, T0 + 200_000);
    // As the database keeps it (peers --all after a restart).
    const kept = new Map(store.knownPeers().map((k) => [k.id, k.lastSeen]));
    assert.deepEqual([kept.get("b".repeat(32)), kept.get("c".repeat(32))], [T0 + 241_000, T0 + 200_000]);
    // A goodbye from a peer never listed (no entry) adds nothing.
    at(243_000, { type: "left", peer: { ...bob(1), id: "d".repeat(32) }, reason: "goodbye" });
    assert.equal(d.get("d".repeat(32)), undefined);
  } finally {
    store.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
