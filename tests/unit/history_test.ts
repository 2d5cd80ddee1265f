/**
 * History at scale, on the store itself: pages both ways by cursor and by
 * time, search (CJK included), every query on an index (checked with
 * EXPLAIN QUERY PLAN), a bounded write-ahead log, an outbox read in windows,
 * and the migration of a database made by main as it was (4307208).
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  MAX_PAGE,
  SCHEMA_VERSION,
  SEARCH_PARTITION,
  SHORT_SEARCH_WINDOW,
  Store,
  WAL_FILE_LIMIT,
} from "../../src/storage/store.ts";
import { Messaging, OUTBOX_WINDOW } from "../../src/protocol/messaging.ts";
import { decodePacket } from "../../src/wire/mod.ts";

const BOB = "b".repeat(32);
const CAROL = "c".repeat(32);
const id = (n: number) => n.toString(16).padStart(32, "0");
const T0 = 1_800_000_000_000;

/** A store with `n` messages: odd ones from bob (shown at T0 + i s), even ones to carol (sent at T0 + i s). */
async function filled(n: number, text = (i: number) => `message ${i}`): Promise<Store> {
  const store = await Store.open(Deno.makeTempDirSync({ prefix: "lanchat-history-" }));
  // Group commit, as the daemon runs it: the writes below share one transaction.
  store.startGroupCommit(() => {});
  {
    let seq = 0;
    for (let i = 1; i <= n; i++) {
      if (i % 2) {
        store.release(
          BOB,
          [{
            id: id(i),
            peer: BOB,
            seq: ++seq,
            text: text(i),
            sentAt: T0 + i * 1000,
            receivedAt: T0 + i * 1000,
            gapBefore: 0,
            late: false,
            wasHeld: false,
          }],
          seq + 1,
          T0 + i * 1000,
        );
      } else {
        store.insertOutgoing({ id: id(i), peer: CAROL, text: text(i), sentAt: T0 + i * 1000, status: "sent" });
        store.markDelivered(id(i), T0 + i * 1000 + 5, 1);
      }
    }
  }
  store.commit();
  return store;
}

const texts = (ms: { text: string }[]) => ms.map((m) => m.text);

Deno.test("history pages back from the newest, back from any cursor, and forward from any cursor", async () => {
  const store = await filled(1000);
  try {
    assert.deepEqual(texts(store.history({ limit: 3 })), ["message 998", "message 999", "message 1000"]);
    assert.deepEqual(texts(store.history({ before: 998, limit: 3 })), ["message 995", "message 996", "message 997"]);
    assert.deepEqual(texts(store.history({ after: 0, limit: 3 })), ["message 1", "message 2", "message 3"]);
    assert.deepEqual(texts(store.history({ after: 3, limit: 2 })), ["message 4", "message 5"]);
    assert.deepEqual(texts(store.history({ after: 10, before: 14 })), ["message 11", "message 12", "message 13"]);
    // The oldest messages are reachable, however many came after them.
    const all: string[] = [];
    let before: number | undefined;
    while (true) {
      const page = store.history({ before, limit: 97 });
      if (page.length === 0) break;
      all.unshift(...texts(page));
      before = page[0]!.cursor;
    }
    assert.equal(all.length, 1000);
    assert.equal(all[0], "message 1");
    // With a peer: its messages only, paged the same way.
    assert.deepEqual(texts(store.history({ peer: BOB, limit: 2 })), ["message 997", "message 999"]);
    assert.deepEqual(texts(store.history({ peer: CAROL, after: 0, limit: 2 })), ["message 2", "message 4"]);
    assert.equal(store.history({ limit: 1_000_000 }).length, Math.min(1000, MAX_PAGE));
    // `sinceCursor`, the older name, pages forward too (it used to give the newest after it).
    assert.deepEqual(texts(store.history({ sinceCursor: 1, limit: 2 })), ["message 2", "message 3"]);
  } finally {
    store.close();
  }
});

