/**
 * The one rule of which characters are shown (`<U+00AD>`) rather than
 * printed, web/hidden.js, as the terminal (src/common/printable.ts) and the
 * page (web/text.js) apply it: every character that prints as nothing
 * between two Latin letters is shown, joiners are kept where they join
 * (emoji, Persian, Indic), tags only in an emoji flag, variation selectors
 * only after a character that takes one; and both sides agree on all of it.
 */
import assert from "node:assert/strict";
import { printable, printableLine } from "../../src/common/printable.ts";
import { printable as pagePrintable, printableLine as pagePrintableLine } from "../../web/text.js";

const DI = /\p{Default_Ignorable_Code_Point}/u;
/** Default-ignorable characters kept between letters: Mongolian free variation selectors, which Mongolian needs. */
const KEPT_IGNORABLE = new Set([0x180b, 0x180c, 0x180d, 0x180f]);

Deno.test("every default-ignorable character between two Latin letters is shown", () => {
  const missed: string[] = [];
  for (let cp = 0; cp <= 0xe0fff; cp++) {
    if ((cp >= 0xd800 && cp <= 0xdfff) || (cp > 0x1ffff && cp < 0xe0000)) continue;
    const c = String.fromCodePoint(cp);
    if (!DI.test(c) || KEPT_IGNORABLE.has(cp)) continue;
    const name = `bo${c}b`;
    const hex = cp.toString(16).toUpperCase().padStart(4, "0");
    if (printableLine(name) !== `bo<U+${hex}>b`) missed.push(`U+${hex}`);
  }
  assert.deepEqual(missed, []);
});

Deno.test("joiners are kept where they join and shown where they join nothing", () => {
  const kept = [
    "\u{1F468}\u200d\u{1F469}\u200d\u{1F467}", // family
    "\u{1F3F3}\ufe0f\u200d\u{1F308}", // rainbow flag: the emoji selector before the joiner
    "\u{1F469}\u{1F3FD}\u200d\u{1F4BB}", // a skin tone before the joiner
    "\u{1F441}\ufe0f\u200d\u{1F5E8}\ufe0f",
    "می\u200cخواهم", // Persian
    "क्\u200dष", // Devanagari: a joiner after the virama
    "ক্\u200cষ", // Bengali
    "ലക്ഷ്\u200dമി", // Malayalam
  ];
  for (const s of kept) {
    assert.equal(printableLine(s), s, JSON.stringify(s));
    assert.equal(printable(s), s, JSON.stringify(s));
  }
  const shown: [string, string][] = [
    ["bo\u200db", "bo<U+200D>b"],
    ["bo\u200cb", "bo<U+200C>b"],
    ["\u200dbob", "<U+200D>bob"],
    ["bob\u200c", "bob<U+200C>"],
    ["\u{1F600}\u200db", "\u{1F600}<U+200D>b"], // an emoji then a Latin letter
    ["b\u200d\u{1F600}", "b<U+200D>\u{1F600}"],
    ["می\u200cb", "می<U+200C>b"],
    ["\u{1F468}\u200d\u200d\u{1F469}", "\u{1F468}<U+200D><U+200D>\u{1F469}"], // a joiner next to a joiner
  ];
  for (const [s, want] of shown) assert.equal(printableLine(s), want, JSON.stringify(s));
});

Deno.test("tag characters are kept only in an emoji flag tag sequence", () => {
  const tags = (code: string) => [...code].map((c) => String.fromCodePoint(0xe0000 + c.charCodeAt(0))).join("");
  const england = `\u{1F3F4}${tags("gbeng")}\u{E007F}`;
  assert.equal(printableLine(`go ${england}!`), `go ${england}!`);
  assert.equal(printableLine(`bob${tags("b")}`), "bob<U+E0062>");
  assert.equal(
    printableLine(`bob${tags("gbeng")}\u{E007F}`),
    "bob<U+E0067><U+E0062><U+E0065><U+E006E><U+E0067><U+E007F>",
  );
  // A flag with no cancel tag, or a code that is not a subdivision's, is not a flag.
  assert.equal(printableLine(`\u{1F3F4}${tags("gbeng")}`), "\u{1F3F4}<U+E0067><U+E0062><U+E0065><U+E006E><U+E0067>");
  assert.equal(printableLine(`\u{1F3F4}${tags("g")}\u{E007F}`), "\u{1F3F4}<U+E0067><U+E007F>");
  assert.equal(printableLine(`\u{1F3F4}${tags("gb-en")}\u{E007F}`).includes("<U+E002D>"), true);
  assert.equal(printableLine("\u{E0001}en"), "<U+E0001>en"); // the language tag
});

Deno.test("variation selectors are kept after what takes them and shown after a Latin letter", () => {
  for (
    const s of ["\u2764\ufe0f", "1\ufe0f\u20e3", "#\ufe0f\u20e3", "\u845b\u{E0100}", "\u2205\ufe00", "\u{1F600}\ufe0f"]
  ) {
    assert.equal(printableLine(s), s, JSON.stringify(s));
  }
  assert.equal(printableLine("bob\ufe0f"), "bob<U+FE0F>");
  assert.equal(printableLine("bob\u{E0100}"), "bob<U+E0100>");
  assert.equal(printableLine("\ufe0fbob"), "<U+FE0F>bob");
  assert.equal(printableLine("\u2764\ufe0f\ufe0f"), "\u2764\ufe0f<U+FE0F>");
  assert.equal(printableLine("\u0431\ufe0e"), "\u0431<U+FE0E>"); // Cyrillic
});

Deno.test("the terminal and the page show the same characters, the same way, in every context", () => {
  const contexts = ["a\0b", "\u{1F468}\0\u{1F469}", "م\0خ", "\0", "\u{1F3F4}\0\u{E007F}", "\n\0\t"];
  const differ: string[] = [];
  for (let cp = 0; cp <= 0xe0fff; cp++) {
    if ((cp >= 0xd800 && cp <= 0xdfff) || (cp > 0x2ffff && cp < 0xe0000)) continue;
    const c = String.fromCodePoint(cp);
    for (const ctx of contexts) {
      const s = ctx.replace("\0", c);
      if (printableLine(s) !== pagePrintableLine(s) || printable(s) !== pagePrintable(s)) {
        differ.push(JSON.stringify(s));
      }
    }
    if (differ.length > 10) break;
  }
  assert.deepEqual(differ, []);
});

Deno.test("text with nothing hidden comes back as it is", () => {
  const s = "plain text, 中文, עברית, emoji 😀👍🏽, Ελληνικά, русский";
  assert.equal(printableLine(s), s);
  assert.equal(pagePrintableLine(s), s);
  assert.equal(pagePrintableLine(undefined), "");
});
