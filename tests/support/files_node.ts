/**
 * The file service in this process, without a daemon: a node is a
 * FilesService with its own store, identity and file port on 127.0.0.1, the
 * deps a daemon would give it, and offers carried to the other node as the
 * messaging service would deliver them. The peers' static keys are what
 * their hellos would carry (`keys`: a test sets, drops or forges them), and
 * `route` sends a node's fetches through a proxy. For the file stream's
 * end-to-end tests and its benchmark, before the roster carries `nk`.
 */
import { FilesService } from "../../src/node/services/files.ts";
import { realIo } from "../../src/node/options.ts";
import type { ServiceContext } from "../../src/node/service.ts";
import { loadOrCreateIdentity } from "../../src/security/identity.ts";
import { NodeSigner } from "../../src/security/signing.ts";
import { type StaticIdentity, staticIdentityOf } from "../../src/security/e2e_wire.ts";
import { Store, type StoredMessage } from "../../src/storage/store.ts";
import type { TransferJson } from "../../src/api/types.ts";
import { freeFilePort } from "./file_port.ts";

export interface FilesNodeOptions {
  /** Its data folder (kept across {@link FilesNode.restart}); a new temporary one by default. */
  dir?: string;
  downloads?: string;
  /** False: a previous version, without end-to-end encryption (no static key). Default true. */
  e2e?: boolean;
  requireEncryption?: boolean;
  networkKey?: Uint8Array;
  /** First retry wait (default 200 ms). */
  retryFirstMs?: number;
}

/** A node as another knows it. */
export interface Peer {
  name: string;
  port: number;
  /** Delivers a message's text from `from` (the messaging service's part). */
  receive(from: string, text: string): void;
}

export class FilesNode {
  readonly name: string;
  readonly dir: string;
  readonly downloads: string;
  readonly port: number;
  readonly id: string;
  readonly e2e: StaticIdentity | undefined;
  readonly o: FilesNodeOptions;
  service!: FilesService;
  #store!: Store;
  #stopped = false;
  /** The nodes it knows (its roster): where each serves files, and how a message reaches it. */
  readonly peers = new Map<string, Peer>();
  /** The static key each peer's hello carries (absent: a previous version). */
  readonly keys = new Map<string, Uint8Array>();
  /** Where it connects to reach a peer, when not the peer's own file port (a proxy). */
  readonly route = new Map<string, number>();

  private constructor(name: string, o: FilesNodeOptions, id: string, e2e: StaticIdentity | undefined) {
    this.name = name;
    this.o = o;
    this.dir = o.dir!;
    this.downloads = o.downloads!;
    this.port = freeFilePort();
    this.id = id;
    this.e2e = e2e;
  }

  static async start(name: string, options: FilesNodeOptions = {}): Promise<FilesNode> {
    const o = {
      ...options,
      dir: options.dir ?? Deno.makeTempDirSync({ prefix: `lanchat-fn-${name}-` }),
      downloads: options.downloads ?? Deno.makeTempDirSync({ prefix: `lanchat-fn-dl-${name}-` }),
    };
    const identity = await loadOrCreateIdentity(o.dir);
    const signer = new NodeSigner(identity.pkcs8, identity.publicKey);
    const e2e = o.e2e === false ? undefined : staticIdentityOf(identity.pkcs8, identity.publicKey, signer.sign);
    const node = new FilesNode(name, o, identity.id, e2e);
    await node.#open(identity.publicKey, signer);
    return node;
  }

