// The people list (peers and groups, unread counts), the open peer's key and its verification, the title.
import { $, api, el, state } from "./core.js";
import { openConversation, showGroupHeader } from "./conversation.js";
import { nameNode, printableLine } from "./text.js";
import { avatar } from "./view.js";

export async function loadPeers() {
  state.peers = await api("/peers?all=1");
  renderPeers();
}

export function peerName(id) {
  return state.peers.find((p) => p.id === id)?.name ?? id.slice(0, 8);
}

export async function loadGroups() {
  state.groups = await api("/groups");
  renderPeers();
  if (state.kind === "group") showGroupHeader();
}

/** The list item of a conversation (a peer or a group) in the people list. */
export function conversationItem(id, kind, name, detail, dim, peer) {
  const li = el("li", dim ? "offline" : kind === "group" ? "group" : "");
  li.tabIndex = 0;
  li.dataset.id = id;
  if (id === state.current) li.setAttribute("aria-current", "true");
  li.append(avatar(peer ?? { id, name }));
  // The name isolated (<bdi>), its hidden characters shown; a group's after its "@".
  if (kind === "group") {
    const label = el("span", "name");
    label.append("@", nameNode(name));
    li.append(label);
  } else li.append(nameNode(name, "name"));
  li.append(el("span", "detail", printableLine(detail)));
  const n = state.unread.get(id) ?? 0;
  if (n > 0) li.append(el("span", "unread", String(n)));
  li.addEventListener("click", () => openConversation(id, kind));
  li.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      openConversation(id, kind);
    }
  });
  return li;
}

export function renderPeers() {
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
    list.append(conversationItem(g.id, "group", g.name, g.left ? "you left" : names, g.left));
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
    const li = conversationItem(p.id, "peer", p.name, detail, !online(p), p);
    if (p.protocol !== "ipmsg" && p.trust) li.append(el("span", `trust trust-${p.trust}`, TRUST_WORDS[p.trust]));
    list.append(li);
  }
  if (state.kind === "peer") showPeerHeader();
  updateTitle();
}

// ---- verifying a peer's key ----

/** A pinned key's trust in words (as `lanchat peers` and docs/security.md say it). */
export const TRUST_WORDS = {
  trusted: "verified ✓",
  tofu: "not verified",
  conflict: "KEY CHANGED",
  replaced: "key replaced",
};

/** The open peer conversation's key: its trust, what a change means, and the Verify action. */
export function showPeerHeader() {
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
export async function showVerify() {
  const id = state.current;
  $("verify-error").textContent = "";
  $("verify-number").textContent = "";
  $("verify-state").textContent = "";
  $("verify-note").hidden = true;
  $("verify-match").hidden = true;
  $("verify-title").textContent = `Verify ${printableLine(peerName(id))}`;
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

export function showVerification(v) {
  const groups = v.safetyNumber.split(" ");
  $("verify-number").textContent = [0, 4, 8].map((i) => groups.slice(i, i + 4).join("  ")).join("\n");
  $("verify-number").dataset.number = v.safetyNumber;
  $("verify-dialog").dataset.peer = v.peer.id;
  const name = printableLine(v.peer.name);
  $("verify-state").textContent = v.state === "verified"
    ? `${name}'s key (${v.peer.fingerprint}) is verified: you confirmed this number before.`
    : `${name}'s key (${v.peer.fingerprint}): ${v.state}. Does ${name}'s screen show the same number?`;
  $("verify-note").hidden = !v.keyNote;
  $("verify-note").textContent = v.keyNote ?? "";
  $("verify-match").hidden = v.state === "verified";
}

/** "They match": the key is marked trusted (POST /trust), the roster and the dialog say so. */
export async function confirmMatch() {
  const id = $("verify-dialog").dataset.peer;
  try {
    await api("/trust", { peer: id });
    await loadPeers();
    showVerification(await api(`/peers/${encodeURIComponent(id)}/verify`));
  } catch (e) {
    $("verify-error").textContent = e.message;
  }
}

export function updateTitle() {
  let total = 0;
  for (const n of state.unread.values()) total += n;
  document.title = total > 0 ? `(${total}) ${state.baseTitle}` : state.baseTitle;
}
