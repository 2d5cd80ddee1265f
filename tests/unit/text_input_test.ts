/** Strict UTF-8 for what a person gives the CLI (text_input.ts), and the one duration grammar (options.ts). */
import assert from "node:assert/strict";
import {
  checkedArgs,
  codecFor,
  inputLines,
  invalidUtf8At,
  readStdinText,
  textOrStdin,
  UTF8,
} from "../../src/cli/text_input.ts";
import { EXIT, outcome, parseDurationIn, parseWaitSeconds, UsageError } from "../../src/cli/options.ts";
import { apiErrorWords, fieldWords, sizeWords } from "../../src/cli/api_words.ts";
import { ApiError } from "../../src/cli/client.ts";
import { groupNameKey } from "../../src/protocol/groups.ts";

const bytes = (...b: (number | string)[]) =>
  new Uint8Array(b.flatMap((x) => typeof x === "string" ? [...new TextEncoder().encode(x)] : [x]));

function streamOf(...chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      for (const chunk of chunks) c.enqueue(chunk);
      c.close();
    },
  });
}

Deno.test("the first byte that is not UTF-8 is found where iconv reports it: lone, cut short, overlong, surrogate, past U+10FFFF", () => {
  const rows: [Uint8Array, number][] = [
    [bytes("café"), -1],
    [bytes("吃什么 🎉"), -1],
    [bytes(), -1],
    [bytes("caf", 0xe9), 3], // latin1 é
    [bytes("caf", 0xe9, "s"), 3], // a lead byte without its continuation
    [bytes(0x80, "x"), 0], // a lone continuation byte
    [bytes("ab", 0xe5, 0x90), 2], // cut short at the end
    [bytes(0xc0, 0xaf), 0], // overlong "/"
    [bytes(0xe0, 0x80, 0xaf), 0], // overlong, three bytes
    [bytes("x", 0xed, 0xa0, 0x80), 1], // a UTF-16 surrogate
    [bytes(0xf4, 0x90, 0x80, 0x80), 0], // past U+10FFFF
    [bytes(0xf5, 0x80, 0x80, 0x80), 0],
    [bytes(0xff), 0],
    [bytes("ok ", 0xf0, 0x9f, 0x8e, 0x89, " ", 0xe9), 8], // after a valid 4-byte emoji
  ];
  for (const [b, at] of rows) {
    assert.equal(invalidUtf8At(b), at, JSON.stringify([...b]));
    // The same verdict as the WHATWG decoder's.
    let fatal = false;
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(b);
    } catch {
      fatal = true;
    }
    assert.equal(fatal, at >= 0);
  }
});

Deno.test("text that is not UTF-8 is refused with the byte, its value and the line, and how to convert it", () => {
  assert.throws(
    () => UTF8.decode(bytes("caf", 0xe9), "standard input"),
    (e: Error) =>
      e instanceof UsageError &&
      e.message ===
        "standard input is not valid UTF-8 at byte 3 (0xe9); convert it, e.g. iconv -f latin1 -t utf-8, or pass --encoding latin1",
  );
  assert.throws(
    () => UTF8.decode(bytes("one\ntwo\nthr", 0xe9, "e\n"), "standard input"),
    /at byte 11 \(0xe9\), line 3; convert it/,
  );
  assert.equal(UTF8.decode(bytes("café\n"), "x"), "café\n");
});

