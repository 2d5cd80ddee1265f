/**
 * Text a person gives the CLI (standard input, `chat` lines, command-line
 * arguments) taken as UTF-8 strictly: bytes that are not UTF-8 are refused
 * with where they are, as `iconv` does, never turned into `�` and sent; or,
 * on standard input, converted from the encoding named by `--encoding` (any
 * iconv-lite knows: latin1, cp1252, gbk, shift_jis, utf-16le, …).
 *
 * @example
 * ```ts
 * decodeInput(new Uint8Array([0x63, 0x61, 0x66, 0xe9]), "standard input");
 * // UsageError: standard input is not valid UTF-8 at byte 3 (0xe9); convert it, e.g. iconv -f latin1 -t utf-8, or pass --encoding latin1
 * ```
 *
 * @module
 */
import { Option } from "commander";
import { EXIT, outcome, UsageError } from "./options.ts";

/** A text decoder for one named encoding: whole texts, or chunks as they come (`end` flushes). */
export interface Codec {
  /** The encoding as named, or `utf-8` (strict). */
  name: string;
  /** Decodes a whole text; for UTF-8, a {@link UsageError} naming `what` and the first bad byte. */
  decode(bytes: Uint8Array, what: string): string;
}

/**
 * The offset of the first byte that does not begin (or continue) a valid
 * UTF-8 sequence, or -1 when all of `bytes` is UTF-8. Overlong forms,
 * surrogates, code points past U+10FFFF and a sequence cut short are
 * invalid, as the WHATWG decoder has them; the offset is where the bad
 * sequence starts, as iconv reports it.
 */
export function invalidUtf8At(bytes: Uint8Array): number {
  let i = 0;
  const n = bytes.length;
  while (i < n) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xbf)) return i;
    }
    i += need + 1;
  }
  return -1;
}

/** Hex of one byte, `0xe9`. */
const hex = (b: number) => `0x${b.toString(16).padStart(2, "0")}`;

/**
 * The sentence for `what` (`standard input`, `line 3`, `argument "caf?"`)
 * that is not UTF-8 at `at`; with the line it is on when the text has
 * several. Text that starts with a UTF-16 byte order mark is named so.
 */
export function notUtf8(what: string, bytes: Uint8Array, at: number): string {
  const line = bytes.subarray(0, at).filter((b) => b === 0x0a).length + 1;
  const many = bytes.includes(0x0a);
  const utf16 = (bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff);
  const hint = utf16
    ? "it starts with a UTF-16 byte order mark: pass --encoding utf-16, or convert it, e.g. iconv -f utf-16 -t utf-8"
    : "convert it, e.g. iconv -f latin1 -t utf-8, or pass --encoding latin1";
  return `${what} is not valid UTF-8 at byte ${at} (${hex(bytes[at]!)})${many ? `, line ${line}` : ""}; ${hint}`;
}

/** The sentence for `what` holding a NUL byte at `at` (SQLite would cut the text there). */
function holdsNul(what: string, at: number): string {
  return `${what} holds a NUL byte (0x00) at byte ${at}: a message cannot; remove it, e.g. tr -d '\\000'`;
}

const strict = new TextDecoder("utf-8", { fatal: true });

/** Strict UTF-8: the text, or a {@link UsageError} saying where it is not UTF-8 or holds a NUL. */
export const UTF8: Codec = {
  name: "utf-8",
  decode(bytes, what) {
    const at = invalidUtf8At(bytes);
    if (at >= 0) throw new UsageError(notUtf8(what, bytes, at));
    const nul = bytes.indexOf(0);
    if (nul >= 0) throw new UsageError(holdsNul(what, nul));
    return strict.decode(bytes);
  },
};

/** Names iconv-lite takes that are not text encodings (they encode bytes as text): refused as unknown. */
const NOT_TEXT = /^(base64|base64url|hex|binary)$/i;

/**
 * The codec for `--encoding NAME` (undefined or a UTF-8 name: strict
 * UTF-8). iconv-lite is loaded only when another encoding is named; it
 * decodes as iconv does: bytes the encoding cannot decode (an unassigned
 * byte, a character cut short, a lone UTF-16 surrogate) are refused with
 * where, never turned into `�`.
 *
 * @throws {UsageError} for an encoding iconv-lite does not know, or one that is not a text encoding.
 */