Deno.test("a time is a place in history: the first message that entered it at or after that time", async () => {
  const store = await filled(100);
  try {
    // Message i entered history at T0 + i s (shown, or sent).
    assert.equal(store.cursorAt(T0 + 50_000), 50);
    assert.equal(store.cursorAt(T0 + 50_500), 51);
    assert.equal(store.cursorAt(0), 1);
    assert.equal(store.cursorAt(T0 + 10_000_000), 101, "after the last: one past it");
    assert.deepEqual(texts(store.history({ sinceTime: T0 + 98_000 })), ["message 98", "message 99", "message 100"]);
  } finally {
    store.close();
  }
});

Deno.test("search finds a text anywhere in history, CJK included, newest first, and says when it looked at only part", async () => {
  const words = ["lunch at noon", "吃饭了吗", "the deadline is friday", "服务器 重启了", "50% done_ok"];
  const store = await filled(500, (i) => `${words[i % words.length]} #${i}`);
  try {
    const hit = store.search({ text: "deadline", limit: 3 });
    assert.deepEqual(texts(hit.messages), [
      "the deadline is friday #497",
      "the deadline is friday #492",
      "the deadline is friday #487",
    ]);
    assert.ok(hit.complete);
    assert.deepEqual(texts(store.search({ text: "DEADLINE", limit: 1 }).messages), ["the deadline is friday #497"]);
    assert.equal(store.search({ text: "吃饭了", limit: 1000 }).messages.length, 100);
    assert.equal(store.search({ text: "服务器 重启", before: 10, limit: 5 }).messages.length, 2);
    assert.deepEqual(store.search({ text: "nowhere to be found" }).messages, []);
    // LIKE's wildcards are plain characters here.
    assert.equal(store.search({ text: "50%", limit: 1000 }).messages.length, 100);
    assert.equal(store.search({ text: "%", limit: 1000 }).messages.length, 100);
    assert.equal(store.search({ text: "e_o", limit: 1000 }).messages.length, 100, "done_ok, not 'e' any 'o'");
    assert.equal(store.search({ text: "th_", limit: 1000 }).messages.length, 0);
    // By peer.
    const bobs = store.search({ text: "#", peer: BOB, limit: 1000 }).messages;
    assert.ok(bobs.length === 250 && bobs.every((m) => m.peer === BOB));
    // By group: only what was written to it (not its copies to each member).
    const group = "9".repeat(32);
    store.insertOutgoing({ id: "e".repeat(32), peer: group, text: "the group's deadline", sentAt: T0, group });
    store.insertOutgoing({
      id: "f".repeat(32),
      peer: CAROL,
      text: "the group's deadline",
      sentAt: T0,
      group,
      copyOf: "e".repeat(32),
    });
    assert.deepEqual(texts(store.search({ text: "deadline", group, limit: 10 }).messages), ["the group's deadline"]);
    assert.equal(store.search({ text: "deadline", limit: 1000 }).messages.length, 101);
    // Under three characters the index cannot look it up: the newest messages are scanned.
    const short = store.search({ text: "吃饭", limit: 1000 });
    assert.equal(short.messages.length, 100);
    assert.equal(short.complete, 500 <= SHORT_SEARCH_WINDOW);
  } finally {
    store.close();
  }
});

/**
 * Whole-table reads the store may make, each with why it is bounded. Every
 * other statement must reach its rows through an index or the primary key.
 */
const SCANS_ALLOWED: [RegExp, string][] = [
  [
    /^SELECT \* FROM \(SELECT \* FROM messages WHERE copy_of IS NULL AND \(ref_kind IS NULL OR ref_kind = 'reply'\) ORDER BY cursor DESC LIMIT \?\)/,
    "the newest page: primary-key order, stops at LIMIT (past the hidden copies of group messages, edits and deletions among them)",
  ],
  [/^SELECT id, json FROM groups ORDER BY id$/, "groups, read once at start"],
  [/^SELECT id, name, hostname, address, port, last_seen, protocol FROM peers$/, "known peers, read once at start"],
  [/FROM peers p\s+WHERE NOT EXISTS/, "pruning known peers (hourly; the table is bounded by that pruning)"],
  [/^SELECT id, key, name, first_seen, trust FROM pins$/, "pins, read once at start"],
];

