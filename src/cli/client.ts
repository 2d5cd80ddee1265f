/**
 * How CLI commands talk to a running daemon: its HTTP endpoint, found by
 * `--http`, else `LANCHAT_HTTP`, else 127.0.0.1:47476; with the bearer token
 * in `LANCHAT_HTTP_TOKEN`, else the one in the default data directory (the
 * daemon writes it there when it listens beyond loopback), if readable.
 *
 * @module
 */
import { createParser } from "eventsource-parser";
import type { MessageJson } from "../api/types.ts";
import { DEFAULT_HTTP } from "../node/options.ts";
import { defaultDataDir, HTTP_TOKEN_FILE } from "../common/data_dir.ts";
import { printable, printableLine } from "../common/printable.ts";
import { parseDaemonAddress, UsageError } from "./options.ts";
import { listenerUids } from "./port_owner.ts";
import stringWidth from "string-width";
import { marksTail, shownGroup, shownName, stateMark } from "./marks.ts";

/** Raised when no daemon answers; the CLI exits with code 3. */
export class NoDaemonError extends Error {
  override name = "NoDaemonError";
}

/**
 * The base URL of the daemon to talk to: `--http` (already checked by its
 * parser), else `$LANCHAT_HTTP` (a {@link UsageError} when malformed), else
 * the default.
 */
export function daemonUrl(flag: string | undefined): string {
  if (flag) return flag;
  const env = Deno.env.get("LANCHAT_HTTP");
  if (env === undefined || env.trim() === "") return `http://${DEFAULT_HTTP.hostname}:${DEFAULT_HTTP.port}`;
  try {
    return parseDaemonAddress(env);
  } catch (e) {
    throw new UsageError(`LANCHAT_HTTP: ${(e as Error).message}`);
  }
}

let cachedToken: { token: string; owner: number | null } | null | undefined;

/**
 * The bearer token to send, if any. The token file of this host's daemon is
 * only ever sent to this host (loopback), never to a daemon elsewhere, and
 * only to a port on which every listening socket belongs to the token
 * file's owner: another user who binds the port while the daemon is down
 * (before it starts, during a restart) must not be handed the token
 * ({@link NotOwnDaemonError}). A token given in `LANCHAT_HTTP_TOKEN` is
 * sent as it is: the user chose where.
 */
function httpToken(base: string): string | null {
  const env = Deno.env.get("LANCHAT_HTTP_TOKEN")?.trim();
  if (env) return env;
  const m = /^https?:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(?::(\d+))?$/.exec(base);
  if (!m) return null;
  if (cachedToken === undefined) {
    cachedToken = null;
    try {
      const file = `${defaultDataDir((n) => Deno.env.get(n))}/${HTTP_TOKEN_FILE}`;
      const token = Deno.readTextFileSync(file).trim();
      if (token) cachedToken = { token, owner: Deno.statSync(file).uid };
    } catch { /* none: another user's daemon, or the user sets LANCHAT_HTTP_TOKEN */ }
  }
  if (!cachedToken) return null;
  const port = Number(m[2] ?? (base.startsWith("https") ? 443 : 80));
  const uids = listenerUids(port);
  const strangers = uids?.filter((u) => u !== cachedToken!.owner) ?? [];
  if (strangers.length > 0) {
    throw new NotOwnDaemonError(
      `${base.replace(/^https?:\/\//, "")} is listened on by another user (uid ${strangers[0]}), not by your lanchat ` +
        `daemon: your token was not sent. Start your daemon ("lanchat daemon"), or point --http or LANCHAT_HTTP at it.`,
    );
  }
  return cachedToken.token;
}

/** Raised when the loopback port the CLI would talk to is another user's: the CLI exits with code 3. */
export class NotOwnDaemonError extends NoDaemonError {
  override name = "NotOwnDaemonError";
}

/** Raised when the daemon answers with an error; carries its status and JSON body. */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(readonly status: number, message: string, readonly body: Record<string, unknown>) {
    super(message);
  }
}

