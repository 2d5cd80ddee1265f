/**
 * A sending daemon for file tests whose file port is sure to be served: the
 * file port is the unicast UDP port's number over TCP, and a random UDP port
 * may be taken over TCP (by an outgoing connection of anything on the host),
 * in which case the daemon cannot serve files and says so. A daemon that
 * says so is stopped and started again on another port.
 */
import { type DaemonProcess, startLoopbackDaemon } from "./daemon_process.ts";

/** A port free for both UDP and TCP on every address (bound then released). */
export function freeFilePort(): number {
  for (let i = 0; i < 50; i++) {
    const l = Deno.listen({ hostname: "0.0.0.0", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    try {
      Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port }).close();
      return port;
    } catch {
      continue;
    } finally {
      l.close();
    }
  }
  throw new Error("No port is free for both UDP and TCP");
}

/** {@link startLoopbackDaemon}, on a unicast port whose file port it could bind (three tries). */
export async function startServingDaemon(
  discoveryPort: number,
  name: string,
  options: Parameters<typeof startLoopbackDaemon>[2] = {},
): Promise<DaemonProcess> {
  for (let i = 0;; i++) {
    const d = await startLoopbackDaemon(discoveryPort, name, {
      ...options,
      extra: [...(options.extra ?? []), "--unicast-port", String(freeFilePort())],
    }).started();
    if (!d.lines.some((l) => /^Cannot serve files/.test(l.message)) || i === 2) return d;
    await d.kill();
  }
}
