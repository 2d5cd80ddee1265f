// lanchat's page: the roster, a conversation per peer, incoming file offers, live over Server-Sent Events.
// Everything a peer supplies is put in the page as text (textContent), never as HTML; the daemon's
// Content-Security-Policy allows no inline script and no connection but to the daemon itself.

const $ = (id) => document.getElementById(id);
const PAGE = 50;
/** Most messages in the page at once: a window over the conversation, moved as you scroll (100,000 stay smooth). */
const WINDOW = 300;

const state = {
  peers: [], // from /peers?all=1
  groups: [], // from /groups
  unread: new Map(), // conversation (peer or group id) -> count
  current: undefined, // the open conversation: a peer id or a group id
  opened: 0, // how many times a conversation was opened: an answer for an earlier opening is not used
  kind: "peer", // what `current` is: "peer" or "group"
  oldest: undefined, // cursor of the oldest message shown
  loadingOlder: false,
  noOlder: false,
  atNewest: true, // the window reaches the newest message
  newest: undefined, // cursor of the newest message shown
  shown: new Map(), // message id -> li
  readUpTo: -1, // cursor of the newest message of the open conversation seen and reported read
  unseen: new Set(), // cursors of messages of the open conversation that arrived live and are not seen yet
  transfers: new Map(), // transfer id -> transfer
  baseTitle: "lanchat",
};

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

