/**
 * Search takes its text literally and bounds its work (the hostile tests of
 * issue 26: `%%%` froze the daemon for minutes, `\0` found every message):
 * LIKE's wildcards and escape, FTS5's query syntax, NUL and other control
 * characters are plain characters; whatever the text, one request looks at
 * {@link SEARCH_SCAN_LIMIT} messages the index offers at most, and says
 * where to go on. Checked against a plain `includes` over every message.
 */
import assert from "node:assert/strict";
import { SEARCH_SCAN_LIMIT, Store } from "../../src/storage/store.ts";
import { trigramQuery } from "../../src/storage/search.ts";

const BOB = "b".repeat(32);
const CAROL = "c".repeat(32);
const DAVE = "d".repeat(32);
const id = (n: number) => n.toString(16).padStart(32, "0");
const T0 = 1_800_000_000_000;
const lower = (s: string) => s.replace(/[A-Z]/g, (c) => c.toLowerCase());

/** A store with these texts, sent in turn to bob and carol (cursor i + 1 for texts[i]). */
async function storeOf(texts: string[]): Promise<Store> {
  const store = await Store.open(Deno.makeTempDirSync({ prefix: "lanchat-search-" }));
  store.startGroupCommit(() => {});
  texts.forEach((text, i) =>
    store.insertOutgoing({ id: id(i + 1), peer: i % 2 ? CAROL : BOB, text, sentAt: T0 + i, status: "sent" })
  );
  store.commit();
  return store;
}

/**
 * The cursors of every message of `texts` (newest first) that contains `q`,
 * case ignored for A–Z: what search must answer. (Cursors, not texts:
 * node:sqlite reads a text back only up to a NUL.)
 */
function oracle(texts: (string | undefined)[], q: string): number[] {
  return texts.flatMap((t, i) => t !== undefined && lower(t).includes(lower(q)) ? [i + 1] : []).reverse();
}

Deno.test("LIKE's wildcards and escape, FTS5's syntax and control characters are plain characters in a search", async () => {
  const special = [
    "100% sure",
    "a_b c",
    "under___score",
    "%%% triple",
    "back\\slash and \\\\ two",
    'say "hi" now',
    "a*b NEAR(x y) col: AND OR NOT ^start",
    "tab\there, line\nbreak, bell\u0007",
    "x\u0000y with a NUL",
    "alpha\u0000zzz end",
    "Ünïcödé ÄÖÜ äöü",
  ];
  // Filler that every wildcard would match if it were one.
  const texts = [...Array.from({ length: 300 }, (_, i) => `plain filler ${i} abc`), ...special, "lunch at noon, alpha"];
  const store = await storeOf(texts);
  try {
    const queries = [
      "%",
      "%%",
      "%%%",
      "%%%%%%",
      "_",
      "__",
      "___",
      "a_b",
      "a%b",
      "_b c",
      "\\",
      "\\\\",
      "\\s",
      '"',
      '"hi"',
      'say "',
      "a*b",
      "*",
      "NEAR(",
      "col:",
      "AND",
      "^start",
      "\t",
      "\there",
      "\n",
      "bell\u0007",
      "\u0000",
      "x\u0000y",
      "X\u0000Y",
      "alpha\u0000zzz",
      "alpha\u0000",
      "a\u0000b\u0000c",
      "ÄÖÜ",
      "äöü",
      "ünï",
      "ABC",
      "filler 29",
    ];
    for (const q of queries) {
      const r = store.search({ text: q, limit: 1000 });
      assert.deepEqual(r.messages.map((m) => m.cursor), oracle(texts, q), JSON.stringify(q));
      assert.equal(r.next, undefined, JSON.stringify(q));
    }
    // Case is ignored for A–Z only, as documented: "ÄÖÜ" is not "äöü" (though the index folds them alike).
    assert.deepEqual(store.search({ text: "äöü" }).messages.map((m) => m.text), ["Ünïcödé ÄÖÜ äöü"]);
    assert.deepEqual(store.search({ text: "ünÏ" }).messages, []);
  } finally {
    store.close();
  }
});

