// Searching history from the page: GET /messages/search, across all conversations or within the open one.
// A hit opens its conversation at that message (not at the newest), scrolled to it and highlighted.
// Everything shown of a message is text (textContent, text nodes, <mark> elements made here), never HTML.
import { $, api, state } from "./core.js";
import { peerName } from "./people.js";
import { openConversation } from "./conversation.js";
import { printableLine } from "./text.js";

/** Hits asked for at a time; "More" asks for the next page, older. */
const SEARCH_PAGE = 30;
/** Characters of a message shown around the match in the list of hits. */
const AROUND = 60;

/** Lower case for A–Z only, as the daemon's search compares (so a match found there is found here). */
const asciiLower = (s) => s.replace(/[A-Z]/g, (c) => c.toLowerCase());

/** Where `query` first occurs in `text` (ASCII case ignored), or -1. */
export function findMatch(text, query) {
  return query === "" ? -1 : asciiLower(text).indexOf(asciiLower(query));
}

/**
 * A short piece of `text` around the first match of `query`, as nodes: the
 * text before and after as text, the match in a <mark>. A long message is
 * cut to about AROUND characters either side, with an ellipsis.
 */
export function snippetNodes(text, query) {
  const at = findMatch(text, query);
  // Each whitespace character becomes one space: one line in the list, the same indexes as the text.
  const flat = text.replace(/\s/g, " ");
  if (at < 0) return [document.createTextNode(flat.slice(0, AROUND * 2))];
  const start = Math.max(0, at - AROUND);
  const end = Math.min(text.length, at + query.length + AROUND);
  const mark = document.createElement("mark");
  mark.textContent = flat.slice(at, at + query.length);
  return [
    document.createTextNode((start > 0 ? "…" : "") + flat.slice(start, at)),
    mark,
    document.createTextNode(flat.slice(at + query.length, end) + (end < text.length ? "…" : "")),
  ];
}

/**
 * Marks the first match of `query` in a message's own text (not its time
 * or status): the text node holding it is split and the match wrapped in a
 * <mark>. True if found.
 */
export function highlightIn(li, query) {
  const walker = document.createTreeWalker(li.querySelector(".text") ?? li, NodeFilter.SHOW_TEXT, {
    acceptNode: (n) => n.parentElement?.closest(".meta, .from, .quote, button") ? 2 : 1,
  });
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const at = findMatch(node.data, query);
    if (at < 0) continue;
    const match = node.splitText(at);
    match.splitText(query.length);
    const mark = document.createElement("mark");
    mark.className = "search-hit";
    match.replaceWith(mark);
    mark.append(match);
    return true;
  }
  return false;
}

/** An element with these properties and attributes. */
function node(tag, props, attributes = {}) {
  const e = Object.assign(document.createElement(tag), props);
  for (const [name, value] of Object.entries(attributes)) e.setAttribute(name, value);
  return e;
}

/**
 * Sets up message search: a "Search messages" button in the header and
 * its dialog. `deps`:
 * - `api(path)`: GET JSON from the daemon;
 * - `current()`: the open conversation `{id, kind, name}`, or undefined;
 * - `conversationName(m)`: the name of a message's conversation (`@group` or the peer);
 * - `openAt(id, kind, cursor)`: opens that conversation around the message with that cursor and answers
 *   its list item (undefined if it is not there).
 */
