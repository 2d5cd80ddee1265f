// How the open conversation looks and where it sits: kept at its newest message while you are there (message heights
// settle late: items off screen are not rendered, content-visibility), a "new messages" divider where unread starts,
// a jump-to-latest button with the count of what arrived below, day separators, consecutive messages of one sender
// grouped, and avatars (an identicon drawn from the peer's key fingerprint, else initials on a colour).
import { $, el, state } from "./core.js";
import { printableLine } from "./text.js";

/** Within this many pixels of the bottom, the list is "at the bottom" and stays there as messages come and grow. */
const NEAR_BOTTOM = 40;
/** Messages of one sender this close in time are one group (one name, one avatar). */
const GROUP_MS = 5 * 60_000;

const list = () => $("messages");
const fromBottom = (l) => l.scrollHeight - l.scrollTop - l.clientHeight;

/** Sizes of message items change after they are put in (rendered once near the screen): the bottom is kept. */
const sizes = new ResizeObserver(() => {
  if (state.pinned) list().scrollTop = list().scrollHeight;
  else if (hit.li?.isConnected && Date.now() < hit.until) hit.li.scrollIntoView({ block: "center" });
});
/** A message opened to (a search hit): kept in the middle of the list while the heights around it settle. */
const hit = { li: undefined, until: 0 };

/** Another conversation opened: the items of the last one are no longer watched. */
export function resetSizes() {
  sizes.disconnect();
  watching = true; // a conversation opens kept at its bottom (or a hit)
  hit.li = undefined;
}

/** The list opened at this message (a search hit): marked, in the middle of the list, not kept at the bottom. */
export function showHit(li) {
  state.pinned = false;
  li.classList.add("hit");
  hit.li = li;
  hit.until = Date.now() + 1500;
  li.scrollIntoView({ block: "center" });
  watchSizes(true);
  showJump();
}

/** Whether sizes are watched now: while the list is kept at its bottom or at a search hit (else not: a list
 * scrolled through 100,000 messages does not pay for it). */
let watching = false;

/** A message item put in the list: its size is watched while the list is kept at its bottom. */
export const watchSize = (li) => watching && sizes.observe(li);

function watchSizes(on) {
  if (on === watching) return;
  watching = on;
  sizes.disconnect();
  if (on) { for (const li of list().querySelectorAll("li[data-id]")) sizes.observe(li); }
}
/** A message item gone from the list. */
export const unwatchSize = (li) => sizes.unobserve(li);

/** To the newest message shown, and kept there. */
export function toBottom() {
  state.pinned = true;
  watchSizes(true);
  const l = list();
  l.scrollTop = l.scrollHeight;
  setBelow(0);
}

/** The list was scrolled (by the person, or to keep the bottom): at the bottom or not. */
export function scrolled() {
  if (hit.li && Date.now() < hit.until) return; // the list is being kept at a search hit
  const pinned = state.atNewest && fromBottom(list()) < NEAR_BOTTOM;
  if (pinned === state.pinned && (pinned || state.below === 0) && $("jump").hidden === pinned) return;
  state.pinned = pinned;
  watchSizes(pinned);
  if (pinned) setBelow(0);
  else showJump();
}

/** The list is about to get a message at its end: whether it should then be scrolled to it. */
export const keepsBottom = () => state.pinned || fromBottom(list()) < NEAR_BOTTOM;

/**
 * A message arrived below what is on screen (scrolled up, or the window far back in history): counted on the
 * jump button, and the divider put before it if it starts a new batch. `li` is its item, if in the page.
 */
export function arrivedBelow(m, li) {
  if (m.direction !== "in") return;
  if (state.below === 0 && li) placeDivider(li);
  setBelow(state.below + 1);
}

function setBelow(n) {
  state.below = n;
  showJump();
}

function showJump() {
  const jump = $("jump");
  jump.hidden = state.pinned || !state.current;
  const n = state.below;
  $("jump-count").textContent = n > 0 ? String(n) : "";
  jump.setAttribute("aria-label", n > 0 ? `Jump to the latest message, ${n} new` : "Jump to the latest message");
}

/**
 * A message arrived at the bottom while the page was not looked at (another window in front, the tab hidden): the
 * first of them gets the divider, so that coming back shows where the new ones start.
 */
export function arrivedUnseen(m, li) {
  if (m.direction !== "in" || state.awayDivider) return;
  state.awayDivider = true;
  // Older unread ones not seen yet keep theirs: the divider marks where unread starts.
  const first = list().querySelector("li[data-unread]:not([data-seen])");
  if (first && first !== li) return;
  placeDivider(li);
}

/** The page is looked at again: the next time it is left, new messages get the divider again. */
export function lookedBack() {
  state.awayDivider = false;
}

/** The "new messages" divider before this item (one at a time). */
export function placeDivider(li) {
  list().querySelector("li.divider")?.remove();
  const d = el("li", "divider");
  d.append(el("span", "", "New messages"));
  li.before(d);
}

/** Opened: the divider before the first unread message, if any is in the page. */
export function dividerAtUnread() {
  const first = list().querySelector("li[data-unread]");
  if (first) placeDivider(first);
}

