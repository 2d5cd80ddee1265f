/**
 * Whether an address is on one of this host's subnets (its broadcasts reach
 * us), from the interfaces announced on: a node there needs no unicast
 * hellos besides the broadcast.
 *
 * @module
 */
import { type BroadcastTarget, parseIPv4 } from "./net_address.ts";
import type { DaemonIo } from "./options.ts";

export class OnLink {
  /** [network, mask, the interface address] of each subnet. */
  #subnets: [number, number, string][] = [];

  /** Re-reads the netmasks of the interfaces in `targets`. */
  refresh(io: DaemonIo, targets: readonly BroadcastTarget[]): void {
    const want = new Set(targets.map((t) => t.address));
    const subnets: [number, number, string][] = [];
    try {
      for (const a of io.readInterfaces().addresses) {
        const [addr, mask] = [parseIPv4(a.address), parseIPv4(a.netmask)];
        if (want.has(a.address) && addr !== undefined && mask !== undefined) {
          subnets.push([(addr & mask) >>> 0, mask, a.address]);
        }
      }
    } catch {
      return; // Targets warns about unreadable interfaces; the last subnets stay
    }
    this.#subnets = subnets;
  }

  /**
   * Whether `address` is the network or the directed-broadcast address of
   * one of these subnets (of a /30 or wider): never a peer's.
   */
  edge(address: string): boolean {
    const a = parseIPv4(address);
    if (a === undefined) return false;
    return this.#subnets.some(([net, mask]) =>
      (mask >>> 0) <= 0xfffffffc && (a === net || a === ((net | ~mask) >>> 0))
    );
  }

  /** Whether `address` is on the subnet of this host's interface address `local`. */
  within(address: string, local: string): boolean {
    const a = parseIPv4(address);
    return a !== undefined && this.#subnets.some(([net, mask, l]) => l === local && ((a & mask) >>> 0) === net);
  }

  has(address: string): boolean {
    const a = parseIPv4(address);
    return a !== undefined && this.#subnets.some(([net, mask]) => ((a & mask) >>> 0) === net);
  }
}
