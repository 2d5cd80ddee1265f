// Text from peers (messages, names, hostnames, file names) made safe to look at: the characters that reorder text or
// print as nothing are shown as <U+202E> (as the CLI's printable() does, src/common/printable.ts), each name and text
// is isolated (dir=auto, <bdi>) so right-to-left writing cannot reorder what is around it, and http(s) and mailto
// links in a message become links that open in a new tab with no way back to the page. All of it as text nodes:
// nothing a peer sends is ever HTML.

/** Controls and the characters that reorder text or print as nothing (the same set as src/common/printable.ts). */
const INVISIBLE = "\u061c\u115f\u1160\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\u3164\ufeff\uffa0";
const UNSAFE_MULTILINE = new RegExp(`[\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f${INVISIBLE}]`, "g");
const UNSAFE_LINE = new RegExp(`[\\u0000-\\u001f\\u007f-\\u009f${INVISIBLE}]`, "g");

/** How a hidden character is shown: `<U+202E>` (C0 controls as `^[`, as the CLI shows them). */
function shown(c) {
  const code = c.charCodeAt(0);
  if (code < 0x20) return "^" + String.fromCharCode(code + 0x40);
  if (code === 0x7f) return "^?";
  return `<U+${code.toString(16).toUpperCase().padStart(4, "0")}>`;
}

/** A name or other one-line text with every hidden character shown (for titles, notifications, dialogs). */
export const printableLine = (s) => String(s ?? "").replace(UNSAFE_LINE, shown);

/** A text with every hidden character shown; newlines and tabs kept (a notification's body). */
export const printable = (s) => String(s ?? "").replace(UNSAFE_MULTILINE, shown);

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
  let at = 0;
  for (const m of String(text).matchAll(UNSAFE_MULTILINE)) {
    appendLinked(span, text.slice(at, m.index));
    const mark = document.createElement("span");
    mark.className = "hidden-char";
    mark.textContent = shown(m[0]);
    mark.title = "An invisible character that can reorder or hide text";
    span.append(mark);
    at = m.index + m[0].length;
  }
  appendLinked(span, text.slice(at));
  return span;
}
