// lanchat's page, shared ground of its modules: the DOM and fetch helpers, the page's state, and the hooks by which
// a module adds to what others draw without their knowing it.
// Everything a peer supplies is put in the page as text (textContent), never as HTML; the daemon's
// Content-Security-Policy allows no inline script and no connection but to the daemon itself.

export const $ = (id) => document.getElementById(id);
export const PAGE = 50;
/** Most messages in the page at once: a window over the conversation, moved as you scroll (100,000 stay smooth). */
export const WINDOW = 300;

export const state = {
  peers: [], // from /peers?all=1
  groups: [], // from /groups
  unread: new Map(), // conversation (peer or group id) -> count
  current: undefined, // the open conversation: a peer id or a group id
  opened: 0, // how many times a conversation was opened: an answer for an earlier opening is not used
  kind: "peer", // what `current` is: "peer" or "group"
  at: undefined, // the message the open conversation was opened at (a search hit), if not its newest
  oldest: undefined, // cursor of the oldest message shown
  loadingOlder: false,
  noOlder: false,
  atNewest: true, // the window reaches the newest message
  newest: undefined, // cursor of the newest message shown
  shown: new Map(), // message id -> li
  readUpTo: -1, // cursor of the newest message of the open conversation seen and reported read
  unseen: new Set(), // cursors of messages of the open conversation that arrived live and are not seen yet
  pinned: true, // the list is kept at its newest message (scrolled to the bottom, and staying there)
  below: 0, // messages that arrived below what is on screen (the jump button's count)
  awayDivider: false, // the divider was put where messages began to arrive while the page was not looked at
  transfers: new Map(), // transfer id -> transfer
  baseTitle: "lanchat",
};

export function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

export async function api(path, body, method = "POST") {
  const res = await fetch(
    path,
    body === undefined ? {} : {
      method,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    },
  );
  const json = await res.json().catch(() => ({}));
  if (res.status === 401) throw new AuthError(json.error ?? "the session ended");
  if (!res.ok) throw new Error(json.error ?? `${res.status}`);
  return json;
}

export class AuthError extends Error {}

/**
 * The session ended (the token file was replaced): load the page again,
 * which then says how to open it (lanchat web). The page never sees the
 * token, nor puts a code in a URL it keeps: the daemon set the cookie.
 */
export function sessionEnded() {
  location.replace("/");
}

export const conversationOf = (m) => m.group ? m.group.id : m.peer.id;

export function alertLine(text) {
  const list = $("messages");
  list.append(el("li", "gap", text));
  list.scrollTop = list.scrollHeight;
}

/**
 * Hooks for the page's other modules (search, compose, images…): each a list of functions, called in order.
 * - `messageItem(li, m)`: a message's list item was just built (add buttons, a thumbnail, "(edited)").
 * - `sendBody(body)`: before `POST /messages`, to add to its body (`replyTo`); `sent(m)`: after it was sent.
 * - `opened(id, kind)`: a conversation was opened and its newest page shown.
 */
export const hooks = { messageItem: [], sendBody: [], sent: [], opened: [] };

/** Handlers of Server-Sent Event types added by other modules: `onEvent("message-updated", (data) => …)`. */
export const eventHandlers = [];

/** Handles an event of the page's stream (`/events`) by its type, with its data parsed. */
export function onEvent(type, handler) {
  eventHandlers.push({ type, handler });
}
