/**
 * Runs `lanchat daemon` as a child process (optionally inside a network
 * namespace) and follows its JSON log lines, for integration tests, LAN
 * tests and benchmarks. Every process started here is killed by
 * {@link DaemonProcess.kill} / {@link killAll}, by pid.
 */

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

/**
 * The flags a daemon runs with in tests: exactly the permissions and V8
 * flags of `deno task start`, read from deno.json, so a permission the
 * daemon lacks in real use fails the tests too, and memory is measured as
 * it runs.
 */
export const DAEMON_PERMISSIONS: string[] = daemonFlags(CONFIG);

function daemonFlags(config: string): string[] {
  const tasks = (JSON.parse(Deno.readTextFileSync(config)) as { tasks: Record<string, string> }).tasks;
  return tasks.start!.split(/\s+/).filter((w) => w.startsWith("--allow-") || w.startsWith("--v8-flags="));
}

/** One parsed JSON log line. */
export interface LogLine {
  "@timestamp": string;
  level: string;
  message: string;
  logger: string;
  properties: Record<string, unknown>;
}

const running = new Set<DaemonProcess>();

/** A running daemon process. */
export class DaemonProcess {
  readonly child: Deno.ChildProcess;
  readonly lines: LogLine[] = [];
  readonly rawStderr: string[] = [];
  readonly exited: Promise<Deno.CommandStatus>;
  id = "";
  httpUrl = "";
  unicastPort = 0;
  #waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  #done: Promise<void>;

  /**
   * `options.prefix` runs the daemon under another command that then execs
   * it, e.g. `["prlimit", "--nofile=1024:1024", "--"]`; `options.repo` runs
   * another checkout's daemon (its main.ts, deno.json and flags), for a
   * benchmark's "before" figures.
   */
  constructor(
    args: string[],
    options: { netns?: string; env?: Record<string, string>; prefix?: string[]; repo?: string } = {},
  ) {
    const config = options.repo ? `${options.repo}/deno.json` : CONFIG;
    const deno = [
      Deno.execPath(),
      "run",
      "--config",
      config,
      ...(options.repo ? daemonFlags(config) : DAEMON_PERMISSIONS),
      options.repo ? `${options.repo}/main.ts` : MAIN,
      "daemon",
      "--log-format",
      "json",
      ...args,
    ];
    const wrapped = [...(options.prefix ?? []), ...deno];
    const [cmd, ...rest] = options.netns ? ["ip", "netns", "exec", options.netns, ...wrapped] : wrapped;
    this.child = new Deno.Command(cmd!, {
      args: rest,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: options.env,
    }).spawn();
    running.add(this);
    this.exited = this.child.status;
    this.#done = Promise.all([this.#read(this.child.stderr), this.#read(this.child.stdout)]).then(() => {});
  }

