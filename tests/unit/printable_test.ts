import assert from "node:assert/strict";
import { printable, printableLine } from "../../src/common/printable.ts";

Deno.test("printable shows control characters as write(1) does instead of letting the terminal obey them", () => {
  const rows: [string, string, string][] = [
    // [input, multi-line form, one-line form]
    ["plain text, 中文, emoji 😀", "plain text, 中文, emoji 😀", "plain text, 中文, emoji 😀"],
    ["\x1b[2J\x1b[Hgotcha", "^[[2J^[[Hgotcha", "^[[2J^[[Hgotcha"],
    ["\x1b]0;owned\x07title", "^[]0;owned^Gtitle", "^[]0;owned^Gtitle"],
    ["bell\x07", "bell^G", "bell^G"],
    ["line one\nline two\tend", "line one\nline two\tend", "line one^Jline two^Iend"],
    ["carriage\rreturn", "carriage^Mreturn", "carriage^Mreturn"],
    ["nul\0del\x7f", "nul^@del^?", "nul^@del^?"],
    ["c1 csi \u009b31m red", "c1 csi <U+009B>31m red", "c1 csi <U+009B>31m red"],
    ["\u202eevil\u202c", "<U+202E>evil<U+202C>", "<U+202E>evil<U+202C>"],
  ];
  for (const [input, multi, line] of rows) {
    assert.equal(printable(input), multi, JSON.stringify(input));
    assert.equal(printableLine(input), line, JSON.stringify(input));
    // Nothing a terminal acts on is left.
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(printableLine(input), /[\u0000-\u001f\u007f-\u009f\u202a-\u202e]/);
  }
});

Deno.test("characters that print as nothing are shown, so a name cannot look like another; joiners in emoji stay", () => {
  assert.equal(printableLine("bob\u200b"), "bob<U+200B>");
  assert.equal(printableLine("\ufeffbob\u2060"), "<U+FEFF>bob<U+2060>");
  assert.equal(printableLine("b\u3164ob\u115f"), "b<U+3164>ob<U+115F>");
  assert.equal(printable("hi\u200bthere\nsecond line"), "hi<U+200B>there\nsecond line");
  const family = "\u{1F468}\u200d\u{1F469}\u200d\u{1F467}";
  assert.equal(printableLine(family), family, "a zero-width joiner inside an emoji sequence is kept");
  assert.equal(printableLine("می\u200cخواهم"), "می\u200cخواهم", "a zero-width non-joiner in Persian is kept");
});