export async function codecFor(name: string | undefined): Promise<Codec> {
  if (name === undefined || /^utf-?8$/i.test(name.trim())) return UTF8;
  const iconv = (await import("iconv-lite")).default;
  if (NOT_TEXT.test(name.trim()) || !iconv.encodingExists(name)) {
    throw new UsageError(
      `--encoding ${JSON.stringify(name)} is not an encoding lanchat knows; ` +
        "name one such as latin1, cp1252, gbk, big5, shift_jis, euc-kr or utf-16le",
    );
  }
  type Bytes = Parameters<typeof iconv.decode>[0];
  const encode = (text: string) => new Uint8Array(iconv.encode(text, name, { addBOM: false }));
  // How U+FFFD itself is written in this encoding, if it can be (UTF-16: 0xfd 0xff): one that stands so is text.
  const ownFffd = encode("\uFFFD");
  const fffdWritten = iconv.decode(ownFffd as unknown as Bytes, name) === "\uFFFD" ? ownFffd : undefined;
  const unit = /^(utf-?32|ucs-?4)/i.test(name) ? 4 : /^(utf-?16|ucs-?2)/i.test(name) ? 2 : 1;
  return {
    name,
    decode(bytes, what) {
      const bad = (at: number, why: string) => new UsageError(`${what} is not valid ${name} at byte ${at}: ${why}`);
      if (bytes.length % unit !== 0) {
        throw bad(bytes.length - (bytes.length % unit), "an incomplete character at the end");
      }
      const text = iconv.decode(bytes as unknown as Bytes, name);
      // Where the character at `i` of the text starts in the bytes (a byte order mark iconv-lite took off counted).
      const mark = [encode("\uFEFF"), encode("\uFEFF").reverse()].find((m) => m.every((b, k) => bytes[k] === b));
      const bom = mark && !text.startsWith("\uFEFF") ? mark.length : 0;
      const byteAt = (i: number) => bom + encode(text.slice(0, i)).length;
      for (let i = text.indexOf("\uFFFD"); i >= 0; i = text.indexOf("\uFFFD", i + 1)) {
        const at = byteAt(i);
        const written = fffdWritten && fffdWritten.every((b, k) => bytes[at + k] === b);
        if (!written) throw bad(at, `byte ${hex(bytes[at] ?? 0)} is not a character in ${name}`);
      }
      if (!text.isWellFormed()) {
        const i = text.search(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
        throw bad(byteAt(i), "a lone UTF-16 surrogate (half a character)");
      }
      const nul = text.indexOf("\0");
      if (nul >= 0) throw new UsageError(holdsNul(what, byteAt(nul)));
      return text;
    },
  };
}

/**
 * The text a command was given: its argument, or standard input when it
 * is `-` (strict UTF-8, or from `encoding`).
 *
 * @throws {UsageError} for `--encoding` with the text as an argument (it
 *   applies to standard input only), or input refused by {@link readStdinText}.
 */
export async function textOrStdin(text: string, encoding: string | undefined): Promise<string> {
  if (text === "-") return (await readStdinText(encoding)).replace(/\n$/, "");
  if (encoding !== undefined) {
    throw new UsageError('--encoding applies to standard input: give the text as "-" and pipe it in');
  }
  return text;
}

/** The `--encoding NAME` option of the commands that take text. */
export function encodingOption(): Option {
  return new Option(
    "--encoding <name>",
    "standard input is in this encoding, not UTF-8: latin1, cp1252, gbk, shift_jis, utf-16le, … (as iconv names them)",
  );
}

/**
 * All of standard input as text: strict UTF-8, or from `encoding`.
 *
 * @throws {UsageError} when it is not UTF-8 (the byte and line), or the encoding is unknown.
 */
export async function readStdinText(
  encoding?: string,
  stream: ReadableStream<Uint8Array> = Deno.stdin.readable,
): Promise<string> {
  const codec = await codecFor(encoding);
  return codec.decode(new Uint8Array(await new Response(stream).arrayBuffer()), "standard input");
}

/**
 * The lines of `stream` (without their line ends) as they come, for `chat`:
 * each strict UTF-8 or from `encoding`. A line that is not UTF-8 is not
 * given: `onBad` gets the sentence saying where (`line 2 is not valid UTF-8
 * at byte 3 (0xe9); …`), and the command will exit 2 (usage) unless it ends
 * in a worse way. With an encoding whose line end is not the byte 0x0a
 * (UTF-16), the text is decoded as it streams, then split.
 */
export async function* inputLines(
  stream: ReadableStream<Uint8Array>,
  encoding: string | undefined,
  onBad: (problem: string) => void,
): AsyncGenerator<string> {
  const codec = await codecFor(encoding);
  if (codec !== UTF8 && /^(utf-?16|ucs-?2|utf-?32)/i.test(codec.name)) {
    // Not ASCII-compatible: decode it all as it streams, then split; a line iconv would refuse is not given.
    const iconv = (await import("iconv-lite")).default;
    const dec = iconv.getDecoder(codec.name);
    let buf = "";
    let n = 0;
    let total = 0;
    const checked = (line: string): string | undefined => {
      n++;
      const why = line.includes("\0")
        ? `line ${n} holds a NUL character: a message cannot`
        : !line.isWellFormed()
        ? `line ${n} is not valid ${codec.name}: a lone UTF-16 surrogate (half a character)`
        : undefined;
      if (why === undefined) return line.replace(/\r$/, "");
      outcome.code = EXIT.usage;
      onBad(why);
      return undefined;
    };
    for await (const chunk of stream) {
      total += chunk.length;
      buf += dec.write(chunk as unknown as Parameters<typeof dec.write>[0]);
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = checked(buf.slice(0, i));
        if (line !== undefined) yield line;
        buf = buf.slice(i + 1);
      }
    }
    buf += dec.end() ?? "";
    const unit = /^(utf-?32)/i.test(codec.name) ? 4 : 2;
    if (total % unit !== 0) {
      outcome.code = EXIT.usage;
      onBad(
        `standard input is not valid ${codec.name} at byte ${
          total - (total % unit)
        }: an incomplete character at the end`,
      );
    }
    const last = buf ? checked(buf) : undefined;
    if (last !== undefined) yield last;
    return;
  }
  let pending: Uint8Array = new Uint8Array(0);
  let lineNo = 0;
  const one = (bytes: Uint8Array): string | undefined => {
    lineNo++;
    const line = bytes.at(-1) === 0x0d ? bytes.subarray(0, -1) : bytes;
    try {
      return codec.decode(line, `line ${lineNo}`);
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      outcome.code = EXIT.usage;
      onBad(e.message);
      return undefined;
    }
  };
  for await (const chunk of stream) {
    const joined = new Uint8Array(pending.length + chunk.length);
    joined.set(pending);
    joined.set(chunk, pending.length);
    let start = 0;
    let i: number;
    while ((i = joined.indexOf(0x0a, start)) >= 0) {
      const line = one(joined.subarray(start, i));
      if (line !== undefined) yield line;
      start = i + 1;
    }
    pending = joined.slice(start);
  }
  if (pending.length > 0) {
    const line = one(pending);
    if (line !== undefined) yield line;
  }
}

