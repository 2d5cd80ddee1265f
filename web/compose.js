// Reply, edit and delete (docs/web.md): a message's Reply button puts it above the composer and the next message
// sent answers it (`replyTo`); your own messages also have Edit (the composer then saves, Esc cancels) and Delete.
// A reply shows what it answers (`quote`), an edited message says so, a deleted one is a line saying it was.
// Edits and deletions made elsewhere (the peer, the CLI, another page) come as `message-updated` events.
import { $, alertLine, api, el, hooks, onEvent, state } from "./core.js";
import { showMessage } from "./conversation.js";
import { printableLine } from "./text.js";

/** What the composer is doing besides writing a new message: answering one, or editing one of yours. */
const mode = { replyTo: undefined, editing: undefined };

/** A message that can be answered: an ordinary one, not a system line, not sealed shut, not deleted. */
const answerable = (m) => !m.group?.change && !m.files && !m.deletedAt && !(m.sealed && !m.sealed.opened);
/** One of your own messages that can still be changed here (a failed copy, a file note or a system line cannot). */
const changeable = (m) => m.direction === "out" && answerable(m) && m.status !== "failed" && !m.sealed;

/** The bar above the composer: "Replying to …" or "Editing your message", with a way out. */
function modeBar() {
  let bar = $("compose-mode");
  if (bar) return bar;
  bar = el("div", "compose-mode");
  bar.id = "compose-mode";
  bar.hidden = true;
  bar.setAttribute("role", "status");
  const text = el("span", "compose-mode-text");
  text.dir = "auto";
  const cancel = el("button", "compose-cancel", "Cancel");
  cancel.type = "button";
  cancel.title = "Cancel (Esc)";
  cancel.addEventListener("click", () => {
    endMode();
    $("text").focus();
  });
  bar.append(text, cancel);
  $("composer").before(bar);
  return bar;
}

function showMode(words) {
  const bar = modeBar();
  bar.querySelector(".compose-mode-text").textContent = words;
  bar.hidden = false;
}

function endMode() {
  const wasEditing = mode.editing !== undefined;
  mode.replyTo = undefined;
  mode.editing = undefined;
  modeBar().hidden = true;
  if (wasEditing) $("text").value = "";
  $("composer").classList.remove("editing");
}

/** A line of a message, short, on one line: for the quote and the mode bar. */
const short = (text, n = 120) => {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > n ? `${flat.slice(0, n)}…` : flat;
};

const authorOf = (m) => m.direction === "out" ? "you" : printableLine(m.peer.name);

function startReply(m) {
  mode.editing = undefined;
  $("composer").classList.remove("editing");
  mode.replyTo = m.id;
  showMode(`Replying to ${authorOf(m)}: ${printableLine(short(m.text))}`);
  $("text").focus();
}

function startEdit(m) {
  mode.replyTo = undefined;
  mode.editing = m.id;
  $("composer").classList.add("editing");
  showMode("Editing your message (Enter saves, Esc cancels)");
  $("text").value = m.text;
  $("text").focus();
}

async function saveEdit() {
  const id = mode.editing;
  const text = $("text").value;
  if (text.trim() === "") return;
  try {
    const m = await api(`/messages/${encodeURIComponent(id)}/edit`, { text });
    endMode();
    showMessage(m);
    updateQuotes(m);
  } catch (e) {
    alertLine(`Not edited: ${e.message}`);
  }
}

async function remove(m) {
  const who = printableLine(m.group ? `@${m.group.name}` : m.peer.name);
  if (!confirm(`Delete this message? It is deleted for ${who} too.`)) return;
  try {
    const gone = await api(`/messages/${encodeURIComponent(m.id)}/delete`, {});
    if (mode.editing === m.id || mode.replyTo === m.id) endMode();
    showMessage(gone);
    updateQuotes(gone);
  } catch (e) {
    alertLine(`Not deleted: ${e.message}`);
  }
}

/** Messages shown that quote a message just changed: their quote says what it says now. */
function updateQuotes(m) {
  for (const q of $("messages").querySelectorAll(".quote")) {
    if (q.dataset.id !== m.id) continue;
    q.querySelector(".quote-text").textContent = m.deletedAt ? "deleted message" : printableLine(short(m.text, 200));
    q.classList.toggle("quote-deleted", Boolean(m.deletedAt));
  }
}

