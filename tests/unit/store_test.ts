import assert from "node:assert/strict";
import { DataDirInUseError, Store, StoreError } from "../../src/storage/store.ts";

Deno.test("a damaged database is a clear error at start that says what to do", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "lanchat-store-" });
  Deno.writeFileSync(`${dir}/lanchat.db`, crypto.getRandomValues(new Uint8Array(4096)));
  await assert.rejects(() => Store.open(dir), /Cannot open database .*lanchat\.db: .*move it away/);
});

Deno.test("a database held by another daemon is refused with the data directory named", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "lanchat-store-" });
  const first = await Store.open(dir);
  try {
    await assert.rejects(() => Store.open(dir), (e) => e instanceof DataDirInUseError && e.message.includes(dir));
  } finally {
    first.close();
  }
});

const PEER = "b".repeat(32);
const outgoing = (id: string, text = "hi") => ({
  id: id.padEnd(32, "0"),
  peer: PEER,
  text,
  sentAt: 1,
  status: "sent" as const,
});

Deno.test("group commit: a burst of writes opens one transaction, durable once commit returns", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "lanchat-store-" });
  const store = await Store.open(dir);
  let opened = 0;
  store.startGroupCommit(() => opened++);
  assert.equal(store.uncommitted, false);
  for (const id of ["a1", "a2", "a3"]) store.insertOutgoing(outgoing(id));
  assert.equal(opened, 1, "one transaction for the burst");
  assert.equal(store.uncommitted, true);
  store.commit();
  assert.equal(store.uncommitted, false);
  store.insertOutgoing(outgoing("a4"));
  assert.equal(opened, 2, "the next write opens the next one");
  store.commit();
  store.close();
  const again = await Store.open(dir);
  try {
    assert.deepEqual(again.history().map((m) => [m.id.slice(0, 2), m.seq]), [["a1", 1], ["a2", 2], ["a3", 3], [
      "a4",
      4,
    ]]);
  } finally {
    again.close();
  }
});

Deno.test("group commit: a write that fails undoes only itself, not the burst it is part of", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "lanchat-store-" });
  const store = await Store.open(dir);
  store.startGroupCommit(() => {});
  store.insertOutgoing(outgoing("b1"));
  // Same id again: the insert fails after its sequence number was taken.
  assert.throws(() => store.insertOutgoing(outgoing("b1")), StoreError);
  store.insertOutgoing(outgoing("b2"));
  store.commit();
  store.close();
  const again = await Store.open(dir);
  try {
    assert.deepEqual(again.history().map((m) => [m.id.slice(0, 2), m.seq]), [["b1", 1], ["b2", 2]]);
  } finally {
    again.close();
  }
});

Deno.test("known peers never messaged are forgotten when long unseen, or beyond a bound; messaged ones are kept", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "lanchat-store-" });
  const store = await Store.open(dir);
  try {
    const peer = (id: string, lastSeen: number) => ({
      id: id.padEnd(32, "0"),
      protocol: "ipmsg" as const,
      name: id,
      hostname: "h",
      address: "198.18.0.5",
      port: 2425,
      lastSeen,
    });
    store.rememberPeer(peer("a", 100)); // old, never messaged: forgotten
    store.rememberPeer(peer("b", 100)); // old, but messaged: kept
    store.insertOutgoing({ ...outgoing("m1"), peer: "b".padEnd(32, "0") });
    for (let i = 0; i < 5; i++) store.rememberPeer(peer(`c${i}`, 1000 + i)); // recent, never messaged
    const gone = store.pruneKnownPeers(500, 3);
    assert.deepEqual(gone.sort(), ["a", "c0", "c1"].map((id) => id.padEnd(32, "0")));
    assert.deepEqual(
      store.knownPeers().map((p) => p.name).sort(),
      ["b", "c2", "c3", "c4"],
      "the messaged one and the 3 most recently seen",
    );
  } finally {
    store.close();
  }
});

Deno.test("a batch takes each peer's next sequence numbers in the order given, after and before single inserts", async () => {
  const dir = Deno.makeTempDirSync();
  const store = await Store.open(dir);
  const C = "c".repeat(32);
  const row = (id: string, peer: string) => ({ id: id.padStart(32, "0"), peer, text: id, sentAt: 1 });
  store.insertOutgoing(row("1", PEER));
  const batch = store.insertOutgoingMany([row("2", PEER), row("3", C), row("4", PEER), row("5", C), row("6", PEER)]);
  assert.deepEqual(batch.map((m) => [m.text, m.seq]), [["2", 2], ["3", 1], ["4", 3], ["5", 2], ["6", 4]]);
  assert.equal(store.insertOutgoing(row("7", PEER)).seq, 5);
  assert.equal(store.insertOutgoing(row("8", C)).seq, 3);
  store.close();
  Deno.removeSync(dir, { recursive: true });
});