/**
 * The arguments, checked: one that was not UTF-8 is refused with where
 * ({@link UsageError}: exit 2), and an `--encoding` iconv does not know is
 * refused before anything is read or sent. Deno hands a program its
 * arguments as text, each byte that is not UTF-8 already turned into `�`,
 * and lets only a program with every permission read the bytes back
 * (`/proc/self/cmdline`): so an argument with a `�` is taken as one that
 * was not UTF-8 (a `�` typed on purpose too: it is the mark of text already
 * damaged), its place is the byte where the first `�` stands, and it cannot
 * be converted: the text goes on standard input, where `--encoding` applies.
 */
export async function checkedArgs(args: string[]): Promise<string[]> {
  const named = encodingNamed(args);
  if (named !== undefined) await codecFor(named);
  const i = args.findIndex((a) => a.includes("\uFFFD"));
  if (i < 0) return args;
  const arg = args[i]!;
  const at = new TextEncoder().encode(arg.slice(0, arg.indexOf("\uFFFD"))).length;
  const shown = `argument ${i + 1} ("${arg.replaceAll("\uFFFD", "?")}")`;
  if (args[0] === "send-file" && i >= 2 && !arg.startsWith("-")) {
    throw new UsageError(
      `${shown} is not valid UTF-8 at byte ${at}: a file whose name is not UTF-8 cannot be offered by that name; ` +
        "rename it, e.g. convmv -f latin1 -t utf-8 --notest NAME",
    );
  }
  // Where the text can come on standard input instead, --encoding converts it there.
  const stdin = ["send", "broadcast", "edit"].includes(args[0]!)
    ? ', or give the text on standard input ("-") with --encoding latin1'
    : "";
  throw new UsageError(`${shown} is not valid UTF-8 at byte ${at}; convert it, e.g. iconv -f latin1 -t utf-8${stdin}`);
}

/** The value of `--encoding NAME` or `--encoding=NAME` in `args`, if any. */
function encodingNamed(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--") return undefined;
    if (args[i] === "--encoding") return args[i + 1];
    if (args[i]!.startsWith("--encoding=")) return args[i]!.slice("--encoding=".length);
  }
  return undefined;
}
