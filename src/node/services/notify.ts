/**
 * Desktop notifications while no web page is open, as IP Messenger and
 * iptux pop up: a message (or a file offer) that comes in is shown on the
 * session bus (node/desktop_bus.ts) when no page holds the event stream
 * open (a page shows its own, and the person is looking at it) and this
 * node is not busy. One notification per conversation, replaced as more
 * come, at most a burst then one every few seconds (node/notify_policy.ts),
 * one `gdbus` at a time. A message its sender deletes or edits
 * (`message-updated`) is taken back: dropped from what waits (or
 * re-worded), and a notification on screen whose newest message it was is
 * replaced without its text, or closed when nothing is left (the policy's
 * {@link NotifyQueue.amend}), page open or not. It never fails the daemon: gdbus missing or not
 * allowed turns it off with one warning; a bus or server that fails is a
 * warning at most every ten minutes, counted in `/status`.
 *
 * @module
 */
import type { DaemonEvent, MessageJson } from "../../api/types.ts";
import { logger } from "../../common/log.ts";
import { OncePer } from "../../common/once_per.ts";
import type { StoredMessage } from "../../storage/stored_message.ts";
import { BusUnavailable, type DesktopBus } from "../desktop_bus.ts";
import { notificationBody, notificationTitle, NotifyQueue, type Pending } from "../notify_policy.ts";
import type { Service, ServiceContext } from "../service.ts";

/** A failing bus is said at most this often. */
const WARN_EVERY_MS = 600_000;

export interface NotifyDeps {
  bus: DesktopBus;
  /** Event streams the web page holds open (not the CLI's): while any is, the page notifies. */
  pagesOpen: () => number;
  /** This node's presence is busy: no notifications. */
  busy: () => boolean;
  /** A stored message as the API shows it (names, file offers and group lines read as a person reads them). */
  messageJson: (m: StoredMessage) => MessageJson;
}

export class NotifyService implements Service {
  readonly name = "notify";
  readonly #deps: NotifyDeps;
  #queue: NotifyQueue | undefined;
  #ctx: ServiceContext | undefined;
  #sending = false;
  #markup: boolean | undefined;
  #off: string | undefined;
  readonly #warned = new OncePer(WARN_EVERY_MS);
  readonly #log = logger("notify");
  readonly counts = { shown: 0, closed: 0, failed: 0, skippedPageOpen: 0, skippedBusy: 0 };

  constructor(deps: NotifyDeps) {
    this.#deps = deps;
  }

  start(ctx: ServiceContext, now: number): void {
    this.#ctx = ctx;
    this.#queue = new NotifyQueue(now);
  }

  onEvent(e: DaemonEvent): void {
    if (e.type !== "message" && e.type !== "message-updated") return;
    if (e.message.direction !== "in" || e.message.copyOf || this.#off || !this.#queue) return;
    if (e.type === "message-updated") return this.#amended(e.message);
    if (this.#deps.pagesOpen() > 0) {
      this.counts.skippedPageOpen++;
      return;
    }
    if (this.#deps.busy()) {
      this.counts.skippedBusy++;
      return;
    }
    const m = this.#deps.messageJson(e.message);
    if (m.group?.change || (m.files && m.files.kind !== "offer")) return; // members' changes, our offers' outcomes
    const title = m.group ? `${m.peer.name} in @${m.group.name}` : m.peer.name;
    this.#queue.push(keyOf(m), title, m.sealed ? "A sealed message" : m.text, m.id);
  }

  /** A message was edited or deleted by its sender: taken back from what waits and what is on screen. */
  #amended(message: StoredMessage): void {
    const m = this.#deps.messageJson(message);
    const text = message.deletedAt !== undefined ? undefined : m.sealed ? "A sealed message" : m.text;
    this.#queue!.amend(keyOf(m), m.id, text);
  }

  pollTimeout(): number | undefined {
    return this.#sending || this.#off ? undefined : this.#queue?.nextDeadline();
  }

  handleTimeout(now: number): void {
    if (this.#sending || this.#off || !this.#queue) return;
    // Opened, or gone busy, since it was queued: the page shows it, or quiet was asked for (a deletion is
    // still taken off the screen).
    if (this.#deps.pagesOpen() > 0 || this.#deps.busy()) this.#queue.clear();
    const p = this.#queue.take(now);
    if (!p) return;
    this.#sending = true;
    void this.#show(p).finally(() => {
      this.#sending = false;
      this.#ctx?.changed();
    });
  }

  /** Shows one notification; never rejects (every failure is caught and said here). */
  async #show(p: Pending): Promise<void> {
    try {
      if (p.count === 0) {
        await this.#deps.bus.close(p.replacesId ?? 0);
        this.counts.closed++;
        return;
      }
      this.#markup ??= (await this.#deps.bus.capabilities()).includes("body-markup");
      const id = await this.#deps.bus.notify({
        replacesId: p.replacesId ?? 0,
        summary: notificationTitle(p.title),
        body: notificationBody(p, this.#markup),
      });
      this.#queue?.shownAs(p.key, id > 0 ? id : 0);
      this.counts.shown++;
    } catch (e) {
      this.counts.failed++;
      const error = (e as Error)?.message ?? String(e);
      if (e instanceof BusUnavailable) {
        this.#off = error;
        this.#queue?.clear();
        this.#log.warn("Desktop notifications are off: {error}", { error });
        return;
      }
      this.#markup = undefined; // another server may answer next time
      const n = this.#warned.hit("fail", performance.now());
      if (n > 0) {
        this.#log.warn("Cannot show a desktop notification ({count}× since the last such line): {error}", {
          count: n,
          error,
        });
      }
    }
  }

  status(): Record<string, unknown> {
    return {
      notifications: {
        enabled: this.#off === undefined,
        ...(this.#off ? { off: this.#off } : {}),
        ...this.counts,
        waiting: this.#queue?.size ?? 0,
        dropped: this.#queue?.dropped ?? 0,
        amended: this.#queue?.amended ?? 0,
      },
    };
  }
}

/** A message's conversation: one notification each. */
function keyOf(m: MessageJson): string {
  return m.group ? `group:${m.group.id}` : m.peer.id;
}