async function api(path, body, method = "POST") {
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

class AuthError extends Error {}

/**
 * The session ended (the token file was replaced): load the page again,
 * which then says how to open it (lanchat web). The page never sees the
 * token, nor puts a code in a URL it keeps: the daemon set the cookie.
 */
function sessionEnded() {
  location.replace("/");
}

// ---- people ----

async function loadPeers() {
  state.peers = await api("/peers?all=1");
  renderPeers();
}

function peerName(id) {
  return state.peers.find((p) => p.id === id)?.name ?? id.slice(0, 8);
}

async function loadGroups() {
  state.groups = await api("/groups");
  renderPeers();
  if (state.kind === "group") showGroupHeader();
}

/** The conversation a message belongs to: its group, else its peer. */
const conversationOf = (m) => m.group ? m.group.id : m.peer.id;

/** The list item of a conversation (a peer or a group) in the people list. */
function conversationItem(id, kind, name, detail, dim) {
  const li = el("li", dim ? "offline" : kind === "group" ? "group" : "");
  li.tabIndex = 0;
  li.dataset.id = id;
  li.setAttribute("aria-selected", String(id === state.current));
  li.append(el("span", "name", name));
  li.append(el("span", "detail", detail));
  const n = state.unread.get(id) ?? 0;
  if (n > 0) li.append(el("span", "unread", String(n)));
  li.addEventListener("click", () => openConversation(id, kind));
  li.addEventListener("keydown", (e) => {
    if (e.key === "Enter") openConversation(id, kind);
  });
  return li;
}

function renderPeers() {
  const q = $("search").value.trim().toLowerCase();
  const list = $("peer-list");
  list.replaceChildren();
  const online = (p) => p.state !== "offline";
  const peers = state.peers
    .filter((p) => !q || p.name.toLowerCase().includes(q) || (p.hostname ?? "").toLowerCase().includes(q))
    .sort((a, b) => Number(online(b)) - Number(online(a)) || a.name.localeCompare(b.name));
  for (const g of state.groups.filter((g) => !g.left || g.id === state.current)) {
    if (q && !g.name.toLowerCase().includes(q)) continue;
    const names = g.members.filter((m) => !m.self).map((m) => m.name).join(", ");
    list.append(conversationItem(g.id, "group", `@${g.name}`, g.left ? "you left" : names, g.left));
  }
  for (const p of peers) {
    const detail = [
      p.hostname,
      online(p)
        ? (p.presence && p.presence !== "online" ? `${p.presence}${p.note ? `: ${p.note}` : ""}` : "online")
        : "offline",
      p.protocol === "ipmsg" ? "IP Messenger" : "lanchat",
      p.encrypted === false ? "unencrypted" : undefined,
      p.fingerprint ? `key ${p.fingerprint}` : undefined,
    ].filter(Boolean).join(" · ");
    const li = conversationItem(p.id, "peer", p.name, detail, !online(p));
    if (p.protocol !== "ipmsg" && p.trust) li.append(el("span", `trust trust-${p.trust}`, TRUST_WORDS[p.trust]));
    list.append(li);
  }
  if (state.kind === "peer") showPeerHeader();
  updateTitle();
}

// ---- verifying a peer's key ----

/** A pinned key's trust in words (as `lanchat peers` and docs/security.md say it). */
const TRUST_WORDS = {
  trusted: "verified ✓",
  tofu: "not verified",
  conflict: "KEY CHANGED",
  replaced: "key replaced",
};

/** The open peer conversation's key: its trust, what a change means, and the Verify action. */
function showPeerHeader() {
  const p = state.kind === "peer" ? state.peers.find((x) => x.id === state.current) : undefined;
  const lanchat = p !== undefined && p.protocol !== "ipmsg" && p.trust !== undefined;
  $("peer-bar").hidden = !lanchat;
  $("key-note").hidden = !p?.keyNote;
  $("key-note").textContent = p?.keyNote ?? "";
  if (!lanchat) return;
  $("peer-trust").textContent = `key ${p.fingerprint} · ${TRUST_WORDS[p.trust]}`;
  $("peer-trust").className = `trust-${p.trust}`;
}

/** Shows the safety number of this node and the open peer, and "They match" to trust its key. */
async function showVerify() {
  const id = state.current;
  $("verify-error").textContent = "";
  $("verify-number").textContent = "";
  $("verify-state").textContent = "";
  $("verify-note").hidden = true;
  $("verify-match").hidden = true;
  $("verify-title").textContent = `Verify ${peerName(id)}`;
  $("verify-dialog").showModal();
  try {
    const v = await api(`/peers/${encodeURIComponent(id)}/verify`);
    showVerification(v);
    // Trusted elsewhere (the CLI, another page) since the roster was loaded: the roster says so now.
    if (state.peers.find((p) => p.id === v.peer.id)?.trust !== v.trust) await loadPeers();
  } catch (e) {
    $("verify-error").textContent = e.message;
  }
}

function showVerification(v) {
  const groups = v.safetyNumber.split(" ");
  $("verify-number").textContent = [0, 4, 8].map((i) => groups.slice(i, i + 4).join("  ")).join("\n");
  $("verify-number").dataset.number = v.safetyNumber;
  $("verify-dialog").dataset.peer = v.peer.id;
  $("verify-state").textContent = v.state === "verified"
    ? `${v.peer.name}'s key (${v.peer.fingerprint}) is verified: you confirmed this number before.`
    : `${v.peer.name}'s key (${v.peer.fingerprint}): ${v.state}. Does ${v.peer.name}'s screen show the same number?`;
  $("verify-note").hidden = !v.keyNote;
  $("verify-note").textContent = v.keyNote ?? "";
  $("verify-match").hidden = v.state === "verified";
}

/** "They match": the key is marked trusted (POST /trust), the roster and the dialog say so. */
async function confirmMatch() {
  const id = $("verify-dialog").dataset.peer;
  try {
    await api("/trust", { peer: id });
    await loadPeers();
    showVerification(await api(`/peers/${encodeURIComponent(id)}/verify`));
  } catch (e) {
    $("verify-error").textContent = e.message;
  }
}

function updateTitle() {
  let total = 0;
  for (const n of state.unread.values()) total += n;
  document.title = total > 0 ? `(${total}) ${state.baseTitle}` : state.baseTitle;
}

// ---- conversation ----

function statusText(m) {
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

const RANK = { queued: 1, sent: 2, delivered: 3, failed: 3, received: 3 };
/** How far a message has come: read (a receipt) is past delivered. */
const rank = (m) => m.readAt ? 4 : RANK[m.status] ?? 0;

function messageItem(m) {
  const li = el("li", m.group?.change ? `${m.direction} change` : m.direction);
  li.dataset.cursor = String(m.cursor);
  li.dataset.status = m.status;
  li.dataset.rank = String(rank(m));
  li.dataset.id = m.id;
  // In a group, who wrote it; a change of members reads as a sentence about its author.
  if (m.group && m.direction === "in") li.append(el("span", "from", `${m.peer.name}${m.group.change ? " " : ": "}`));
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
    li.append(document.createTextNode(m.text));
  }
  const time = new Date(m.receivedAt ?? m.sentAt).toLocaleTimeString();
  const meta = [time, statusText(m), m.late ? "late" : ""].filter(Boolean).join(" · ");
  li.append(el("span", "meta", meta));
  forget(state.shown.get(m.id));
  state.shown.set(m.id, li);
  watchSeen(li, m);
  return li;
}

function withGap(m, li) {
  if (!m.gapBefore) return [li];
  return [el("li", "gap", `${m.gapBefore} message(s) never arrived here`), li];
}

/** The query naming the open conversation: `peer=ID` or `group=ID`. */
const conversationQuery = () => `${state.kind}=${encodeURIComponent(state.current)}`;

/** The group conversation's title: its name and members, and what can be done with it. */
function showGroupHeader() {
  const g = state.groups.find((x) => x.id === state.current);
  if (!g) return;
  $("peer-title").textContent = `@${g.name}`;
  const others = g.members.filter((m) => !m.self);
  $("group-members").textContent = g.left
    ? "You left this group."
    : `${others.map((m) => `${m.name}${m.online ? "" : " (offline)"}`).join(", ")} and you`;
  $("group-actions").hidden = Boolean(g.left);
  $("composer").hidden = Boolean(g.left);
}

async function openConversation(id, kind = "peer") {
  const opening = ++state.opened;
  state.current = id;
  state.kind = kind;
  state.oldest = undefined;
  state.noOlder = false;
  state.shown.clear();
  state.unread.delete(id);
  resetSeen();
  $("peer-title").textContent = peerName(id);
  $("composer").hidden = false;
  $("group-bar").hidden = kind !== "group";
  showPeerHeader();
  $("file-button").hidden = kind === "group";
  if (kind === "group") showGroupHeader();
  const list = $("messages");
  list.replaceChildren();
  renderPeers();
  renderTransfers();
  const page = await api(`/messages?${conversationQuery()}&limit=${PAGE}`);
  if (state.opened !== opening) return;
  // Messages that arrived live while the page was fetched are either in it (shown once) or newer (kept after it).
  const inPage = new Set(page.map((m) => m.id));
  const arrived = [...list.querySelectorAll("li[data-id]")].filter((li) => !inPage.has(li.dataset.id));
  list.replaceChildren(...page.flatMap((m) => withGap(m, messageItem(m))), ...arrived);
  state.oldest = page[0]?.cursor;
  const last = arrived.at(-1)?.dataset.cursor;
  state.newest = last !== undefined ? Number(last) : page.at(-1)?.cursor;
  state.atNewest = true;
  state.noOlder = page.length < PAGE;
  markEnds();
  list.scrollTop = list.scrollHeight;
  $("text").focus();
}

async function loadOlder() {
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
function markEnds() {
  $("messages").dataset.oldest = String(state.noOlder);
  $("messages").dataset.newest = String(state.atNewest);
}

/** Keeps the window at WINDOW messages, dropping them from the far end. */
function trim(end) {
  const list = $("messages");
  const items = () => list.querySelectorAll("li[data-cursor]");
  let all = items();
  if (all.length <= WINDOW) return;
  const drop = end === "bottom" ? [...all].slice(WINDOW) : [...all].slice(0, all.length - WINDOW);
  const height = list.scrollHeight;
  for (const li of drop) {
    state.shown.delete(li.dataset.id);
    forget(li);
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
async function loadNewer() {
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
    markEnds();
  } finally {
    state.loadingOlder = false;
  }
}

function showMessage(m) {
  if (conversationOf(m) !== state.current || (state.kind === "peer" && m.group)) return false;
  const known = state.shown.get(m.id);
  if (known) {
    // The delivery event can overtake the answer to the POST that sent it: never go back a step.
    if (rank(m) >= Number(known.dataset.rank ?? 0)) known.replaceWith(messageItem(m));
    return true;
  }
  // Far back in history: the new message waits until the window comes back down to it.
  if (!state.atNewest) return true;
  const list = $("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.append(...withGap(m, messageItem(m)));
  state.newest = m.cursor;
  trim("top");
  if (atBottom || m.direction === "out") list.scrollTop = list.scrollHeight;
  return true;
}

async function send() {
  const text = $("text").value;
  if (!state.current || text.trim() === "") return;
  $("text").value = "";
  try {
    const m = await api(
      "/messages",
      state.kind === "group" ? { group: state.current, text } : { to: state.current, text },
    );
    if (!state.atNewest) await openConversation(state.current);
    showMessage(m);
  } catch (e) {
    $("text").value = text;
    alertLine(`Not sent: ${e.message}`);
  }
}

function alertLine(text) {
  const list = $("messages");
  list.append(el("li", "gap", text));
  list.scrollTop = list.scrollHeight;
}

// ---- read receipts ----

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
const nearScreen = new Set(); // watched list items now at least partly on screen
const seenObserver = new IntersectionObserver((entries) => {
  for (const e of entries) {
    if (e.isIntersecting) nearScreen.add(e.target);
    else nearScreen.delete(e.target);
  }
  markSeen();
});

/** An incoming message not read yet, that seeing reads (a sealed one is read only by opening it). */
const toSee = (m) => m.direction === "in" && !m.readAt && !(m.sealed && !m.sealed.opened);

/** An incoming message not read yet: watched until seen. */
function watchSeen(li, m) {
  if (!toSee(m)) return;
  li.dataset.unread = "true";
  seenObserver.observe(li);
}

/** A list item gone from the page (replaced, trimmed, another conversation opened): no longer watched. */
function forget(li) {
  if (!li) return;
  seenObserver.unobserve(li);
  nearScreen.delete(li);
}

function resetSeen() {
  seenObserver.disconnect();
  nearScreen.clear();
  state.readUpTo = -1;
  state.unseen.clear();
}

/** The page can be looked at: shown (not a hidden tab) and in front (it has the focus). */
const lookedAt = () => document.visibilityState === "visible" && document.hasFocus();

/** At least half of the message (or half the list's height, for a long one) is inside the list and the window. */
function onScreen(li) {
  const r = li.getBoundingClientRect();
  const box = $("messages").getBoundingClientRect();
  const shown = Math.min(r.bottom, box.bottom, globalThis.innerHeight) - Math.max(r.top, box.top, 0);
  return shown > 0 && shown >= Math.min(r.height, box.height) / 2;
}

/** Notes what is on screen now as seen, and tells the daemon how far the open conversation has been read. */
function markSeen() {
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
function setUnreadOfCurrent() {
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

// ---- groups ----

/** The dialog that makes a group (a name and people) or adds people to the open one. */
function pickPeople(mode) {
  const g = state.groups.find((x) => x.id === state.current);
  const members = new Set(mode === "add" && g ? g.members.map((m) => m.id) : []);
  $("group-form").dataset.mode = mode;
  $("group-name-row").hidden = mode !== "create";
  $("group-name").required = mode === "create";
  $("group-dialog-title").textContent = mode === "create" ? "New group" : `Add people to @${g?.name ?? ""}`;
  $("group-error").textContent = "";
  const list = $("group-people");
  list.replaceChildren();
  for (const p of state.peers.filter((p) => !members.has(p.id))) {
    const label = el("label");
    const box = el("input");
    box.type = "checkbox";
    box.value = p.id;
    label.append(box, document.createTextNode(` ${p.name}${p.state === "offline" ? " (offline)" : ""}`));
    list.append(el("li"));
    list.lastChild.append(label);
  }
  $("group-dialog").showModal();
}

async function submitGroup(e) {
  if (e.submitter?.value === "cancel") return;
  e.preventDefault();
  const members = [...$("group-people").querySelectorAll("input:checked")].map((b) => b.value);
  try {
    if ($("group-form").dataset.mode === "create") {
      const r = await api("/groups", { name: $("group-name").value.trim(), members });
      $("group-dialog").close();
      await loadGroups();
      await openConversation(r.group.id, "group");
    } else {
      await api(`/groups/${state.current}/add`, { members });
      $("group-dialog").close();
      await loadGroups();
    }
  } catch (err) {
    $("group-error").textContent = err.message;
  }
}

async function leaveGroup() {
  const g = state.groups.find((x) => x.id === state.current);
  if (!g || !confirm(`Leave @${g.name}? Its members are told; its history stays here.`)) return;
  try {
    await api(`/groups/${g.id}/leave`, {});
    await loadGroups();
  } catch (e) {
    alertLine(`Not left: ${e.message}`);
  }
}

// ---- files ----

/**
 * Keeps what is known of a transfer, unless it is older than what is kept:
 * a list fetched before an event can answer after it (the page then showed
 * an accepted transfer as offered forever).
 */
function keepTransfer(t) {
  const old = state.transfers.get(t.id);
  if (old && Date.parse(old.updatedAt) > Date.parse(t.updatedAt)) return;
  state.transfers.set(t.id, t);
}

function renderTransfers() {
  const box = $("transfers");
  box.replaceChildren();
  for (const t of state.transfers.values()) {
    if (t.peer.id !== state.current) continue;
    if (["done", "refused", "cancelled", "failed"].includes(t.state) && Date.now() - Date.parse(t.updatedAt) > 60_000) {
      continue;
    }
    const row = el("div", "transfer");
    const what = t.files === 1 ? t.names[0] ?? "1 file" : `${t.files} files`;
    // Done means checked: by SHA-256 with lanchat peers, by size alone with IP Messenger users (it has no checksum).
    const checked = t.state === "done" ? (t.check === "size" ? ", size checked" : ", checked") : "";
    row.append(
      el("span", "", `${t.direction === "in" ? "From" : "To"} ${t.peer.name}: ${what} — ${t.state}${checked}`),
    );
    const bar = el("progress");
    bar.max = Math.max(1, t.bytes);
    bar.value = t.transferred;
    row.append(bar);
    if (t.direction === "in" && t.state === "offered") {
      const accept = el("button", "", "Accept");
      accept.addEventListener("click", () => act(t.id, "accept"));
      const refuse = el("button", "", "Refuse");
      refuse.addEventListener("click", () => act(t.id, "refuse"));
      row.append(accept, refuse);
    }
    if (t.dir && t.state === "done") row.append(el("span", "", `saved in ${t.dir}`));
    if (t.error) row.append(el("span", "", t.error));
    box.append(row);
  }
}

/** Offers files the user picked or dropped: each goes up to the daemon, which offers it like any file. */
async function sendFiles(files) {
  const to = state.current;
  if (!to) return;
  for (const file of files) {
    const note = el("li", "gap", `Sending ${file.name} (${file.size} bytes)…`);
    $("messages").append(note);
    try {
      const res = await fetch(`/files/upload?to=${encodeURIComponent(to)}&name=${encodeURIComponent(file.name)}`, {
        method: "POST",
        body: file,
      });
      const t = await res.json();
      if (!res.ok) throw new Error(t.error ?? `${res.status}`);
      keepTransfer(t);
      note.remove();
      renderTransfers();
    } catch (e) {
      note.textContent = `${file.name} not sent: ${e.message}`;
    }
  }
}

async function act(id, what) {
  try {
    const t = await api(`/transfers/${id}/${what}`, {});
    keepTransfer(t);
    renderTransfers();
  } catch (e) {
    alertLine(`${what}: ${e.message}`);
  }
}

// ---- status ----

async function showStatus() {
  const s = await api("/status");
  const lines = [
    `${s.name} (${s.id})`,
    `up ${Math.round(s.uptimeSeconds / 60)} min, lanchat ${s.version}`,
    `group: ${s.security?.group ?? "?"}${s.security?.keyId ? ` (key ${s.security.keyId})` : ""}`,
    `peers online: ${s.peers}`,
    `data directory: ${s.dataDir}`,
    `messages waiting to be delivered: ${s.messaging?.outbox ?? 0}`,
    `files: ${s.files ? `${s.files.active} active, ${s.files.waiting} waiting` : "off"}`,
    ...(s.security?.keyChanges ?? []).map((k) => `KEY CHANGED: ${k.note}`),
  ];
  $("status-text").textContent = lines.join("\n");
  $("status-dialog").showModal();
}

// ---- notifications ----

function notify(title, body) {
  if ($("presence").value === "busy") return; // do not disturb
  if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
  new Notification(title, { body });
}

// ---- live ----

function listen() {
  const events = new EventSource("/events");
  let peersTimer;
  const refreshPeers = () => {
    clearTimeout(peersTimer);
    peersTimer = setTimeout(loadPeers, 200);
  };
  for (const type of ["peer-joined", "peer-left", "peer-restarted", "peer-presence"]) {
    events.addEventListener(type, refreshPeers);
  }
  events.addEventListener("group", () => loadGroups());
  events.addEventListener("message", (e) => {
    const m = JSON.parse(e.data);
    if (!state.peers.some((p) => p.id === m.peer.id)) refreshPeers();
    if (showMessage(m)) {
      // In the open conversation: read once seen (it may be scrolled away, or the page not looked at).
      if (toSee(m) && m.cursor > state.readUpTo) {
        state.unseen.add(m.cursor);
        // Counted unread unless seen by then (the observer reports a message on screen within a frame).
        setTimeout(setUnreadOfCurrent, 300);
      }
      if (document.hidden) {
        notify(m.group ? `${m.peer.name} in @${m.group.name}` : m.peer.name, m.sealed ? "a sealed message" : m.text);
      }
    } else {
      const conv = conversationOf(m);
      state.unread.set(conv, (state.unread.get(conv) ?? 0) + 1);
      renderPeers();
      notify(m.group ? `${m.peer.name} in @${m.group.name}` : m.peer.name, m.sealed ? "a sealed message" : m.text);
    }
  });
  for (const type of ["queued", "sent", "delivered", "failed", "read"]) {
    events.addEventListener(type, (e) => showMessage(JSON.parse(e.data)));
  }
  for (
    const type of ["transfer-offered", "transfer-progress", "transfer-updated", "transfer-done", "transfer-failed"]
  ) {
    events.addEventListener(type, (e) => {
      const t = JSON.parse(e.data);
      keepTransfer(t);
      if (type === "transfer-offered") notify(t.peer.name, `offers ${t.files} file(s)`);
      renderTransfers();
    });
  }
  // Reconnected after the daemon restarted: catch up on what was missed.
  events.addEventListener("error", () => document.body.dataset.live = "false");
  // Live once caught up: the open conversation is shown as it is now (tests wait for this).
  events.addEventListener("open", async () => {
    for (const t of await api("/transfers").catch(() => [])) keepTransfer(t);
    renderTransfers();
    loadPeers();
    loadGroups();
    if (state.current) await openConversation(state.current, state.kind).catch(() => {});
    document.body.dataset.live = "true";
  });
}

// ---- start ----

async function start() {
  $("search").addEventListener("input", renderPeers);
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    send();
  });
  $("text").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  });
  $("messages").addEventListener("scroll", () => {
    const list = $("messages");
    if (list.scrollTop < 80) loadOlder();
    else if (list.scrollHeight - list.scrollTop - list.clientHeight < 80) loadNewer();
    markSeen();
  });
  $("status-button").addEventListener("click", showStatus);
  $("verify-button").addEventListener("click", showVerify);
  $("verify-match").addEventListener("click", confirmMatch);
  $("new-group").addEventListener("click", () => pickPeople("create"));
  $("add-people").addEventListener("click", () => pickPeople("add"));
  $("leave-group").addEventListener("click", leaveGroup);
  $("group-form").addEventListener("submit", submitGroup);
  $("file-button").addEventListener("click", () => $("file-input").click());
  $("file-input").addEventListener("change", () => {
    sendFiles([...$("file-input").files]);
    $("file-input").value = "";
  });
  const zone = $("conversation");
  zone.addEventListener("dragover", (e) => {
    if (state.current && e.dataTransfer?.types.includes("Files")) {
      e.preventDefault();
      zone.classList.add("dropping");
    }
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dropping"));
  zone.addEventListener("drop", (e) => {
    zone.classList.remove("dropping");
    if (!state.current || !e.dataTransfer?.files.length) return;
    e.preventDefault();
    sendFiles([...e.dataTransfer.files]);
  });
  // Back to the page: what is on screen is seen now.
  document.addEventListener("visibilitychange", markSeen);
  globalThis.addEventListener("focus", markSeen);
  if ("Notification" in window && Notification.permission === "default") {
    $("notify-button").hidden = false;
    $("notify-button").addEventListener("click", async () => {
      await Notification.requestPermission();
      $("notify-button").hidden = true;
    });
  }
  $("presence").addEventListener("change", async () => {
    try {
      await api("/presence", { presence: $("presence").value }, "PUT");
    } catch (e) {
      alertLine(`Presence not changed: ${e.message}`);
    }
  });
  const s = await api("/status");
  $("presence").value = s.presence ?? "online";
  state.baseTitle = `lanchat — ${s.name}`;
  $("me").textContent = `${s.name} · ${s.id.slice(0, 8)}`;
  for (const t of await api("/transfers")) keepTransfer(t);
  await loadPeers();
  await loadGroups();
  listen();
  // A link to a conversation: #peer=ID or #group=ID.
  const linked = /^#(peer|group)=([0-9a-f]{32})$/.exec(location.hash);
  if (linked) await openConversation(linked[2], linked[1]);
}

start().catch((e) => e instanceof AuthError ? sessionEnded() : alertLine(`Cannot reach the daemon: ${e.message}`));
