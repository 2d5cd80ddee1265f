/**
 * Sealed IP Messenger messages (SECRETOPT) and their read notices, both
 * ways. Ours: remembered by packet number when sent, so the reader's
 * READMSG (answered with ANSREADMSG when it asks, READCHECKOPT) becomes a
 * "read" event. Theirs, opened here: a READMSG naming the packet, sent again
 * on {@link ipmsgRetryDelay} until an ANSREADMSG when the sender asked
 * (READCHECKOPT, at most {@link READ_ATTEMPTS} times), else once; sent when
 * the peer is present.
 *
 * @module
 */
import type { Endpoint } from "./discovery.ts";
import { MAX_REMEMBERED_PACKETS } from "./ipmsg_dedup.ts";
import { capabilities, encodingOf, send } from "./ipmsg_encoding.ts";
import { ipmsgRetryDelay, type IpmsgState, nextPacketNo, type PendingRead, touch } from "./ipmsg_state.ts";
import { IPMSG, IPMSG_OPT, type IpmsgPacket } from "../wire/ipmsg.ts";

/** READMSGs kept waiting for an answer, and how often each is sent before giving up. */
export const MAX_PENDING_READS = 1000;
export const READ_ATTEMPTS = 6;

/** A sealed message of ours went out as `packetNo`: its READMSG will name it. */
export function rememberSealed(s: IpmsgState, peerId: string, packetNo: string, messageId: string): void {
  s.sealedOut.set(`${peerId}|${packetNo}`, messageId);
  if (s.sealedOut.size > MAX_REMEMBERED_PACKETS) s.sealedOut.delete(s.sealedOut.keys().next().value!);
}

/** A READMSG: a sealed message of ours was opened. Answered when asked (READCHECKOPT), as the sender waits for it. */
export function onReadMsg(s: IpmsgState, p: IpmsgPacket, id: string, from: Endpoint, now: number): void {
  touch(s, id, now);
  if (p.options & IPMSG_OPT.READCHECKOPT) {
    send(s, from, IPMSG.ANSREADMSG | capabilities(s), [p.packetNo], encodingOf(s, id, p));
  }
  const key = `${id}|${(p.extra[0] ?? "").trim()}`;
  const messageId = s.sealedOut.get(key);
  if (messageId) {
    s.sealedOut.delete(key);
    s.events.push({ type: "read", messageId, peerId: id });
  }
}

/**
 * A sealed message from `peerId` was opened here: tells its sender
 * (READMSG naming its packet number), again until answered when it asked
 * (READCHECKOPT), or once; sent when the peer is present.
 */
export function openedSealed(s: IpmsgState, peerId: string, packetNo: string, readCheck: boolean, now: number): void {
  if (s.reads.length >= MAX_PENDING_READS) s.reads.shift();
  const r = { peerId, packetNo, readPacketNo: nextPacketNo(s), readCheck, attempts: 0 };
  s.reads.push(r);
  sendReads(s, now);
}

/** An ANSREADMSG: our READMSG arrived, stop sending it. Clients name our READMSG's packet number, or the sealed message's. */
export function onAnsReadMsg(s: IpmsgState, p: IpmsgPacket, id: string, now: number): void {
  touch(s, id, now);
  const named = (p.extra[0] ?? "").trim();
  s.reads = s.reads.filter((r) => !(r.peerId === id && (r.readPacketNo === named || r.packetNo === named)));
}

/** Sends the READMSGs due to peers that are present. */
export function sendReads(s: IpmsgState, now: number): void {
  for (const r of [...s.reads]) {
    const peer = s.peers.get(r.peerId);
    if (!peer || (r.attempts > 0 && now < readDue(r))) continue;
    send(
      s,
      peer,
      IPMSG.READMSG | capabilities(s) | (r.readCheck ? IPMSG_OPT.READCHECKOPT : 0),
      [r.packetNo],
      peer.encoding,
      r.readPacketNo,
    );
    r.attempts++;
    if (!r.readCheck || r.attempts >= READ_ATTEMPTS) s.reads.splice(s.reads.indexOf(r), 1);
    else r.lastAt = now;
  }
}

/** The earliest READMSG due to a present peer, or `next` when none is earlier. */
export function nextRead(s: IpmsgState, next: number): number {
  for (const r of s.reads) {
    if (r.attempts > 0 && s.peers.has(r.peerId)) next = Math.min(next, readDue(r));
  }
  return next;
}

function readDue(r: PendingRead): number {
  return (r.lastAt ?? 0) + ipmsgRetryDelay(r.attempts - 1);
}