/** GETs a JSON document from the daemon. */
export async function getJson<T>(base: string, path: string): Promise<T> {
  return (await request<T>(base, path)).body;
}

/**
 * Sends a request to the daemon; resolves with the status and JSON body of a
 * 2xx answer, throws {@link ApiError} for any other, {@link NoDaemonError} when
 * nothing answers.
 */
export async function request<T>(
  base: string,
  path: string,
  init: { method?: string; body?: unknown; timeoutMs?: number } = {},
): Promise<{ status: number; body: T }> {
  const res = await connect(base, path, {
    method: init.method ?? "GET",
    headers: init.body === undefined ? {} : { "content-type": "application/json" },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    signal: AbortSignal.timeout(init.timeoutMs ?? 5000),
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`Daemon at ${base} sent invalid JSON for ${path} (status ${res.status})`);
  }
  if (!res.ok) {
    const b = (body ?? {}) as Record<string, unknown>;
    throw new ApiError(res.status, String(b.error ?? `status ${res.status}`), b);
  }
  return { status: res.status, body: body as T };
}

async function connect(base: string, path: string, init: RequestInit): Promise<Response> {
  const token = httpToken(base);
  const headers = new Headers(init.headers);
  if (token) headers.set("authorization", `Bearer ${token}`);
  try {
    return await fetch(`${base}${path}`, { ...init, headers });
  } catch (e) {
    const detail = `${e} ${(e as Error).cause ?? ""}`;
    // In words: not Deno's "TypeError: Fetch failed: …" (a blocked port, a reset, a name that does not resolve).
    const why = /refused/i.test(detail)
      ? "connection refused"
      : (e as Error).name === "TimeoutError"
      ? "no answer in time"
      : /port \d+ (are|is) blocked/i.test(detail)
      ? `port ${new URL(base).port || "80"} is one a web client may not use; the daemon's port is 47476 unless set`
      : /dns|lookup|resolve/i.test(detail)
      ? `the name ${new URL(base).hostname} does not resolve`
      : /reset/i.test(detail)
      ? "the connection was reset"
      : "cannot connect";
    throw new NoDaemonError(
      `No lanchat daemon answers at ${base} (${why}). Start one with "lanchat daemon", or point --http or LANCHAT_HTTP at a running one.`,
    );
  }
}

/**
 * Follows the daemon's event stream, calling `onEvent` for each event, until
 * `signal` aborts or the daemon goes away (then it throws NoDaemonError).
 * Resolves once the stream is open via `onOpen`.
 */
export async function followEvents(
  base: string,
  onEvent: (type: string, data: unknown) => void,
  options: { signal?: AbortSignal; onOpen?: () => void } = {},
): Promise<void> {
  const res = await connect(base, "/events", { signal: options.signal });
  if (!res.ok || !res.body) throw new ApiError(res.status, `Cannot follow events: status ${res.status}`, {});
  options.onOpen?.();
  const parser = createParser({
    onEvent: (e) => {
      let data: unknown = e.data;
      try {
        data = JSON.parse(e.data);
      } catch { /* keep the text */ }
      onEvent(e.event ?? "message", data);
    },
  });
  try {
    for await (const chunk of res.body.pipeThrough(new TextDecoderStream())) parser.feed(chunk);
  } catch (e) {
    if (options.signal?.aborted) return;
    throw e;
  }
  if (!options.signal?.aborted) throw new NoDaemonError(`The daemon at ${base} closed the event stream (stopped?)`);
}

/**
 * Follows the daemon's events like {@link followEvents}, and when the daemon
 * goes away (a restart), keeps trying to reconnect (every 0.5 s, backing off
 * to 5 s) until `signal` aborts. `onOpen` is called on every (re)connect,
 * before any event of that connection: the place to fetch what was missed
 * meanwhile. `onLost` is called once each time the connection drops. No
 * daemon on the first try throws, as {@link followEvents} does.
 */
