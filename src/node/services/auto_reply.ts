/**
 * `--away-reply TEXT`: while this node is away, each peer that writes gets
 * the text once per absence, as an automatic reply (never in answer to an
 * automatic reply: see protocol/auto_reply.ts). Busy nodes do not answer.
 *
 * @module
 */
import type { DaemonEvent } from "../../api/types.ts";
import { autoReplyText, isAutoReply } from "../../protocol/auto_reply.ts";
import { logger } from "../../common/log.ts";
import type { Service } from "../service.ts";

export class AutoReplyService implements Service {
  readonly name = "auto-reply";
  #text: string;
  #away: () => number | undefined;
  /** The absence the answered peers belong to. */
  #absence: number | undefined;
  #send: (to: string, text: string) => Promise<unknown>;
  /** Peers answered during this absence. */
  #answered = new Set<string>();
  #log = logger("daemon");

  /** `away`: an id of the current absence (a new one each time), undefined while not away. */
  constructor(
    o: { text: string; away: () => number | undefined; send: (to: string, text: string) => Promise<unknown> },
  ) {
    this.#text = o.text;
    this.#away = o.away;
    this.#send = o.send;
  }

  start(): void {}

  onEvent(event: DaemonEvent): void {
    const absence = this.#away();
    if (absence !== this.#absence) {
      this.#answered.clear();
      this.#absence = absence;
    }
    if (absence === undefined) return;
    if (event.type !== "message" || event.message.direction !== "in") return;
    const m = event.message;
    if (isAutoReply(m.text) || this.#answered.has(m.peer)) return;
    this.#answered.add(m.peer);
    // After the driver's turn, not inside it: sending stores a message and pumps again.
    queueMicrotask(() =>
      this.#send(m.peer, autoReplyText(this.#text)).catch((e) =>
        this.#log.warn("Cannot send the away reply: {error}", { error: (e as Error).message })
      )
    );
  }
}
