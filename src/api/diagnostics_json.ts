/** The JSON of `GET /diagnostics` (routes/diagnostics.ts), which `lanchat doctor` reads. */
import type { DetectorCounters } from "../protocol/failure_detector.ts";

/** The JSON of `GET /diagnostics`. Times are ms ago (null: never). */
export interface DiagnosticsJson {
  version: string;
  pid: number;
  uptimeMs: number;
  dataDir: string;
  /** The network key file (absent in an open group). */
  keyFile?: string;
  downloads?: string;
  group: "keyed" | "open";
  /** How far a sealed datagram's send time may be from our clock. */
  replayWindowMs: number;
  /** `file` is the TCP file port (null: no file service). */
  ports: { discovery: number; unicast: number; http: number; file: number | null };
  announceIntervalMs: number;
  /** The interfaces announced on, with their directed broadcast. */
  interfaces: { interface: string; address: string; broadcast: string }[];
  broadcastTargets: string[];
  staticPeers: string[];
  /** This node's own broadcasts heard back (a sign its broadcasts leave and loop back). */
  ownEchoes: number;
  hellosIn: number;
  /** Pings sent to ask whether a peer heard only by its hellos hears us. */
  checksSent: number;
  /** Peers that joined since the daemon started (absent from a daemon before issue 27's fixes). */
  peersJoined?: number;
  /** Peers that left since, by how: a goodbye, or silence (timed out). */
  peersLeft?: { goodbye: number; timeout: number };
  /**
   * The failure detector's counters (absent from a daemon before it): probe pings, indirect probes asked and
   * relayed, suspicions raised and taken, refutations of suspicions of this node, suspicions ended refuted or by
   * the last check, and peers removed by that check.
   */
  failureDetector?: DetectorCounters & { removedAfterSuspicion: number };
  /** The last hello from each source address. */
  helloSources: { address: string; agoMs: number }[];
  peers: {
    id: string;
    name: string;
    hostname: string;
    version: string;
    address: string;
    intervalMs: number;
    /** How far ahead of ours its clock is, from its last hello. */
    clockOffsetMs?: number;
    helloAgoMs: number | null;
    /** Its last packet to our unicast socket (proof that it hears us). */
    answerAgoMs: number | null;
    /** Check pings it left unanswered since it last answered. */
    checksUnanswered: number;
  }[];
  /** Sources whose sealed datagrams were refused for their send time (a clock off by more than the window). */
  skewRejected: { address: string; count: number; aheadMs: number; agoMs: number }[];
}