Deno.test("every statement the store prepares reads through an index, bar a few bounded reads at start", async () => {
  const store = await filled(300);
  // A workload that reaches every query the store has.
  store.startGroupCommit(() => {});
  for (const peer of [undefined, BOB]) {
    for (const place of [{}, { before: 100 }, { after: 100 }, { after: 10, before: 20 }, { sinceTime: T0 + 50_000 }]) {
      store.history({ peer, limit: 10, ...place });
    }
    store.search({ text: "message 1", peer });
    store.search({ text: "message 1", peer, before: 200 });
    store.search({ text: "me", peer });
    // With a NUL (which LIKE cannot read past), under and over three characters.
    store.search({ text: "m\0", peer });
    store.search({ text: "message\0 1", peer });
  }
  store.cursorAt(T0 + 40_000);
  store.insertOutgoing({ id: id(1001), peer: CAROL, text: "queued", sentAt: T0 + 1e6, status: "queued" });
  store.insertOutgoing({ id: id(1002), peer: CAROL, text: "queued 2", sentAt: T0 + 1e6, status: "queued" });
  store.markSent(id(1001));
  store.markFailed(id(1002), "gave up");
  store.outbox();
  store.outbox(CAROL);
  store.outboxCounts();
  store.outboxPage(CAROL, 0, 10);
  store.hasMessage(id(1));
  store.message(id(1));
  store.expectedSeq(BOB);
  store.hold({ id: id(2001), peer: BOB, seq: 1000, text: "ahead", sentAt: T0, receivedAt: T0 });
  store.heldMessages();
  store.receiveUnordered({ id: id(2002), peer: BOB, text: "unordered", sentAt: T0, receivedAt: T0 });
  store.rememberPeer({
    id: BOB,
    protocol: "lanchat",
    name: "bob",
    hostname: "h",
    address: "198.18.0.2",
    port: 1,
    lastSeen: T0,
  });
  store.knownPeers();
  store.pruneKnownPeers(T0 - 1, 10_000);
  store.savePins([{ id: BOB, key: "00", name: "bob", firstSeen: T0, trust: "tofu" }]);
  store.pins();
  store.deletePin(BOB);
  store.searchIndexProgress();
  store.indexForSearch(10);
  store.nextIncarnation();
  store.markReadIn(BOB, 500, T0, "\n\u0001lanchat-sealed");
  store.markReadOut(CAROL, id(2), T0);
  store.setting("presence");
  store.saveSetting("presence", "{}");
  store.insertOutgoing({ id: id(3001), peer: id(9), text: "to the group", sentAt: T0, status: "group", group: id(9) });
  store.insertOutgoing({ id: id(3002), peer: CAROL, text: "copy", sentAt: T0, group: id(9), copyOf: id(3001) });
  store.history({ group: id(9), limit: 10 });
  store.history({ group: id(9), after: 10, limit: 10 });
  store.search({ text: "message", group: id(9), limit: 10 });
  store.search({ text: "me", group: id(9), limit: 10 });
  store.copies(id(3001));
  store.saveGroup(id(9), "{}", T0);
  store.groups();
  // Replies, edits and deletions (thread.ts).
  store.release(
    BOB,
    [{
      id: id(4001),
      peer: BOB,
      seq: 1001,
      text: "an edit",
      sentAt: T0,
      receivedAt: T0,
      gapBefore: 0,
      late: false,
      wasHeld: false,
      ref: { kind: "edit", id: id(1) },
    }],
    1002,
    T0,
  );
  store.insertOutgoing({ id: id(4002), peer: CAROL, text: "x", sentAt: T0, ref: { kind: "delete", id: id(1001) } });
  store.amendOwn(id(1001), "delete", "", T0);
  store.shownMessage(id(1));
  store.byGroupMessage(id(9), id(3001));
  store.commit();
  store.flush();
  // Values are bound, never written into the SQL: page sizes do not each add a statement.
  const before = store.preparedStatements().length;
  for (let limit = 1; limit <= 50; limit++) {
    store.history({ limit });
    store.history({ before: 100, limit });
    store.search({ text: "message", limit });
  }
  assert.equal(store.preparedStatements().length, before, "no statement per page size");
  const statements = store.preparedStatements();
  store.close();
  const db = new DatabaseSync(store.path, { readOnly: true });
  try {
    const checked: string[] = [];
    for (const raw of statements) {
      const sql = raw.replace(/\s+/g, " ").trim();
      const plan = (db.prepare(`EXPLAIN QUERY PLAN ${raw}`).all() as { detail: string }[]).map((r) => r.detail);
      if (plan.length === 0) continue; // SAVEPOINT, RELEASE, a plain INSERT: no table is read
      checked.push(sql);
      if (Deno.env.get("SHOWPLAN")) console.log(`${sql}\n  → ${plan.join("; ")}`);
      // A scan of a table (not of an index, a virtual table's index or a subquery's rows).
      const scans = plan.filter((d) => /^SCAN \w+$/.test(d));
      const sorts = plan.filter((d) => /TEMP B-TREE/.test(d));
      const allowed = SCANS_ALLOWED.find(([re]) => re.test(sql));
      if (scans.length > 0) assert.ok(allowed, `${sql} scans a table: ${plan.join("; ")}`);
      // Sorting the rows a LIMIT already bounded (a page read backwards, turned around) is fine.
      if (
        sorts.length > 0 && !/^SELECT \* FROM \(SELECT \* FROM messages .*LIMIT \?\) ORDER BY cursor ASC$/.test(sql)
      ) {
        assert.ok(allowed, `${sql} sorts: ${plan.join("; ")}`);
      }
    }
    // The ones that matter most, by name: what a page, a time and a search cost.
    const planOf = (re: RegExp) => {
      const sql = statements.find((s) => re.test(s.replace(/\s+/g, " ")));
      assert.ok(sql, `no statement like ${re}`);
      return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((r) => r.detail).join("; ");
    };
    assert.match(
      planOf(
        /FROM messages WHERE copy_of IS NULL AND \(ref_kind IS NULL OR ref_kind = 'reply'\) AND cursor < \? ORDER BY cursor DESC/,
      ),
      /USING INTEGER PRIMARY KEY \(rowid<\?\)/,
    );
    assert.match(
      planOf(
        /FROM messages WHERE copy_of IS NULL AND \(ref_kind IS NULL OR ref_kind = 'reply'\) AND cursor > \? ORDER BY cursor ASC/,
      ),
      /USING INTEGER PRIMARY KEY \(rowid>\?\)/,
    );
    assert.match(
      planOf(
        /FROM messages WHERE copy_of IS NULL AND \(ref_kind IS NULL OR ref_kind = 'reply'\) AND peer = \? AND grp IS NULL AND cursor < \?/,
      ),
      /USING INDEX messages_peer \(peer=\? AND cursor<\?\)/,
    );
    assert.match(
      planOf(
        /FROM messages WHERE copy_of IS NULL AND \(ref_kind IS NULL OR ref_kind = 'reply'\) AND grp = \? AND cursor > \?/,
      ),
      /USING INDEX messages_group \(grp=\? AND cursor>\?\)/,
    );
    assert.match(planOf(/SELECT cursor FROM messages WHERE \(CASE/), /USING COVERING INDEX messages_entered/);
    assert.match(
      planOf(/AND peer = \? AND seq > \? ORDER BY seq/),
      /USING INDEX messages_pending \(peer=\? AND seq>\?\)/,
    );
    // The index's MATCH from a cursor back (`<`), each row's message by its key.
    assert.match(
      planOf(/FROM messages_fts_0 f LEFT JOIN messages m .* AND m.text LIKE \? ESCAPE/),
      /^SCAN f VIRTUAL TABLE INDEX \d+:M\d*<; SEARCH m USING INTEGER PRIMARY KEY \(rowid=\?\) LEFT-JOIN$/,
    );
    assert.match(
      planOf(/FROM messages_fts_0 f LEFT JOIN messages m .* AND instr\(lower\(m.text\), \?\) > 0/),
      /^SCAN f VIRTUAL TABLE INDEX \d+:M\d*<; SEARCH m USING INTEGER PRIMARY KEY \(rowid=\?\) LEFT-JOIN$/,
    );
    // A text the index cannot look up: the newest messages, by key.
    assert.match(
      planOf(/FROM messages m WHERE instr\(lower\(m.text\), \?\) > 0 AND m.cursor < \?/),
      /rowid>\? AND rowid<\?/,
    );
    assert.ok(checked.length >= 30, `${checked.length} statements checked`);
  } finally {
    db.close();
  }
});

Deno.test("the write-ahead log stays bounded under a long stream of commits", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "lanchat-wal-" });
  const store = await Store.open(dir);
  try {
    let peak = 0;
    const text = "x".repeat(1000);
    store.startGroupCommit(() => {});
    for (let batch = 0; batch < 60; batch++) {
      for (let i = 0; i < 1000; i++) {
        store.insertOutgoing({ id: id(batch * 1000 + i + 1), peer: BOB, text, sentAt: T0, status: "queued" });
      }
      store.commit();
      peak = Math.max(peak, store.walBytes());
    }
    // 60 MB written; the log was checkpointed by the commits that crossed 4 MiB.
    assert.ok(store.databaseBytes() > 60 * 2 ** 20, `database ${store.databaseBytes()}`);
    assert.ok(peak <= WAL_FILE_LIMIT + 8 * 2 ** 20, `WAL peaked at ${peak} bytes`);
  } finally {
    store.close();
  }
});

