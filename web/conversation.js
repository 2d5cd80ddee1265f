// The open conversation: its window of messages (older and newer pages as you scroll), live messages, sending.
import { $, alertLine, api, conversationOf, el, hooks, PAGE, state, WINDOW } from "./core.js";
import { peerName, renderPeers, showPeerHeader } from "./people.js";
import { forget, lookedAt, resetSeen, watchSeen } from "./seen.js";
import { renderTransfers } from "./files.js";
import { messageText, nameNode, printableLine } from "./text.js";
import {
  arrivedBelow,
  arrivedUnseen,
  avatar,
  describe,
  dividerAtUnread,
  keepsBottom,
  layout,
  resetSizes,
  showHit,
  toBottom,
  unwatchSize,
  watchSize,
} from "./view.js";

export function statusText(m) {
  if (m.direction === "in") return m.sealed ? (m.sealed.opened ? "sealed, opened" : "") : "";
  if (m.readAt) return m.recipients ? "read by all ✓✓" : "read ✓✓";
  if (m.recipients && m.recipients.length > 0) {
    const n = (s) => m.recipients.filter((r) => r.status === s).length;
    const read = m.recipients.filter((r) => r.readAt).length;
    const parts = [`delivered to ${n("delivered")} of ${m.recipients.length}`];
    if (read > 0) parts.push(`read by ${read}`);
    if (n("queued") > 0) parts.push(`${n("queued")} offline`);
    return parts.join(", ");
  }
  return { queued: "queued", sent: "sent", delivered: "delivered ✓", failed: `failed: ${m.error ?? ""}` }[m.status] ??
    m.status;
}

export const RANK = { queued: 1, sent: 2, delivered: 3, failed: 3, received: 3 };
/** How far a message has come: read (a receipt) is past delivered. */
export const rank = (m) => m.readAt ? 4 : RANK[m.status] ?? 0;

export function messageItem(m) {
  const li = el("li", m.group?.change ? `${m.direction} change` : m.direction);
  li.dataset.cursor = String(m.cursor);
  li.dataset.status = m.status;
  li.dataset.rank = String(rank(m));
  li.dataset.id = m.id;
  describe(li, m);
  // In a group, who wrote it (with their avatar); a change of members reads as a sentence about its author.
  if (m.group && m.direction === "in") {
    const from = el("span", "from");
    if (!m.group.change) from.append(avatar(state.peers.find((p) => p.id === m.peer.id) ?? m.peer));
    from.append(nameNode(m.peer.name), m.group.change ? " " : ": ");
    li.append(from);
  }
  if (m.group?.change && m.direction === "out") li.append(el("span", "from", "You "));
  if (m.sealed && m.direction === "in" && !m.sealed.opened) {
    // A sealed message (IP Messenger's): closed until the person opens it, which tells its sender.
    const open = el("button", "open-sealed", "Open sealed message");
    open.addEventListener("click", async () => {
      try {
        const opened = await api("/messages/open", { id: m.id });
        li.replaceWith(messageItem(opened));
      } catch (e) {
        alertLine(`Not opened: ${e.message}`);
      }
    });
    li.append(open);
  } else {
    li.append(messageText(m.text));
  }
  const time = new Date(m.receivedAt ?? m.sentAt).toLocaleTimeString();
  const meta = [time, statusText(m), m.late ? "late" : ""].filter(Boolean).join(" · ");
  li.append(el("span", "meta", meta));
  for (const hook of hooks.messageItem) hook(li, m);
  forgetItem(state.shown.get(m.id));
  state.shown.set(m.id, li);
  watchSeen(li, m);
  watchSize(li);
  return li;
}

export function withGap(m, li) {
  if (!m.gapBefore) return [li];
  return [el("li", "gap", `${m.gapBefore} message(s) never arrived here`), li];
}

