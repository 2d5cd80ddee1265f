/**
 * Hostile test of issue 26's "characters that print as nothing are shown"
 * (found by an outside tester): the set shown (printable.ts, and the page's
 * web/text.js) misses several that print as nothing between Latin letters:
 * U+00AD soft hyphen, U+034F combining grapheme joiner, U+200C/U+200D
 * joiners (kept for emoji and Persian, also where they join nothing), tag
 * characters U+E0020–E007F outside an emoji flag. With any of them a peer is
 * listed as `bob` beside the real bob (checked with real daemons: `lanchat
 * peers` showed six rows named bob), and since its name is not the pinned
 * name, byte for byte, the new key is not flagged `KEY CHANGED`.
 */
import assert from "node:assert/strict";
import { printableLine } from "../../src/common/printable.ts";
import { printableLine as pagePrintableLine } from "../../web/text.js";

Deno.test("a name that would print as bob but is not bob is shown with its hidden characters, in the terminal and the page", () => {
  const lookalikes = ["bo\u00adb", "bo\u034fb", "bo\u200cb", "bo\u200db", "bob\u{e0020}", "bob\u{e0062}"];
  for (const name of lookalikes) {
    for (
      const [where, shown] of [["printable.ts", printableLine(name)], [
        "web/text.js",
        String(pagePrintableLine(name)),
      ]] as const
    ) {
      assert.notEqual(shown, name, `${where} shows ${JSON.stringify(name)} as it is: it reads "bob"`);
      assert.match(shown, /<U\+[0-9A-F]{4,6}>/, `${where}: ${JSON.stringify(shown)}`);
    }
  }
  // What the team keeps, and must go on keeping: joiners where they join.
  const family = "\u{1F468}\u200d\u{1F469}\u200d\u{1F467}";
  assert.equal(printableLine(family), family);
  assert.equal(printableLine("می\u200cخواهم"), "می\u200cخواهم");
});
