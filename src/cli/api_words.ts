/**
 * The daemon's errors in the CLI's words. The HTTP API speaks to programs
 * (`Field "id" must be…`, `Body is 2000022 bytes; the limit is 131072`,
 * `(see GET /groups)`); a person at the `lanchat` command gets a sentence
 * about what they typed, and what to type instead. The error is told apart
 * by the answer's `code` (and status); an error without one is shown with
 * its HTTP words rewritten. With `--json` the API's error is printed as it
 * came.
 *
 * @module
 */
import type { GroupJson } from "../api/types.ts";
import { printableLine } from "../common/printable.ts";
import type { ApiError } from "./client.ts";
import { EXIT, shellWord } from "./options.ts";
import { shownName } from "./marks.ts";

/** A peer as a 404/409 lists it. */
interface PeerCandidate {
  name: string;
  hostname?: string;
  id: string;
  online: boolean;
  trust?: string;
}

/** A size as a person reads it: `512 bytes`, `64 KiB`, `1.9 MiB`. */
export function sizeWords(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  const [n, unit] = bytes < 1024 ** 2 ? [bytes / 1024, "KiB"] : [bytes / 1024 ** 2, "MiB"];
  return `${Number.isInteger(n) ? n : n.toFixed(1)} ${unit}`;
}

/** What the CLI calls a field of the API's bodies: the argument or flag the user typed. */
const FIELD_WORDS: Record<string, string> = {
  to: "PEER",
  peer: "PEER",
  text: "TEXT",
  members: "the PEERs",
  name: "the group's NAME",
  new: "--new",
  replyTo: "--reply",
  id: "ID",
  dir: "--to DIR",
  paths: "PATH",
  presence: "the presence",
  note: "NOTE",
  upTo: "the cursor",
  sealed: "--sealed",
};

/** "alice, bob (offline), you" */
export function memberWords(g: GroupJson): string {
  return g.members.map((m) => m.self ? "you" : `${shownName(m.name)}${m.online ? "" : " (offline)"}`).join(", ");
}

/** "with alice, bob (offline)": the members but you. */
function withWords(g: GroupJson): string {
  const others = { ...g, members: g.members.filter((m) => !m.self) };
  return others.members.length ? `with ${memberWords(others)}` : "no one else";
}

/** The first argument after the command, when it is `command` (send's PEER, for a hint). */
function argAfter(args: readonly string[], command: string): string | undefined {
  const i = args.indexOf(command);
  return i >= 0 ? args.slice(i + 1).find((a) => !a.startsWith("-")) : undefined;
}

/**
 * An API error as the CLI tells it: the lines to print on stderr (each
 * already made printable) and the exit code (2 when what was typed is
 * wrong whatever the daemon holds: an empty or too long text, a bad
 * field; 1 otherwise). `args` are the command line, for the hints.
 */
export function apiErrorWords(e: ApiError, args: readonly string[]): { lines: string[]; code: number } {
  const b = e.body;
  const code = typeof b.code === "string" ? b.code : undefined;
  const peer = argAfter(args, "send") ?? argAfter(args, "chat") ?? "PEER";
  const asFile = `send it as a file: lanchat send-file ${shellWord(peer)} FILE`;
  switch (code) {
    case "unknown_peer":
    case "ambiguous_peer":
    case "name_conflict":
      return { lines: peerLines(e), code: EXIT.error };
    case "unknown_group": {
      const q = (/"(.*)"/.exec(e.message)?.[1] ?? "").replace(/^@/, "");
      return {
        lines: [`No group is named @${printableLine(q)} ("lanchat group list" shows yours; --all also those you left)`],
        code: EXIT.error,
      };
    }
    case "ambiguous_group": {
      const groups = (b.candidates ?? []) as GroupJson[];
      const name = groups[0] ? `@${printableLine(groups[0].name)}` : "That name";
      return {
        lines: [
          `${name} names ${groups.length} groups; say which by its id:`,
          ...groups.slice(0, 20).map((g) =>
            `  @${printableLine(g.name)}  ${g.id.slice(0, 12)}  ${withWords(g)}${g.left ? " (you left)" : ""}`
          ),
          ...(groups[0] ? [`e.g. @id:${groups[0].id.slice(0, 8)} for the first`] : []),
        ],
        code: EXIT.error,
      };
    }
    case "group_name_taken": {
      const g = b.group as GroupJson | undefined;
      const name = g ? `@${printableLine(g.name)}` : "a group of that name";
      const which = g ? ` (${g.id.slice(0, 8)}, ${withWords(g)})` : "";
      const ref = g ? printableLine(shellWord(`@${g.name}`)) : "@NAME";
      return {
        lines: [
          `You are already in ${name}${which}: write to it with "lanchat send ${ref} TEXT", add people with ` +
          `"lanchat group add ${ref} PEER...", or choose another name (--new makes a second one, then named by its id)`,
        ],
        code: EXIT.error,
      };
    }
    case "text_empty":
      return { lines: ["The message is empty: nothing to send"], code: EXIT.usage };
    case "text_nul":
      return {
        lines: [
          `The message holds a NUL byte (0x00) at byte ${
            Number(b.at)
          }: a message cannot; remove it, e.g. tr -d '\\000'`,
        ],
        code: EXIT.usage,
      };
    case "text_too_large":
      return {
        lines: [`The message is ${sizeWords(Number(b.size))}; the limit is ${sizeWords(Number(b.limit))}: ${asFile}`],
        code: EXIT.usage,
      };
    case "body_too_large": {
      const size = typeof b.size === "number" ? `is ${sizeWords(b.size)}` : "is too large";
      const hint = args.includes("send") || args.includes("broadcast") ? `: ${asFile}` : "";
      return {
        lines: [`What you gave ${size}; the daemon takes at most ${sizeWords(Number(b.limit))} in one request${hint}`],
        code: EXIT.usage,
      };
    }
    case "bad_group_name":
      return { lines: [printableLine(e.message)], code: EXIT.usage };
    case "text_reserved":
      return { lines: [fieldWords(e.message)], code: EXIT.usage };
    case "bad_field": {
      const field = typeof b.field === "string" ? b.field : "";
      return { lines: [fieldWords(e.message, field)], code: EXIT.usage };
    }
  }
  return { lines: [fieldWords(e.message)], code: EXIT.error };
}

