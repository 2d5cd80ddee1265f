// lanchat's page: the roster, a conversation per peer, incoming file offers, live over Server-Sent Events.
// Everything a peer supplies is put in the page as text (textContent), never as HTML; the daemon's
// Content-Security-Policy allows no inline script and no connection but to the daemon itself.

const $ = (id) => document.getElementById(id);
const PAGE = 50;
/** Most messages in the page at once: a window over the conversation, moved as you scroll (100,000 stay smooth). */
const WINDOW = 300;

const state = {
  peers: [], // from /peers?all=1
  unread: new Map(), // peer id -> count
  current: undefined, // peer id
  oldest: undefined, // cursor of the oldest message shown
  loadingOlder: false,
  noOlder: false,
  atNewest: true, // the window reaches the newest message
  newest: undefined, // cursor of the newest message shown
  shown: new Map(), // message id -> li
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
  if (res.status === 401) throw new AuthError(json.error ?? "a token is needed");
  if (!res.ok) throw new Error(json.error ?? `${res.status}`);
  return json;
}

class AuthError extends Error {}

/** Beyond loopback: ask for the token once; the daemon keeps it in an HttpOnly cookie. */
function askForToken() {
  $("people").hidden = true;
  $("conversation").hidden = true;
  $("login").hidden = false;
  $("token").focus();
  $("login").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api("/session", { token: $("token").value });
      location.reload();
    } catch (err) {
      $("login-error").textContent = err.message;
    }
  });
}

// ---- people ----

async function loadPeers() {
  state.peers = await api("/peers?all=1");
  renderPeers();
}

function peerName(id) {
  return state.peers.find((p) => p.id === id)?.name ?? id.slice(0, 8);
}

function renderPeers() {
  const q = $("search").value.trim().toLowerCase();
  const list = $("peer-list");
  list.replaceChildren();
  const online = (p) => p.state !== "offline";
  const peers = state.peers
    .filter((p) => !q || p.name.toLowerCase().includes(q) || (p.hostname ?? "").toLowerCase().includes(q))
    .sort((a, b) => Number(online(b)) - Number(online(a)) || a.name.localeCompare(b.name));
  for (const p of peers) {
    const li = el("li", online(p) ? "" : "offline");
    li.tabIndex = 0;
    li.dataset.id = p.id;
    li.setAttribute("aria-selected", String(p.id === state.current));
    li.append(el("span", "name", p.name));
    const detail = [
      p.hostname,
      online(p)
        ? (p.presence && p.presence !== "online" ? `${p.presence}${p.note ? `: ${p.note}` : ""}` : "online")
        : "offline",
      p.protocol === "ipmsg" ? "IP Messenger" : "lanchat",
      p.fingerprint ? `key ${p.fingerprint}${p.trust === "trusted" ? " ✓" : ""}` : undefined,
    ].filter(Boolean).join(" · ");
    li.append(el("span", "detail", detail));
    const n = state.unread.get(p.id) ?? 0;
    if (n > 0) li.append(el("span", "unread", String(n)));
    li.addEventListener("click", () => openConversation(p.id));
    li.addEventListener("keydown", (e) => {
      if (e.key === "Enter") openConversation(p.id);
    });
    list.append(li);
  }
  updateTitle();
}

function updateTitle() {
  let total = 0;
  for (const n of state.unread.values()) total += n;
  document.title = total > 0 ? `(${total}) ${state.baseTitle}` : state.baseTitle;
}

// ---- conversation ----

function statusText(m) {
  if (m.direction === "in") return "";
  if (m.readAt) return "read ✓✓";
  return { queued: "queued", sent: "sent", delivered: "delivered ✓", failed: `failed: ${m.error ?? ""}` }[m.status] ??
    m.status;
}

const RANK = { queued: 1, sent: 2, delivered: 3, failed: 3, received: 3 };
/** How far a message has come: read (a receipt) is past delivered. */
const rank = (m) => m.readAt ? 4 : RANK[m.status] ?? 0;

