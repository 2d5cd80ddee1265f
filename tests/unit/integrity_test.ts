/**
 * storage/integrity.ts and the store's damaged state: a file damaged in the
 * middle opens, the table-by-table check finds it, and from then on every
 * write is refused in words, nothing uncommitted is committed, reads go on.
 */
import assert from "node:assert/strict";
import { isCorruption } from "../../src/storage/integrity.ts";
import { Store, StoreError } from "../../src/storage/store.ts";

const PEER = "b".repeat(32);
const outgoing = (i: number) => ({
  id: i.toString(16).padStart(32, "0"),
  peer: PEER,
  text: `message ${i} ${"x".repeat(200)}`,
  sentAt: 1,
  status: "sent" as const,
});

Deno.test("isCorruption: SQLITE_CORRUPT and SQLITE_NOTADB, by code or by words, also as a cause; not a full disk", () => {
  assert.ok(isCorruption(Object.assign(new Error("database disk image is malformed"), { errcode: 11 })));
  assert.ok(isCorruption(Object.assign(new Error("x"), { errcode: 11 | (1 << 8) })));
  assert.ok(isCorruption(Object.assign(new Error("file is not a database"), { errcode: 26 })));
  assert.ok(isCorruption(new Error("Cannot store", { cause: new Error("database disk image is malformed") })));
  assert.ok(!isCorruption(Object.assign(new Error("database or disk is full"), { errcode: 13 })));
  assert.ok(!isCorruption("malformed"));
});

Deno.test("a database damaged in the middle: found table by table; then writes are refused, reads go on", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "lanchat-integrity-" });
  try {
    let store = await Store.open(dir);
    for (let i = 1; i <= 3000; i++) store.insertOutgoing(outgoing(i));
    store.close();
    const path = `${dir}/lanchat.db`;
    const size = Deno.statSync(path).size;
    const file = Deno.openSync(path, { write: true });
    file.seekSync(Math.floor(size / 2), Deno.SeekMode.Start);
    file.writeSync(crypto.getRandomValues(new Uint8Array(8192)));
    file.close();

    store = await Store.open(dir);
    try {
      assert.equal(store.damaged, undefined, "it opens: SQLite has not read the damaged pages yet");
      const told: string[] = [];
      store.onDamaged((what) => told.push(what));
      store.startGroupCommit(() => {});
      store.insertOutgoing(outgoing(5000)); // uncommitted when the damage is found
      const problems = store.tablesToCheck().flatMap((t) => store.quickCheck(t));
      assert.ok(problems.length > 0);
      assert.match(store.damaged ?? "", /^quick_check: /);
      assert.equal(told.length, 1, "told once");
      assert.throws(() => store.commit(), (e) => e instanceof StoreError && /damaged/.test(e.message));
      assert.throws(
        () => store.insertOutgoing(outgoing(5001)),
        (e) => e instanceof StoreError && /the database is damaged .*move it away/.test(e.message),
      );
      assert.equal(store.uncommitted, false, "nothing was opened for the refused write");
      assert.ok(store.history({ limit: 5 }).length > 0, "what can be read is still shown");
      assert.match(store.damageAdvice(), /sqlite3 .*\.recover/);
    } finally {
      store.close();
    }
    store = await Store.open(dir);
    try {
      assert.equal(
        store.message(outgoing(5000).id),
        undefined,
        "the write before the damage was found was not committed",
      );
    } catch (e) {
      assert.ok(isCorruption(e), String(e));
    } finally {
      store.close();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
