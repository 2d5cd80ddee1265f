/**
 * A peer's presence (online, away, busy) and note, from its hellos and from
 * the notes it sends apart over its end-to-end session. Pure functions on
 * the roster's {@link Peer}; discovery emits the events.
 *
 * @module
 */
import type { Hello, Note } from "../wire/mod.ts";
import type { Peer } from "./roster.ts";

/**
 * A peer's state from its hello; true when it changed. One that speaks
 * end-to-end sends its note apart (see {@link noteOf}): a new away or busy
 * waits for that note, so the state and its note change together, or for the
 * next hello that still says it, if the note was lost. Back online clears
 * the note at once.
 */
export function presenceOf(peer: Peer, hello: Hello): boolean {
  let presence = hello.presence;
  let note = hello.note;
  if (hello.staticKey) {
    note = peer.note;
    const ahead = peer.noteAhead;
    peer.noteAhead = undefined;
    if (presence === undefined) {
      peer.pendingPresence = undefined;
      note = undefined;
    } else if (presence !== peer.presence && ahead?.presence === presence) {
      peer.pendingPresence = undefined;
      note = ahead.note;
    } else if (presence !== peer.presence && peer.pendingPresence !== presence) {
      peer.pendingPresence = presence;
      presence = peer.presence;
      if (presence === undefined) note = undefined;
    } else if (presence !== peer.presence) {
      peer.pendingPresence = undefined; // the note did not come: the state goes on without it
      note = undefined;
    }
  }
  if (peer.presence === presence && peer.note === note) return false;
  peer.presence = presence;
  peer.note = note;
  return true;
}

/**
 * A note from `peer` (its incarnation checked by the caller): true when it
 * changed the peer's state or note, undefined when it changed nothing, else
 * why it was not taken.
 */
export function noteOf(peer: Peer, n: Note): true | string | undefined {
  const state = peer.pendingPresence ?? peer.presence;
  const note = n.note || undefined;
  if (n.presence === undefined) return "for no state";
  if (n.presence !== state) {
    // Ahead of the hello that announces its state, maybe: kept for it.
    peer.noteAhead = { presence: n.presence, note };
    return "ahead of the hello that announces its state";
  }
  peer.pendingPresence = undefined;
  if (peer.presence === n.presence && peer.note === note) return undefined;
  peer.presence = n.presence;
  peer.note = note;
  return true;
}