Deno.test("--encoding converts from what iconv knows; utf-8 stays strict; an unknown name is a usage error", async () => {
  assert.equal((await codecFor("latin1")).decode(bytes("caf", 0xe9), "x"), "café");
  assert.equal((await codecFor("cp1252")).decode(bytes(0x80, "5"), "x"), "€5");
  assert.equal((await codecFor("gbk")).decode(bytes(0xc4, 0xe3, 0xba, 0xc3), "x"), "你好");
  assert.equal((await codecFor("UTF-16LE")).decode(bytes(0x68, 0, 0x69, 0), "x"), "hi");
  assert.equal(await codecFor("utf8"), UTF8);
  assert.equal(await codecFor("UTF-8"), UTF8);
  await assert.rejects(
    codecFor("klingon"),
    (e: Error) => e instanceof UsageError && /"klingon" is not an encoding/.test(e.message),
  );
  // As iconv would (hostile27b L1): what the encoding cannot decode is refused with the byte, never U+FFFD.
  const refused = async (enc: string, b: Uint8Array, re: RegExp) =>
    await assert.rejects(async () => (await codecFor(enc)).decode(b, "standard input"), re);
  await refused("cp1252", bytes(0x81), /not valid cp1252 at byte 0: byte 0x81 is not a character/);
  await refused("utf-16le", bytes(0x68, 0, 0x69), /not valid utf-16le at byte 2: an incomplete character/);
  await refused("utf-16le", bytes(0x68, 0, 0, 0xd8), /not valid utf-16le at byte 2: a lone UTF-16 surrogate/);
  await refused("utf-16le", bytes(0x61, 0, 0, 0, 0x62, 0), /NUL byte \(0x00\) at byte 2/);
  assert.equal((await codecFor("utf-16le")).decode(bytes(0xfd, 0xff), "x"), "\uFFFD", "a U+FFFD written is text");
  assert.equal((await codecFor("utf-16")).decode(bytes(0xff, 0xfe, 0x68, 0, 0x69, 0), "x"), "hi");
  for (const notText of ["base64", "hex", "binary"]) {
    await assert.rejects(codecFor(notText), new RegExp(`"${notText}" is not an encoding lanchat knows`));
  }
  assert.throws(() => UTF8.decode(bytes(0xff, 0xfe, 0x68, 0), "standard input"), /pass --encoding utf-16/);
  assert.throws(() => UTF8.decode(bytes("a", 0, "b"), "standard input"), /NUL byte \(0x00\) at byte 1/);
  await assert.rejects(textOrStdin("café", "latin1"), /--encoding applies to standard input/);
  assert.equal(await textOrStdin("café", undefined), "café");
  assert.equal(await readStdinText("latin1", streamOf(bytes("caf"), bytes(0xe9))), "café");
  await assert.rejects(readStdinText(undefined, streamOf(bytes("caf"), bytes(0xe9))), /at byte 3 \(0xe9\)/);
});

Deno.test("chat lines: one that is not UTF-8 is not given but said, the others go on, split anywhere; exit 2 after", async () => {
  outcome.code = EXIT.ok;
  const bad: string[] = [];
  const got: string[] = [];
  // "héllo" split inside its é, a latin1 line, a CRLF line, a last line without its end.
  const input = streamOf(bytes("h", 0xc3), bytes(0xa9, "llo\nca"), bytes("f", 0xe9, "\r\nok\r\n"), bytes("end"));
  for await (const l of inputLines(input, undefined, (why) => bad.push(why))) got.push(l);
  assert.deepEqual(got, ["héllo", "ok", "end"]);
  assert.deepEqual(bad, [
    "line 2 is not valid UTF-8 at byte 3 (0xe9); convert it, e.g. iconv -f latin1 -t utf-8, or pass --encoding latin1",
  ]);
  assert.equal(outcome.code, EXIT.usage);
  outcome.code = EXIT.ok;
  const latin: string[] = [];
  for await (const l of inputLines(streamOf(bytes("caf", 0xe9, "\nna", 0xef, "ve")), "latin1", () => {})) {
    latin.push(l);
  }
  assert.deepEqual(latin, ["café", "naïve"]);
  // UTF-16: its line end is two bytes, split between chunks here.
  const u16: string[] = [];
  const le = bytes(0x68, 0, 0x69, 0, 0x0a);
  for await (const l of inputLines(streamOf(le, bytes(0, 0xe9, 0)), "utf-16le", () => {})) u16.push(l);
  assert.deepEqual(u16, ["hi", "é"]);
  assert.equal(outcome.code, EXIT.ok);
});

