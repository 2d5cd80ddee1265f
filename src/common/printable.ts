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
 *   print as nothing at all (zero-width space, soft hyphen, combining
 *   grapheme joiner, word joiner and invisible operators, the byte-order
 *   mark, Hangul fillers, tag characters outside an emoji flag, …: `bob`,
 *   `bob<U+200B>` and `bo<U+00AD>b` are names that must not look alike)
 *   become `<U+009B>`. The zero-width joiner and non-joiner stay where they
 *   join (emoji sequences, Persian and Indic writing), and are shown
 *   elsewhere (between Latin letters).
 *
 * The rule is one file, web/hidden.js, which the web page uses too, so the
 * terminal and the page show the same characters.
 *
 * JSON output never goes through this: it is exact, and JSON escapes them.
 *
 * @module
 */

import { reveal } from "../../web/hidden.js";

/** `s` with every control character made visible; newlines and tabs are kept. */
export function printable(s: string): string {
  return reveal(s, false);
}

/** `s` for one line (a table cell, a name): newlines and tabs made visible too. */
export function printableLine(s: string): string {
  return reveal(s, true);
}