/** A message item gone from the page (replaced, trimmed): no longer watched. */
function forgetItem(li) {
  if (!li) return;
  forget(li);
  unwatchSize(li);
}

/** The query naming the open conversation: `peer=ID` or `group=ID`. */
export const conversationQuery = () => `${state.kind}=${encodeURIComponent(state.current)}`;

/** The group conversation's title: its name and members, and what can be done with it. */
export function showGroupHeader() {
  const g = state.groups.find((x) => x.id === state.current);
  if (!g) return;
  $("peer-title").replaceChildren(avatar({ id: g.id, name: g.name }), "@", nameNode(g.name));
  const others = g.members.filter((m) => !m.self);
  $("group-members").textContent = g.left
    ? "You left this group."
    : `${others.map((m) => `${printableLine(m.name)}${m.online ? "" : " (offline)"}`).join(", ")} and you`;
  $("group-actions").hidden = Boolean(g.left);
  $("composer").hidden = Boolean(g.left);
}

/**
 * Opens a conversation (a peer or a group) at its newest message, or with `{ at: cursor }` at that message (a search
 * hit): a window around it, the message in the middle of the list and marked `li.hit`.
 */
export async function openConversation(id, kind = "peer", { at } = {}) {
  const opening = ++state.opened;
  state.at = at; // opened again the same way when the event stream comes back
  state.current = id;
  state.kind = kind;
  state.oldest = undefined;
  state.noOlder = false;
  state.shown.clear();
  state.unread.delete(id);
  resetSeen();
  resetSizes();
  const peer = state.peers.find((p) => p.id === id);
  $("peer-title").replaceChildren(...(peer ? [avatar(peer)] : []), nameNode(peerName(id)));
  state.below = 0;
  state.pinned = true;
  state.awayDivider = !lookedAt(); // opened while not looked at (a link from elsewhere): unread has its divider
  document.body.dataset.view = "conversation";
  $("composer").hidden = false;
  $("group-bar").hidden = kind !== "group";
  showPeerHeader();
  if (kind === "group") showGroupHeader();
  const list = $("messages");
  list.replaceChildren();
  renderPeers();
  renderTransfers();
  const half = PAGE / 2;
  const [page, older, newer] = at === undefined
    ? [await api(`/messages?${conversationQuery()}&limit=${PAGE}`)]
    : await Promise.all([
      api(`/messages?${conversationQuery()}&before=${Number(at) + 1}&limit=${half}`),
      api(`/messages?${conversationQuery()}&after=${Number(at)}&limit=${half}`),
    ]).then(([o, n]) => [[...o, ...n], o, n]);
  if (state.opened !== opening) return;
  // Messages that arrived live while the page was fetched are either in it (shown once) or newer (kept after it).
  const inPage = new Set(page.map((m) => m.id));
  const arrived = at !== undefined
    ? []
    : [...list.querySelectorAll("li[data-id]")].filter((li) => !inPage.has(li.dataset.id));
  list.replaceChildren(...page.flatMap((m) => withGap(m, messageItem(m))), ...arrived);
  state.oldest = page[0]?.cursor;
  const last = arrived.at(-1)?.dataset.cursor;
  state.newest = last !== undefined ? Number(last) : page.at(-1)?.cursor;
  state.atNewest = at === undefined || newer.length < half;
  state.noOlder = at === undefined ? page.length < PAGE : older.length < half;
  markEnds();
  dividerAtUnread();
  layout();
  const hit = at === undefined ? undefined : list.querySelector(`li[data-cursor="${Number(at)}"]`);
  if (hit) showHit(hit);
  else toBottom();
  $("text").focus({ preventScroll: true });
  for (const hook of hooks.opened) hook(id, kind);
}

