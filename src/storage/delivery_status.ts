/**
 * Delivery status of outgoing messages (sent, delivered, failed), written
 * behind: kept in memory and written in one transaction per
 * {@link DeliveryStatus.flush}, which every commit and every read of messages
 * runs first (through Connection.flush).
 *
 * @module
 */
import type { Connection } from "./connection.ts";

/** The delivery-status room of the store. */
export class DeliveryStatus {
  readonly #c: Connection;

  constructor(c: Connection) {
    this.#c = c;
  }

  /**
   * Status updates of outgoing messages (sent, delivered, failed) are written
   * behind, in one transaction per {@link flush}: losing the last few in a
   * crash costs nothing but a re-send, which the receiver recognises as a
   * duplicate. Every read flushes first.
   */
  #deferred = new Map<
    string,
    { status: "sent" | "delivered" | "failed"; at?: number; rttMs?: number; error?: string; encrypted?: boolean }
  >();

  /** Marks an outgoing message transmitted at least once (written behind). */
  markSent(id: string): void {
    if (!this.#deferred.has(id)) this.#deferred.set(id, { status: "sent" });
  }

  /** Marks an outgoing message acknowledged by its peer (written behind). */
  markDelivered(id: string, at: number, rttMs: number, encrypted?: boolean): void {
    this.#deferred.set(id, { status: "delivered", at, rttMs, encrypted });
  }

  /** Marks an outgoing message as refused for good by its peer (written behind). */
  markFailed(id: string, error: string): void {
    this.#deferred.set(id, { status: "failed", error });
  }

  /** Writes the status updates made since the last flush, in one transaction. */
  flush(): void {
    // A damaged database takes no writes: the updates wait in memory (a re-send fixes them after a restart).
    if (this.#deferred.size === 0 || this.#c.damaged) return;
    const updates = [...this.#deferred];
    this.#c.transaction("record delivery status", () => {
      for (const [id, u] of updates) {
        if (u.status === "sent") {
          this.#c.q("UPDATE messages SET status = 'sent' WHERE id = ? AND status = 'queued'").run(id);
        } else if (u.status === "delivered") {
          this.#c.q(
            `UPDATE messages SET status = 'delivered', delivered_at = ?, rtt_ms = ?, encrypted = coalesce(?, encrypted)
             WHERE id = ? AND direction = 'out'`,
          ).run(u.at!, u.rttMs!, u.encrypted === undefined ? null : u.encrypted ? 1 : 0, id);
        } else {
          this.#c.q("UPDATE messages SET status = 'failed', error = ? WHERE id = ? AND direction = 'out'").run(
            u.error!,
            id,
          );
        }
      }
    });
    for (const [id] of updates) this.#deferred.delete(id);
  }
}