/** The quoted message in the window: scrolled to and flashed. */
function goToQuoted(id) {
  const li = state.shown.get(id);
  if (!li?.isConnected) return;
  li.scrollIntoView({ block: "center" });
  li.classList.remove("flash");
  void li.offsetWidth; // restart the animation
  li.classList.add("flash");
}

/** The message each list item shows. */
const messageOf = new WeakMap();

/** What a message's list item gains: its quote, (edited), the deleted line, and its actions. */
function decorate(li, m) {
  messageOf.set(li, m);
  if (m.quote) {
    const q = el("button", m.quote.deleted ? "quote quote-deleted" : "quote");
    q.type = "button";
    q.dataset.id = m.quote.id;
    q.title = "Show the message this answers";
    q.append(
      // Who wrote it: you, or in a conversation with one peer, that peer (a group's quote does not say which member).
      el("span", "quote-who", m.quote.direction === "out" ? "You" : m.group ? "" : printableLine(m.peer.name)),
      el("span", "quote-text", m.quote.deleted ? "deleted message" : printableLine(short(m.quote.text, 200))),
    );
    q.querySelector(".quote-text").dir = "auto";
    q.addEventListener("click", () => goToQuoted(m.quote.id));
    const from = li.querySelector(".from");
    if (from) from.after(q);
    else li.prepend(q);
  }
  if (m.deletedAt) {
    li.classList.add("deleted");
    li.querySelector(".meta")?.before(el("span", "deleted-note", "Message deleted"));
  } else if (m.editedAt) {
    const edited = el("span", "edited", " (edited)");
    edited.title = `Edited ${new Date(m.editedAt).toLocaleString()}`;
    li.querySelector(".meta")?.append(edited);
  }
  if (!answerable(m) || !m.id) return;
  const actions = el("span", "actions");
  const button = (label, title, fn) => {
    const b = el("button", "action", label);
    b.type = "button";
    b.title = title;
    b.addEventListener("click", (e) => {
      e.stopPropagation();
      fn();
    });
    actions.append(b);
  };
  button("Reply", "Reply to this message", () => startReply(m));
  if (changeable(m)) {
    button("Edit", "Edit your message", () => startEdit(m));
    button("Delete", "Delete your message, for everyone", () => remove(m));
  }
  li.append(actions);
}

hooks.messageItem.push(decorate);
hooks.sendBody.push((body) => {
  if (mode.replyTo) body.replyTo = mode.replyTo;
});
hooks.sent.push(() => {
  if (mode.replyTo) endMode();
});
hooks.opened.push(() => endMode());

// An edit or a deletion (here, in another page, the CLI, or from the peer): the message, where it is shown.
onEvent("message-updated", (data) => {
  const m = data?.message;
  if (!m?.id) return;
  if (state.shown.has(m.id)) showMessage(m);
  updateQuotes(m);
});

// While editing, Enter (and the Send button) saves instead of sending; Esc leaves a reply or an edit.
// Listened for in the capture phase on the form, so that the composer's own handlers do not also send.
$("composer").addEventListener("keydown", (e) => {
  if (e.target !== $("text")) return;
  if (e.key === "Escape" && (mode.replyTo || mode.editing)) {
    e.preventDefault();
    e.stopPropagation();
    endMode();
  } else if (e.key === "Enter" && !e.shiftKey && !e.isComposing && mode.editing) {
    e.preventDefault();
    e.stopImmediatePropagation();
    void saveEdit();
  } else if (e.key === "ArrowUp" && $("text").value === "" && !mode.editing) {
    // Up in an empty composer edits your last message (as in Slack and Element).
    const last = [...$("messages").querySelectorAll("li.out[data-id]")].map((li) => messageOf.get(li))
      .filter((m) => m && changeable(m)).at(-1);
    if (last) {
      e.preventDefault();
      startEdit(last);
    }
  }
}, true);
$("conversation").addEventListener("submit", (e) => {
  if (e.target !== $("composer") || !mode.editing) return;
  e.preventDefault();
  e.stopImmediatePropagation();
  void saveEdit();
}, true);
