// The one rule, for the terminal (src/common/printable.ts imports this file) and the page (web/text.js), of which
// characters in a peer's text are shown as `^[` or `<U+202E>` instead of printed: controls, and the characters that
// reorder text or print as nothing, so that `bob` and `bo<U+00AD>b` cannot look alike. No DOM here: Deno loads it too.
//
// - Always shown: C0 and C1 controls and DEL (newline and tab kept in multi-line text); bidirectional marks,
//   embeddings, overrides and isolates (U+061C, U+200E/F, U+202A–E, U+2066–9); the characters that print as nothing:
//   soft hyphen U+00AD, combining grapheme joiner U+034F, Hangul fillers (U+115F/60, U+3164, U+FFA0), Khmer inherent
//   vowels U+17B4/5, the Mongolian vowel separator U+180E, zero-width space U+200B, word joiner, invisible
//   operators and the deprecated format characters (U+2060–6F), the byte-order mark U+FEFF, U+FFF0–8, shorthand
//   format controls (U+1BCA0–3), musical format controls (U+1D173–A), the language tag U+E0001 and the unassigned
//   ignorables of plane 14. That is every default-ignorable character but those below and the Mongolian free
//   variation selectors (U+180B–D, U+180F), which Mongolian writing needs.
// - Zero-width joiner and non-joiner (U+200D, U+200C) are kept where they join: between two emoji (a family, a rainbow
//   flag) or between two letters of a script that uses them (Arabic, Persian, Syriac, N'Ko, Mongolian, the Indic
//   scripts, Sinhala, Tibetan, Myanmar, Khmer); anywhere else (between Latin letters, at either end) they are shown.
// - Tag characters (U+E0020–7F) are kept only in an emoji flag tag sequence (🏴 + a subdivision code in tag letters +
//   U+E007F, as England's flag); anywhere else they are shown.
// - Variation selectors (U+FE00–F, U+E0100–EF) are shown after a Latin, Greek or Cyrillic letter, a space, another
//   variation selector or at the start (no such character takes one); elsewhere (emoji, CJK, math) they are kept.

/** Shown wherever they are (see above), as a character-class body. */
const ALWAYS = String.raw`\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200e\u200f\u202a-\u202e` +
  String.raw`\u2060-\u206f\u3164\ufeff\uffa0\ufff0-\ufff8\u{1bca0}-\u{1bca3}\u{1d173}-\u{1d17a}` +
  String.raw`\u{e0000}-\u{e001f}\u{e0080}-\u{e00ff}\u{e01f0}-\u{e0fff}`;

/** Where a joiner joins: emoji (with a skin tone or the emoji selector before it), or a script that uses joiners. */
const JOINING_SCRIPTS = ["Arab", "Syrc", "Nkoo", "Mong", "Deva", "Beng", "Guru", "Gujr", "Orya", "Taml", "Telu", "Knda"]
  .concat(["Mlym", "Sinh", "Tibt", "Mymr", "Khmr", "Phag", "Mani", "Phlp", "Adlm", "Rohg", "Yezi"])
  .map((s) => String.raw`\p{scx=${s}}`).join("");
// Each of these is tried on one character alone, never anchored with `$`: V8 (Deno and Chromium) misses an astral
// character matched by a class before a `$` (`/[\u{1F468}]$/u` does not match "x👨").
const JOINS_AFTER = new RegExp(String.raw`[\p{Extended_Pictographic}\p{Emoji_Modifier}\ufe0f${JOINING_SCRIPTS}]`, "u");
const JOINS_BEFORE = new RegExp(String.raw`[\p{Extended_Pictographic}${JOINING_SCRIPTS}]`, "u");

/** A character that never takes a variation selector (or a selector's run having started already). */
const NO_VARIATION = /[\p{Script=Latin}\p{Script=Greek}\p{Script=Cyrillic}\s\ufe00-\ufe0f\u{e0100}-\u{e01ef}]/u;

