/**
 * IP Messenger entries, the roster side: BR_ENTRY (nickname, group; UTF-8
 * capable) at start and on every announce, and a copy in GBK to GBK peers
 * when our name is not ASCII; BR_ENTRY from others is answered with
 * ANSENTRY; ANSENTRY and BR_ABSENCE add or update a peer, within the bounds
 * shared with lanchat's roster; BR_EXIT removes it; so does silence for
 * {@link IPMSG_EXPIRY_ANNOUNCES} announces (every client answers our
 * BR_ENTRY, so a live one is heard on each). Our own absence (BR_ABSENCE,
 * GETABSENCEINFO), who we are (GETINFO) and our BR_EXIT at shutdown.
 *
 * @module
 */
import type { Endpoint } from "./discovery.ts";
import { MAX_PEERS_PER_ADDRESS } from "./roster.ts";
import {
  capabilities,
  encodingOf,
  entryEncoding,
  entryExtra,
  entryName,
  needsGbkCopy,
  send,
} from "./ipmsg_encoding.ts";
import { sendQueued, stopRetrying } from "./ipmsg_outbox.ts";
import { countAt, type IpmsgPeer, ipmsgPeerId, type IpmsgState, touch } from "./ipmsg_state.ts";
import { IPMSG, type IpmsgPacket } from "../wire/ipmsg.ts";

/** An IP Messenger peer not heard for this many of our announces is removed. */
export const IPMSG_EXPIRY_ANNOUNCES = 5;

/** A BR_ENTRY: a restart of its sender is noted (a new duplicate window), and a peer that has room is answered. */
export function onEntry(s: IpmsgState, p: IpmsgPacket, id: string, from: Endpoint, now: number): void {
  // A restarted client numbers its packets from the start again: its messages are new ones.
  if (s.seen.entry(from.address, p.user, p.packetNo, s.peers.has(id), now)) s.counters.restarts++;
  const peer = upsert(s, p, from, now);
  if (peer) send(s, from, IPMSG.ANSENTRY | capabilities(s), entryExtra(s), peer.encoding);
}

/** A BR_EXIT: the peer said goodbye. */
export function onExit(s: IpmsgState, id: string): void {
  const peer = s.peers.get(id);
  if (peer) remove(s, peer, "goodbye");
}

/** GETINFO: which program answers (IP Messenger shows it in a user's details). */
export function onGetInfo(s: IpmsgState, p: IpmsgPacket, id: string, from: Endpoint, now: number): void {
  touch(s, id, now);
  send(s, from, IPMSG.SENDINFO | capabilities(s), [s.software], encodingOf(s, id, p));
}

/** GETABSENCEINFO: our absence note, or IP Messenger's own words when its user is not absent. */
export function onGetAbsenceInfo(s: IpmsgState, p: IpmsgPacket, id: string, from: Endpoint, now: number): void {
  touch(s, id, now);
  send(
    s,
    from,
    IPMSG.SENDABSENCEINFO | capabilities(s),
    [s.absence === undefined ? "Not absence mode" : s.absence || "Away"],
    encodingOf(s, id, p),
  );
}

/** When an announce is due: BR_ENTRY on every broadcast address (and in GBK to GBK peers), and the silent removed. */
export function announce(s: IpmsgState, now: number): void {
  if (s.nextAnnounce === undefined || now < s.nextAnnounce) return;
  const extra = entryExtra(s);
  for (const b of s.broadcasts) send(s, b, IPMSG.BR_ENTRY | capabilities(s), extra, "utf-8");
  // A GBK-only client (FeiQ) reads the broadcast's UTF-8 name as mojibake: it gets one in GBK after it.
  if (needsGbkCopy(extra)) {
    for (const peer of s.peers.values()) {
      if (peer.encoding === "gbk") send(s, peer, IPMSG.BR_ENTRY | capabilities(s), extra, "gbk");
    }
  }
  s.nextAnnounce = now + s.intervalMs;
  // Peers silent for several announces (each of which they answer) are gone.
  for (const peer of s.peers.values()) {
    if (now - peer.lastSeen > IPMSG_EXPIRY_ANNOUNCES * s.intervalMs) remove(s, peer, "timeout");
  }
  s.seen.expire(now);
}

