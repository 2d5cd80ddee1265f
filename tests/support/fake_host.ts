/**
 * A host on a fake network (src/node/transport.ts FakeNetwork) for a daemon
 * started in-process: fake sockets and interfaces, no packet on any real
 * interface; `peer.example` resolves to 198.18.1.9, every other name fails.
 */
import type { DaemonIo } from "../../src/node/daemon.ts";
import type { InterfaceAddress } from "../../src/node/net_address.ts";
import type { FakeNetwork } from "../../src/node/transport.ts";

/** An eth0 interface with `address` in a /24. */
export const eth0 = (address: string): InterfaceAddress => ({
  name: "eth0",
  family: "IPv4",
  address,
  netmask: "255.255.255.0",
});

/** The host at `address` on `net`, with `interfaces` (default: eth0 with that address). */
export function fakeHost(
  net: FakeNetwork,
  address: string,
  interfaces: () => InterfaceAddress[] = () => [eth0(address)],
): DaemonIo {
  return {
    bindUdp: (_h, port) => net.bind(address, port),
    readInterfaces: () => ({ addresses: interfaces(), down: new Set() }),
    resolve: (host) =>
      host === "peer.example" ? Promise.resolve(["198.18.1.9"]) : Promise.reject(new Error("NXDOMAIN")),
    now: () => performance.now(),
    hostname: () => `host-${address}`,
    env: (name) => name === "USER" ? "tester" : undefined,
  };
}
