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
