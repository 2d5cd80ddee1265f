// Read receipts: a message is read once seen (on screen, the page looked at); the daemon is told how far.
import { $, api, el, state } from "./core.js";
import { updateTitle } from "./people.js";

/**
 * A message is read once it has been on screen in a page that is visible
 * and has the focus: not while it is scrolled away, the tab hidden or
 * another window in front. Incoming unread messages are watched with an
 * IntersectionObserver (which of them come near the screen); one is seen
 * when at least half of it is on screen while the page is looked at. A read
 * receipt names the newest message read and counts every one before it read
 * too (as the protocols do), so the daemon is told (`upTo`, a cursor) only
 * up to the last message before the first unread one not seen yet.
 */
export const nearScreen = new Set(); // watched list items now at least partly on screen
export const seenObserver = new IntersectionObserver((entries) => {
  for (const e of entries) {
    if (e.isIntersecting) nearScreen.add(e.target);
    else nearScreen.delete(e.target);
  }
  markSeen();
});

/** An incoming message not read yet, that seeing reads (a sealed one is read only by opening it). */
export const toSee = (m) => m.direction === "in" && !m.readAt && !(m.sealed && !m.sealed.opened);

/** An incoming message not read yet: watched until seen. */
export function watchSeen(li, m) {
  if (!toSee(m)) return;
  li.dataset.unread = "true";
  seenObserver.observe(li);
}

/** A list item gone from the page (replaced, trimmed, another conversation opened): no longer watched. */
export function forget(li) {
  if (!li) return;
  seenObserver.unobserve(li);
  nearScreen.delete(li);
}

export function resetSeen() {
  seenObserver.disconnect();
  nearScreen.clear();
  state.readUpTo = -1;
  state.unseen.clear();
}

/** The page can be looked at: shown (not a hidden tab) and in front (it has the focus). */
export const lookedAt = () => document.visibilityState === "visible" && document.hasFocus();

/** At least half of the message (or half the list's height, for a long one) is inside the list and the window. */
export function onScreen(li) {
  const r = li.getBoundingClientRect();
  const box = $("messages").getBoundingClientRect();
  const shown = Math.min(r.bottom, box.bottom, globalThis.innerHeight) - Math.max(r.top, box.top, 0);
  return shown > 0 && shown >= Math.min(r.height, box.height) / 2;
}

/** Notes what is on screen now as seen, and tells the daemon how far the open conversation has been read. */
export function markSeen() {
  if (!state.current || nearScreen.size === 0 || !lookedAt()) return;
  let fresh = false;
  for (const li of nearScreen) {
    if (li.isConnected && !onScreen(li)) continue;
    forget(li);
    if (!li.isConnected) continue;
    li.dataset.seen = "true";
    state.unseen.delete(Number(li.dataset.cursor));
    fresh = true;
  }
  if (!fresh) return;
  setUnreadOfCurrent();
  // Up to the first unread message not seen; none while older unread ones may be above what is loaded (the
  // oldest message received in the page is unread, so those before it may be unread too).
  const unread = $("messages").querySelectorAll("li[data-unread]");
  const first = $("messages").querySelector("li.in[data-id]");
  if (!state.noOlder && first?.dataset.unread && Number(first.dataset.cursor) > state.readUpTo) return;
  let upTo = state.readUpTo;
  for (const li of unread) {
    const cursor = Number(li.dataset.cursor);
    if (cursor <= upTo) continue;
    if (!li.dataset.seen) break;
    upTo = cursor;
  }
  if (upTo <= state.readUpTo) return;
  const told = state.readUpTo;
  state.readUpTo = upTo;
  api("/messages/read", { [state.kind]: state.current, upTo }).catch(() => {
    // Not told (the daemon restarting): told when something is next seen.
    if (state.readUpTo === upTo) state.readUpTo = told;
  });
}

/** The open conversation's unread count: what arrived live and has not been seen yet. */
export function setUnreadOfCurrent() {
  if (!state.current) return;
  const n = state.unseen.size;
  if ((state.unread.get(state.current) ?? 0) === n) return;
  if (n > 0) state.unread.set(state.current, n);
  else state.unread.delete(state.current);
  // Only its own row changes (the list can be 1,000 people: not rebuilt for each message).
  const row = [...$("peer-list").children].find((li) => li.dataset.id === state.current);
  row?.querySelector(".unread")?.remove();
  if (row && n > 0) row.append(el("span", "unread", String(n)));
  updateTitle();
}
