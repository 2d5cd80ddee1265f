/**
 * What the desktop notifications say and how often, with no I/O (told the
 * time): {@link NotifyQueue} coalesces what arrives per conversation and
 * lets out at most a burst, then one every few seconds, so a flood of
 * messages is one notification per conversation that keeps its count, not
 * a storm of pop-ups (nor of processes: each notification is one `gdbus`
 * run, services/notify.ts); it remembers what each notification stands
 * for, so a message its sender deletes or edits is taken back from what
 * waits and from the desktop ({@link NotifyQueue.amend}). {@link notificationBody} and
 * {@link notificationTitle} make a peer's text safe for a notification:
 * control and reordering characters shown as the terminal shows them
 * (common/printable.ts), whitespace folded, cut to a length a pop-up
 * shows, and, for a server that reads markup, `<`, `>` and `&` escaped so
 * `<b>` or `&amp;` reads as typed.
 *
 * @module
 */
import { printableLine } from "../common/printable.ts";

/** Notifications let out at once before the rate applies. */
export const NOTIFY_BURST = 3;
/** Then one every this many ms. */
export const NOTIFY_EVERY_MS = 4000;
/** Conversations waiting at most; past it the oldest waiting is dropped (its messages stay in the inbox). */
export const MAX_WAITING = 32;
/** Characters of a message shown, at most (then "…"). */
export const BODY_CHARS = 160;
/** Characters of a title shown, at most. */
export const TITLE_CHARS = 80;

/** Messages of a notification remembered (id and text as shown), at most: the newest; older ones only count. */
export const MAX_KEPT = 8;
/** Conversations whose notification on screen is remembered (its id, to replace it; its messages, to take one back). */
export const MAX_SHOWN = 256;

/** A notification to show: one per conversation, replacing its previous one. */
export interface Pending {
  /** The conversation (a peer id, or `group:ID`): one notification each, replaced as more come. */
  key: string;
  title: string;
  /** The newest text remembered (made safe when shown); "" when none is left. */
  text: string;
  /** Messages or offers it stands for, since the last one shown for this conversation; 0: close it, nothing is left. */
  count: number;
  /** The notification on screen it replaces (0: none known). */
  replacesId?: number;
}

/** A message a notification stands for: its id (to edit or delete it) and its text as shown. */
interface Kept {
  id: string | undefined;
  text: string;
}

/** A conversation's notification, waiting or on screen. */
interface Conv {
  key: string;
  title: string;
  count: number;
  /** The newest messages it stands for, oldest first, at most {@link MAX_KEPT}. */
  kept: Kept[];
}

/** On screen: its id (0 until the server says, or when it gave none). */
interface OnScreen extends Conv {
  id: number;
}

const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/** `s` cut to at most `max` characters (whole graphemes: an emoji or an accent is not split), "…" if cut. */
export function cut(s: string, max: number): string {
  if (s.length <= max) return s;
  // Enough of the text for `max` graphemes (an emoji family is 11 code units), so a 64 KiB message is not
  // segmented whole; the last grapheme of a part may be cut short, so it is not used.
  const part = s.slice(0, max * 16);
  const graphemes = Array.from(segmenter.segment(part), (g) => g.segment);
  if (part.length < s.length) graphemes.pop();
  else if (graphemes.length <= max) return s;
  return graphemes.slice(0, max - 1).join("") + "…";
}

/** Escapes the characters freedesktop notification markup reads (a subset of XML). */
export function escapeMarkup(s: string): string {
  return s.replace(/[&<>]/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : "&gt;"));
}

/** A peer's name (or "name in @group") as a notification's title: one line, printable, short. Never markup. */
export function notificationTitle(title: string): string {
  return cut(printableLine(title.replace(/\s+/g, " ").trim()), TITLE_CHARS) || "lanchat";
}

/**
 * A message's text as a notification's body: whitespace (newlines too)
 * folded to one space, controls and reordering characters shown
 * (`<U+202E>`, `^[`), cut to {@link BODY_CHARS}; escaped when the server
 * reads markup (its `body-markup` capability).
 */