/**
 * An API message with its HTTP words put as the CLI's: `Field "x" must…`
 * → `PEER must…`, no `(see GET /groups)`, no query parameters.
 */
export function fieldWords(message: string, field?: string): string {
  let s = message.replace(/\s*\(see (GET|POST|PUT) \/[^)]*\)/g, "");
  s = s.replace(
    /^(?:messages\[(\d+)\]: )?Field "([^"]+)"/,
    (_m, i: string | undefined, f: string) =>
      `${i === undefined ? "" : `message ${Number(i) + 1}: `}${FIELD_WORDS[f] ?? f}`,
  );
  if (field && FIELD_WORDS[field] && !s.startsWith(FIELD_WORDS[field]!)) s = `${FIELD_WORDS[field]}: ${s}`;
  s = s.replace(/^Query parameter q is required: the text to look for$/, "Say what to look for: the text is empty");
  s = s.replace(/\bof GET \/transfers\/ID\b/g, 'that "lanchat transfers" shows');
  s = s.replace(/\(see GET \/transfers\)/g, '("lanchat transfers" shows them)');
  s = s.replace(/\bwith POST \/files\b/g, 'with "lanchat send-file"');
  // A sentence that now starts with a word of ours starts with a capital; one that starts with a peer's name is left.
  const ours = /^(?:messages\[\d+\]: )?Field "/.test(message);
  return printableLine(ours ? s.charAt(0).toUpperCase() + s.slice(1) : s);
}

/** A peer that is unknown, ambiguous or claimed by two keys: the sentence, then the peers to choose from. */
function peerLines(e: ApiError): string[] {
  const lines = [printableLine(e.message)];
  const candidates = e.body.candidates as PeerCandidate[] | undefined;
  if (!candidates?.length) return lines;
  lines.push(e.status === 409 ? "Matching peers:" : "Known peers:");
  for (const c of candidates.slice(0, 20)) {
    const trust = c.trust ? `  key ${c.trust}` : "";
    // The host too: "bob" on host2 and a peer named "bob@host2" elsewhere are told apart by it.
    const host = c.hostname ? ` on ${printableLine(c.hostname)}` : "";
    lines.push(
      `  ${printableLine(c.name)}${host}  ${c.id.slice(0, 12)}  ${c.online ? "online" : "offline"}${trust}`,
    );
  }
  // `id:HEX` always means an id (no name can take it), as NAME@HOST a name on one host.
  if (e.status === 409) lines.push(`Name one by NAME@HOST or its id, e.g. ${idSuggestion(candidates)}`);
  return lines;
}

/** What to type for the first candidate: `bob@host2` when that names it alone, and always `id:68c2bbcb`. */
function idSuggestion(candidates: PeerCandidate[]): string {
  const c = candidates[0]!;
  const id = `id:${c.id.slice(0, 8)}`;
  const host = c.hostname?.toLowerCase();
  const alone = host && !/[\s@]/.test(c.hostname! + c.name) &&
    candidates.filter((o) => o.name === c.name && o.hostname?.toLowerCase() === host).length === 1;
  return alone ? `${printableLine(shellWord(`${c.name}@${c.hostname}`))} or ${id}` : id;
}
