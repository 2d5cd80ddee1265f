/**
 * IP Messenger messages out: SENDMSG|SENDCHECKOPT (with AUTORETOPT for an
 * automatic reply, SECRETOPT|READCHECKOPT for a sealed one, FILEATTACHOPT
 * with files), re-sent with the same packet number on
 * {@link ipmsgRetryDelay} until a RECVMSG names it, while the peer is
 * present; queued while it is not, and sent when it comes back.
 *
 * @module
 */
import { isAutoReply, withoutAutoMark } from "./auto_reply.ts";
import { parseSealed } from "./sealed.ts";
import { capabilities, send } from "./ipmsg_encoding.ts";
import { rememberSealed } from "./ipmsg_sealed.ts";
import { ipmsgRetryDelay, type IpmsgState, nextPacketNo, type Outgoing, touch } from "./ipmsg_state.ts";
import { IPMSG, IPMSG_OPT, type IpmsgPacket } from "../wire/ipmsg.ts";

/**
 * Queues a message for an IP Messenger peer (present or not), to go out
 * now if it is present and again until a RECVMSG names it.
 */
export function queue(
  s: IpmsgState,
  m: { messageId: string; peerId: string; text: string; files?: { packetNo: string; attach: string } },
  now: number,
): void {
  const { files } = m;
  const o: Outgoing = {
    messageId: m.messageId,
    peerId: m.peerId,
    text: m.text,
    ...(files ? { attach: files.attach } : {}),
    packetNo: files?.packetNo ?? nextPacketNo(s),
    attempts: 0,
    nextAt: undefined,
    firstSentAt: undefined,
  };
  s.out.push(o);
  if (s.peers.has(o.peerId)) transmitMessage(s, o, now);
}

/** Gives a queued message (re-queued from the outbox at start) back the files it offers. */
export function attachTo(s: IpmsgState, messageId: string, files: { packetNo: string; attach: string }): void {
  const o = s.out.find((x) => x.messageId === messageId);
  if (o) Object.assign(o, { packetNo: files.packetNo, attach: files.attach });
}

/** A peer came (back): whatever waits for it goes now. */
export function sendQueued(s: IpmsgState, peerId: string, now: number): void {
  for (const o of s.out) if (o.peerId === peerId) transmitMessage(s, o, now);
}

/** A peer left: its messages wait, unsent, until it is back. */
export function stopRetrying(s: IpmsgState, peerId: string): void {
  for (const o of s.out) if (o.peerId === peerId) o.nextAt = undefined;
}

/** Sends again the messages due whose peer is present. */
export function retransmit(s: IpmsgState, now: number): void {
  for (const o of s.out) {
    if (o.nextAt !== undefined && o.nextAt <= now && s.peers.has(o.peerId)) {
      s.counters.retransmits++;
      transmitMessage(s, o, now);
    }
  }
}

/** The earliest re-send due, or `next` when none is earlier. */
export function nextRetransmit(s: IpmsgState, next: number): number {
  for (const o of s.out) if (o.nextAt !== undefined && o.nextAt < next) next = o.nextAt;
  return next;
}

/** A RECVMSG: the message it names was delivered. */
export function onRecvMsg(s: IpmsgState, p: IpmsgPacket, id: string, now: number): void {
  touch(s, id, now);
  const acked = (p.extra[0] ?? "").trim();
  const i = s.out.findIndex((o) => o.peerId === id && o.packetNo === acked);
  if (i >= 0) {
    const [o] = s.out.splice(i, 1);
    s.events.push({
      type: "delivered",
      messageId: o!.messageId,
      peerId: id,
      rttMs: now - (o!.firstSentAt ?? now),
    });
  }
}

function transmitMessage(s: IpmsgState, o: Outgoing, now: number): void {
  const peer = s.peers.get(o.peerId)!;
  const sealed = parseSealed(o.text);
  const text = withoutAutoMark(sealed?.text ?? o.text);
  // Its READMSG (the reader opened it) names this packet number.
  if (sealed) rememberSealed(s, o.peerId, o.packetNo, o.messageId);
  send(
    s,
    peer,
    IPMSG.SENDMSG | IPMSG_OPT.SENDCHECKOPT | capabilities(s) | (o.attach ? IPMSG_OPT.FILEATTACHOPT : 0) |
      (isAutoReply(o.text) ? IPMSG_OPT.AUTORETOPT : 0) |
      (sealed ? IPMSG_OPT.SECRETOPT | IPMSG_OPT.READCHECKOPT : 0),
    o.attach ? [text, o.attach] : [text],
    peer.encoding,
    o.packetNo,
  );
  if (o.attempts === 0) {
    o.firstSentAt = now;
    s.counters.messagesOut++;
  }
  o.nextAt = now + ipmsgRetryDelay(o.attempts);
  o.attempts++;
}