export function notificationBody(p: Pending, markup: boolean): string {
  const text = shownText(p.text);
  const body = !text
    ? (p.count > 1 ? `${p.count} new messages` : "A new message")
    : p.count > 1
    ? `${p.count} new: ${text}`
    : text;
  return markup ? escapeMarkup(body) : body;
}

/**
 * A message's text as a notification shows it (whitespace folded, controls
 * shown, cut; not yet escaped): what the queue keeps of a message, so a
 * 64 KiB message costs a few hundred bytes. Applying it again changes nothing.
 */
export function shownText(text: string): string {
  return cut(printableLine(text.replace(/[\s\u2028\u2029]+/g, " ").trim()), BODY_CHARS);
}

/**
 * Coalescing per conversation and a token bucket, told the time; and what
 * is on screen, so that a message its sender takes back (deleted, or
 * edited) is taken back from the desktop too: dropped from what waits (or
 * re-worded), and the notification on screen whose newest message it was
 * replaced by one without it, or closed when nothing is left.
 */
export class NotifyQueue {
  /** Waiting, in the order their conversations first came (a Map keeps insertion order). */
  readonly #waiting = new Map<string, Conv>();
  /** On screen (or being shown), oldest first; at most {@link MAX_SHOWN}. */
  readonly #shown = new Map<string, OnScreen>();
  /**
   * Notifications on screen to correct: `now` (their newest message was
   * deleted: its text must go, without waiting for the rate; each deletion
   * removes a message a shown notification stood for, so these are bounded
   * by what the rate let out), `rate` (edited: new text, as a new
   * notification is, so a peer editing in a loop is no storm).
   */
  readonly #fixes = new Map<string, "now" | "rate">();
  #tokens: number;
  #refilledAt: number;
  /** Notifications dropped because too many conversations were waiting. */
  dropped = 0;
  /** Notifications taken back (dropped while waiting, or corrected on screen) because a message was deleted or edited. */
  amended = 0;

  constructor(
    now: number,
    private readonly burst = NOTIFY_BURST,
    private readonly everyMs = NOTIFY_EVERY_MS,
  ) {
    this.#tokens = burst;
    this.#refilledAt = now;
  }

  /** A message or offer (`id`, to take it back later) came for conversation `key`: it joins that conversation's notification. */
  push(key: string, title: string, text: string, id?: string): void {
    const kept = { id, text: shownText(text) };
    const had = this.#waiting.get(key);
    if (had) {
      had.title = title;
      had.count++;
      had.kept.push(kept);
      if (had.kept.length > MAX_KEPT) had.kept.shift();
      return;
    }
    if (this.#waiting.size >= MAX_WAITING) {
      const oldest = this.#waiting.keys().next().value!;
      this.#waiting.delete(oldest);
      this.dropped++;
    }
    this.#waiting.set(key, { key, title, count: 1, kept: [kept] });
  }

  /**
   * Message `id` of conversation `key` was edited to `text`, or deleted
   * (`text` undefined) by its sender. A waiting notification forgets it
   * (and is dropped when it stood for nothing else) or shows the new text;
   * one on screen whose newest message it was is corrected by the next
   * {@link take}. A message not remembered (older than the last
   * {@link MAX_KEPT} of its notification, or never notified) changes nothing.
   */
  amend(key: string, id: string, text: string | undefined): void {
    const waiting = this.#waiting.get(key);
    if (waiting && change(waiting, id, text)) {
      this.amended++;
      if (waiting.count <= 0) this.#waiting.delete(key);
    }
    const shown = this.#shown.get(key);
    if (!shown) return;
    const newest = shown.kept.at(-1)?.id === id;
    // An older message deleted lowers the count on screen, but is not worth a pop-up of its own: the
    // notification shows only the newest text.
    if (!change(shown, id, text) || !newest) return;
    this.#fixes.set(key, text === undefined ? "now" : this.#fixes.get(key) ?? "rate");
  }