export async function followEventsForever(
  base: string,
  onEvent: (type: string, data: unknown) => void,
  options: { signal: AbortSignal; onOpen: (reconnect: boolean) => Promise<void> | void; onLost?: () => void },
): Promise<void> {
  let reconnect = false;
  let delay = 500;
  while (!options.signal.aborted) {
    // Events that arrive while onOpen fetches history wait for it, in order.
    let queue: [string, unknown][] | undefined = [];
    let opened = false;
    try {
      await followEvents(base, (type, data) => queue ? queue.push([type, data]) : onEvent(type, data), {
        signal: options.signal,
        onOpen: () => {
          opened = true;
          delay = 500;
          const flush = () => {
            for (const [t, d] of queue ?? []) onEvent(t, d);
            queue = undefined;
          };
          // A failed onOpen (the daemon went away meanwhile) still lets the queued events through: the stream
          // ends too, and the next connection calls onOpen again.
          Promise.resolve(options.onOpen(reconnect)).then(flush, flush).catch((e) => {
            console.error(`lanchat: ${(e as Error).message}`);
          });
        },
      });
    } catch (e) {
      // No daemon at all at the start is the caller's error (exit 3); later it is a restart.
      if (!reconnect && !opened) throw e;
      if (!(e instanceof NoDaemonError) && !(e instanceof TypeError) && !(e instanceof ApiError)) throw e;
    }
    if (options.signal.aborted) return;
    if (opened) options.onLost?.();
    reconnect = true;
    await new Promise<void>((r) => {
      const t = setTimeout(r, delay);
      options.signal.addEventListener("abort", () => {
        clearTimeout(t);
        r();
      }, { once: true });
    });
    delay = Math.min(5000, delay * 2);
  }
}

/** One line for a message: time, who, text, and markers. */
export function formatMessage(m: MessageJson): string {
  const t = new Date(m.direction === "in" ? m.receivedAt ?? m.sentAt : m.sentAt);
  const hhmmss = t.toTimeString().slice(0, 8);
  const date = t.toISOString().slice(0, 10);
  // Yours: how far it has come (✓ delivered, ✓✓ read, ! failed, or in words), first.
  const { symbol, words: marks } = stateMark(m);
  if (m.late) marks.push("late");
  // Everything a peer supplies is printed with its control characters shown, not obeyed.
  // A name that could pass for "you" (or the CLI's words) is quoted: your lines alone start with `you`.
  const name = shownName(m.peer.name);
  const gap = m.gapBefore ? `  … ${m.gapBefore} message${m.gapBefore > 1 ? "s" : ""} from ${name} missing …\n` : "";
  const who = m.group
    ? `[${shownGroup(m.group.name)}] ${m.direction === "in" ? name : "you"}`
    : m.direction === "in"
    ? name
    : `you → ${name}`;
  if (m.sealed) marks.push(m.direction === "in" && m.sealed.opened ? "sealed, opened" : "sealed");
  if (m.editedAt !== undefined && m.deletedAt === undefined) marks.push("edited");
  const safe = replyLine(m) + messageText(m);
  const text = safe.includes("\n") ? safe.replaceAll("\n", "\n    ") : safe;
  return `${gap}${date} ${hhmmss}  ${who}: ${text}${marksTail(symbol, marks)}`;
}

/** A message's text in a conversation (chat): what it answers, its text, `(edited)`. */
export function messageBody(m: MessageJson): string {
  const edited = m.editedAt !== undefined && m.deletedAt === undefined ? "  (edited)" : "";
  // Its later lines indented, as inbox does: no line of a text starts where a name or a note of the CLI does.
  return (replyLine(m) + messageText(m)).replaceAll("\n", "\n    ") + edited;
}