Deno.test("command-line arguments that are not UTF-8 (Deno hands them with \uFFFD): refused with which and where", async () => {
  const args = ["send", "bob", "caf\uFFFD"];
  await assert.rejects(
    checkedArgs(args),
    (e: Error) =>
      e instanceof UsageError &&
      e.message ===
        'argument 3 ("caf?") is not valid UTF-8 at byte 3; convert it, e.g. iconv -f latin1 -t utf-8, or give the text on standard input ("-") with --encoding latin1',
  );
  // The byte counts what comes before in UTF-8.
  await assert.rejects(checkedArgs(["send", "bob", "né \uFFFD"]), /at byte 4;/);
  await assert.rejects(
    checkedArgs(["group", "create", "l\uFFFDb", "bob"]),
    // No standard input to offer where the command reads none.
    (e: Error) =>
      e.message === 'argument 3 ("l?b") is not valid UTF-8 at byte 1; convert it, e.g. iconv -f latin1 -t utf-8',
  );
  // A file's name: lanchat cannot open it by a name that is not UTF-8; say how to rename it.
  await assert.rejects(
    checkedArgs(["send-file", "bob", "r\uFFFDsum\uFFFD.pdf"]),
    /argument 3 \("r\?sum\?\.pdf"\) is not valid UTF-8 at byte 1: a file whose name is not UTF-8 cannot be offered by that name; rename it, e\.g\. convmv -f latin1 -t utf-8/,
  );
  const fine = ["send", "bob", "café 吃 🎉", "--encoding", "latin1"];
  assert.deepEqual(await checkedArgs(fine), fine);
  await assert.rejects(checkedArgs(["send", "bob", "hi", "--encoding", "nope"]), /"nope" is not an encoding/);
  await assert.rejects(checkedArgs(["send", "bob", "-", "--encoding=nope"]), /"nope" is not an encoding/);
});

Deno.test("one duration grammar: units alone or combined; a bare number is seconds unless from 100 up it could be ms too", () => {
  const wait = parseDurationIn(0, 60_000);
  const ok: [string, number][] = [
    ["30s", 30_000],
    ["500ms", 500],
    ["1m", 60_000],
    ["0", 0],
    ["5", 5000],
    ["0.5", 500],
    ["60", 60_000],
    ["1.5s", 1500],
    ["0s", 0],
  ];
  for (const [s, ms] of ok) assert.equal(wait(s), ms, s);
  assert.throws(() => wait("61"), /"61" has no unit: did you mean 61ms\?/);
  assert.throws(() => wait("2m"), /"2m" is out of range \(0ms to 1m\)/);
  assert.throws(() => wait("-1"), /"-1" is not a duration/);
  assert.throws(() => wait("5 s"), /not a duration/);
  assert.throws(() => wait("1h30m"), /out of range/);
  assert.throws(() => wait("soon"), /"soon" is not a duration \(e\.g\. 500ms, 2s, 1m30s, 1h\)/);
  assert.throws(() => wait("100"), /"100" has no unit: did you mean 100ms\?/);
  // Each unit at most once, largest first (hostile27b L4).
  assert.equal(wait("1s500ms"), 1500);
  assert.equal(wait("1m"), 60_000);
  for (const bad of ["5s5s", "500ms1s", "1h1h", "30s1m", "1m30", "ms"]) {
    assert.throws(() => wait(bad), new RegExp(`"${bad}" is not a duration .*each at most once, largest first`), bad);
  }
  assert.equal(parseDurationIn(50, 3_600_000 * 2)("1h30m"), 5_400_000);
  // The daemon's --interval: the same rule.
  const interval = parseDurationIn(50, 3_600_000);
  assert.equal(interval("1h"), 3_600_000);
  assert.throws(() => interval("1h30m"), /"1h30m" is out of range \(50ms to 1h\)/);
  assert.equal(interval("99"), 99_000);
  assert.throws(() => interval("100"), /"100" has no unit: write 100ms \(100ms\) or 100s \(1m40s\)/);
  // send, broadcast and send-file --wait: seconds for the API's ?wait=.
  assert.equal(parseWaitSeconds("30s"), 30);
  assert.equal(parseWaitSeconds("500ms"), 0.5);
  assert.equal(parseWaitSeconds("5"), 5);
  assert.throws(() => parseWaitSeconds("2m"), /out of range/);
});

Deno.test("group names that read alike are one name: case, width, invisible characters", () => {
  const lab = groupNameKey("lab");
  for (const n of ["Lab", "LAB", "ｌａｂ", "la\u200Bb", "l\u00ADab", "lab\uFE0F", "𝐥𝐚𝐛"]) {
    assert.equal(groupNameKey(n), lab, n);
  }
  for (const n of ["lab2", "lаb", /* Cyrillic а */ "la b", "labs"]) assert.notEqual(groupNameKey(n), lab, n);
});