  /** The notification of `key` being shown got `id` from the server (0: none). */
  shownAs(key: string, id: number): void {
    const s = this.#shown.get(key);
    if (s) s.id = id;
  }

  /**
   * Forgets what waits (the page opened, or the user went busy: they see it
   * there, or asked for quiet), and the edits to show; not the deletions,
   * whose text must leave the desktop in any case.
   */
  clear(): void {
    this.#waiting.clear();
    for (const [key, fix] of this.#fixes) if (fix === "rate") this.#fixes.delete(key);
  }

  get size(): number {
    return this.#waiting.size;
  }

  /**
   * The next notification to show now, if one is due and the rate allows:
   * first a correction of one on screen (a deletion at once; an edit as the
   * rate allows), then what waits, taken off the queue. A `count` of 0
   * means close `replacesId`.
   */
  take(now: number): Pending | undefined {
    this.#refill(now);
    for (const [key, fix] of this.#fixes) {
      if (fix !== "now") continue;
      const p = this.#correct(key);
      if (p) return p;
    }
    while (this.#tokens >= 1 && this.#fixes.size > 0) {
      const key = this.#fixes.keys().next().value!;
      // A newer notification waits for that conversation: it replaces the one on screen, with the edit.
      if (this.#waiting.has(key)) {
        this.#fixes.delete(key);
        continue;
      }
      const p = this.#correct(key);
      if (p) {
        this.#tokens--;
        return p;
      }
    }
    if (this.#waiting.size === 0 || this.#tokens < 1) return undefined;
    const [key, conv] = this.#waiting.entries().next().value!;
    this.#waiting.delete(key);
    this.#fixes.delete(key); // the new one replaces the one on screen
    this.#tokens--;
    const replacesId = this.#shown.get(key)?.id ?? 0;
    this.#shown.delete(key); // (re)inserted last: the newest
    this.#shown.set(key, { ...conv, id: replacesId });
    if (this.#shown.size > MAX_SHOWN) this.#shown.delete(this.#shown.keys().next().value!);
    return pending(conv, replacesId);
  }

  /** When {@link take} will next have something to give (undefined: nothing waits); a time past means now. */
  nextDeadline(): number | undefined {
    if ([...this.#fixes.values()].includes("now")) return this.#refilledAt;
    if (this.#waiting.size === 0 && this.#fixes.size === 0) return undefined;
    return this.#tokens >= 1 ? this.#refilledAt : this.#refilledAt + this.everyMs;
  }

  /** The correction of `key`'s notification on screen, taken off the fixes; undefined when there is none to make. */
  #correct(key: string): Pending | undefined {
    this.#fixes.delete(key);
    const s = this.#shown.get(key);
    if (!s || s.id === 0) return undefined; // not known on screen: nothing to replace
    this.amended++;
    if (s.count <= 0) this.#shown.delete(key);
    return pending(s, s.id);
  }

  #refill(now: number): void {
    if (this.#tokens >= this.burst) {
      this.#refilledAt = now;
      return;
    }
    const gained = Math.floor((now - this.#refilledAt) / this.everyMs);
    if (gained <= 0) return;
    this.#tokens = Math.min(this.burst, this.#tokens + gained);
    this.#refilledAt = this.#tokens === this.burst ? now : this.#refilledAt + gained * this.everyMs;
  }
}

/** Applies an edit (`text`) or deletion (undefined) of message `id` to `c`; false when `c` does not remember it. */
function change(c: Conv, id: string, text: string | undefined): boolean {
  const i = c.kept.findIndex((k) => k.id === id);
  if (i < 0) return false;
  if (text !== undefined) c.kept[i]!.text = shownText(text);
  else {
    c.kept.splice(i, 1);
    c.count--;
  }
  return true;
}

function pending(c: Conv, replacesId: number): Pending {
  return { key: c.key, title: c.title, text: c.kept.at(-1)?.text ?? "", count: Math.max(0, c.count), replacesId };
}
