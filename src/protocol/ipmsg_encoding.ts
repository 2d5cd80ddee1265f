/**
 * How lanchat's IP Messenger packets are read and written: UTF-8 to peers
 * that say they read it, GBK to the others (FeiQ), told nothing about UTF-8
 * in a GBK packet; a datagram read in the encoding its sender's entry said;
 * our name in entries (with the absence note, as IP Messenger shows it) and
 * theirs; the version field; whether a text fits one packet.
 *
 * @module
 */
import type { Endpoint } from "./discovery.ts";
import { type IpmsgState, nextPacketNo } from "./ipmsg_state.ts";
import {
  decodeIpmsg,
  encodeIpmsg,
  IPMSG,
  IPMSG_OPT,
  type IpmsgEncoding,
  type IpmsgPacket,
  saysUtf8,
} from "../wire/ipmsg.ts";

/** The version field of lanchat's IP Messenger packets: clients show it; another lanchat knows it is one. */
export const LANCHAT_VERSION_FIELD = "1_lanchat";

/** What we tell of ourselves in every packet: UTF-8 capable, and absent when we are. */
export function capabilities(s: IpmsgState): number {
  return IPMSG_OPT.CAPUTF8OPT | IPMSG_OPT.UTF8OPT | (s.absence !== undefined ? IPMSG_OPT.ABSENCEOPT : 0);
}

/** Nickname and group; while absent, the nickname carries the note as IP Messenger's does ("Alice[at lunch]"). */
export function entryExtra(s: IpmsgState): string[] {
  const nick = s.absence === undefined ? s.self.nickname : `${s.self.nickname}[${s.absence || "Away"}]`;
  return [nick, s.self.group];
}

/** Whether a GBK-only client (FeiQ) reads these parts as mojibake in UTF-8: true when any is not ASCII. */
export function needsGbkCopy(extra: string[]): boolean {
  return [...extra.join("")].some((c) => c.charCodeAt(0) > 0x7f);
}

/** The encoding a peer reads, from its entry: UTF-8 only when it says so. */
export function entryEncoding(p: IpmsgPacket): IpmsgEncoding {
  // iptux names its encoding in the entry's fourth part.
  const declared = (p.extra[3] ?? "").toLowerCase().replace("_", "-");
  // UTF-8 only when declared: a FeiQ user with an ASCII name sends bytes
  // that are valid UTF-8, yet reads GBK.
  return saysUtf8(p.options) || declared === "utf-8" || declared === "utf8" ? "utf-8" : "gbk";
}

/** A peer's name, absence and note from its entry: while absent, IP Messenger shows "Name[Lunch]". */
export function entryName(p: IpmsgPacket): { nickname: string; absent: boolean; absenceNote: string | undefined } {
  // iptux has no absence mode and sets ABSENCEOPT on every entry (iptux-core/internal/Command.cpp): from it,
  // the flag means nothing.
  const absent = (p.options & IPMSG_OPT.ABSENCEOPT) !== 0 && !/iptux/i.test(p.version);
  const suffixed = absent ? /^(.+?)\[([^\]]*)\]$/.exec(p.extra[0] ?? "") : null;
  return {
    nickname: suffixed ? suffixed[1]! : p.extra[0] || p.user,
    absent,
    absenceNote: suffixed?.[2] || undefined,
  };
}

/** The encoding to answer a packet in: the peer's, else the packet's own. */
export function encodingOf(s: IpmsgState, id: string, p: IpmsgPacket): IpmsgEncoding {
  return s.peers.get(id)?.encoding ?? p.encoding;
}

/** Reads a datagram in the encoding its sender's address said it uses; undefined (counted) when malformed. */
export function readPacket(s: IpmsgState, bytes: Uint8Array, from: Endpoint): IpmsgPacket | undefined {
  const known = [...s.peers.values()].find((p) => p.address === from.address);
  const decoded = decodeIpmsg(bytes, known?.encoding);
  if (!decoded.ok) {
    s.counters.dropped[decoded.reason]++;
    return undefined;
  }
  const p = decoded.value;
  if (p.lossy) s.counters.undecodable++;
  return p;
}

/** Queues a packet of ours for `to`, in `encoding`; one too large for a packet is counted, not sent. */
export function send(
  s: IpmsgState,
  to: Endpoint,
  command: number,
  extra: string[],
  encoding: IpmsgEncoding,
  packetNo?: string,
  receipt?: string,
): void {
  const utf8 = encoding === "utf-8";
  // Tell a GBK peer nothing about UTF-8 in this packet (FeiQ reads GBK).
  const cmd = utf8 ? command : command & ~(IPMSG_OPT.UTF8OPT | IPMSG_OPT.CAPUTF8OPT);
  let bytes: Uint8Array;
  try {
    bytes = encodeIpmsg({
      version: LANCHAT_VERSION_FIELD,
      packetNo: packetNo ?? nextPacketNo(s),
      user: s.self.user,
      host: s.self.host,
      command: cmd,
      extra,
      encoding,
    });
  } catch (e) {
    // Too large for one packet (fits() should have said so first): counted, never a crash.
    if (!(e instanceof RangeError)) throw e;
    s.counters.dropped.oversize++;
    return;
  }
  s.transmits.push({ to: { address: to.address, port: to.port }, bytes, ...(receipt ? { receipt } : {}) });
}

/** Whether a text fits one IP Messenger packet for this peer. */
export function fits(s: IpmsgState, peerId: string, text: string): boolean {
  const peer = s.peers.get(peerId);
  try {
    encodeIpmsg({
      version: LANCHAT_VERSION_FIELD,
      packetNo: "99999999999",
      user: s.self.user,
      host: s.self.host,
      command: IPMSG.SENDMSG | IPMSG_OPT.SENDCHECKOPT | IPMSG_OPT.UTF8OPT,
      extra: [text],
      encoding: peer?.encoding ?? "utf-8",
    });
    return true;
  } catch {
    return false;
  }
}