Deno.test("the API's errors in the CLI's words: codes first, HTTP words rewritten; usage errors exit 2", () => {
  const err = (status: number, body: Record<string, unknown>) => new ApiError(status, String(body.error), body);
  const big = apiErrorWords(
    err(413, {
      error: "Body is 2000022 bytes; the limit is 131072",
      code: "body_too_large",
      size: 2000022,
      limit: 131072,
    }),
    ["send", "bob", "-"],
  );
  assert.deepEqual(big, {
    lines: [
      "What you gave is 1.9 MiB; the daemon takes at most 128 KiB in one request: send it as a file: lanchat send-file bob FILE",
    ],
    code: EXIT.usage,
  });
  const text = apiErrorWords(
    err(413, { error: "Text is 70000 bytes", code: "text_too_large", size: 70000, limit: 65536 }),
    ["send", "@lab", "x"],
  );
  assert.match(
    text.lines[0]!,
    /^The message is 68\.4 KiB; the limit is 64 KiB: send it as a file: lanchat send-file @lab FILE$/,
  );
  const unknown = apiErrorWords(
    err(404, { error: 'No group matches "lab" (see GET /groups)', code: "unknown_group" }),
    ["send", "@lab", "x"],
  );
  assert.deepEqual(unknown.lines, [
    'No group is named @lab ("lanchat group list" shows yours; --all also those you left)',
  ]);
  assert.equal(unknown.code, EXIT.error);
  const g = (id: string, members: string[]) => ({
    id,
    name: "lab",
    members: [
      { id: "0", name: "(you)", self: true },
      ...members.map((m) => ({ id: m, name: m, online: m !== "dave" })),
    ],
  });
  const two = apiErrorWords(
    err(409, {
      error: '"lab" matches 2 groups; say which (by id)',
      code: "ambiguous_group",
      candidates: [g("1a2b3c4d5e6f7a8b", ["bob", "carol"]), g("9f8e7d6c5b4a3921", ["dave"])],
    }),
    ["send", "@lab", "hi"],
  );
  assert.deepEqual(two.lines, [
    "@lab names 2 groups; say which by its id:",
    "  @lab  1a2b3c4d5e6f  with bob, carol",
    "  @lab  9f8e7d6c5b4a  with dave (offline)",
    "e.g. @id:1a2b3c4d for the first",
  ]);
  assert.ok(!two.lines.join("\n").includes("peers"), "worded for groups");
  const taken = apiErrorWords(
    err(409, { error: "…", code: "group_name_taken", group: g("1a2b3c4d5e6f7a8b", ["bob"]) }),
    ["group", "create", "lab", "carol"],
  );
  assert.match(
    taken.lines[0]!,
    /^You are already in @lab \(1a2b3c4d, with bob\): write to it with "lanchat send @lab TEXT", add people with "lanchat group add @lab PEER\.\.\.", or choose another name \(--new makes a second one/,
  );
  // No code (an older daemon, a route without one): the HTTP words go.
  assert.equal(
    fieldWords('Field "id" must be a message id (or its first 8 or more hex digits)'),
    "ID must be a message id (or its first 8 or more hex digits)",
  );
  assert.equal(
    fieldWords("A transfer id is 4 to 32 hex digits (see GET /transfers)"),
    "A transfer id is 4 to 32 hex digits",
  );
  assert.equal(fieldWords('messages[3]: Field "to" must name a peer'), "Message 4: PEER must name a peer");
  const field = apiErrorWords(
    err(400, {
      error: 'Field "members" must be a list of peers (ids, names or addresses)',
      code: "bad_field",
      field: "members",
    }),
    [],
  );
  assert.deepEqual(field, { lines: ["The PEERs must be a list of peers (ids, names or addresses)"], code: EXIT.usage });
  assert.deepEqual([sizeWords(512), sizeWords(65536), sizeWords(2000022)], ["512 bytes", "64 KiB", "1.9 MiB"]);
});