  async #read(stream: ReadableStream<Uint8Array>): Promise<void> {
    const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const text = buf.slice(0, i);
        buf = buf.slice(i + 1);
        this.rawStderr.push(text);
        let line: LogLine;
        try {
          line = JSON.parse(text);
        } catch {
          continue;
        }
        this.lines.push(line);
        const p = line.properties ?? {};
        if (typeof p.unicastPort === "number" && typeof p.id === "string" && /started/.test(line.message)) {
          this.id = p.id;
          this.unicastPort = p.unicastPort;
          this.httpUrl = String(p.http);
        }
        for (const w of [...this.#waiters]) {
          if (w.pred(line)) {
            this.#waiters.splice(this.#waiters.indexOf(w), 1);
            w.resolve(line);
          }
        }
      }
    }
  }

  /** Resolves with the first log line (past or future) matching `pred`. */
  waitFor(pred: (l: LogLine) => boolean, timeoutMs: number, what = "log line"): Promise<LogLine> {
    const found = this.lines.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        resolve: (l: LogLine) => {
          clearTimeout(timer);
          resolve(l);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${what}; log:\n${this.rawStderr.join("\n")}`));
      }, timeoutMs);
      this.#waiters.push(w);
    });
  }

  /** Waits for the "started" line; returns this with id and ports set. */
  async started(timeoutMs = 15_000): Promise<this> {
    await this.waitFor((l) => /started/.test(l.message) && typeof l.properties?.id === "string", timeoutMs, "start");
    return this;
  }

  /** Waits until this daemon logs that peer `id` joined (or restarted). */
  joined(id: string, timeoutMs: number): Promise<LogLine> {
    return this.waitFor(
      (l) => /^Peer (joined|restarted)/.test(l.message) && l.properties?.id === id,
      timeoutMs,
      `peer ${id} to join`,
    );
  }

  /** Waits until this daemon logs that peer `id` left. */
  left(id: string, timeoutMs: number): Promise<LogLine> {
    return this.waitFor(
      (l) => /^Peer left/.test(l.message) && l.properties?.id === id,
      timeoutMs,
      `peer ${id} to leave`,
    );
  }

  /** Sends a signal (if still running). */
  signal(sig: Deno.Signal): void {
    try {
      this.child.kill(sig);
    } catch { /* already gone */ }
  }

  /**
   * Kills the process (SIGKILL), and when it ran in a namespace through
   * `ip netns exec`, that exec'd the daemon in place, so the pid is the
   * daemon's own.
   */
  async kill(): Promise<void> {
    this.signal("SIGKILL");
    await this.exited;
    await this.#done;
    running.delete(this);
  }

  /** Waits for the process to end on its own, returns its status. */
  async wait(): Promise<Deno.CommandStatus> {
    const s = await this.exited;
    await this.#done;
    running.delete(this);
    return s;
  }
}

/** Kills every daemon process still running. */
export async function killAll(): Promise<void> {
  await Promise.all([...running].map((d) => d.kill()));
}

/** A fresh temporary data directory. */
export function tempDataDir(): string {
  return Deno.makeTempDirSync({ prefix: "lanchat-test-" });
}

/** A free UDP port on loopback (bound then released). */
export function freeUdpPort(): number {
  const s = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (s.addr as Deno.NetAddr).port;
  s.close();
  return port;
}

/** A free TCP port on loopback (bound then released). */
export function freeTcpPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Runs the CLI as a child process; returns exit code and output. With
 * `terminal`, on a pseudo-terminal (util-linux `script`): `stdin` is typed
 * into it and `stdout` is all the terminal showed.
 */
export async function runCli(
  args: string[],
  options: { netns?: string; env?: Record<string, string>; stdin?: string; terminal?: boolean } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  let deno = [Deno.execPath(), "run", "--config", CONFIG, ...DAEMON_PERMISSIONS, MAIN, ...args];
  if (options.terminal) {
    const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
    deno = ["script", "-qec", deno.map(quote).join(" "), "/dev/null"];
  }
  const [cmd, ...rest] = options.netns ? ["ip", "netns", "exec", options.netns, ...deno] : deno;
  const child = new Deno.Command(cmd!, {
    args: rest,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: options.env,
  }).spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * Starts a daemon that announces on loopback only (so a test sends nothing
 * to any other address), on discovery port `port`, with free unicast and
 * HTTP ports and short timers.
 */
export function startLoopbackDaemon(
  port: number,
  name: string,
  options: {
    dataDir?: string;
    intervalMs?: number;
    probeMs?: number;
    extra?: string[];
    prefix?: string[];
    /** Another checkout's daemon (see {@link DaemonProcess}). */
    repo?: string;
  } = {},
): DaemonProcess {
  return new DaemonProcess([
    "--interface",
    "lo",
    "--port",
    String(port),
    "--unicast-port",
    "0",
    "--http",
    "127.0.0.1:0",
    "--interval",
    `${options.intervalMs ?? 500}ms`,
    "--probe-timeout",
    `${options.probeMs ?? 500}ms`,
    "--name",
    name,
    "--data-dir",
    options.dataDir ?? tempDataDir(),
    ...(options.extra ?? []),
  ], { prefix: options.prefix, repo: options.repo });
}

/** Polls `pred` every 50 ms until it holds; throws after `ms`, naming `what`. */
export async function until(what: string, pred: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