Deno.test("an outbox of 5,000 for an absent peer is kept on disk, a window of it in memory, delivered in order, and forgotten as acked", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "lanchat-outbox-" });
  let store = await Store.open(dir);
  const self = { id: "a".repeat(32), incarnation: 1 };
  let m = new Messaging({ self, store, wall: (t) => T0 + t });
  for (let i = 0; i < 5000; i++) m.send(BOB, `queued ${i}`, 0);
  assert.equal(m.pendingCount(), 5000);
  assert.ok(m.inMemory() <= OUTBOX_WINDOW, `${m.inMemory()} in memory`);
  store.close();
  // After a restart: the count from disk, a window in memory.
  store = await Store.open(dir);
  m = new Messaging({ self, store, wall: (t) => T0 + t });
  assert.equal(m.pendingCount(), 5000);
  assert.equal(m.inMemory(), OUTBOX_WINDOW);
  // Bob appears: everything goes, in order, acked as it comes; memory never holds more than the window.
  m.peerUp(BOB, { address: "198.18.0.12", port: 47475 }, 1);
  const seqs: number[] = [];
  for (let t = 1; m.pendingCount() > 0 && t < 100_000; t++) {
    for (const x of m.drainTransmits()) {
      const p = decodeMsg(x.bytes);
      if (!p) continue;
      seqs.push(p.seq);
      m.handlePacket(
        {
          kind: "ack",
          id: BOB,
          incarnation: 1,
          messageId: p.messageId,
          count: p.count,
          received: new Uint8Array(0),
          done: true,
        },
        { address: "198.18.0.12", port: 47475 },
        t,
      );
    }
    assert.ok(m.inMemory() <= OUTBOX_WINDOW);
    // Acknowledged messages do not linger: few entries, and none keeps its bytes.
    const r = m.retained();
    assert.ok(r.entries <= 2 * OUTBOX_WINDOW + 64, `${r.entries} entries in the queue`);
    assert.ok(r.bytes <= OUTBOX_WINDOW * 200, `${r.bytes} bytes held for ${m.inMemory()} messages`);
    m.handleTimeout(t);
  }
  assert.equal(m.pendingCount(), 0);
  assert.deepEqual(seqs, Array.from({ length: 5000 }, (_, i) => i + 1));
  store.close();
});

