/**
 * What the desktop notifications say and how often, with no I/O (told the
 * time): {@link NotifyQueue} coalesces what arrives per conversation and
 * lets out at most a burst, then one every few seconds, so a flood of
 * messages is one notification per conversation that keeps its count, not
 * a storm of pop-ups (nor of processes: each notification is one `gdbus`
 * run, services/notify.ts). {@link notificationBody} and
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

/** A notification to show: one per conversation, replacing its previous one. */
export interface Pending {
  /** The conversation (a peer id, or `group:ID`): one notification each, replaced as more come. */
  key: string;
  title: string;
  /** The newest text, as typed (made safe when shown). */
  text: string;
  /** Messages or offers it stands for, since the last one shown for this conversation. */
  count: number;
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
  const text = cut(printableLine(p.text.replace(/[\s\u2028\u2029]+/g, " ").trim()), BODY_CHARS);
  const body = p.count > 1 ? `${p.count} new: ${text}` : text;
  return markup ? escapeMarkup(body) : body;
}

/** Coalescing per conversation and a token bucket, told the time. */
export class NotifyQueue {
  /** Waiting, in the order their conversations first came (a Map keeps insertion order). */
  readonly #waiting = new Map<string, Pending>();
  #tokens: number;
  #refilledAt: number;
  /** Notifications dropped because too many conversations were waiting. */
  dropped = 0;

  constructor(
    now: number,
    private readonly burst = NOTIFY_BURST,
    private readonly everyMs = NOTIFY_EVERY_MS,
  ) {
    this.#tokens = burst;
    this.#refilledAt = now;
  }

  /** A message or offer came for conversation `key`: it joins (or updates) that conversation's notification. */
  push(key: string, title: string, text: string): void {
    const had = this.#waiting.get(key);
    if (had) {
      had.title = title;
      had.text = text;
      had.count++;
      return;
    }
    if (this.#waiting.size >= MAX_WAITING) {
      const oldest = this.#waiting.keys().next().value!;
      this.#waiting.delete(oldest);
      this.dropped++;
    }
    this.#waiting.set(key, { key, title, text, count: 1 });
  }

  /** Forgets what waits (the page opened, or the user went busy: they see it there, or asked for quiet). */
  clear(): void {
    this.#waiting.clear();
  }

  get size(): number {
    return this.#waiting.size;
  }

  /** The next notification to show now, if one waits and the rate allows; it is taken off the queue. */
  take(now: number): Pending | undefined {
    this.#refill(now);
    if (this.#waiting.size === 0 || this.#tokens < 1) return undefined;
    const [key, p] = this.#waiting.entries().next().value!;
    this.#waiting.delete(key);
    this.#tokens--;
    return p;
  }

  /** When {@link take} will next have something to give (undefined: nothing waits); a time past means now. */
  nextDeadline(): number | undefined {
    if (this.#waiting.size === 0) return undefined;
    return this.#tokens >= 1 ? this.#refilledAt : this.#refilledAt + this.everyMs;
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