function messageItem(m) {
  const li = el("li", m.direction);
  li.dataset.cursor = String(m.cursor);
  li.dataset.status = m.status;
  li.dataset.rank = String(rank(m));
  li.dataset.id = m.id;
  li.append(document.createTextNode(m.text));
  const time = new Date(m.receivedAt ?? m.sentAt).toLocaleTimeString();
  const meta = [time, statusText(m), m.late ? "late" : ""].filter(Boolean).join(" · ");
  li.append(el("span", "meta", meta));
  state.shown.set(m.id, li);
  return li;
}

function withGap(m, li) {
  if (!m.gapBefore) return [li];
  return [el("li", "gap", `${m.gapBefore} message(s) never arrived here`), li];
}

async function openConversation(id) {
  state.current = id;
  state.oldest = undefined;
  state.noOlder = false;
  state.shown.clear();
  state.unread.delete(id);
  $("peer-title").textContent = peerName(id);
  $("composer").hidden = false;
  const list = $("messages");
  list.replaceChildren();
  renderPeers();
  renderTransfers();
  const page = await api(`/messages?peer=${encodeURIComponent(id)}&limit=${PAGE}`);
  if (state.current !== id) return;
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
  markRead();
}

async function loadOlder() {
  if (state.loadingOlder || state.noOlder || state.oldest === undefined || !state.current) return;
  state.loadingOlder = true;
  const id = state.current;
  try {
    const page = await api(
      `/messages?peer=${encodeURIComponent(id)}&before=${state.oldest}&limit=${PAGE}`,
    );
    if (state.current !== id) return;
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
  const id = state.current;
  try {
    const page = await api(`/messages?peer=${encodeURIComponent(id)}&after=${state.newest}&limit=${PAGE}`);
    if (state.current !== id) return;
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
  if (m.peer.id !== state.current) return false;
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
    const m = await api("/messages", { to: state.current, text });
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

/** What is on screen of the open conversation has been read (the peer gets a read receipt). */
function markRead() {
  if (!state.current || document.hidden || !state.atNewest) return;
  api("/messages/read", { peer: state.current }).catch(() => {});
}

// ---- files ----

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
    row.append(el("span", "", `${t.direction === "in" ? "From" : "To"} ${t.peer.name}: ${what} — ${t.state}`));
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
      state.transfers.set(t.id, t);
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
    state.transfers.set(t.id, t);
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
  events.addEventListener("message", (e) => {
    const m = JSON.parse(e.data);
    if (!state.peers.some((p) => p.id === m.peer.id)) refreshPeers();
    if (showMessage(m) && !document.hidden) markRead();
    else {
      if (m.peer.id !== state.current || document.hidden) {
        state.unread.set(m.peer.id, (state.unread.get(m.peer.id) ?? 0) + 1);
        renderPeers();
      }
      notify(m.peer.name, m.text);
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
      state.transfers.set(t.id, t);
      if (type === "transfer-offered") notify(t.peer.name, `offers ${t.files} file(s)`);
      renderTransfers();
    });
  }
  // Reconnected after the daemon restarted: catch up on what was missed.
  events.addEventListener("error", () => document.body.dataset.live = "false");
  events.addEventListener("open", async () => {
    document.body.dataset.live = "true";
    for (const t of await api("/transfers").catch(() => [])) state.transfers.set(t.id, t);
    renderTransfers();
    loadPeers();
    if (state.current) openConversation(state.current);
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
  });
  $("status-button").addEventListener("click", showStatus);
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
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.current) {
      state.unread.delete(state.current);
      renderPeers();
      markRead();
    }
  });
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
  for (const t of await api("/transfers")) state.transfers.set(t.id, t);
  await loadPeers();
  listen();
  // A link to a conversation: #peer=ID.
  const linked = /^#peer=([0-9a-f]{32})$/.exec(location.hash);
  if (linked) await openConversation(linked[1]);
}

start().catch((e) => e instanceof AuthError ? askForToken() : alertLine(`Cannot reach the daemon: ${e.message}`));
