/**
 * IP Messenger messages in: a SENDMSG is answered with RECVMSG when it asks
 * (SENDCHECKOPT) and is not a broadcast or auto-reply, once the message is
 * stored (the driver holds the answer until its commit; {@link unstored}
 * withdraws it when the message could not be kept). Duplicates (same
 * address, user, packet number and content within the dedup window, and no
 * restart of the sender in between: see ./ipmsg_dedup.ts) are answered but
 * not delivered twice; a same-numbered packet that says something else is
 * a new message. A sender's address has a budget ({@link MESSAGE_BURST},
 * then {@link MESSAGE_RATE_PER_S}). The text handed on says what the packet
 * said: files offered, an automatic reply, sealed, or encrypted.
 *
 * @module
 */
import { autoReplyText } from "./auto_reply.ts";
import { sealedText } from "./sealed.ts";
import type { Endpoint } from "./discovery.ts";
import { messageDigest } from "./ipmsg_dedup.ts";
import { capabilities, encodingOf, send } from "./ipmsg_encoding.ts";
import { transient, upsert } from "./ipmsg_entries.ts";
import { offeredFiles } from "./ipmsg_offers.ts";
import { type IpmsgReceipt, type IpmsgState, receiptKey, touch } from "./ipmsg_state.ts";
import { IPMSG, IPMSG_OPT, type IpmsgPacket } from "../wire/ipmsg.ts";

/**
 * Messages stored from one source address: a burst of
 * {@link MESSAGE_BURST}, then {@link MESSAGE_RATE_PER_S} a second (120 a
 * minute). Past it a message is neither answered nor stored: its sender's
 * client retries, then tells its user it was not received.
 */
export const MESSAGE_BURST = 120;
export const MESSAGE_RATE_PER_S = 2;

/** A SENDMSG: answered (RECVMSG) when it asks, and handed on as a "message" event unless a duplicate or refused. */
export function onSendMsg(s: IpmsgState, p: IpmsgPacket, id: string, from: Endpoint, now: number): void {
  touch(s, id, now);
  const wantsAck = (p.options & IPMSG_OPT.SENDCHECKOPT) !== 0 &&
    (p.options & (IPMSG_OPT.BROADCASTOPT | IPMSG_OPT.AUTORETOPT)) === 0;
  const encoding = encodingOf(s, id, p);
  const digest = messageDigest(p.command, p.extra);
  const receipt: IpmsgReceipt = {
    from: { address: from.address, port: from.port },
    user: p.user,
    packetNo: p.packetNo,
    digest,
  };
  // Queued, not sent: the driver holds it until the message is committed, and unstored() withdraws it.
  const ack = () => {
    if (wantsAck) {
      send(s, from, IPMSG.RECVMSG | capabilities(s), [p.packetNo], encoding, undefined, receiptKey(receipt));
    }
  };
  if (s.seen.duplicate(from.address, p.user, p.packetNo, digest, now)) {
    // Stored already: the sender missed our answer.
    s.counters.duplicates++;
    return ack();
  }
  if (!s.allowMessage(from.address, now)) {
    // Not answered, so the sender's client knows it was not received.
    s.counters.messagesRefused++;
    s.events.push({ type: "refused", address: from.address, reason: "message-rate" });
    return;
  }
  ack();
  s.seen.remember(from.address, p.user, p.packetNo, digest, now);
  // A sender we have no entry for (its BR_ENTRY was lost): take it from the
  // packet. Its message is kept even when the roster has no room for it.
  const peer = s.peers.get(id) ?? upsert(s, { ...p, extra: [p.user, ""] }, from, now) ??
    transient(p, id, from, now);
  let text = p.extra[0] ?? "";
  if (p.options & IPMSG_OPT.ENCRYPTOPT) {
    s.counters.dropped.unsupported++;
    text = "(an encrypted IP Messenger message: lanchat cannot read those)";
  }
  const offer = offeredFiles(p, text);
  text = offer.text;
  // Another client's automatic reply: stored as one, so nobody answers it.
  if (p.options & IPMSG_OPT.AUTORETOPT) text = autoReplyText(text);
  // Sealed: shown closed until opened; opening it sends READMSG with its packet number.
  if (p.options & IPMSG_OPT.SECRETOPT && /^\d{1,20}$/.test(p.packetNo)) {
    text = sealedText(text, { packetNo: p.packetNo, readCheck: (p.options & IPMSG_OPT.READCHECKOPT) !== 0 });
  }
  s.counters.messagesIn++;
  s.events.push({
    type: "message",
    peer,
    text,
    sentAt: s.wall(now),
    ...(offer.files?.length ? { files: { packetNo: Number(p.packetNo), list: offer.files } } : {}),
    receipt,
  });
}

/**
 * A message this machine gave out could not be kept (the store refused
 * it, or its commit failed): its RECVMSGs still queued are withdrawn and
 * its packet number forgotten, so the sender, unanswered, sends it again
 * and it is taken as new. A message acknowledged is a message stored.
 */
export function unstored(s: IpmsgState, receipt: IpmsgReceipt): void {
  const key = receiptKey(receipt);
  s.transmits = s.transmits.filter((t) => t.receipt !== key);
  s.seen.forget(receipt.from.address, receipt.user, receipt.packetNo, receipt.digest);
}
