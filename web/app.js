// lanchat's page: the roster, a conversation per peer, incoming file offers, live over Server-Sent Events.
// This module starts it: it wires the page's controls and the event stream to the other modules (core.js,
// people.js, conversation.js, seen.js, groups.js, files.js). Everything a peer supplies is put in the page as text
// (textContent), never as HTML; the daemon's Content-Security-Policy allows no inline script and no connection but to
// the daemon itself.
import { printable, printableLine } from "./text.js";
import { $, alertLine, api, AuthError, conversationOf, eventHandlers, sessionEnded, state } from "./core.js";
import { confirmMatch, loadGroups, loadPeers, renderPeers, showVerify } from "./people.js";
import { loadNewer, loadOlder, openConversation, send, showMessage } from "./conversation.js";
import { lookedAt, markSeen, setUnreadOfCurrent, toSee } from "./seen.js";
import { leaveGroup, pickPeople, submitGroup } from "./groups.js";
import { keepTransfer, renderTransfers, sendFiles } from "./files.js";
import { lookedBack, scrolled, toBottom } from "./view.js";
import "./search.js"; // search in the page: a button in the header and its dialog
import "./compose.js"; // reply, edit, delete
import "./images.js"; // thumbnails, the full-size dialog, paste an image
import "./settings.js"; // the Settings dialog (auto-accept images)

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
  new Notification(printableLine(title), { body: printable(body) });
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
  for (const { type, handler } of eventHandlers) events.addEventListener(type, (e) => handler(JSON.parse(e.data)));
  // Reconnected after the daemon restarted: catch up on what was missed.
  events.addEventListener("error", () => document.body.dataset.live = "false");
  // Live once caught up: the open conversation is shown as it is now (tests wait for this).
  events.addEventListener("open", async () => {
    for (const t of await api("/transfers").catch(() => [])) keepTransfer(t);
    renderTransfers();
    loadPeers();
    loadGroups();
    if (state.current) await openConversation(state.current, state.kind, { at: state.at }).catch(() => {});
    document.body.dataset.live = "true";
  });
}

/**
 * A touch keyboard takes the bottom of the screen: where the browser does not resize the page for it
 * (interactive-widget=resizes-content in the viewport meta), the page is fitted to the visual viewport, so the
 * composer and the newest message stay above the keyboard (at a zoom of 1: pinch-zooming is not a keyboard).
 */
function fitToKeyboard() {
  const vv = globalThis.visualViewport;
  if (!vv) return;
  const fit = () => {
    const covered = vv.scale === 1 && vv.height < globalThis.innerHeight - 1;
    document.body.style.height = covered ? `${vv.height}px` : "";
    if (state.pinned) toBottom();
  };
  vv.addEventListener("resize", fit);
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
    scrolled();
    markSeen();
  });
  $("jump").addEventListener("click", () => {
    // A window far back in history is replaced by the newest page; else only scrolled.
    if (state.atNewest) toBottom();
    else void openConversation(state.current, state.kind);
    $("text").focus();
  });
  // On a phone one pane at a time: the people, or the conversation with a way back.
  $("back").addEventListener("click", () => {
    document.body.dataset.view = "people";
    [...$("peer-list").children].find((li) => li.dataset.id === state.current)?.focus();
  });
  fitToKeyboard();
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
  document.addEventListener("visibilitychange", () => {
    if (lookedAt()) lookedBack();
    markSeen();
  });
  globalThis.addEventListener("focus", () => {
    lookedBack();
    markSeen();
  });
  // Esc: out of the search box (cleared), and on a phone from a conversation back to the people.
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape" || e.defaultPrevented || document.querySelector("dialog[open]")) return;
    if (e.target === $("search") && $("search").value) {
      $("search").value = "";
      renderPeers();
    } else if (document.body.dataset.view === "conversation" && getComputedStyle($("back")).display !== "none") {
      $("back").click();
    }
  });
  if ("Notification" in window && Notification.permission === "default") {
    $("notify-button").hidden = false;
    $("notify-button").addEventListener("click", async () => {
      await Notification.requestPermission().catch(() => {});
      // Asked once: a choice made (or the prompt dismissed) is not asked again from the header.
      $("notify-button").hidden = true;
    });
    // Chosen elsewhere (the browser's site settings): the button goes too.
    navigator.permissions?.query({ name: "notifications" }).then((p) => {
      p.addEventListener("change", () => $("notify-button").hidden = Notification.permission !== "default");
    }).catch(() => {});
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
  state.baseTitle = `lanchat — ${printableLine(s.name)}`;
  $("me").textContent = `${printableLine(s.name)} · ${s.id.slice(0, 8)}`;
  for (const t of await api("/transfers")) keepTransfer(t);
  await loadPeers();
  await loadGroups();
  listen();
  // A link to a conversation: #peer=ID or #group=ID, at a message: &at=CURSOR.
  const linked = /^#(peer|group)=([0-9a-f]{32})(?:&at=(\d{1,15}))?$/.exec(location.hash);
  if (linked) {
    await openConversation(linked[2], linked[1], { at: linked[3] === undefined ? undefined : Number(linked[3]) });
  }
}

start().catch((e) => e instanceof AuthError ? sessionEnded() : alertLine(`Cannot reach the daemon: ${e.message}`));
