/**
 * IP Messenger's datagram format (IP Messenger, FeiQ, iptux), pure:
 *
 * ```
 * version:packetNo:user:host:command:extra
 * ```
 *
 * `command` is a decimal number: mode in the low 8 bits, options above.
 * `extra` may hold `\0`-separated parts (entry: nickname `\0` group, and
 * iptux adds icon `\0` encoding). Text is UTF-8 when the sender says so
 * (UTF8OPT / CAPUTF8OPT, or "utf-8" in its entry), else GBK/GB18030, as
 * FeiQ and older clients send. Decoding never throws: malformed packets
 * come back with a drop reason.
 *
 * @module
 */
import iconv from "iconv-lite";
import { IPMSG, IPMSG_OPT, peekIpmsgMode } from "./ipmsg_command.ts";

export { IPMSG, IPMSG_OPT, peekIpmsgMode };

/** The largest IP Messenger datagram lanchat sends or accepts (iptux's limit). */
export const IPMSG_MAX_PACKET = 8192;

export type IpmsgEncoding = "utf-8" | "gbk";

/** A decoded IP Messenger packet. */
export interface IpmsgPacket {
  version: string;
  packetNo: string;
  user: string;
  host: string;
  command: number;
  /** `command & 0xff`. */
  mode: number;
  /** `command & ~0xff`. */
  options: number;
  /** The extra field split on `\0` (trailing empty parts removed). */
  extra: string[];
  /** The encoding the packet was read with. */
  encoding: IpmsgEncoding;
  /** Set when some bytes were no character in that encoding: they were left out of the text. */
  lossy?: boolean;
}

export type IpmsgDropReason = "oversize" | "truncated" | "bad-field" | "bad-text";

export type IpmsgDecodeResult =
  | { ok: true; value: IpmsgPacket }
  | { ok: false; reason: IpmsgDropReason; detail: string };

const COLON = 0x3a;

/** True when the packet's options say its text is UTF-8. */
export function saysUtf8(options: number): boolean {
  return (options & (IPMSG_OPT.UTF8OPT | IPMSG_OPT.CAPUTF8OPT)) !== 0;
}

/**
 * Decodes a datagram. The encoding is UTF-8 when the command's options say
 * so or when `hint` (what the sender's entry said) is UTF-8; otherwise the
 * text is tried as UTF-8 first (iptux sends UTF-8 without the bit) and read as
 * GB18030 (a superset of GBK) when it is not valid UTF-8.
 */
export function decodeIpmsg(bytes: Uint8Array, hint?: IpmsgEncoding): IpmsgDecodeResult {
  if (bytes.length > IPMSG_MAX_PACKET) return { ok: false, reason: "oversize", detail: `${bytes.length} bytes` };
  // Split the five header fields on ':' in the raw bytes: 0x3a never occurs
  // inside a multi-byte UTF-8 or GBK character, so this is safe for both.
  const cuts: number[] = [];
  for (let i = 0; i < bytes.length && cuts.length < 5; i++) if (bytes[i] === COLON) cuts.push(i);
  if (cuts.length < 5) return { ok: false, reason: "truncated", detail: `${cuts.length + 1} of 6 fields` };
  const ascii = new TextDecoder("latin1");
  const field = (i: number) => bytes.subarray(i === 0 ? 0 : cuts[i - 1]! + 1, i < 5 ? cuts[i] : bytes.length);
  const commandText = ascii.decode(field(4)).trim();
  if (!/^\d{1,10}$/.test(commandText) || Number(commandText) > 0xffff_ffff) {
    return { ok: false, reason: "bad-field", detail: `command "${commandText.slice(0, 20)}"` };
  }
  const command = Number(commandText);
  const packetNo = ascii.decode(field(1)).trim();
  if (!/^\d{1,20}$/.test(packetNo)) return { ok: false, reason: "bad-field", detail: "packet number" };
  const options = command & ~0xff;
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  let encoding: IpmsgEncoding = saysUtf8(options) || hint === "utf-8" ? "utf-8" : "gbk";
  let lossy = false;
  const decodeText = (b: Uint8Array): string | undefined => {
    if (encoding === "utf-8") {
      try {
        return utf8.decode(b);
      } catch {
        if (saysUtf8(options)) return undefined;
      }
    }
    // Not declared UTF-8: valid UTF-8 is still most likely UTF-8 (iptux
    // says its encoding only in its entry); else GB18030.
    try {
      const s = utf8.decode(b);
      encoding = "utf-8";
      return s;
    } catch {
      encoding = "gbk";
      try {
        return new TextDecoder("gb18030", { fatal: true }).decode(b);
      } catch {
        // Bytes that are no character in GB18030 either: left out, and said so (lossy).
        lossy = true;
        return new TextDecoder("gb18030").decode(b).replaceAll("\uFFFD", "");
      }
    }
  };
  const user = decodeText(field(2));
  const host = decodeText(field(3));
  const extraText = decodeText(field(5));
  if (user === undefined || host === undefined || extraText === undefined) {
    return { ok: false, reason: "bad-text", detail: "declared UTF-8 but is not" };
  }
  const extra = extraText.split("\0");
  while (extra.length > 0 && extra[extra.length - 1] === "") extra.pop();
  return {
    ok: true,
    value: {
      version: ascii.decode(field(0)),
      packetNo,
      user,
      host,
      command,
      mode: command & 0xff,
      options,
      extra,
      encoding,
      ...(lossy ? { lossy } : {}),
    },
  };
}

/** Encodes text in the given encoding (GBK through iconv-lite). */
export function encodeText(text: string, encoding: IpmsgEncoding): Uint8Array {
  return encoding === "utf-8" ? new TextEncoder().encode(text) : new Uint8Array(iconv.encode(text, "gbk"));
}

/**
 * Builds a datagram. `extra` parts are joined with `\0` and end with one.
 *
 * @throws {RangeError} when the datagram would exceed {@link IPMSG_MAX_PACKET}.
 */
export function encodeIpmsg(p: {
  /** The version field (default "1"); clients name themselves in it after the 1 (`1_iptux 0.8.3`). */
  version?: string;
  packetNo: string;
  user: string;
  host: string;
  command: number;
  extra: string[];
  encoding: IpmsgEncoding;
}): Uint8Array {
  // ':' would break the header; IP Messenger clients replace it too.
  const clean = (s: string) => s.replaceAll(":", ";");
  const head = encodeText(
    `${p.version ?? "1"}:${p.packetNo}:${clean(p.user)}:${clean(p.host)}:${p.command >>> 0}:`,
    p.encoding,
  );
  const extra = p.extra.length ? encodeText(p.extra.join("\0") + "\0", p.encoding) : new Uint8Array();
  if (head.length + extra.length > IPMSG_MAX_PACKET) {
    throw new RangeError(
      `IP Messenger packet of ${head.length + extra.length} bytes exceeds the ${IPMSG_MAX_PACKET}-byte limit`,
    );
  }
  const out = new Uint8Array(head.length + extra.length);
  out.set(head);
  out.set(extra, head.length);
  return out;
}