/** The key of a message's local day, and how it reads (cached: formatting a date is not cheap). */
const dayOf = (t) => new Date(t).toDateString();
const labels = new Map(); // day key -> label, for `labelsOf` (today's date)
let labelsOf = "";
function dayLabel(t) {
  const d = new Date(t);
  const key = d.toDateString();
  const today = new Date();
  if (labelsOf !== today.toDateString()) {
    labels.clear();
    labelsOf = today.toDateString();
  }
  if (labels.has(key)) return labels.get(key);
  let label;
  if (key === labelsOf) label = "Today";
  else if (key === new Date(Date.now() - 86_400_000).toDateString()) label = "Yesterday";
  else {
    label = d.toLocaleDateString(undefined, {
      weekday: "long",
      day: "numeric",
      month: "long",
      ...(d.getFullYear() === today.getFullYear() ? {} : { year: "numeric" }),
    });
  }
  labels.set(key, label);
  return label;
}

/** What `layout` needs of a message, kept on its item: when, its day, who wrote it, whether it is a system line. */
export function describe(li, m) {
  const at = Date.parse(m.receivedAt ?? m.sentAt);
  li.dataset.at = String(at);
  li.dataset.day = dayOf(at);
  li.dataset.from = m.direction === "out" ? "me" : m.peer.id;
  if (m.group?.change || m.files) li.classList.add("system");
}

/**
 * Day separators between messages of different days, and consecutive messages of one sender within a few minutes
 * grouped (`li.cont`: no name or avatar of their own). Run after the list changes (it holds at most a window).
 */
export function layout() {
  let prev; // the message before
  let sep; // a day separator met since it
  for (const node of [...list().children]) {
    if (node.classList.contains("day")) {
      sep?.remove();
      sep = node;
      continue;
    }
    if (!node.dataset.id) continue;
    const day = node.dataset.day;
    if (day !== prev?.dataset.day) {
      if (sep?.dataset.day !== day) {
        sep?.remove();
        const d = el("li", "day");
        d.dataset.day = day;
        d.append(el("span", "", dayLabel(Number(node.dataset.at))));
        (node.previousElementSibling?.classList.contains("divider") ? node.previousElementSibling : node).before(d);
      }
    } else sep?.remove();
    sep = undefined;
    const cont = prev !== undefined && day === prev.dataset.day && node.dataset.from === prev.dataset.from &&
      !node.classList.contains("system") && !prev.classList.contains("system") &&
      Number(node.dataset.at) - Number(prev.dataset.at) < GROUP_MS && prev.nextElementSibling === node;
    if (cont !== node.classList.contains("cont")) node.classList.toggle("cont", cont);
    prev = node;
  }
  sep?.remove();
}

// ---- avatars ----

const avatars = new Map(); // fingerprint -> data: URL of its identicon

/** A hue of its own for a peer id (initials' colour). */
function hueOf(s) {
  let h = 0;
  for (const c of String(s)) h = (Math.imul(h, 31) + c.codePointAt(0)) >>> 0;
  return h % 360;
}

/**
 * A 5×5 mirrored identicon drawn from the hex digits of a key fingerprint, as an SVG data: URL (cached; a string
 * made from hex digits only, drawn by the browser only when on screen: 1,000 peers cost next to nothing).
 */
function identicon(fingerprint) {
  const hex = fingerprint.replace(/[^0-9a-f]/gi, "").toLowerCase();
  if (hex.length < 16) return undefined;
  if (avatars.has(fingerprint)) return avatars.get(fingerprint);
  const bits = BigInt(`0x${hex.slice(0, 16)}`);
  const cells = [];
  for (let y = 0; y < 5; y++) {
    for (let x = 0; x < 3; x++) {
      if (((bits >> BigInt(12 + y * 3 + x)) & 1n) === 0n) continue;
      cells.push(`M${1 + x} ${1 + y}h1v1h-1z`);
      if (x < 2) cells.push(`M${5 - x} ${1 + y}h1v1h-1z`);
    }
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 7 7"><path fill="hsl(${
    Number(bits % 360n)
  },55%,45%)" d="${cells.join("")}"/></svg>`;
  const url = `data:image/svg+xml,${encodeURIComponent(svg)}`;
  avatars.set(fingerprint, url);
  return url;
}

/** The first letter of a name (its invisible characters shown, so a name of only those gets "?"). */
function initials(name) {
  const first = [...printableLine(name).trim()][0] ?? "?";
  return first === "<" || first === "^" ? "?" : first.toUpperCase();
}

/**
 * A peer's avatar (decorative: its name is always beside it): the identicon of its key where it has one (a
 * changed key draws another picture), else its initial on a colour of its own.
 */
export function avatar(peer) {
  const fp = peer?.fingerprint;
  const url = fp ? identicon(fp) : undefined;
  const a = el("span", "avatar");
  a.setAttribute("aria-hidden", "true");
  if (url) {
    a.classList.add("identicon");
    a.style.backgroundImage = `url("${url}")`;
  } else {
    a.dataset.initial = initials(peer?.name ?? "?"); // drawn by the style sheet: not part of the row's text
    a.style.backgroundColor = `hsl(${hueOf(peer?.id ?? "")} 45% 40%)`;
  }
  return a;
}