function decodeMsg(bytes: Uint8Array) {
  const d = decodePacket(bytes);
  return d.ok && d.value.kind === "msg" ? d.value : undefined;
}

Deno.test("a database made by main before schema versions opens, migrates in place and keeps every row", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "lanchat-migrate-" });
  Deno.copyFileSync(new URL("../fixtures/lanchat_v0_4307208.db", import.meta.url), `${dir}/lanchat.db`);
  const store = await Store.open(dir);
  try {
    assert.equal(store.upgraded?.from, 0, "the upgrade is reported (the daemon logs it)");
    assert.equal(store.upgraded?.to, SCHEMA_VERSION);
    assert.equal(store.history({ limit: 1000 }).length, 51);
    assert.equal(store.outbox().length, 10, "the outbox of the old database is intact");
    assert.deepEqual([...store.outboxCounts()], [[BOB, 10]]);
    assert.equal(store.heldMessages().length, 1);
    assert.equal(store.knownPeers().length, 2);
    assert.equal(store.pins().length, 1);
    assert.equal(store.expectedSeq(BOB), 21);
    assert.equal(store.nextIncarnation(), 3);
    // Old history is indexed for search after the upgrade, a little at a time.
    assert.deepEqual(store.searchIndexProgress(), { done: false, indexed: 0, total: 51 });
    assert.equal(store.search({ text: "deadline" }).complete, false);
    while (!store.indexForSearch(20).done) { /* steps */ }
    const found = store.search({ text: "deadline" });
    assert.ok(found.complete);
    assert.equal(found.messages.length, 20);
    assert.equal(store.search({ text: "你好，世界" }).messages.length, 1);
    // A message stored now is searchable at once.
    store.insertOutgoing({ id: id(9999), peer: BOB, text: "fresh after the upgrade", sentAt: T0, status: "queued" });
    assert.equal(store.search({ text: "fresh after" }).messages.length, 1);
  } finally {
    store.close();
  }
  // Its version is recorded; opening it again changes nothing.
  const again = await Store.open(dir);
  again.close();
  assert.equal(again.upgraded, undefined);
  const db = new DatabaseSync(`${dir}/lanchat.db`, { readOnly: true });
  assert.equal((db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version, SCHEMA_VERSION);
  db.close();
});

