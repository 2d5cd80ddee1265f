/**
 * The transfers of the file offers a command shows (`inbox`, `chat`): read
 * from the daemon once for a page that holds offers, kept up to date by the
 * transfer events of a command that follows them.
 *
 * @module
 */
import type { MessageJson, TransferJson } from "../api/types.ts";
import { ApiError, getJson } from "./client.ts";
import { offerHint } from "./marks.ts";

export class OfferTransfers {
  #base: string;
  /** By id; undefined until read (or when the daemon does not transfer files). */
  #byId: Map<string, TransferJson> | undefined;
  /** IP Messenger offers, by the message they came with. */
  #byMessage = new Map<string, TransferJson>();
  /** Offers up to this cursor had their transfer made when the list was read: one missing is gone. */
  #readUpTo = 0;

  constructor(base: string) {
    this.#base = base;
  }

  /**
   * Reads the daemon's transfers when `page` holds an offer, or a message
   * that may have come with files (IP Messenger's, which go in the clear).
   */
  async load(page: MessageJson[]): Promise<void> {
    const offers = page.filter((m) => m.files?.kind === "offer");
    if (offers.length === 0 && !page.some((m) => m.direction === "in" && m.encrypted === false)) return;
    try {
      const list = await getJson<TransferJson[]>(this.#base, "/transfers");
      this.#byId = new Map(list.map((t) => [t.id, t]));
      this.#byMessage = new Map(list.filter((t) => t.direction === "in" && t.message).map((t) => [t.message!, t]));
      this.#readUpTo = Math.max(this.#readUpTo, ...offers.map((m) => m.cursor));
    } catch (e) {
      // A daemon without file transfer (501): the offers are shown with their id and the hint alone.
      if (!(e instanceof ApiError)) throw e;
    }
  }

  /** A transfer event: what it says is kept (only once the list was read: else it would look complete). */
  update(t: TransferJson): void {
    if (!this.#byId || typeof t?.id !== "string") return;
    this.#byId.set(t.id, t);
    if (t.direction === "in" && t.message) this.#byMessage.set(t.message, t);
  }

  /**
   * The transfer of an offer: its own (a peer may put any id in its offer:
   * one of another peer, or of the other way, is not this one's), null when
   * the daemon had the list and not it, undefined when not known.
   */
  of(m: MessageJson): TransferJson | null | undefined {
    if (!this.#byId) return undefined;
    if (m.files?.kind !== "offer") {
      const t = m.direction === "in" ? this.#byMessage.get(m.id) : undefined;
      return t && t.peer.id === m.peer.id ? t : undefined;
    }
    const t = this.#byId.get(m.files.offer);
    if (t && t.direction === m.direction && t.peer.id === m.peer.id) return t;
    return m.cursor <= this.#readUpTo ? null : undefined;
  }

  /** What the offer's line adds ("" for a message that is not an offer). */
  hint(m: MessageJson): string {
    return offerHint(m, this.of(m));
  }
}
