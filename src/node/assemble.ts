/**
 * The composition root: which sockets a daemon binds and which services run
 * on them, built from its options. The driver (node/daemon.ts) calls these
 * once at start and then knows the services only through the Service
 * interface. A new service (files, presence) is added here.
 *
 * @module
 */
import { Diagnostics } from "./diagnostics.ts";
import { fitTextField } from "../wire/mod.ts";
import { VERSION } from "../common/version.ts";
import type { Identity } from "../security/identity.ts";
import { Admission, SourceLimits } from "../security/admission.ts";
import { Pins } from "../security/pins.ts";
import { Sealer } from "../security/seal.ts";
import { NodeSigner } from "../security/signing.ts";
import { staticIdentityOf } from "../security/e2e_wire.ts";
import type { Store } from "../storage/store.ts";
import { Conversations } from "./conversations.ts";
import { Directory } from "./directory.ts";
import type { Notices } from "./notices.ts";
import { type DaemonIo, type DaemonOptions, DEFAULT_DISCOVERY_PORT, DEFAULT_UNICAST_PORT } from "./options.ts";
import type { Service, SocketSpec } from "./service.ts";
import { DISCOVERY_SOCKET, LanchatService, UNICAST_SOCKET } from "./services/lanchat.ts";
import { MessagingService } from "./services/messaging.ts";
import { StorageService } from "./services/storage.ts";
import { MemoryService } from "./services/memory.ts";
import { FilesService } from "./services/files.ts";
import { AutoReplyService } from "./services/auto_reply.ts";
import { GroupsService } from "./services/groups.ts";
import { ThreadService } from "./thread.ts";
import { defaultDownloads } from "../common/data_dir.ts";
import type { IpmsgService } from "./services/ipmsg.ts";
import { Targets } from "./targets.ts";
import type { SelfKey } from "./verify.ts";
import { NotifyService } from "./services/notify.ts";
import { GdbusBus } from "./desktop_bus.ts";
import { logger } from "../common/log.ts";
import { MdnsService } from "./services/mdns.ts";
import { PeerExchangeService } from "./services/peer_exchange.ts";
import { instanceLabel } from "../protocol/dnssd.ts";
import { isLinkLocal6, withoutScope } from "./net_address6.ts";

/** The sockets a daemon with these options binds. */
export function socketSpecs(options: DaemonOptions): SocketSpec[] {
  const specs: SocketSpec[] = [
    // Every daemon on the host binds the discovery port (SO_REUSEADDR) and gets its broadcasts.
    {
      name: DISCOVERY_SOCKET,
      hostname: "0.0.0.0",
      port: options.discoveryPort ?? DEFAULT_DISCOVERY_PORT,
      reuseAddress: true,
    },
    // Each has its own unicast port: a second daemon on the host takes a free one. Dual-stack (`::`) with
    // IPv6: it also sends the IPv6 multicast announces (Deno has no IP_MULTICAST_IF: the group's scope picks
    // the interface) and takes IPv4 as ::ffff:a.b.c.d.
    {
      name: UNICAST_SOCKET,
      hostname: options.ipv6 === false ? "0.0.0.0" : "::",
      port: options.unicastPort ?? DEFAULT_UNICAST_PORT,
      fallBackToFreePort: true,
      // Files are served on TCP at the same number (services/files_serve.ts).
      sameTcpPort: true,
    },
  ];
  if (options.ipmsg) {
    const port = options.ipmsg.port;
    specs.push({
      name: "ipmsg",
      hostname: "0.0.0.0",
      port,
      inUse:
        `Cannot speak IP Messenger: UDP port ${port} is in use on this host (by IP Messenger, FeiQ, iptux or another lanchat --ipmsg); only one program per host can own it`,
    });
  }
  return specs;
}

/** The services of a daemon, and the parts the driver and the views reach into. */
export interface Parts {
  lanchat: LanchatService;
  messaging: MessagingService;
  ipmsg: IpmsgService | undefined;
  directory: Directory;
  conversations: Conversations;
  groups: GroupsService;
  /** Replies, edits and deletions. */
  thread: ThreadService;
  targets: Targets;
  memory: MemoryService;
  /** File transfer (absent on a fake network without TCP). */
  files: FilesService | undefined;
  /** In the order the driver runs them: the link before what is built on it. */
  services: Service[];
  /** This node's key, for safety numbers. */
  self: SelfKey;
  /** What `lanchat doctor` reads (GET /diagnostics). */
  diagnostics: Diagnostics;
}

/**
 * The static X25519 key (`nk`) a peer's current signed hello carries, or
 * undefined for a previous-version peer (or one not in the roster): the one
 * place the file stream asks, so files are end to end encrypted exactly
 * with the peers messages are.
 */
export function peerStaticKeyOf(lanchat: LanchatService, id: string): Uint8Array | undefined {
  return lanchat.e2e?.staticKeyOf(id);
}