Deno.test("a database from a newer lanchat is refused with words, not opened", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "lanchat-newer-" });
  const fresh = await Store.open(dir);
  fresh.close();
  assert.equal(fresh.upgraded, undefined, "a new database is not an upgrade");
  const db = new DatabaseSync(`${dir}/lanchat.db`);
  db.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
  db.close();
  await assert.rejects(() => Store.open(dir), /schema is version \d+, newer than this lanchat's .*upgrade lanchat/);
});

Deno.test("search walks back across the index's partitions of 65,536 messages, newest first", async () => {
  const n = SEARCH_PARTITION + 5000;
  const store = await filled(n, (i) => i === 10 || i === n - 1 || i === SEARCH_PARTITION ? `needle ${i}` : `hay ${i}`);
  try {
    assert.deepEqual(texts(store.search({ text: "needle" }).messages), [
      `needle ${n - 1}`,
      `needle ${SEARCH_PARTITION}`,
      "needle 10",
    ]);
    assert.deepEqual(texts(store.search({ text: "needle", before: SEARCH_PARTITION }).messages), ["needle 10"]);
    assert.deepEqual(texts(store.search({ text: "needle", limit: 1 }).messages), [`needle ${n - 1}`]);
    // Page by page with `before`, as the API's next link does.
    const seen: string[] = [];
    let before: number | undefined;
    while (true) {
      const page = store.search({ text: "hay 4999", before, limit: 3 }).messages;
      if (page.length === 0) break;
      seen.push(...texts(page));
      before = page.at(-1)!.cursor;
    }
    assert.deepEqual(seen, [
      "hay 49999",
      "hay 49998",
      "hay 49997",
      "hay 49996",
      "hay 49995",
      "hay 49994",
      "hay 49993",
      "hay 49992",
      "hay 49991",
      "hay 49990",
      "hay 4999",
    ]);
  } finally {
    store.close();
  }
});