/** A line saying a message was edited or deleted, as `message-updated` tells it (chat, inbox --follow). */
export function updateLine(m: MessageJson): string {
  const who = m.direction === "in" ? shownName(m.peer.name) : "you";
  if (m.deletedAt !== undefined) return `(${who} deleted a message: ${m.id.slice(0, 12)})`;
  return `(${who} edited ${m.id.slice(0, 12)}): ${messageText(m)}`;
}

/** Longest part of a quoted message a terminal line shows, in characters. */
const QUOTE_SHOWN = 60;

/**
 * What a reply answers, as a terminal shows it before its text: the quoted
 * message's first line, cut short (`(re: “…”) `), or a note that it is not
 * here; "" for a message that is not a reply.
 */
export function replyLine(m: MessageJson): string {
  if (!m.replyTo) return "";
  if (!m.quote) return `(re: a message not here, ${m.replyTo.slice(0, 12)}) `;
  if (m.quote.deleted) return "(re: a deleted message) ";
  const first = [...(m.quote.text.split("\n")[0] ?? "")];
  const cut = first.length > QUOTE_SHOWN ? first.slice(0, QUOTE_SHOWN - 1).join("") + "…" : first.join("");
  return `(re: “${printableLine(cut)}”) `;
}

/**
 * A message's text as a terminal shows it: control characters shown, not
 * obeyed; a sealed message received and not opened, how to open it; a
 * deleted one, `(deleted)`.
 */
export function messageText(m: MessageJson): string {
  if (m.deletedAt !== undefined) return "(deleted)";
  // A file offer's summary is one line (a file's name may hold a newline).
  if (m.files) return printableLine(m.text);
  return m.sealed && m.direction === "in" && !m.sealed.opened
    ? `(a sealed message: open it with "lanchat open ${m.id.slice(0, 12)}", which tells ${printableLine(m.peer.name)})`
    : printable(m.text);
}

/** "0.4s ago", "3m ago" for an ISO time. */
export function ago(iso: string, now = Date.now()): string {
  const ms = Math.max(0, now - Date.parse(iso));
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s ago`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}m ago`;
  if (ms < 2 * 86_400_000) return `${Math.floor(ms / 3_600_000)}h ago`;
  return `${Math.floor(ms / 86_400_000)}d ago`;
}

/**
 * Lays out rows as left-aligned columns under a header, by display width
 * (a CJK character or an emoji takes two columns), with every cell's
 * control characters shown, not obeyed.
 */
export function table(header: string[], rows: string[][]): string {
  const safe = rows.map((r) => r.map(printableLine));
  const widths = header.map((h, i) => Math.max(stringWidth(h), ...safe.map((r) => stringWidth(r[i] ?? ""))));
  const line = (cells: string[]) =>
    cells.map((c, i) => c + " ".repeat(Math.max(0, widths[i]! - stringWidth(c)))).join("  ").trimEnd();
  return [line(header), ...safe.map(line)].join("\n") + "\n";
}

/**
 * Marks incoming messages read once they are printed: the highest cursor
 * per peer, posted a moment later (a burst is one request), best effort
 * (a daemon that cannot is not an error for the command that printed).
 */
export function readMarker(base: string): { mark(m: MessageJson): void; flush(): Promise<void> } {
  // By conversation: a peer's direct one (its id), or a group's ("@" and its id); each is marked on its own.
  const upTo = new Map<string, number>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = async () => {
    clearTimeout(timer);
    timer = undefined;
    const todo = [...upTo];
    upTo.clear();
    await Promise.all(
      todo.map(([key, cursor]) => {
        const body = key.startsWith("@") ? { group: key.slice(1), upTo: cursor } : { peer: key, upTo: cursor };
        return request(base, "/messages/read", { method: "POST", body }).catch(() => {});
      }),
    );
  };
  return {
    mark(m) {
      if (m.direction !== "in") return;
      const key = m.group ? `@${m.group.id}` : m.peer.id;
      upTo.set(key, Math.max(upTo.get(key) ?? 0, m.cursor));
      timer ??= setTimeout(() => void flush(), 200);
    },
    flush,
  };
}
