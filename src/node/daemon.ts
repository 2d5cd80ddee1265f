/**
 * The driver: a small loop over services (node/service.ts). It owns the
 * sockets (opened here, through transport.ts, and nowhere else), the clock,
 * the one timer, the group commit and the event bus; it knows no protocol by
 * name. A datagram goes to the service that declared its socket; a timer
 * wakes every service whose deadline has come; after each, the driver
 * drains what the services have to say (events first, to every service and
 * listener, then datagrams to send), holding back what must wait for the
 * group commit, and re-arms the timer at the earliest deadline.
 *
 * Tests pass their own {@link DaemonIo} (a fake network, fake interfaces).
 *
 * @module
 */
import { loadWebAssets } from "./web_assets.ts";
import { clearImmediate, setImmediate } from "node:timers";
import {
  type Api,
  createHandler,
  type HandlerWithStreams,
  isLoopbackBind,
  LOOPBACK_HOSTS,
  OneTimeCodes,
} from "../api/http.ts";
import type { DaemonEvent, PeerJson } from "../api/types.ts";
import { defaultDataDir, ensureDataDir, HTTP_TOKEN_FILE, openToOthers } from "../common/data_dir.ts";
import { logger } from "../common/log.ts";
import { VERSION } from "../common/version.ts";
import type { Discovery } from "../protocol/discovery.ts";
import { loadOrCreateToken } from "../security/http_token.ts";
import { loadOrCreateIdentity } from "../security/identity.ts";
import { Store } from "../storage/store.ts";
import { assemble, type Parts, socketSpecs } from "./assemble.ts";
import { verification } from "./verify.ts";
import { DEFAULT_HTTP_LIMITS, type HttpServer, serveHttp } from "./http_server.ts";
import { Notices } from "./notices.ts";
import { type DaemonIo, type DaemonOptions, DEFAULT_HTTP, realIo } from "./options.ts";
import { NOTHING, type Outgoing, type Service, type ServiceContext, type SocketSpec } from "./service.ts";
import { endpointOf, receiveLoop, type Transport, udpAddr } from "./transport.ts";
import { bind, bindJoined } from "./bind.ts";
import { Views } from "./views.ts";
import { LanWeb } from "./lan_web.ts";

export type { DaemonIo, DaemonOptions } from "./options.ts";
export type { DaemonEvent } from "../api/types.ts";

/** A running daemon. */
export class Daemon {
  readonly dataDir: string;
  readonly ports: { discovery: number; unicast: number; http: number };
  httpUrl: string | undefined;
  readonly views: Views;
  readonly parts: Parts;
  #io: DaemonIo;
  #store: Store;
  #services: Service[];
  #sockets: Map<string, Transport>;
  #bySocket = new Map<string, Service>();
  #http: HttpServer | undefined;
  /** Every request handler serving (loopback, and the LAN's with `lanchat web --lan`). */
  #handlers: HandlerWithStreams[] = [];
  #lanWeb: LanWeb | undefined;
  #notices: Notices;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #intervals: ReturnType<typeof setInterval>[] = [];
  #commitTimer: ReturnType<typeof setImmediate> | undefined;
  /** Callers waiting for the open group transaction to commit. */
  #commitWaiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  #loops: Promise<void>[] = [];
  #listeners = new Set<(e: DaemonEvent) => void>();
  #startedAt: number;
  #startedWall: number;
  #stopped = false;
  #sendErrors = 0;
  #receiveErrors = 0;
  #log = logger("daemon");

