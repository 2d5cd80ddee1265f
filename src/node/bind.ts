/**
 * How the driver binds its UDP sockets: as a spec says, a free port when
 * the wanted one is taken (and may be), `0.0.0.0` when a dual-stack `::`
 * cannot be bound, an IPv6 group joined for a per-interface discovery
 * socket.
 *
 * @module
 */
import { logger } from "../common/log.ts";
import type { DaemonIo } from "./options.ts";
import type { SocketSpec } from "./service.ts";
import { BindError, type Transport } from "./transport.ts";

/**
 * Binds one socket as its spec says. A dual-stack `::` that cannot be bound
 * (a host without IPv6) is bound `0.0.0.0` instead: IPv4 only, as with
 * `--no-ipv6`.
 */
export function bind(io: DaemonIo, spec: SocketSpec): Transport {
  try {
    return bindAsSpecified(io, spec);
  } catch (e) {
    if (spec.hostname !== "::" || !(e instanceof BindError) || e.inUse) throw e;
    logger("daemon").warn("Cannot bind UDP [::]:{port} ({error}): IPv4 only", {
      port: spec.port,
      error: (e as Error).message,
    });
    return bindAsSpecified(io, { ...spec, hostname: "0.0.0.0" });
  }
}

/** Binds a socket and joins the IPv6 group its spec names; nothing is left open when either fails. */
export async function bindJoined(io: DaemonIo, spec: SocketSpec): Promise<Transport> {
  const socket = bind(io, spec);
  try {
    if (spec.joinV6) {
      if (!socket.joinMulticastV6) throw new Error("this socket cannot join an IPv6 multicast group");
      await socket.joinMulticastV6(spec.joinV6.group, spec.joinV6.index);
    }
    return socket;
  } catch (e) {
    socket.close();
    throw e;
  }
}

function bindAsSpecified(io: DaemonIo, spec: SocketSpec): Transport {
  if (spec.port === 0) return freePort(io, spec);
  try {
    return io.bindUdp(spec.hostname, spec.port, { reuseAddress: spec.reuseAddress });
  } catch (e) {
    if (!(e instanceof BindError && e.inUse)) throw e;
    if (spec.inUse) throw new Error(spec.inUse, { cause: e });
    if (!spec.fallBackToFreePort) throw e;
    const socket = freePort(io, spec);
    logger("daemon").info("Unicast port {wanted} is in use (another daemon on this host?); using port {port}", {
      wanted: spec.port,
      port: (socket.addr as Deno.NetAddr).port,
    });
    return socket;
  }
}

/**
 * A UDP socket on a port the system picks; with `sameTcpPort`, one whose
 * number is free on TCP too (the system picks UDP and TCP ports apart, so a
 * number free on one can be taken on the other). Sockets whose number is
 * taken on TCP stay open until one is found, so each try is another number
 * (up to 32).
 */
function freePort(io: DaemonIo, spec: SocketSpec): Transport {
  const rejected: Transport[] = [];
  try {
    for (let tries = 1;; tries++) {
      const socket = io.bindUdp(spec.hostname, 0, {});
      if (!spec.sameTcpPort || !io.listenTcp || tries === 32) return socket;
      try {
        io.listenTcp(spec.hostname, (socket.addr as Deno.NetAddr).port).close();
        return socket;
      } catch {
        rejected.push(socket);
      }
    }
  } finally {
    for (const s of rejected) s.close();
  }
}
