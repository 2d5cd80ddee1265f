/**
 * lanchat's datagrams and bytes counted by the mechanism that carried them,
 * both ways, for `/metrics` and `/status`: `ipv4-broadcast` (the discovery
 * socket's directed broadcasts), `ipv6-multicast` (the link-local group on
 * each IPv6 interface) and `unicast` (everything to or from one peer: hello
 * replies, probes, messages, `--peer` announces), and `mdns` (DNS-SD
 * queries and answers, counted by the mDNS service). Every mechanism is
 * always listed, at 0 when unused.
 *
 * @module
 */
import { labelValue, type MetricsWriter } from "./metrics.ts";

/** The mechanisms always listed. */
export const MECHANISMS = ["ipv4-broadcast", "ipv6-multicast", "unicast", "mdns"] as const;
export type Mechanism = typeof MECHANISMS[number];

/** Datagrams and bytes one way by one mechanism. */
export interface TrafficCount {
  datagrams: number;
  bytes: number;
}

export class Traffic {
  readonly sent = new Map<string, TrafficCount>();
  readonly received = new Map<string, TrafficCount>();

  constructor() {
    for (const m of MECHANISMS) {
      this.sent.set(m, { datagrams: 0, bytes: 0 });
      this.received.set(m, { datagrams: 0, bytes: 0 });
    }
  }

  /** Counts one datagram of `bytes` sent or received by `mechanism`. */
  count(direction: "sent" | "received", mechanism: string, bytes: number): void {
    const map = this[direction];
    let c = map.get(mechanism);
    if (!c) map.set(mechanism, c = { datagrams: 0, bytes: 0 });
    c.datagrams++;
    c.bytes += bytes;
  }

  /** `{sent: {mechanism: {datagrams, bytes}}, received: {…}}` for `/status`. */
  json(): Record<"sent" | "received", Record<string, TrafficCount>> {
    return {
      sent: Object.fromEntries([...this.sent].map(([k, v]) => [k, { ...v }])),
      received: Object.fromEntries([...this.received].map(([k, v]) => [k, { ...v }])),
    };
  }

  metrics(m: MetricsWriter): void {
    const rows = (key: keyof TrafficCount) =>
      (["sent", "received"] as const).flatMap((d) =>
        [...this[d]].map(([mech, c]) =>
          [`{direction="${d}",mechanism="${labelValue(mech)}"}`, c[key]] as [string, number]
        )
      );
    m.metric(
      "lanchat_traffic_datagrams_total",
      "counter",
      "lanchat datagrams by direction and the mechanism that carried them (ipv4-broadcast, ipv6-multicast, unicast, mdns).",
      rows("datagrams"),
    );
    m.metric(
      "lanchat_traffic_bytes_total",
      "counter",
      "lanchat datagram bytes by direction and the mechanism that carried them.",
      rows("bytes"),
    );
  }
}