export async function loadOlder() {
  if (state.loadingOlder || state.noOlder || state.oldest === undefined || !state.current) return;
  state.loadingOlder = true;
  const opening = state.opened;
  try {
    const page = await api(`/messages?${conversationQuery()}&before=${state.oldest}&limit=${PAGE}`);
    if (state.opened !== opening) return;
    const list = $("messages");
    const before = list.scrollHeight;
    const items = page.flatMap((m) => withGap(m, messageItem(m)));
    list.prepend(...items);
    layout();
    list.scrollTop += list.scrollHeight - before;
    state.oldest = page[0]?.cursor ?? state.oldest;
    state.noOlder = page.length < PAGE;
    trim("bottom");
    markEnds();
  } finally {
    state.loadingOlder = false;
  }
}

/** Marks on the list whether its window reaches the oldest and the newest message (for tests and the benchmark). */
export function markEnds() {
  $("messages").dataset.oldest = String(state.noOlder);
  $("messages").dataset.newest = String(state.atNewest);
}

/** Keeps the window at WINDOW messages, dropping them from the far end. */
export function trim(end) {
  const list = $("messages");
  const items = () => list.querySelectorAll("li[data-cursor]");
  let all = items();
  if (all.length <= WINDOW) return;
  const drop = end === "bottom" ? [...all].slice(WINDOW) : [...all].slice(0, all.length - WINDOW);
  const height = list.scrollHeight;
  for (const li of drop) {
    state.shown.delete(li.dataset.id);
    forgetItem(li);
    li.remove();
  }
  all = items();
  if (end === "bottom") {
    state.atNewest = false;
    state.newest = Number(all[all.length - 1].dataset.cursor);
  } else {
    state.noOlder = false;
    state.oldest = Number(all[0].dataset.cursor);
    list.scrollTop -= height - list.scrollHeight;
  }
}

/** Scrolled down to the end of a window that does not reach the newest message: the next page. */
export async function loadNewer() {
  if (state.loadingOlder || state.atNewest || state.newest === undefined || !state.current) return;
  state.loadingOlder = true;
  const opening = state.opened;
  try {
    const page = await api(`/messages?${conversationQuery()}&after=${state.newest}&limit=${PAGE}`);
    if (state.opened !== opening) return;
    $("messages").append(...page.flatMap((m) => withGap(m, messageItem(m))));
    state.newest = page.at(-1)?.cursor ?? state.newest;
    state.atNewest = page.length < PAGE;
    trim("top");
    layout();
    markEnds();
  } finally {
    state.loadingOlder = false;
  }
}

export function showMessage(m) {
  if (conversationOf(m) !== state.current || (state.kind === "peer" && m.group)) return false;
  const known = state.shown.get(m.id);
  if (known) {
    // The delivery event can overtake the answer to the POST that sent it: never go back a step.
    if (rank(m) >= Number(known.dataset.rank ?? 0)) {
      const li = messageItem(m);
      li.classList.toggle("cont", known.classList.contains("cont")); // grouped as it was
      known.replaceWith(li);
    }
    return true;
  }
  // Far back in history: the new message waits until the window comes back down to it (the jump button counts it).
  if (!state.atNewest) {
    arrivedBelow(m);
    return true;
  }
  const stick = keepsBottom();
  const li = messageItem(m);
  $("messages").append(...withGap(m, li));
  state.newest = m.cursor;
  trim("top");
  layout();
  if (stick || m.direction === "out") {
    toBottom();
    if (!lookedAt()) arrivedUnseen(m, li);
  } else arrivedBelow(m, li);
  return true;
}

export async function send() {
  const text = $("text").value;
  if (!state.current || text.trim() === "") return;
  $("text").value = "";
  try {
    const body = state.kind === "group" ? { group: state.current, text } : { to: state.current, text };
    for (const hook of hooks.sendBody) hook(body);
    const m = await api("/messages", body);
    if (!state.atNewest) await openConversation(state.current, state.kind);
    showMessage(m);
    for (const hook of hooks.sent) hook(m);
  } catch (e) {
    $("text").value = text;
    alertLine(`Not sent: ${e.message}`);
  }
}
