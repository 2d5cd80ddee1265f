/**
 * File transfer between lanchat peers (and, with --ipmsg, IP Messenger
 * users), as a service: it owns the transfers' state (files_state.ts) and
 * hands the work to its parts.
 *
 * - offering, and the notes an offer is talked about in: files_offer.ts
 * - serving, the TCP file port (the sender's side): files_serve.ts
 * - fetching and resuming (the receiver's side): files_fetch.ts
 * - a transfer as kept and stored, and what the parts share: files_model.ts
 * - IP Messenger's side, loaded with --ipmsg only: files_ipmsg.ts
 * - pictures (a file served to the page, auto-accept): files_media.ts, files_images.ts
 *
 * @module
 */
import type { DaemonEvent, TransferJson } from "../../api/types.ts";
import { finished, parseNote } from "../../protocol/files.ts";
import type { Service, ServiceContext } from "../service.ts";
import type { MetricsWriter } from "../metrics.ts";
import { type Refusal, REFUSAL_HELP } from "./file_admission.ts";
import { type FileCounters, FileError, type FilesDeps, hashFile, type Transfer, transferKey } from "./files_model.ts";
import { FilesState } from "./files_state.ts";
import { Offers } from "./files_offer.ts";
import { FileServer, MAX_SERVED_CONNECTIONS } from "./files_serve.ts";
import { Fetches, MAX_ACTIVE_FETCHES, MAX_FRUITLESS_TRIES } from "./files_fetch.ts";
import { Media } from "./files_media.ts";
import type { ServedFile } from "../../api/api.ts";
import type { AutoAcceptImages } from "../../protocol/media_type.ts";

export { FileError, type FilesDeps, hashFile, MAX_ACTIVE_FETCHES, MAX_FRUITLESS_TRIES, MAX_SERVED_CONNECTIONS };

export class FilesService implements Service {
  readonly name = "files";
  #s: FilesState;
  #offers: Offers;
  #server: FileServer;
  #fetches: Fetches;
  #media: Media;
  counters: FileCounters;

  constructor(deps: FilesDeps) {
    this.#s = new FilesState(deps, (id, dir) => this.accept(id, dir));
    this.counters = this.#s.counters;
    this.#media = new Media(this.#s);
    this.#offers = new Offers(this.#s, (t, encrypted) => this.#media.autoAccepts(t, encrypted));
    this.#server = new FileServer(this.#s);
    this.#fetches = new Fetches(this.#s);
  }

