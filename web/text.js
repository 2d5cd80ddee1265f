// Text from peers (messages, names, hostnames, file names) made safe to look at: the characters that reorder text or
// print as nothing are shown as <U+202E> (the rule is ./hidden.js, which the CLI's printable() uses too), each name
// and text is isolated (dir=auto, <bdi>) so right-to-left writing cannot reorder what is around it, and http(s) and
// mailto links in a message become links that open in a new tab with no way back to the page. All of it as text
// nodes: nothing a peer sends is ever HTML.

import { hiddenIn, reveal } from "./hidden.js";

/** A name or other one-line text with every hidden character shown (for titles, notifications, dialogs). */
export const printableLine = (s) => reveal(String(s ?? ""), true);

/** A text with every hidden character shown; newlines and tabs kept (a notification's body). */
export const printable = (s) => reveal(String(s ?? ""), false);

/** A peer-supplied name as an isolated element (`<bdi>`), its hidden characters shown. */
export function nameNode(name, className) {
  const b = document.createElement("bdi");
  if (className) b.className = className;
  b.textContent = printableLine(name);
  return b;
}

/** http(s) and mailto links: up to a space or a character no URL has unquoted; closing punctuation is left out. */
const LINK = /\b(?:https?:\/\/|mailto:)[^\s<>"'`]+/gi;

/** The link in `candidate` (trailing punctuation and an unbalanced ")" dropped), or undefined if it is not one. */
function linkOf(candidate) {
  let s = candidate.replace(/[.,;:!?'"\]}>]+$/, "");
  while (s.endsWith(")") && (s.match(/\(/g) ?? []).length < (s.match(/\)/g) ?? []).length) s = s.slice(0, -1);
  try {
    const url = new URL(s);
    if (!["http:", "https:", "mailto:"].includes(url.protocol)) return undefined;
    if (url.protocol !== "mailto:" && !url.hostname) return undefined;
    return { text: s, href: url.href };
  } catch {
    return undefined;
  }
}

function appendLinked(parent, text) {
  let at = 0;
  for (const m of text.matchAll(LINK)) {
    const link = linkOf(m[0]);
    if (!link) continue;
    if (m.index > at) parent.append(text.slice(at, m.index));
    const a = document.createElement("a");
    a.href = link.href;
    a.textContent = link.text;
    a.title = link.href; // where it really goes (an IDN host in its ASCII form)
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    parent.append(a);
    at = m.index + link.text.length;
  }
  if (at < text.length) parent.append(text.slice(at));
}

/**
 * A message's text as an isolated element (`dir=auto`): hidden characters shown as marked `<U+…>` spans (a link
 * never runs across one), links made of http(s) and mailto URLs, newlines kept.
 */
export function messageText(text) {
  const span = document.createElement("span");
  span.className = "text";
  span.dir = "auto";
  const s = String(text);
  let at = 0;
  for (const h of hiddenIn(s, false)) {
    appendLinked(span, s.slice(at, h.index));
    const mark = document.createElement("span");
    mark.className = "hidden-char";
    mark.textContent = h.shown;
    mark.title = "An invisible character that can reorder or hide text";
    span.append(mark);
    at = h.index + h.length;
  }
  appendLinked(span, s.slice(at));
  return span;
}