/** Builds the services for a daemon whose sockets are bound at `ports`. */
export async function assemble(o: {
  options: DaemonOptions;
  io: DaemonIo;
  store: Store;
  identity: Identity;
  incarnation: number;
  /** `ipv6` false: the unicast socket could not be dual-stack (the host has no IPv6), so no IPv6 at all. */
  ports: { discovery: number; unicast: number; ipv6?: boolean };
  wall: (now: number) => number;
  notices: Notices;
  /** Event streams the web page holds open (late-bound: HTTP starts after the services are built). */
  pagesOpen?: () => number;
}): Promise<Parts> {
  const { options, io, store, identity, notices } = o;
  const hostname = fitTextField(io.hostname());
  const user = io.env("USER") ?? io.env("LOGNAME") ?? "user";
  const pins = new Pins(store, (w) => notices.once(w.key, w.message, w.properties));
  const directory = new Directory(store, pins);
  const targets = new Targets(io, {
    interfaces: options.interfaces,
    excludeInterfaces: options.excludeInterfaces,
    broadcasts: options.broadcasts,
    peers: options.peers,
    discoveryPort: o.ports.discovery,
    unicastPort: DEFAULT_UNICAST_PORT,
    ipv6: options.ipv6 !== false && o.ports.ipv6 !== false,
  }, notices);
  const limits = new SourceLimits();
  // Late-bound: lanchat's roster and IP Messenger's users share one bound (--max-peers, 16 per address).
  const ref: { ipmsg?: IpmsgService; lanchat?: LanchatService } = {};
  const admission = new Admission({
    limits,
    sealer: options.networkKey ? await Sealer.create(options.networkKey) : undefined,
    awaitedPong: (address, now) => ref.lanchat?.discovery.awaitedPong(address, now),
  });
  const signer = new NodeSigner(identity.pkcs8, identity.publicKey);
  const lanchat = ref.lanchat = new LanchatService({
    admission,
    pins,
    targets,
    notices,
    wall: o.wall,
    e2e: {
      identity: staticIdentityOf(identity.pkcs8, identity.publicKey, signer.sign),
      incarnation: o.incarnation,
      requireEncryption: options.requireEncryption ?? false,
    },
    discovery: {
      signer,
      intervalMs: options.intervalMs,
      probeTimeoutMs: options.probeTimeoutMs,
      maxPeers: options.maxPeers,
      others: { count: () => ref.ipmsg?.ipmsg.size ?? 0, countAt: (a) => ref.ipmsg?.ipmsg.countAt(a) ?? 0 },
      announceBudget: options.announceBudget,
      self: {
        id: identity.id,
        incarnation: o.incarnation,
        name: fitTextField(options.name ?? `${user}@${hostname}`),
        hostname,
        version: VERSION,
        port: o.ports.unicast,
        httpPort: 0,
      },
    },
  });
  const ipmsgUser = fitTextField(user.replaceAll(":", ";"));
  const knownIpmsg = (peer: string) => directory.get(peer)?.protocol === "ipmsg";
  const messaging = new MessagingService({
    lanchat,
    store,
    self: { id: identity.id, incarnation: o.incarnation },
    wall: o.wall,
    foreign: (peer) => knownIpmsg(peer) || ref.ipmsg?.ipmsg.get(peer) !== undefined,
  });
  directory.addSource(lanchat);
  if (options.ipmsg) {
    // Loaded only with --ipmsg: its GBK codec (iconv-lite) cost every daemon ~1.3 MB of RSS.
    const { IpmsgService } = await import("./services/ipmsg.ts");
    ref.ipmsg = new IpmsgService({
      store,
      limits,
      notices,
      targets,
      knownIpmsg,
      ipmsg: {
        software: `lanchat ${VERSION}`,
        user: ipmsgUser,
        host: hostname.replaceAll(":", ";"),
        nickname: lanchat.discovery.self.name,
        group: options.ipmsg.group,
        port: options.ipmsg.port,
        intervalMs: lanchat.discovery.intervalMs,
        firstPacketNo: Math.floor(Date.now() / 1000),
        wall: o.wall,
        maxPeers: options.maxPeers,
        others: { count: () => lanchat.discovery.roster.size, countAt: (a) => lanchat.discovery.roster.countAt(a) },
      },
    });
    directory.addSource(ref.ipmsg);
  }
  const ipmsg = ref.ipmsg;
  const conversations = new Conversations(store, directory, ipmsg ? [ipmsg, messaging] : [messaging], {
    readReceipts: options.readReceipts,
  });
  const groups = new GroupsService({ store, conversations, directory, notices, self: identity.id });
  conversations.groupName = (id) => groups.groupName(id);
  const thread = new ThreadService({ store, conversations, groups });
  const memory = new MemoryService();
  // DNS-SD (mDNS) on a real network only, unless --no-mdns.
  const mdns = options.mdns !== false && io.openMulticast4
    ? new MdnsService({
      ad: {
        instance: instanceLabel(lanchat.discovery.self.name),
        host: `lanchat-${identity.id.slice(0, 12)}`,
        id: identity.id,
        port: o.ports.unicast,
        discoveryPort: o.ports.discovery,
      },
      targets,
      roster: lanchat.discovery.roster,
      maxPeers: options.maxPeers ?? 1024,
      traffic: lanchat.traffic,
    })
    : undefined;
  const autoReply = options.awayReply
    ? new AutoReplyService({
      text: options.awayReply,
      away: () => lanchat.discovery.self.presence === "away" ? lanchat.discovery.self.presenceChanges ?? 0 : undefined,
      send: (to, text) => conversations.sendMessage(to, text),
    })
    : undefined;
  const fileSigner = new NodeSigner(identity.pkcs8, identity.publicKey);
  const files = io.listenTcp && io.connectTcp
    ? new FilesService({
      store,
      self: { id: identity.id, publicKey: identity.publicKey },
      signer: fileSigner,
      e2e: staticIdentityOf(identity.pkcs8, identity.publicKey, fileSigner.sign),
      peerStaticKey: (id) => peerStaticKeyOf(lanchat, id),
      requireEncryption: options.requireEncryption ?? false,
      networkKey: options.networkKey,
      options: { ...options.files, downloads: options.files?.downloads ?? defaultDownloads(io.env) },
      send: (to, text) => conversations.sendMessage(to, text),
      addressOf: (peer) => lanchat.discovery.roster.get(peer)?.addresses[0],
      // TCP reports a link-local peer without the scope the roster keeps it with.
      knownAddress: (address) =>
        lanchat.discovery.roster.countAt(address) > 0 ||
        (isLinkLocal6(address) &&
          lanchat.discovery.roster.peers().some((p) => p.addresses.some((a) => withoutScope(a.address) === address))) ||
        [...directory.known()].some((k) => k.address === address),
      isLanchat: (peer) => !knownIpmsg(peer) && ipmsg?.ipmsg.get(peer) === undefined,
      trusted: (peer) => pins.get(peer)?.trust === "trusted",
      peerName: (peer) => directory.peerName(peer),
      listenTcp: io.listenTcp,
      connectTcp: io.connectTcp,
      port: o.ports.unicast,
      listenHost: options.ipv6 === false || o.ports.ipv6 === false ? "0.0.0.0" : "::",
      uploads: `${store.path.slice(0, store.path.lastIndexOf("/"))}/uploads`,
      ipmsg: ipmsg && {
        peer: (id) => {
          const p = ipmsg.ipmsg.get(id);
          return p && { address: p.address, port: p.port, encoding: p.encoding, version: p.version };
        },
        self: () => ({ user: ipmsgUser, host: hostname.replaceAll(":", ";") }),
        release: (peer, packetNo) => {
          ipmsg.ipmsg.releaseFiles(peer, packetNo);
        },
        offer: (to, text, attach) => ipmsg.sendFiles(to, text, attach, io.now()),
        reattach: (messageId, packetNo, attach) =>
          ipmsg.ipmsg.attachTo(messageId, { packetNo: String(packetNo), attach }),
        port: ipmsg.ipmsg.port,
      },
    })
    : undefined;
  const notify = desktopNotifications(options, io, {
    pagesOpen: () => o.pagesOpen?.() ?? 0,
    busy: () => lanchat.discovery.self.presence === "busy",
    messageJson: (m) => conversations.messageJson(m),
  });
  const peerExchange = new PeerExchangeService({
    lanchat,
    targets,
    known: () => directory.known(),
    self: { id: identity.id, incarnation: o.incarnation },
    maxPeers: options.maxPeers ?? 1024,
  });
  const services: Service[] = [
    lanchat,
    messaging,
    ...(ipmsg ? [ipmsg] : []),
    directory,
    conversations,
    groups,
    thread,
    ...(files ? [files] : []),
    ...(autoReply ? [autoReply] : []),
    ...(notify ? [notify] : []),
    ...(mdns ? [mdns] : []),
    peerExchange,
    new StorageService(store),
    memory,
  ];
  const self = { id: identity.id, publicKey: identity.publicKey, name: () => lanchat.discovery.self.name };
  return {
    lanchat,
    messaging,
    ipmsg,
    directory,
    conversations,
    groups,
    thread,
    targets,
    memory,
    files,
    services,
    self,
    diagnostics: new Diagnostics(lanchat, {
      keyFile: options.keyFilePath,
      downloads: files ? options.files?.downloads ?? defaultDownloads(io.env) : undefined,
      filePort: () => (files?.status().files as { port: number | null } | undefined)?.port ?? null,
    }),
  };
}

/** The notify service, where a session bus is there and notifications are not turned off (said in the log). */
function desktopNotifications(
  options: DaemonOptions,
  io: DaemonIo,
  deps: Omit<ConstructorParameters<typeof NotifyService>[0], "bus">,
): NotifyService | undefined {
  if (options.notify === false) return undefined;
  if (!options.desktopBus && !io.env("DBUS_SESSION_BUS_ADDRESS")) {
    logger("notify").info("No desktop notifications: no session bus (DBUS_SESSION_BUS_ADDRESS is not set)");
    return undefined;
  }
  return new NotifyService({ bus: options.desktopBus ?? new GdbusBus(), ...deps });
}
