/**
 * Text from peers (messages, names, hostnames, file names) made safe to
 * print on a terminal: control characters are shown, not obeyed, as
 * `write(1)` and `cat -v` show them. A message with `ESC[2J` prints `^[[2J`
 * instead of clearing the screen; an OSC sequence cannot retitle the window;
 * BEL does not ring.
 *
 * - C0 controls and DEL become caret notation: ESC `^[`, BEL `^G`, CR `^M`,
 *   DEL `^?` (newline and tab are kept in multi-line text);
 * - C1 controls (U+0080–U+009F, among them the one-character CSI U+009B),
 *   the invisible characters that reorder text (bidirectional overrides
 *   and isolates, which can make a name read as another), and the ones that
 *   print as nothing at all (zero-width space, word joiner and invisible
 *   operators, the byte-order mark, Hangul fillers, the Mongolian vowel
 *   separator: `bob` and `bob<U+200B>` are two names that must not look
 *   alike) become `<U+009B>`. The zero-width joiner and non-joiner stay:
 *   emoji sequences and Persian and Indic writing need them.
 *
 * JSON output never goes through this: it is exact, and JSON escapes them.
 *
 * @module
 */

/** Characters that reorder text or print as nothing (see above), as a character-class body. */
const INVISIBLE = String
  .raw`\u061c\u115f\u1160\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\u3164\ufeff\uffa0`;
const UNSAFE_MULTILINE = new RegExp(String.raw`[\u0000-\u0008\u000b-\u001f\u007f-\u009f${INVISIBLE}]`, "g");
const UNSAFE_LINE = new RegExp(String.raw`[\u0000-\u001f\u007f-\u009f${INVISIBLE}]`, "g");

function show(c: string): string {
  const code = c.charCodeAt(0);
  if (code < 0x20) return "^" + String.fromCharCode(code + 0x40);
  if (code === 0x7f) return "^?";
  return `<U+${code.toString(16).toUpperCase().padStart(4, "0")}>`;
}

/** `s` with every control character made visible; newlines and tabs are kept. */
export function printable(s: string): string {
  return s.replace(UNSAFE_MULTILINE, show);
}

/** `s` for one line (a table cell, a name): newlines and tabs made visible too. */
export function printableLine(s: string): string {
  return s.replace(UNSAFE_LINE, show);
}
