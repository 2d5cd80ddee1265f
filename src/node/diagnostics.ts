/**
 * What the daemon knows that `lanchat doctor` needs (`GET /diagnostics`):
 * the interfaces it announces on, its ports, the last hello per source
 * address, per peer the evidence that it hears us (reachability), its
 * version and clock offset, and the sources whose sealed datagrams were
 * refused for their send time. Read-only: it asks the link and builds JSON;
 * the findings and their fixes are the CLI's (cli/doctor_findings.ts).
 *
 * @module
 */
import type { DiagnosticsJson } from "../api/diagnostics_json.ts";
import { VERSION } from "../common/version.ts";
import { REPLAY_WINDOW_MS } from "../security/seal.ts";
import type { LanchatService } from "./services/lanchat.ts";

/** What the driver tells the diagnostics about itself. */
export interface DiagnosticsFacts {
  dataDir: string;
  ports: { discovery: number; unicast: number; http: number };
  now: number;
  uptimeMs: number;
}

export class Diagnostics {
  #lanchat: LanchatService;
  #o: { keyFile?: string; downloads?: string; filePort: () => number | null };

  constructor(lanchat: LanchatService, o: { keyFile?: string; downloads?: string; filePort: () => number | null }) {
    this.#lanchat = lanchat;
    this.#o = o;
  }

  json(f: DiagnosticsFacts): DiagnosticsJson {
    const l = this.#lanchat;
    const d = l.discovery;
    const ago = (t: number | undefined) => t === undefined ? null : Math.max(0, Math.round(f.now - t));
    const c = d.counters;
    return {
      version: VERSION,
      pid: Deno.pid,
      uptimeMs: Math.round(f.uptimeMs),
      dataDir: f.dataDir,
      ...(this.#o.keyFile ? { keyFile: this.#o.keyFile } : {}),
      ...(this.#o.downloads ? { downloads: this.#o.downloads } : {}),
      group: l.admission.sealer ? "keyed" : "open",
      replayWindowMs: REPLAY_WINDOW_MS,
      ports: { ...f.ports, file: this.#o.filePort() },
      announceIntervalMs: d.announceIntervalMs,
      interfaces: l.targets.interfaces.map((i) => ({ ...i })),
      broadcastTargets: d.targets.broadcast.map((e) => `${e.address}:${e.port}`),
      staticPeers: d.targets.peers.map((e) => `${e.address}:${e.port}`),
      ownEchoes: c.dropped.self,
      hellosIn: c.received.hello,
      checksSent: c.checksSent,
      peersJoined: c.peersJoined,
      peersLeft: { ...c.peersLeft },
      failureDetector: { ...c.detector, removedAfterSuspicion: c.removedAfterSuspicion },
      helloSources: [...d.reach.helloSources()].map(([address, at]) => ({ address, agoMs: ago(at)! })),
      peers: d.roster.peers().map((p) => {
        const r = d.reach.of(p.id, f.now);
        return {
          id: p.id,
          name: p.name,
          hostname: p.hostname,
          version: p.version,
          address: p.addresses[0]?.address ?? "",
          intervalMs: p.interval,
          ...(p.clockOffset !== undefined ? { clockOffsetMs: p.clockOffset } : {}),
          helloAgoMs: ago(r?.helloAt),
          answerAgoMs: ago(r?.answerAt),
          checksUnanswered: r?.unanswered ?? 0,
        };
      }),
      skewRejected: l.skews.entries().map((e) => ({
        address: e.address,
        count: e.count,
        aheadMs: e.aheadMs,
        agoMs: ago(e.at)!,
      })),
    };
  }
}