export function initSearch(deps) {
  const dialog = node("dialog", { id: "search-dialog" }, { "aria-labelledby": "search-title" });
  const form = node("form", { id: "search-form" }, { role: "search" });
  const title = node("h3", { id: "search-title", textContent: "Search messages" });
  const input = node("input", {
    id: "search-text",
    type: "search",
    placeholder: "Words to look for",
    autocomplete: "off",
  }, {
    "aria-label": "Words to look for",
  });
  const scope = node("select", { id: "search-scope" }, { "aria-label": "Where to look" });
  const go = node("button", { type: "submit", textContent: "Search" });
  const note = node("p", { id: "search-note" }, { role: "status" });
  const hits = node("ol", { id: "search-hits" }, { "aria-label": "Messages found" });
  const more = node("button", { type: "button", id: "search-more", textContent: "Older results" });
  const close = document.createElement("button");
  close.type = "button";
  close.textContent = "Close";
  close.addEventListener("click", () => dialog.close());
  const row = document.createElement("p");
  row.className = "search-row";
  row.append(input, scope, go);
  form.append(title, row, note, hits, more, close);
  dialog.append(form);
  document.body.append(dialog);

  const button = document.createElement("button");
  button.id = "search-button";
  button.type = "button";
  button.textContent = "Search messages";
  button.title = "Search the history of your conversations";
  const status = document.getElementById("status-button");
  status?.before(button);

  /** The search now shown: its text, where, and the cursor to page back from. */
  let shown = { query: "", where: "all", before: undefined, asked: 0 };

  const fillScope = () => {
    const c = deps.current();
    scope.replaceChildren();
    const all = new Option("All conversations", "all");
    scope.append(all);
    if (c) {
      const here = new Option(`Only ${c.name}`, `${c.kind}:${c.id}`);
      scope.append(here);
      here.selected = true;
    }
  };

  // Esc closes the dialog at once (in a search field it would first only clear the text).
  input.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.preventDefault();
      dialog.close();
    }
  });

  button.addEventListener("click", () => {
    fillScope();
    dialog.showModal();
    input.focus();
    input.select();
  });

  const hitItem = (m, query) => {
    const li = document.createElement("li");
    const open = document.createElement("button");
    open.type = "button";
    open.className = "search-open";
    const head = document.createElement("span");
    head.className = "search-where";
    // Where it was said, and by whom when that is not the conversation's name (yours; a member's in a group).
    const who = m.direction === "out" ? "You" : m.group ? printableLine(m.peer.name) : undefined;
    const when = new Date(m.receivedAt ?? m.sentAt).toLocaleString();
    head.textContent = [deps.conversationName(m), who, when].filter(Boolean).join(" · ");
    const text = document.createElement("span");
    text.className = "search-text";
    text.dir = "auto";
    text.append(...snippetNodes(m.text, query));
    open.append(head, text);
    open.addEventListener("click", async () => {
      dialog.close();
      const kind = m.group ? "group" : "peer";
      const item = await deps.openAt(m.group ? m.group.id : m.peer.id, kind, m.cursor);
      if (!item) return;
      highlightIn(item, query);
      item.classList.add("search-found");
      item.tabIndex = -1;
      item.focus({ preventScroll: true });
    });
    li.append(open);
    return li;
  };

  /** Asks the daemon for a page of hits (older than `before`) and adds them to the list. */
  const ask = async (query, where, before) => {
    const asked = ++shown.asked;
    const params = new URLSearchParams({ q: query, limit: String(SEARCH_PAGE) });
    const [kind, id] = where === "all" ? [] : where.split(":");
    if (kind) params.set(kind, id);
    if (before !== undefined) params.set("before", String(before));
    note.textContent = "Searching…";
    more.hidden = true;
    let r;
    try {
      r = await deps.api(`/messages/search?${params}`);
    } catch (e) {
      if (asked === shown.asked) note.textContent = `Search failed: ${e.message}`;
      return;
    }
    if (asked !== shown.asked) return; // a newer search answered first
    // Within a conversation with a peer: what was said with them, not their messages in groups.
    const found = kind === "peer" ? r.messages.filter((m) => !m.group) : r.messages;
    hits.append(...found.map((m) => hitItem(m, query)));
    // Where older hits are looked for: after a full page, or where the daemon stopped looking (r.note says).
    shown.before = r.next;
    const n = hits.children.length;
    note.textContent = [
      n === 0 ? `Nothing found for “${query}”` : `${n} message${n === 1 ? "" : "s"} found, newest first`,
      r.note,
    ].filter(Boolean).join(". ");
    more.hidden = shown.before === undefined;
  };

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const query = input.value.trim();
    if (query === "") return;
    hits.replaceChildren();
    shown = { query, where: scope.value, before: undefined, asked: shown.asked };
    void ask(query, scope.value);
  });
  more.addEventListener("click", () => {
    if (shown.before !== undefined) void ask(shown.query, shown.where, shown.before);
  });
  return { dialog, button };
}

/** The open conversation's name: `@group` or the peer's. */
const nameOf = (id, kind) =>
  kind === "group" ? `@${state.groups.find((g) => g.id === id)?.name ?? "group"}` : peerName(id);

initSearch({
  api: (path) => api(path),
  current: () =>
    state.current ? { id: state.current, kind: state.kind, name: nameOf(state.current, state.kind) } : undefined,
  conversationName: (m) => printableLine(m.group ? `@${m.group.name}` : m.peer.name),
  // The conversation opened around the hit (a window of messages either side, the hit marked li.hit and centred).
  openAt: async (id, kind, cursor) => {
    await openConversation(id, kind, { at: cursor });
    return $("messages").querySelector(`li[data-cursor="${cursor}"]`) ?? undefined;
  },
});