/**
 * Our absence as IP Messenger clients show it: entries carry ABSENCEOPT,
 * a BR_ABSENCE goes out at once (to every broadcast address and every
 * user), and GETABSENCEINFO is answered with the note. Undefined: present.
 */
export function setAbsence(s: IpmsgState, note: string | undefined): void {
  s.absence = note;
  const extra = entryExtra(s);
  const command = IPMSG.BR_ABSENCE | capabilities(s);
  for (const b of s.broadcasts) send(s, b, command, extra, "utf-8");
  for (const p of s.peers.values()) send(s, p, command, extra, p.encoding);
}

/** BR_EXIT on every broadcast address and to every peer. */
export function sayGoodbye(s: IpmsgState): void {
  for (const b of s.broadcasts) send(s, b, IPMSG.BR_EXIT | capabilities(s), entryExtra(s), "utf-8");
  for (const p of s.peers.values()) {
    send(s, p, IPMSG.BR_EXIT | capabilities(s), entryExtra(s), p.encoding);
  }
}

/** A sender with no room in the roster, as its message's event shows it. */
export function transient(p: IpmsgPacket, id: string, from: Endpoint, now: number): IpmsgPeer {
  return {
    id,
    user: p.user,
    host: p.host,
    nickname: p.user,
    group: "",
    address: from.address,
    port: from.port,
    version: p.version,
    encoding: p.encoding,
    absent: false,
    firstSeen: now,
    lastSeen: now,
  };
}

/** Adds or updates the sender of an entry; undefined when a new one does not fit the bounds (counted). */
export function upsert(s: IpmsgState, p: IpmsgPacket, from: Endpoint, now: number): IpmsgPeer | undefined {
  const id = ipmsgPeerId(p.user, from.address);
  const { nickname, absent, absenceNote } = entryName(p);
  const fields = {
    user: p.user,
    host: p.host,
    nickname,
    absenceNote,
    group: p.extra[1] ?? "",
    address: from.address,
    port: from.port,
    version: p.version,
    encoding: entryEncoding(p),
    // An entry or its answer says absence too (a client that starts absent).
    absent,
  };
  const known = s.peers.get(id);
  if (!known) {
    // The same bounds as lanchat's roster, shared with it: a full roster
    // takes no newcomer, nor does an address that has its share.
    const here = countAt(s, from.address) + s.others.countAt(from.address);
    if (s.peers.size + s.others.count() >= s.maxPeers || here >= MAX_PEERS_PER_ADDRESS) {
      s.counters.dropped["roster-full"]++;
      s.events.push({ type: "refused", address: from.address, reason: "roster-full" });
      return undefined;
    }
    const peer: IpmsgPeer = { id, ...fields, firstSeen: now, lastSeen: now };
    s.peers.set(id, peer);
    s.byAddress.set(from.address, countAt(s, from.address) + 1);
    s.counters.entries++;
    s.events.push({ type: "joined", peer });
    // It is back: whatever waits for it goes now.
    sendQueued(s, id, now);
    return peer;
  }
  const changed = known.nickname !== fields.nickname || known.group !== fields.group ||
    known.absent !== fields.absent || known.absenceNote !== fields.absenceNote || known.port !== fields.port;
  Object.assign(known, fields, { lastSeen: now });
  if (changed) s.events.push({ type: "updated", peer: known });
  return known;
}

function remove(s: IpmsgState, peer: IpmsgPeer, reason: "goodbye" | "timeout"): void {
  s.peers.delete(peer.id);
  const left = countAt(s, peer.address) - 1;
  if (left > 0) s.byAddress.set(peer.address, left);
  else s.byAddress.delete(peer.address);
  s.events.push({ type: "left", peer, reason });
  stopRetrying(s, peer.id);
}
