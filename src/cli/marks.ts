/**
 * What a terminal shows of a message beyond its text: how far one you sent
 * has come (`queued` → `sent` → `✓` delivered → `✓✓` read, `!` failed), the
 * same in `inbox`, `chat`, `search` and `edit`; and, for a file offer, its
 * transfer and what to do with it (`lanchat accept ID`).
 *
 * @module
 */
import type { MessageJson, TransferJson } from "../api/types.ts";
import { formatBytes } from "../protocol/files.ts";
import { printableLine } from "../common/printable.ts";
import { nameKey } from "../common/name_key.ts";

/**
 * A peer's (or a group's) name as a line shows it, so that it cannot pass
 * for the CLI's own words: made printable, and written as a JSON string
 * (`"you → bob"`) when it could read as yours (`you`, `you → …`, `you: …`,
 * alike by case, width or invisible characters), holds `→`, starts with
 * `(` (the CLI's notes and state lines do), `"` or a space, or ends with
 * one. Your own lines start with `you`, which no name shown bare can.
 */
export function shownName(name: string): string {
  const key = nameKey(name).toLowerCase();
  const risky = /^you(?:$|[\s:→])/.test(key) || /[→]/.test(name) || /^[("“\s]|\s$/.test(name) || name === "";
  return risky ? printableLine(JSON.stringify(name)) : printableLine(name);
}

/** A group's name as a line shows it (`[lab]`, `@lab`): as {@link shownName}, and quoted when it holds `]`. */
export function shownGroup(name: string): string {
  return name.includes("]") ? printableLine(JSON.stringify(name)) : shownName(name);
}

/** How far a message of yours has come, as a number that only grows: queued 1, sent 2, delivered or failed 3, read 4. */
export function stateRank(m: MessageJson): number {
  if (m.readAt !== undefined && m.status !== "failed") return 4;
  return { queued: 1, sent: 2, delivered: 3, failed: 3 }[m.status as string] ?? 0;
}

/**
 * The state of a message you sent, for the end of its line: a symbol
 * (`✓` delivered, `✓✓` read, `!` failed) and words in parentheses (`queued`,
 * `sent`, what a failure was, how many members of a group have it). Nothing
 * for a message received or deleted.
 */
export function stateMark(m: MessageJson): { symbol: string; words: string[] } {
  if (m.direction !== "out" || m.deletedAt !== undefined) return { symbol: "", words: [] };
  if (m.status === "failed") {
    return { symbol: "!", words: [`failed${m.error ? `: ${printableLine(m.error)}` : ""}`] };
  }
  if (stateRank(m) === 4) return { symbol: "✓✓", words: [] };
  if (m.status === "delivered") return { symbol: "✓", words: [] };
  const words = [m.status === "queued" || m.status === "sent" ? m.status : printableLine(String(m.status))];
  const r = m.recipients;
  if (r && r.length > 0) words.push(`${r.filter((c) => c.status === "delivered").length} of ${r.length} delivered`);
  return { symbol: "", words };
}

/** `  ✓✓`, `  ✓ (edited)`, `  (queued, edited)`: a state and other marks, for the end of a line ("" for none). */
export function marksTail(symbol: string, words: string[]): string {
  const parts = [symbol, words.length ? `(${words.join(", ")})` : ""].filter((s) => s !== "");
  return parts.length ? `  ${parts.join(" ")}` : "";
}

/** Longest part of a message's text a state line quotes, in characters. */
const QUOTED = 40;

/** A message's first line, cut short and made printable: what a state line names it by. */
export function quoted(text: string): string {
  const first = [...(text.split("\n")[0] ?? "")];
  return `“${printableLine(first.length > QUOTED ? first.slice(0, QUOTED - 1).join("") + "…" : first.join(""))}”`;
}

/**
 * The line `chat` prints when a message you sent moves on (it does not
 * redraw a line already printed: this works the same in a terminal and a
 * pipe): `(✓ delivered: “lunch?”)`, `(✓✓ read: “lunch?”)`,
 * `(! not delivered: “lunch?”: why)`, `(sent: “lunch?”)`.
 */
export function stateLine(m: MessageJson, naming = false): string {
  const what = m.deletedAt !== undefined ? `a deleted message (${m.id.slice(0, 12)})` : quoted(m.text);
  // Where several conversations are shown (inbox --follow), with whom.
  const name = shownName(m.peer.name);
  const to = naming ? ` to ${name}` : "";
  if (m.status === "failed") return `(! not delivered${to}: ${what}${m.error ? `: ${printableLine(m.error)}` : ""})`;
  const rank = stateRank(m);
  if (rank === 4) return `(✓✓ read${naming ? ` by ${name}` : ""}: ${what})`;
  if (rank === 3) return `(✓ delivered${to}: ${what})`;
  return `(${m.status}${naming ? ` ${m.status === "queued" ? "for" : "to"} ${name}` : ""}: ${what})`;
}

/**
 * The states of messages you sent that a command has shown, so that each
 * later step is told once, in order, never a step back (events can come
 * late, or twice after a reconnect): `advance` says whether `m` went further
 * than shown. At most `max` are kept (the oldest let go first).
 */
export class ShownStates {
  #shown = new Map<string, { rank: number; cursor: number; final: boolean }>();
  constructor(readonly max = 10_000) {}

  /** Remembers `m` as shown in the state it has now. */
  shown(m: MessageJson): void {
    if (m.direction === "out") this.#set(m);
  }

  /** Whether `m` was shown here. */
  has(id: string): boolean {
    return this.#shown.has(id);
  }

  /** Whether `m` is one shown and now further on; remembers it so. */
  advance(m: MessageJson): boolean {
    const had = this.#shown.get(m.id);
    if (had === undefined || had.final || stateRank(m) <= had.rank) return false;
    this.#set(m);
    return true;
  }

  /** The lowest cursor of a shown message that may still go further (undefined: none). */
  pendingFrom(): number | undefined {
    let low: number | undefined;
    for (const s of this.#shown.values()) {
      if (!s.final && Number.isFinite(s.cursor) && (low === undefined || s.cursor < low)) low = s.cursor;
    }
    return low;
  }

  #set(m: MessageJson): void {
    const rank = stateRank(m);
    this.#shown.delete(m.id);
    this.#shown.set(m.id, { rank, cursor: Number(m.cursor), final: rank >= 4 || m.status === "failed" });
    if (this.#shown.size > this.max) this.#shown.delete(this.#shown.keys().next().value!);
  }
}

/**
 * What a file offer's line adds: its transfer and what to do or what came
 * of it. `t` is the daemon's transfer of this offer: undefined when not
 * known (the hint alone), null when the daemon no longer has it.
 *
 * - offered: `(lanchat accept 1a2b3c4d)`; offered to the peer:
 *   `(transfer 1a2b3c4d: offered)`;
 * - `(transfer 1a2b3c4d: expired)`, `(transfer 1a2b3c4d: active 40 %, saving in /home/me/Downloads/lanchat)`;
 * - done: `(transfer 1a2b3c4d: received in /home/me/Downloads/lanchat)`;
 * - `(transfer 1a2b3c4d: refused: …)`, `(no transfer 1a2b3c4d here: see lanchat transfers)`.
 */
export function offerHint(m: MessageJson, t: TransferJson | null | undefined, now = Date.now()): string {
  if (m.deletedAt !== undefined) return "";
  // An IP Messenger user's message with files: no note says so, its transfer does.
  if (m.files?.kind !== "offer") return t ? `\n(${transferState(t, now)})` : "";
  const id = m.files.offer.slice(0, 8);
  // On a line of its own that starts with "(": no text reaches there (its later lines are indented), no name
  // starts so (shownName), so a peer's text cannot pass for it.
  if (t === undefined) return m.direction === "in" ? `\n(lanchat accept ${id})` : `\n(transfer ${id})`;
  if (t === null) return `\n(no transfer ${id} here: see lanchat transfers)`;
  return `\n(${transferState(t, now)})`;
}

/** A transfer offered to you, on its own line (when its message came before it: IP Messenger). */
export function offeredLine(t: TransferJson, now = Date.now()): string {
  return `(${shownName(t.peer.name)} offers ${filesAndSize(t)}: ${transferState(t, now)})`;
}

/** `lanchat accept 1a2b3c4d`, or `transfer 1a2b3c4d: STATE…`. */
function transferState(t: TransferJson, now: number): string {
  const id = t.id.slice(0, 8);
  const dir = t.dir ? printableLine(t.dir) : undefined;
  if (t.state === "offered") {
    if (Date.parse(t.expires) < now) return `transfer ${id}: expired`;
    return t.direction === "in" ? `lanchat accept ${id}` : `transfer ${id}: offered`;
  }
  if (t.state === "done") {
    return t.direction === "in" && dir ? `transfer ${id}: received in ${dir}` : `transfer ${id}: done`;
  }
  const why = t.error ? `: ${printableLine(t.error)}` : "";
  const where = t.direction === "in" && dir && !why ? `, saving in ${dir}` : "";
  const pct = t.state === "active" && t.bytes > 0 ? ` ${Math.floor((t.transferred / t.bytes) * 100)} %` : "";
  return `transfer ${id}: ${t.state}${pct}${where}${why}`;
}

/** "3 files (3.0 MB)" */
export function filesAndSize(t: TransferJson): string {
  return `${t.files === 1 ? "1 file" : `${t.files} files`} (${formatBytes(t.bytes)})`;
}