/** An emoji flag tag sequence: a black flag, a subdivision code (2 letters, 1–4 letters or digits), cancel tag. */
const FLAG_TAGS = String.raw`\u{1f3f4}[\u{e0061}-\u{e007a}]{2}[\u{e0030}-\u{e0039}\u{e0061}-\u{e007a}]{1,4}\u{e007f}`;

/** Everything that may be shown: a flag tag sequence (kept whole, matched first), or one candidate character. */
function candidates(oneLine) {
  const controls = oneLine
    ? String.raw`\u0000-\u001f\u007f-\u009f`
    : String.raw`\u0000-\u0008\u000b-\u001f\u007f-\u009f`;
  return new RegExp(
    `${FLAG_TAGS}|[${controls}${ALWAYS}\\u200c\\u200d\\u{e0020}-\\u{e007f}\\ufe00-\\ufe0f\\u{e0100}-\\u{e01ef}]`,
    "gu",
  );
}
const MULTILINE = candidates(false);
const ONE_LINE = candidates(true);
const CONTROL_OR_ALWAYS = new RegExp(`[\\u0000-\\u001f\\u007f-\\u009f${ALWAYS}]`, "u");

/** The character (code point) of `s` that ends at `index`, or "" at the start. */
function charBefore(s, index) {
  if (index === 0) return "";
  const low = s.charCodeAt(index - 1);
  const pair = index >= 2 && low >= 0xdc00 && low <= 0xdfff && s.charCodeAt(index - 2) >= 0xd800 &&
    s.charCodeAt(index - 2) <= 0xdbff;
  return s.slice(index - (pair ? 2 : 1), index);
}

/** Whether the candidate `c` at `index` of `s` is kept as it is (a joiner that joins, a selector that selects). */
function kept(s, c, index) {
  if (c.length > 2) return true; // a flag tag sequence
  if (CONTROL_OR_ALWAYS.test(c)) return false;
  const before = charBefore(s, index);
  if (c === "\u200c" || c === "\u200d") {
    const after = String.fromCodePoint(s.codePointAt(index + 1) ?? 0x20);
    return JOINS_AFTER.test(before) && JOINS_BEFORE.test(after);
  }
  const code = c.codePointAt(0);
  if (code >= 0xe0020 && code <= 0xe007f) return false; // a tag outside a flag
  return before !== "" && !NO_VARIATION.test(before); // a variation selector
}

/** How a hidden character is shown: C0 controls as `^[` and DEL as `^?` (as write(1) does), the others as `<U+202E>`. */
export function shownAs(c) {
  const code = c.codePointAt(0) ?? 0;
  if (code < 0x20) return "^" + String.fromCharCode(code + 0x40);
  if (code === 0x7f) return "^?";
  return `<U+${code.toString(16).toUpperCase().padStart(4, "0")}>`;
}

/**
 * The characters of `s` to show rather than print, in order: where each is (a UTF-16 index), its length (1 or 2)
 * and how it is shown. `oneLine` shows newlines and tabs too.
 *
 * @param {string} s
 * @param {boolean} oneLine
 * @returns {{ index: number, length: number, shown: string }[]}
 */
export function hiddenIn(s, oneLine) {
  const out = [];
  for (const m of s.matchAll(oneLine ? ONE_LINE : MULTILINE)) {
    const index = m.index ?? 0;
    if (!kept(s, m[0], index)) out.push({ index, length: m[0].length, shown: shownAs(m[0]) });
  }
  return out;
}

/**
 * `s` with every character that {@link hiddenIn} finds replaced by how it is shown.
 *
 * @param {string} s
 * @param {boolean} oneLine
 * @returns {string}
 */
export function reveal(s, oneLine) {
  let out = "";
  let at = 0;
  for (const h of hiddenIn(s, oneLine)) {
    out += s.slice(at, h.index) + h.shown;
    at = h.index + h.length;
  }
  return at === 0 ? s : out + s.slice(at);
}
