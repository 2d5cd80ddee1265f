/**
 * Storing and sending, answered: a call that stores something with its
 * errors as HTTP errors (refused 400, not stored 507), and a message sent
 * then waited for, answered 200 delivered, 502 refused, 202 on its way.
 *
 * @module
 */
import { type StoredMessage, StoreError } from "../../storage/store.ts";
import { HttpError, json } from "../request.ts";
import type { Api } from "../api.ts";

/**
 * Runs a call that stores something (a message, a group), its errors as
 * HTTP errors: refused (RangeError) 400, not stored (StoreError) 507, saying
 * what was not.
 */
export async function storing<T>(fn: () => Promise<T> | T, notStored = "nothing was stored or sent"): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof StoreError) throw new HttpError(507, `${e.message}; ${notStored}`);
    if (e instanceof RangeError) throw new HttpError(400, e.message);
    throw e;
  }
}

/**
 * Stores and sends a message (`send`: to a peer, sealed, to a group), then
 * waits up to `waitS` for its delivery: not at all when the peer is known to
 * be offline (it is queued, and says so at once).
 */
export async function sendAndWait(api: Api, send: () => Promise<StoredMessage>, waitS: number, online = true) {
  const stored = await storing(send, "the message was not stored or sent");
  const done = waitS > 0 && online ? await api.waitDelivered(stored.id, waitS * 1000) : undefined;
  return done ?? stored;
}

/**
 * {@link sendAndWait}, answered: 200 delivered, 502 refused, 202 on its way;
 * `online` (a peer's, not a group's) in the answer when given.
 */
export async function sendAndAnswer(api: Api, send: () => Promise<StoredMessage>, waitS: number, online?: boolean) {
  const m = await sendAndWait(api, send, waitS, online ?? true);
  // The status as the API shows it: a group's message adds up its members' copies.
  const out = { ...api.messageJson(m), ...(online === undefined ? {} : { online }) };
  return json(out, out.status === "delivered" ? 200 : out.status === "failed" ? 502 : 202);
}