  async #loadIpmsg(): Promise<void> {
    const { IpmsgFiles } = await import("./files_ipmsg.ts");
    this.#s.ipmsg = new IpmsgFiles(this.#s);
  }

  static key(direction: string, id: string): string {
    return transferKey(direction, id);
  }

  async start(ctx: ServiceContext): Promise<void> {
    this.#s.ctx = ctx;
    if (this.#s.d.ipmsg) await this.#loadIpmsg();
    this.#s.load();
    this.#media.load(this.#s.d.options.autoAcceptImages);
    this.#server.start();
    this.#s.ipmsg?.reattach();
    await this.#fetches.resume();
  }

  // ---- the API ----

  list(): TransferJson[] {
    return this.#s.list();
  }

  /** A transfer by id (or id prefix of at least 4 characters); outgoing first when both exist. */
  find(id: string): Transfer {
    return this.#s.find(id);
  }

  get(id: string): TransferJson {
    return this.json(this.find(id));
  }

  json(t: Transfer): TransferJson {
    return this.#s.json(t);
  }

  /** See {@link Offers.offerUpload}. */
  offerUpload(to: string, name: string, size: number, body: ReadableStream<Uint8Array>): Promise<TransferJson> {
    return this.#offers.offerUpload(to, name, size, body);
  }

  /** See {@link Offers.offer}. */
  offer(to: string, paths: string[]): Promise<TransferJson> {
    return this.#offers.offer(to, paths);
  }

  /** See {@link Offers.offerToEach}. */
  offerToEach(members: string[], paths: string[]): Promise<(TransferJson | FileError)[]> {
    return this.#offers.offerToEach(members, paths);
  }

  /** See {@link Offers.offerUploadToEach}. */
  offerUploadToEach(
    members: string[],
    name: string,
    size: number,
    body: ReadableStream<Uint8Array>,
  ): Promise<(TransferJson | FileError)[]> {
    return this.#offers.offerUploadToEach(members, name, size, body);
  }

  /** Accepts an incoming offer; its files go to `dir` (default: the downloads folder). */
  accept(id: string, dir?: string): TransferJson {
    return this.#fetches.accept(id, dir);
  }

  /** See {@link Media.open}. */
  openFile(id: string, n: number): Promise<ServedFile> {
    return this.#media.open(id, n);
  }

  get autoAcceptImages(): AutoAcceptImages {
    return this.#media.autoAcceptImages;
  }

  /** Changes and keeps the auto-accept-images setting. */
  setAutoAcceptImages(v: AutoAcceptImages): AutoAcceptImages {
    return this.#media.setAutoAcceptImages(v);
  }

  refuse(id: string): TransferJson {
    const t = this.find(id);
    if (t.direction !== "in") throw new FileError(`Transfer ${t.id} is one this node offered: cancel it instead`, 409);
    if (finished(t.state)) throw new FileError(`Transfer ${t.id} is already ${t.state}`, 409);
    this.#s.stopFetch(t);
    if (t.ipmsg) this.#s.d.ipmsg?.release(t.peer, t.ipmsg.packetNo);
    this.#s.end(t, "refused");
    if (!t.ipmsg) void this.#s.note(t, { kind: "refused", offer: t.id });
    return this.json(t);
  }

  cancel(id: string): TransferJson {
    const t = this.find(id);
    if (finished(t.state)) throw new FileError(`Transfer ${t.id} is already ${t.state}`, 409);
    this.#s.stopFetch(t);
    if (t.ipmsg) this.#s.d.ipmsg?.release(t.peer, t.ipmsg.packetNo);
    this.#s.end(t, "cancelled");
    if (!t.ipmsg) void this.#s.note(t, { kind: "cancelled", offer: t.id });
    if (t.direction === "out") this.#server.closeOffer(t.id);
    return this.json(t);
  }

  // ---- the bus ----

  onEvent(event: DaemonEvent, now: number): void {
    if (event.type === "ipmsg-files") {
      return this.#s.ipmsg?.onOffer(event.peer.id, event.packetNo, event.files, event.messageId);
    }
    if (event.type === "ipmsg-released") {
      for (const t of this.#s.transfers.values()) {
        if (
          t.direction === "out" && t.peer === event.peerId && t.ipmsg?.packetNo === event.packetNo &&
          !finished(t.state)
        ) this.#s.end(t, "refused", `refused by ${this.#s.d.peerName(t.peer)}`);
      }
      return;
    }
    if (event.type === "message" && event.message.direction === "in") {
      const note = parseNote(event.message.text);
      if (note) this.#offers.onNote(event.message.peer, note, now, event.message.encrypted === true);
    } else if (event.type === "delivered" || event.type === "failed") {
      this.#offers.onOfferMessage(event);
    } else if (event.type === "joined" || event.type === "restarted") {
      // A sender came back: try its transfers now rather than at the end of the back-off.
      this.#fetches.senderBack(event.peer.id);
    }
  }

  drainEvents(): readonly DaemonEvent[] {
    return this.#s.drainEvents();
  }

  shutdown(): void {
    this.#s.stopped = true;
    this.#server.shutdown();
    for (const t of this.#s.transfers.values()) {
      clearTimeout(t.retryTimer);
      t.abort?.abort();
    }
  }

  status(): Record<string, unknown> {
    let active = 0;
    let waiting = 0;
    for (const t of this.#s.transfers.values()) {
      if (t.state === "active") active++;
      else if (t.state === "waiting" || t.state === "offered" || t.state === "paused") waiting++;
    }
    return {
      files: {
        ...this.counters,
        connectionsRefused: { ...this.#server.admission.refused },
        active,
        waiting,
        port: this.#server.listening ? this.#s.d.port : null,
      },
    };
  }

  metrics(m: MetricsWriter): void {
    const rows = [
      ["bytesReceived", "lanchat_file_bytes_received_total", "File bytes received and written."],
      ["bytesServed", "lanchat_file_bytes_served_total", "File bytes sent to peers."],
      ["filesReceived", "lanchat_files_received_total", "Files received and verified."],
      ["corrupted", "lanchat_files_corrupted_total", "Files whose SHA-256 did not match (fetched again)."],
      [
        "refusedFetches",
        "lanchat_file_fetches_refused_total",
        "Fetches refused (not offered, not to that peer, expired).",
      ],
    ] as const;
    for (const [key, name, help] of rows) m.single(name, "counter", help, this.counters[key]);
    const refused = this.#server.admission.refused;
    m.metric(
      "lanchat_file_connections_refused_total",
      "counter",
      "File-port connections refused or cut before they authenticated, by reason: " +
        Object.entries(REFUSAL_HELP).map(([k, v]) => `${k}: ${v}`).join("; ") + ".",
      (Object.keys(refused) as Refusal[]).map((k) => [`{reason="${k}"}`, refused[k]]),
    );
  }
}