  private constructor(init: {
    io: DaemonIo;
    store: Store;
    dataDir: string;
    sockets: Map<string, Transport>;
    parts: Parts;
    notices: Notices;
    startedAt: number;
    startedWall: number;
  }) {
    this.#io = init.io;
    this.#store = init.store;
    this.dataDir = init.dataDir;
    this.#sockets = init.sockets;
    this.parts = init.parts;
    this.#services = init.parts.services;
    this.#notices = init.notices;
    this.#startedAt = init.startedAt;
    this.#startedWall = init.startedWall;
    for (const s of this.#services) for (const name of s.sockets ?? []) this.#bySocket.set(name, s);
    const port = (name: string) => (init.sockets.get(name)?.addr as Deno.NetAddr | undefined)?.port ?? 0;
    this.ports = { discovery: port("discovery"), unicast: port("unicast"), http: 0 };
    // Group commit: what a burst of datagrams or requests writes is committed
    // once, at the end of the event-loop turn; acks and replies wait for it.
    // (setImmediate: setTimeout(0) waits about 2 ms here, setImmediate 5 µs.)
    init.store.startGroupCommit(() => {
      this.#commitTimer ??= setImmediate(() => this.#commit());
    });
    this.views = new Views({
      driver: {
        dataDir: this.dataDir,
        ports: this.ports,
        startedAt: this.#startedAt,
        startedWall: this.#startedWall,
        socketErrors: () => ({ send: this.#sendErrors, receive: this.#receiveErrors }),
        now: () => this.#io.now(),
        wall: (t) => this.#wall(t),
      },
      lanchat: init.parts.lanchat,
      ipmsgPeers: () => init.parts.ipmsg?.ipmsg.peers() ?? [],
      directory: init.parts.directory,
      conversations: init.parts.conversations,
      services: this.#services,
      notices: init.notices,
      http: () => this.#http,
      lanOrigins: () => this.#lanWeb?.origins() ?? [],
    });
  }

  /**
   * Starts a daemon: identity, database, sockets, services, HTTP, then the
   * announce schedule. Throws an Error with a message a user can act on when
   * any of them cannot be set up; whatever was opened is closed again.
   */
  static async start(options: DaemonOptions = {}, io: DaemonIo = realIo): Promise<Daemon> {
    const log = logger("daemon");
    const dataDir = options.dataDir ?? defaultDataDir(io.env);
    await ensureDataDir(dataDir);
    const openTo = openToOthers(dataDir);
    if (openTo) {
      log.warn("Data directory {dataDir} has mode {mode}: other users of this host may read its files; chmod 700 it", {
        dataDir,
        mode: openTo,
      });
    }
    const identity = await loadOrCreateIdentity(dataDir);
    if (identity.created) log.info("Created node identity {id} in {dataDir}", { id: identity.id, dataDir });
    const store = await Store.open(dataDir);
    if (store.upgraded) {
      log.info("Upgraded the database from schema version {from} to {to} in {ms} ms", store.upgraded);
    }
    const opened: { close(): void }[] = [store];
    let made: Daemon | undefined;
    try {
      const incarnation = store.nextIncarnation();
      const sockets = new Map<string, Transport>();
      for (const spec of socketSpecs(options)) {
        const socket = bind(io, spec);
        opened.push(socket);
        sockets.set(spec.name, socket);
      }
      const startedAt = io.now();
      const startedWall = Date.now();
      // Whole milliseconds: the wire carries integers (performance.now() is fractional).
      const wall = (t: number) => Math.round(startedWall + (t - startedAt));
      const notices = new Notices(() => io.now());
      const portOf = (name: string) => (sockets.get(name)!.addr as Deno.NetAddr).port;
      const parts = await assemble({
        options,
        io,
        store,
        identity,
        incarnation,
        ports: {
          discovery: portOf("discovery"),
          unicast: portOf("unicast"),
          ipv6: (sockets.get("unicast")!.addr as Deno.NetAddr).hostname.includes(":"),
        },
        wall,
        notices,
        pagesOpen: () => (made ? made.#pagesOpen() : 0),
      });
      const daemon = made = new Daemon({ io, store, dataDir, sockets, parts, notices, startedAt, startedWall });
      const http = options.http === undefined ? DEFAULT_HTTP : options.http;
      if (http) {
        opened.push({ close: () => void daemon.#http?.shutdown() });
        await daemon.#serve(http, options);
      }
      await daemon.#begin();
      return daemon;
    } catch (e) {
      for (const o of opened.reverse()) {
        try {
          o.close();
        } catch { /* already closed */ }
      }
      throw e;
    }
  }

  /** The discovery state machine (the roster, the announce targets). */
  get discovery(): Discovery {
    return this.parts.lanchat.discovery;
  }

  /** The roster as `/peers` shows it. */
  peers(): PeerJson[] {
    return this.views.peers();
  }

  /** Calls `listener` on every event until the returned function is called. */
  onEvent(listener: (e: DaemonEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The HTTP API over this daemon's views, conversations, directory and pins. */
  api(): Api {
    const { directory, conversations, lanchat } = this.parts;
    return {
      peersBody: () => this.views.peersBody(),
      allPeers: () => this.views.allPeers(),
      status: () => this.views.status(),
      problems: () => this.views.problems(),
      metrics: () => this.views.metrics(),
      diagnostics: () =>
        this.parts.diagnostics.json({
          dataDir: this.dataDir,
          ports: this.ports,
          now: this.#io.now(),
          uptimeMs: this.#io.now() - this.#startedAt,
        }),
      lookupPeer: (q) => directory.lookup(q),
      onlinePeers: () => directory.onlinePeers(),
      sendMessage: (to, text, replyTo) =>
        conversations.sendMessage(to, text, replyTo ? { kind: "reply", id: replyTo } : undefined),
      sendMessages: (items) => conversations.sendMessages(items),
      waitDelivered: (id, ms) => conversations.waitDelivered(id, ms),
      history: (q) => conversations.history(q),
      historyRange: (q) => conversations.historyRange(q),
      cursorAt: (t) => conversations.cursorAt(t),
      search: (q) => conversations.search(q),
      messageJson: (m) => conversations.messageJson(m),
      onEvent: (l) => this.onEvent(l),
      eventListeners: () => this.#listeners.size,
      peerName: (id) => directory.peerName(id),
      trustPeer: (id) => lanchat.pins.trust(id),
      forgetPeer: (id) => lanchat.forget(id),
      verifyPeer: (id) =>
        verification({
          pins: lanchat.pins,
          self: this.parts.self,
          peer: { id, name: directory.peerName(id) },
          ipmsg: directory.get(id)?.protocol === "ipmsg" || this.parts.ipmsg?.ipmsg.get(id) !== undefined,
        }),
      compactMemory: () => this.parts.memory.compactNow(),
      setPresence: (presence, note) => this.#setPresence(presence, note, true),
      markRead: (peer, upTo) => conversations.markRead(peer, upTo),
      sendSealed: (to, text) => conversations.sendSealed(to, text),
      openSealed: (id) => conversations.openSealed(id),
      files: this.parts.files,
      groups: this.parts.groups,
      thread: this.parts.thread,
    };
  }

  async #serve(where: { hostname: string; port: number }, options: DaemonOptions): Promise<void> {
    const log = this.#log;
    const loopback = isLoopbackBind(where.hostname);
    // On loopback too: every user of this host can reach 127.0.0.1, and the API is the owner's.
    const tokenFile = options.httpTokenFile ?? `${this.dataDir}/${HTTP_TOKEN_FILE}`;
    const token = await loadOrCreateToken(tokenFile);
    log.info("The HTTP API answers only to the bearer token in {tokenFile} (the page: lanchat web)", { tokenFile });
    const codes = new OneTimeCodes();
    const web = await loadWebAssets();
    // The LAN listeners, opened by the owner's `lanchat web --lan` only, and only beside a loopback bind (a
    // wider --http serves the LAN already, to the token).
    const lanWeb = this.#lanWeb = loopback
      ? new LanWeb({
        handler: (hosts) => {
          const h = createHandler(this.api(), { token, codes, allowedHosts: hosts, web, lan: true });
          this.#handlers.push(h);
          return h;
        },
        addresses: () => this.parts.targets.interfaces.map((t) => t.address),
        port: () => this.ports.http,
        options: { onFdExhausted: (e) => this.#notices.outOfFds("accepting an HTTP connection on the LAN", e) },
      })
      : undefined;
    const handler = createHandler(this.api(), {
      token,
      codes,
      allowedHosts: loopback ? LOOPBACK_HOSTS : undefined,
      web,
      openLan: lanWeb && (() => Promise.resolve().then(() => lanWeb.open())),
    });
    this.#handlers.push(handler);
    const wanted = options.httpMaxConnections ?? DEFAULT_HTTP_LIMITS.maxConnections;
    this.#http = serveHttp(where.hostname, where.port, handler, {
      limits: { maxConnections: wanted },
      onFdExhausted: (e) => this.#notices.outOfFds("accepting an HTTP connection", e),
      onShutdown: () => handler.closeStreams(),
    });
    if (this.#http.maxConnections < wanted) {
      log.warn(
        "HTTP connections are capped at {cap}, not {wanted}: the open-file limit is lower (raise it with ulimit -n or LimitNOFILE=)",
        { cap: this.#http.maxConnections, wanted },
      );
    }
    const addr = this.#http.addr;
    this.ports.http = addr.port;
    this.httpUrl = `http://${addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname}:${addr.port}`;
    // Hellos carry the HTTP port.
    this.parts.lanchat.discovery.self.httpPort = addr.port;
  }

  /** Event streams web pages hold open, on every listener. */
  #pagesOpen(): number {
    let n = 0;
    for (const h of this.#handlers) n += h.pageStreams();
    return n;
  }

  #savedPresence(): { presence: "online" | "away" | "busy"; note?: string } {
    try {
      const v = JSON.parse(this.#store.setting("presence") ?? "{}");
      if (v.presence === "away" || v.presence === "busy") {
        return { presence: v.presence, note: typeof v.note === "string" ? v.note : undefined };
      }
    } catch { /* none kept */ }
    return { presence: "online" };
  }

  /**
   * Sets this node's presence: in lanchat's hellos (sent at once), as
   * IP Messenger's absence (away and busy alike: it knows only absent), and
   * kept for the next start.
   */
  #setPresence(presence: "online" | "away" | "busy", note: string | undefined, save: boolean) {
    const clean = note?.trim() || undefined;
    this.parts.lanchat.setPresence(presence, clean, this.#io.now());
    this.parts.ipmsg?.ipmsg.setAbsence(presence === "online" ? undefined : clean ?? "");
    if (save) {
      this.#store.saveSetting("presence", JSON.stringify({ presence, note: clean }));
      void this.#pump();
    }
    return { presence, ...(clean ? { note: clean } : {}) };
  }

  async #begin(): Promise<void> {
    const ctx: ServiceContext = {
      io: this.#io,
      wall: (t) => this.#wall(t),
      every: (ms, fn) => {
        this.#intervals.push(setInterval(() => {
          if (this.#stopped) return;
          Promise.resolve(fn()).catch((e) => this.#log.error("{error}", { error: (e as Error).message }));
        }, ms));
      },
      changed: () => void this.#pump(),
      durable: () => this.#durable(),
      commitSoon: () => {
        this.#commitTimer ??= setImmediate(() => this.#commit());
      },
      openSocket: (spec, service) => this.#openSocket(spec, service),
      closeSocket: (name) => this.#closeSocket(name),
      loopMulticastV6: async (name, group, index) => {
        const socket = this.#sockets.get(name);
        if (!socket?.joinMulticastV6) return;
        await (await socket.joinMulticastV6(group, index)).setLoopback(true);
      },
    };
    // The presence the node had before it stopped: in its first hellos already.
    const saved = this.#savedPresence();
    if (saved.presence !== "online") this.#setPresence(saved.presence, saved.note, false);
    for (const s of this.#services) await s.start(ctx, this.#io.now());
    for (const [name, socket] of this.#sockets) {
      this.#loops.push(receiveLoop(socket, (b, f) => this.#onDatagram(name, b, f), (e) => this.#onReceiveError(e)));
    }
    const self = this.parts.lanchat.discovery.self;
    this.#log.info(
      "lanchat {version} started as {name} ({id}, incarnation {incarnation}); {group}; discovery UDP {discoveryPort}, unicast UDP {unicastPort}, HTTP {http}",
      {
        group: this.parts.lanchat.groupLine(),
        version: VERSION,
        name: self.name,
        id: self.id,
        incarnation: self.incarnation,
        discoveryPort: this.ports.discovery,
        unicastPort: this.ports.unicast,
        http: this.httpUrl ?? "off",
        dataDir: this.dataDir,
      },
    );
    void this.#pump();
  }

  /** A socket opened while running (see {@link ServiceContext.openSocket}): bound, its group joined, read. */
  async #openSocket(spec: SocketSpec, service: Service): Promise<void> {
    if (this.#stopped || this.#sockets.has(spec.name)) return;
    const socket = await bindJoined(this.#io, spec);
    if (this.#stopped) return socket.close();
    this.#sockets.set(spec.name, socket);
    this.#bySocket.set(spec.name, service);
    this.#loops.push(receiveLoop(socket, (b, f) => this.#onDatagram(spec.name, b, f), (e) => this.#onReceiveError(e)));
  }

  #closeSocket(name: string): void {
    const socket = this.#sockets.get(name);
    if (!socket) return;
    this.#sockets.delete(name);
    this.#bySocket.delete(name);
    socket.close();
  }

  /** Says goodbye (every service), closes sockets, HTTP and the database. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#commit();
    const now = this.#io.now();
    for (const s of this.#services) s.shutdown?.(now);
    await Promise.allSettled(this.#pump());
    this.#stopped = true;
    clearTimeout(this.#timer);
    for (const i of this.#intervals) clearInterval(i);
    for (const socket of this.#sockets.values()) socket.close();
    await Promise.allSettled(this.#loops);
    await this.#lanWeb?.shutdown();
    await this.#http?.shutdown();
    this.#store.close();
    if (this.#commitTimer) clearImmediate(this.#commitTimer);
    const targets = this.parts.lanchat.discovery.targets;
    this.#log.info("lanchat stopped; goodbye sent to {targets} targets", {
      targets: targets.broadcast.length + targets.peers.length,
    });
  }

  #onDatagram(socket: string, bytes: Uint8Array, from: Deno.Addr): void {
    if (this.#stopped) return;
    this.#bySocket.get(socket)?.onDatagram?.(socket, bytes, endpointOf(from), this.#io.now());
    void this.#pump();
  }

  #onReceiveError(e: unknown): void {
    this.#receiveErrors++;
    // A statement that found the database damaged (reading a packet's message id, say): nothing more is written.
    this.#store.noteError(e);
    this.#log.debug("Receive error: {error}", { error: (e as Error)?.message ?? String(e) });
  }

  #onTimer(): void {
    const asked = this.#timerAt;
    this.#timer = undefined;
    this.#timerAt = Infinity;
    if (this.#stopped) return;
    const now = this.#io.now();
    // How late the timer fired: time the event loop was busy or starved (a flood, a CPU hog).
    const late = Math.max(0, now - asked);
    for (const s of this.#services) s.handleTimeout?.(now, late);
    void this.#pump();
  }

  /**
   * Commits the open group transaction; then what waited for it (acks,
   * events about stored messages, API replies) goes. When the commit fails,
   * nothing of it was stored: the services start over from the store (so
   * the senders of what was lost retry: no ack went out) and what was posted
   * gets an error.
   */
  #commit(): void {
    // What a service kept for this commit is written first (it joins the open transaction, or opens one).
    for (const s of this.#services) s.beforeCommit?.(this.#io.now());
    if (this.#commitTimer) clearImmediate(this.#commitTimer);
    this.#commitTimer = undefined;
    const waiters = this.#commitWaiters;
    this.#commitWaiters = [];
    const now = this.#io.now();
    try {
      this.#store.commit();
    } catch (e) {
      this.#log.error("{error}; messages received or posted since the last commit were not stored", {
        error: (e as Error).message,
      });
      for (const s of this.#services) s.onCommitFailed?.(now);
      for (const w of waiters) w.reject(e);
      void this.#pump();
      return;
    }
    for (const s of this.#services) s.onCommitted?.(now);
    for (const w of waiters) w.resolve();
    void this.#pump();
  }

  /** Resolves when what was written so far is committed; rejects with a StoreError if that commit fails. */
  #durable(): Promise<void> {
    if (!this.#store.uncommitted) return Promise.resolve();
    return new Promise((resolve, reject) => this.#commitWaiters.push({ resolve, reject }));
  }

  /**
   * Delivers what the services have to say, sends what they have to send,
   * and re-arms the timer. Events go first, to every service (roster events
   * tell messaging who is reachable) and listener, until none is left; a
   * service that waits for the commit is drained only when nothing is
   * uncommitted.
   */
  #pump(): Promise<unknown>[] {
    const now = this.#io.now();
    const ready = (s: Service) => !(s.waitsForCommit && this.#store.uncommitted);
    for (let round = 0; round < 16; round++) {
      const events: DaemonEvent[] = [];
      for (const s of this.#services) if (ready(s)) events.push(...(s.drainEvents?.() ?? NOTHING));
      if (events.length === 0) break;
      for (const e of events) {
        for (const s of this.#services) s.onEvent?.(e, now);
        this.#emit(e);
      }
    }
    const sends: Promise<unknown>[] = [];
    for (const s of this.#services) {
      if (!ready(s)) continue;
      for (const t of s.drainTransmits?.() ?? NOTHING) sends.push(this.#send(t));
    }
    let next = Infinity;
    if (!this.#stopped) {
      for (const s of this.#services) {
        const t = s.pollTimeout?.();
        if (t !== undefined && t < next) next = t;
      }
    }
    if (next === Infinity) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerAt = Infinity;
    } else if (next < this.#timerAt) {
      clearTimeout(this.#timer);
      this.#timerAt = next;
      this.#timer = setTimeout(() => this.#onTimer(), Math.max(0, next - now));
    }
    return sends;
  }

  async #send(t: Outgoing): Promise<void> {
    try {
      const socket = this.#sockets.get(t.socket);
      if (!socket) throw new Error(`socket ${t.socket} is closed`);
      await socket.send(t.bytes, udpAddr(t.to.address, t.to.port));
    } catch (e) {
      this.#sendErrors++;
      this.#log.debug("Cannot send {kind} to {to}: {error}", {
        kind: t.kind,
        to: `${t.to.address}:${t.to.port}`,
        error: (e as Error).message,
      });
    }
  }

  #emit(event: DaemonEvent): void {
    for (const l of this.#listeners) {
      try {
        l(event);
      } catch (e) {
        this.#log.error("Event listener failed: {error}", { error: (e as Error).message });
      }
    }
  }

  /** Wall-clock time (ms since the epoch) of a monotonic time from the io clock. */
  #wall(t: number): number {
    return this.#startedWall + (t - this.#startedAt);
  }
}
