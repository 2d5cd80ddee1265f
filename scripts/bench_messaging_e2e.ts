/**
 * The messaging bench's encrypted-versus-clear figure (issue 25: acked
 * messages/s end-to-end encrypted ≥ 90 % of unencrypted): two daemons of
 * this checkout, which encrypt every message end to end, beside two of the
 * last commit before end-to-end encryption was wired into the link (a git
 * worktree, removed after), in the same run, on loopback, in alternating
 * rounds so that the load of the machine falls on both alike. The medians
 * are compared.
 *
 * @module
 */
import { type DaemonProcess, freeUdpPort, startLoopbackDaemon } from "../tests/support/daemon_process.ts";

/** The last commit of main before e2e reached the lanchat link (its merge base with e2e/link). */
export const PLAIN_REV = "9af468c";

export interface E2eVersusPlain {
  rev: string;
  rounds: number;
  messages: number;
  encrypted: number[];
  plain: number[];
  medians: { encrypted: number; plain: number };
  ratio: number;
  /** CPU µs both daemons spent per acked message, each round, and the medians. */
  cpuMicrosPerMessage: { encrypted: number[]; plain: number[]; medians: { encrypted: number; plain: number } };
}

/** CPU seconds (user + system) the daemons of `pair` have used, from /proc. */
function cpuSeconds(pair: readonly DaemonProcess[]): number {
  return pair.reduce((n, d) => {
    const f = Deno.readTextFileSync(`/proc/${d.child.pid}/stat`).split(") ")[1]!.split(" ");
    return n + Number(f[11]) + Number(f[12]);
  }, 0) / 100;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/**
 * Acked messages/s, batches posted (`throughput` is the bench's own
 * measure), between two daemons of this checkout and two of `rev`.
 */
export async function e2eVersusPlain(o: {
  rev?: string;
  rounds: number;
  messages: number;
  throughput: (a: DaemonProcess, b: DaemonProcess) => Promise<number>;
}): Promise<E2eVersusPlain> {
  const rev = o.rev ?? PLAIN_REV;
  const repo = new URL("..", import.meta.url).pathname;
  const tree = `${Deno.makeTempDirSync({ prefix: "lanchat-bench-plain-" })}/tree`;
  const git = async (args: string[]) => {
    const out = await new Deno.Command("git", { args: ["-C", repo, ...args], stdout: "null", stderr: "piped" })
      .output();
    if (!out.success) throw new Error(`git ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  };
  await git(["worktree", "add", "--detach", tree, rev]);
  const started: DaemonProcess[] = [];
  try {
    const pair = async (repoDir?: string) => {
      const port = freeUdpPort();
      const a = startLoopbackDaemon(port, "bench-a", { intervalMs: 2000, repo: repoDir });
      const b = startLoopbackDaemon(port, "bench-b", { intervalMs: 2000, repo: repoDir });
      started.push(a, b);
      await Promise.all([a.started(), b.started()]);
      await a.joined(b.id, 10_000);
      return [a, b] as const;
    };
    const e2e = await pair();
    const plain = await pair(tree);
    const encrypted: number[] = [];
    const clear: number[] = [];
    const cpu = { encrypted: [] as number[], plain: [] as number[] };
    // CPU both daemons spend per acked message: unlike messages/s, not moved much by what else the machine runs.
    const timed = async (pair: readonly [DaemonProcess, DaemonProcess], into: number[]) => {
      const c0 = cpuSeconds(pair);
      const rate = await o.throughput(...pair);
      into.push(Math.round((cpuSeconds(pair) - c0) / o.messages * 1e6));
      return rate;
    };
    for (let r = 0; r < o.rounds; r++) {
      encrypted.push(await timed(e2e, cpu.encrypted));
      clear.push(await timed(plain, cpu.plain));
    }
    const status = await (await fetch(`${e2e[0].httpUrl}/status`)).json();
    const sealed = status.security?.e2e?.counters?.sealed ?? 0;
    if (sealed < o.messages) throw new Error(`the e2e pair sealed ${sealed} datagrams for ${o.messages} messages`);
    const medians = { encrypted: median(encrypted), plain: median(clear) };
    return {
      rev,
      rounds: o.rounds,
      messages: o.messages,
      encrypted,
      plain: clear,
      medians,
      ratio: Math.round((medians.encrypted / medians.plain) * 1000) / 1000,
      cpuMicrosPerMessage: { ...cpu, medians: { encrypted: median(cpu.encrypted), plain: median(cpu.plain) } },
    };
  } finally {
    await Promise.all(started.map((d) => d.kill()));
    await git(["worktree", "remove", "--force", tree]).catch(() => {});
  }
}