  async #open(publicKey: Uint8Array, signer: NodeSigner): Promise<void> {
    this.#stopped = false;
    this.#store = await Store.open(this.dir);
    const service: FilesService = new FilesService({
      store: this.#store,
      self: { id: this.id, publicKey },
      signer,
      e2e: this.e2e,
      peerStaticKey: (id) => this.keys.get(id),
      requireEncryption: this.o.requireEncryption,
      networkKey: this.o.networkKey,
      options: {
        downloads: this.downloads,
        accept: "always",
        autoAcceptMaxBytes: 64 * 1024 ** 3,
        keepFreeBytes: 0,
        retryFirstMs: this.o.retryFirstMs ?? 200,
      },
      send: (to, text) => this.#send(to, text),
      addressOf: (peer) => {
        const p = this.peers.get(peer);
        return p && { address: "127.0.0.1", port: this.route.get(peer) ?? p.port };
      },
      knownAddress: () => true,
      isLanchat: () => true,
      trusted: () => false,
      peerName: (peer) => this.peers.get(peer)?.name ?? peer,
      listenTcp: (_hostname, port) => Deno.listen({ transport: "tcp", hostname: "127.0.0.1", port }),
      connectTcp: realIo.connectTcp!,
      port: this.port,
      uploads: `${this.dir}/uploads`,
    });
    this.service = service;
    const ctx: ServiceContext = {
      io: realIo,
      wall: (now) => performance.timeOrigin + now,
      every: () => {},
      changed: () => void service.drainEvents(),
      durable: () => Promise.resolve(),
    };
    await service.start(ctx);
  }

  /** The messaging service's part: the text reaches the peer (if it is up), and this node hears it was delivered. */
  #send(to: string, text: string): Promise<StoredMessage> {
    const message = {
      cursor: 0,
      id: crypto.randomUUID(),
      peer: to,
      direction: "out",
      seq: 0,
      text,
      sentAt: Date.now(),
      status: "sent",
      gapBefore: 0,
      late: false,
    } as StoredMessage;
    setTimeout(() => {
      const peer = this.peers.get(to);
      if (!peer || this.#stopped) return;
      peer.receive(this.id, text);
      this.service.onEvent({ type: "delivered", message, rttMs: 1 }, performance.now());
    }, 10);
    return Promise.resolve(message);
  }

  /** A message from `from` reaches this node (unless it is stopped). */
  receive(from: string, text: string): void {
    if (this.#stopped) return;
    const message = {
      cursor: 0,
      id: crypto.randomUUID(),
      peer: from,
      direction: "in",
      seq: 0,
      text,
      sentAt: Date.now(),
      receivedAt: Date.now(),
      status: "received",
      gapBefore: 0,
      late: false,
    } as StoredMessage;
    this.service.onEvent({ type: "message", message }, performance.now());
  }

  /** Each knows the other, with the static key its hello would carry (none for a previous version). */
  static introduce(a: FilesNode, b: FilesNode): void {
    const peer = (n: FilesNode): Peer => ({
      name: n.name,
      port: n.port,
      receive: (from, text) => n.receive(from, text),
    });
    a.peers.set(b.id, peer(b));
    b.peers.set(a.id, peer(a));
    if (b.e2e) a.keys.set(b.id, b.e2e.dh.publicKey);
    if (a.e2e) b.keys.set(a.id, a.e2e.dh.publicKey);
  }

  get(id: string): TransferJson | undefined {
    try {
      return this.service.get(id);
    } catch {
      return undefined;
    }
  }

  /** Stops the service and closes its store (what is on disk stays). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.service.shutdown();
    // The fetches it aborted settle first (their last save).
    await new Promise((r) => setTimeout(r, 300));
    this.#store.close();
  }

  /** Stopped and started again on the same data folder and file port: a restarted daemon. */
  async restart(): Promise<void> {
    await this.stop();
    const identity = await loadOrCreateIdentity(this.dir);
    await this.#open(identity.publicKey, new NodeSigner(identity.pkcs8, identity.publicKey));
  }

  /** Stops it and removes its folders. */
  async remove(): Promise<void> {
    await this.stop();
    for (const d of [this.dir, this.downloads]) await Deno.remove(d, { recursive: true }).catch(() => {});
  }
}

/** Resolves once `pred` holds (polled); throws what `describe` says after `ms`. */
export async function waitFor(what: string, pred: () => boolean, ms: number, describe?: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) {
      throw new Error(`Timed out after ${ms} ms waiting for ${what}${describe ? `: ${describe()}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
