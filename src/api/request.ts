/**
 * Reading a request and writing an error, for the API's routes: bodies read
 * under a size limit as UTF-8 and JSON, the common fields checked with
 * messages that say what is wrong, and errors as JSON `{error, status}`
 * (with a `code` where a client words the error itself: `body_too_large`,
 * `text_too_large`, `text_empty` and `text_nul` with its `at`, `bad_field`
 * with its `field`).
 *
 * @module
 */
import { MAX_TEXT_BYTES } from "../wire/mod.ts";
import { MACHINE_LINE } from "../protocol/machine_line.ts";

/** Largest request body accepted. */
export const MAX_BODY_BYTES = 128 * 1024;
/** Longest `?wait=` in seconds. */
export const MAX_WAIT_SECONDS = 60;

/** A failure with an HTTP status, turned into a JSON error body. */
export class HttpError extends Error {
  override name = "HttpError";
  constructor(readonly status: number, message: string, readonly extra: Record<string, unknown> = {}) {
    super(message);
  }
}

export function json(body: unknown, status = 200, headers: HeadersInit = {}): Response {
  return new Response(JSON.stringify(body, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", ...headers },
  });
}

/**
 * A JSON answer holding a long array, made and sent a slice at a time: the
 * same text {@link json} would give for `head` with the array as its last
 * field `key` (or for the bare array, without `head`), without ever holding
 * all of it. `next` gives the following items, or undefined at the end; it
 * is called as the client reads, so a large page costs a slice of memory,
 * not the whole page twice over (as objects and as text).
 */
export function jsonStream(
  next: () => unknown[] | undefined,
  o: { head?: Record<string, unknown>; key?: string; status?: number; headers?: HeadersInit } = {},
): Response {
  const encoder = new TextEncoder();
  // Where the array goes, and how deep its items are indented.
  let open = "";
  let close = "\n";
  let indent = "  ";
  if (o.head && o.key) {
    const whole = JSON.stringify({ ...o.head, [o.key]: [] }, null, 2);
    open = whole.slice(0, -"[]\n}".length);
    close = "\n}\n";
    indent = "    ";
  }
  let items = 0;
  let done = false;
  const body = new ReadableStream<Uint8Array>({
    pull(ctrl) {
      // Each pull enqueues something (an empty batch is skipped), or the stream would wait for nothing.
      while (!done) {
        const batch = next();
        if (batch === undefined) {
          done = true;
          const end = items === 0 ? "[]" : `\n${indent.slice(2)}]`;
          ctrl.enqueue(encoder.encode(`${items === 0 ? open : ""}${end}${close}`));
          ctrl.close();
          return;
        }
        if (batch.length === 0) continue;
        let text = items === 0 ? `${open}[` : "";
        for (const item of batch) {
          text += `${items++ === 0 ? "" : ","}\n${indent}${
            JSON.stringify(item, null, 2).replaceAll("\n", `\n${indent}`)
          }`;
        }
        ctrl.enqueue(encoder.encode(text));
        return;
      }
    },
  }, { highWaterMark: 0 });
  return new Response(body, {
    status: o.status ?? 200,
    headers: {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
      "transfer-encoding": "chunked",
      ...o.headers,
    },
  });
}

/** A JSON error body `{error, status, …extra}`. */
export function jsonError(status: number, message: string, headers: HeadersInit = {}, extra = {}): Response {
  return json({ error: message, status, ...extra }, status, headers);
}

/** Reads a request body of at most `limit` bytes as UTF-8 text. */
export async function readBody(req: Request, limit = MAX_BODY_BYTES): Promise<string> {
  const declared = Number(req.headers.get("content-length") ?? NaN);
  if (declared > limit) {
    throw new HttpError(413, `Body is ${declared} bytes; the limit is ${limit}`, {
      code: "body_too_large",
      size: declared,
      limit,
    });
  }
  if (!req.body) return "";
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of req.body) {
    total += chunk.length;
    if (total > limit) {
      throw new HttpError(413, `Body is over the ${limit}-byte limit`, { code: "body_too_large", limit });
    }
    chunks.push(chunk);
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(all);
  } catch {
    throw new HttpError(400, "Body is not valid UTF-8");
  }
}

export async function readJsonObject(req: Request): Promise<Record<string, unknown>> {
  const text = await readBody(req);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, "Body is not valid JSON");
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new HttpError(400, "Body must be a JSON object");
  }
  return body as Record<string, unknown>;
}

export function parseWait(url: URL): number {
  const raw = url.searchParams.get("wait");
  if (raw === null) return 0;
  const s = Number(raw);
  if (!Number.isFinite(s) || s < 0 || s > MAX_WAIT_SECONDS) {
    throw new HttpError(400, `wait must be a number of seconds from 0 to ${MAX_WAIT_SECONDS}`);
  }
  return s;
}

export function checkText(v: unknown): string {
  if (typeof v !== "string") {
    throw new HttpError(400, 'Field "text" must be a string', { code: "bad_field", field: "text" });
  }
  if (v.trim() === "") throw new HttpError(400, 'Field "text" is empty: nothing to send', { code: "text_empty" });
  const nul = v.indexOf("\0");
  if (nul >= 0) {
    // SQLite hands a text back cut at its first NUL: refused here, not cut without a word (what a peer sends is
    // not refused: its NULs become U+FFFD, see protocol/text_nul.ts).
    const at = new TextEncoder().encode(v.slice(0, nul)).length;
    throw new HttpError(400, `The text holds a NUL character (U+0000) at byte ${at}: a message cannot`, {
      code: "text_nul",
      at,
    });
  }
  if (v.includes(MACHINE_LINE)) {
    throw new HttpError(
      400,
      "Text carries a line lanchat keeps for itself (U+0001 lanchat-…: a file offer, an automatic reply); offer files with POST /files",
      { code: "text_reserved" },
    );
  }
  const bytes = new TextEncoder().encode(v).length;
  if (bytes > MAX_TEXT_BYTES) {
    throw new HttpError(413, `Text is ${bytes} bytes; the limit is ${MAX_TEXT_BYTES} (64 KiB)`, {
      code: "text_too_large",
      size: bytes,
      limit: MAX_TEXT_BYTES,
    });
  }
  return v;
}

export async function peerField(req: Request): Promise<string> {
  const body = await readJsonObject(req);
  if (typeof body.peer !== "string" || body.peer.trim() === "") {
    throw new HttpError(400, 'Field "peer" must name a peer (id, id prefix, name or address)');
  }
  return body.peer;
}