Deno.test("a deleted message is found by no search, a NUL or a wildcard included", async () => {
  const texts = ["keep x\u0000y", "gone x\u0000y %%%", "gone too ___"];
  const store = await storeOf(texts);
  try {
    store.amendOwn(id(2), "delete", "", T0 + 10);
    store.amendOwn(id(3), "delete", "", T0 + 11);
    for (const q of ["\u0000", "x\u0000y", "%%%", "___", "%", "_", "gone"]) {
      assert.deepEqual(
        store.search({ text: q }).messages.map((m) => m.cursor),
        oracle([texts[0]], q),
        JSON.stringify(q),
      );
    }
  } finally {
    store.close();
  }
});

Deno.test("one search looks at SEARCH_SCAN_LIMIT messages the index offers at most, then says where to go on", async () => {
  const n = SEARCH_SCAN_LIMIT + 1000;
  // Every message has the trigrams of "äöü common" (the index folds case beyond A–Z); one in 1,000 contains it.
  const texts = Array.from({ length: n }, (_, i) => `${(i + 1) % 1000 ? "ÄÖÜ" : "äöü"} common ${i + 1}`);
  const hits = [6000, 5000, 4000, 3000, 2000, 1000].filter((c) => c <= n);
  const store = await storeOf(texts);
  try {
    // The first request stops after SEARCH_SCAN_LIMIT of what the index offers, with what it found among them.
    const first = store.search({ text: "äöü common" });
    const looked = n - SEARCH_SCAN_LIMIT + 1; // the oldest message it looked at
    assert.deepEqual(first.messages.map((m) => m.cursor), hits.filter((c) => c >= looked));
    assert.deepEqual([first.complete, first.partial, first.next], [false, "scanned", looked]);
    const rest = store.search({ text: "äöü common", before: first.next });
    assert.deepEqual(rest.messages.map((m) => m.cursor), hits.filter((c) => c < looked));
    assert.deepEqual([rest.complete, rest.partial, rest.next], [true, undefined, undefined], "to the start of history");
    // A peer with no message: every message the index offers is someone else's.
    const dave = store.search({ text: "common", peer: DAVE });
    assert.deepEqual([dave.messages.length, dave.partial, dave.next], [0, "scanned", looked]);
    // Going on by `next` finds every hit once, in order, whether a full page or the limit stopped a request.
    const found: number[] = [];
    let before: number | undefined;
    let requests = 0;
    do {
      const r = store.search({ text: "äöü common", before, limit: 2 });
      found.push(...r.messages.map((m) => m.cursor));
      before = r.next;
      requests++;
    } while (before !== undefined && requests < 20);
    assert.deepEqual(found, hits);
    assert.ok(requests >= 4, `${requests} requests`);
    // A full page stops there, complete as far as it went; the next one goes on from its last message.
    const page = store.search({ text: "common", limit: 3 });
    assert.deepEqual(page.messages.map((m) => m.cursor), [n, n - 1, n - 2]);
    assert.deepEqual([page.complete, page.partial, page.next], [true, undefined, n - 2]);
  } finally {
    store.close();
  }
});

Deno.test("the index's query for a text is its trigrams, each quoted, none across a NUL", () => {
  assert.equal(trigramQuery("ab"), undefined);
  assert.equal(trigramQuery("a\u0000bc"), undefined);
  assert.equal(trigramQuery("%%%"), '"%%%"');
  assert.equal(trigramQuery("ABCD"), '"abc" "bcd"', "A–Z lowered, as the index folds them");
  assert.equal(trigramQuery('a"b'), '"a""b"');
  assert.equal(trigramQuery("aaaaaa"), '"aaa"');
  assert.equal(trigramQuery("abc\u0000def"), '"abc" "def"');
  assert.equal(trigramQuery("吃什么呢"), '"吃什么" "什么呢"');
  assert.equal(trigramQuery("😀😁😂"), '"😀😁😂"', "characters, not UTF-16 units");
  const long = trigramQuery("the quick brown fox jumps over the lazy dog".repeat(20))!;
  const grams = long.split('" "');
  assert.equal(grams.length, 12);
  assert.equal(grams[0], '"the');
});
