/**
 * Runs `lanchat daemon` as a child process (optionally inside a network
 * namespace) and follows its JSON log lines, for integration tests, LAN
 * tests and benchmarks. Every process started here is killed by
 * {@link DaemonProcess.kill} / {@link killAll}, by pid.
 */

import { DEFAULT_HTTP } from "../../src/node/options.ts";

export const MAIN = new URL("../../main.ts", import.meta.url).pathname;
export const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

/**
 * The flags a daemon runs with in tests: exactly the permissions and V8
 * flags of `deno task start`, read from deno.json, so a permission the
 * daemon lacks in real use fails the tests too, and memory is measured as
 * it runs.
 */
export const DAEMON_PERMISSIONS: string[] = daemonFlags(CONFIG);
/** The CLI's permissions: deno.json's `lanchat` task, as the installed launcher has them. */
export const CLI_PERMISSIONS: string[] = daemonFlags(CONFIG, "lanchat");

function daemonFlags(config: string, task = "start"): string[] {
  const tasks = (JSON.parse(Deno.readTextFileSync(config)) as { tasks: Record<string, string> }).tasks;
  return tasks[task]!.split(/\s+/).filter((w) => w.startsWith("--allow-") || w.startsWith("--v8-flags="));
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

/**
 * The owner's token of each daemon started here, by where the test reaches
 * it: `netns origin` (netns empty outside a namespace). The API answers its
 * owner only; tests are the owner, so their requests carry the token as the
 * CLI's do, without each test saying so (see {@link ownerFetch}).
 */
const tokens = new Map<string, string>();
const key = (netns: string | undefined, url: string) => `${netns ?? ""} ${new URL(url).origin}`;

/** `fetch` as it is, without the owner's token: what another user of the host, or another site, sends. */
export const strangerFetch: typeof fetch = globalThis.fetch.bind(globalThis);

/**
 * `fetch` as the daemons' owner: a request to a daemon started here (outside
 * a namespace) carries its bearer token, unless the request sets its own
 * `Authorization` or `Cookie` (a test of the token itself, or of the page's
 * session). Installed as `globalThis.fetch` by this module, so that tests
 * written before the API wanted a token on loopback run as they were.
 */
export const ownerFetch: typeof fetch = (input, init) => {
  const url = input instanceof Request ? input.url : String(input);
  let token: string | undefined;
  try {
    token = tokens.get(key(undefined, url));
  } catch { /* not a URL: fetch says so */ }
  const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
  if (token === undefined || headers.has("authorization") || headers.has("cookie")) {
    return strangerFetch(input, init);
  }
  headers.set("authorization", `Bearer ${token}`);
  return strangerFetch(input, { ...init, headers });
};
globalThis.fetch = ownerFetch;

/** Where `args` (a daemon's flags) and `env` put its token file. */
function tokenFileOf(args: string[], env: Record<string, string> | undefined): string | undefined {
  const flag = (name: string) => {
    const i = args.lastIndexOf(name);
    return i >= 0 ? args[i + 1] : args.findLast((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
  };
  const file = flag("--http-token-file");
  if (file) return file;
  const dir = flag("--data-dir");
  if (dir) return `${dir}/http_token`;
  const get = (n: string) => env?.[n] ?? Deno.env.get(n);
  const xdg = get("XDG_DATA_HOME");
  const home = get("HOME");
  return xdg ? `${xdg}/lanchat/http_token` : home ? `${home}/.local/share/lanchat/http_token` : undefined;
}

/** A running daemon process. */
export class DaemonProcess {
  readonly child: Deno.ChildProcess;
  readonly lines: LogLine[] = [];
  readonly rawStderr: string[] = [];
  readonly exited: Promise<Deno.CommandStatus>;
  id = "";
  httpUrl = "";
  unicastPort = 0;
  /** The owner's bearer token (from its token file, once started), or undefined (an older daemon's, with none). */
  token: string | undefined;
  readonly #tokenFile: string | undefined;
  readonly #netns: string | undefined;
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
    this.#tokenFile = tokenFileOf(args, options.env);
    this.#netns = options.netns;
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
          this.#learnToken();
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

  /** Reads the token file the daemon made or read before it said it started. */
  #learnToken(): void {
    try {
      this.token = Deno.readTextFileSync(this.#tokenFile!).trim() || undefined;
    } catch { /* none: a daemon of a version before tokens on loopback */ }
    if (this.token !== undefined && /^http:\/\/(127\.|localhost|\[::1\])/.test(this.httpUrl)) {
      tokens.set(key(this.#netns, this.httpUrl), this.token);
    }
  }

  /** `{authorization: "Bearer …"}` for this daemon, for requests made other than by `fetch` (curl, raw sockets). */
  authHeader(): Record<string, string> {
    return this.token === undefined ? {} : { authorization: `Bearer ${this.token}` };
  }

  /** A one-time link that opens this daemon's web page, from `lanchat web --print` as its owner. */
  async webLink(): Promise<string> {
    const out = await runCli(["web", "--print", "--http", this.httpUrl.replace(/^http:\/\//, "")], {
      netns: this.#netns,
    });
    if (out.code !== 0) throw new Error(`lanchat web --print failed (${out.code}): ${out.stderr}`);
    return out.stdout.trim();
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
  let deno = [Deno.execPath(), "run", "--config", CONFIG, ...CLI_PERMISSIONS, MAIN, ...args];
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
    env: ownerEnv(args, options),
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
 * The CLI's environment as the owner of the daemon it talks to (a daemon
 * started here, named by `--http` or `LANCHAT_HTTP`): its token in
 * `LANCHAT_HTTP_TOKEN`, as the owner's CLI reads it from the default data
 * directory, which test daemons do not use. A test that sets
 * `LANCHAT_HTTP_TOKEN` or `HOME` itself gets what it set.
 */
export function ownerEnv(
  args: string[],
  options: { netns?: string; env?: Record<string, string> } = {},
): Record<string, string> | undefined {
  const env = options.env;
  if (env?.LANCHAT_HTTP_TOKEN !== undefined || env?.HOME !== undefined || env?.XDG_DATA_HOME !== undefined) return env;
  const i = args.lastIndexOf("--http");
  // As the CLI chooses: --http, else $LANCHAT_HTTP, else the default (a daemon in a namespace often has it).
  const where = (i >= 0 ? args[i + 1] : env?.LANCHAT_HTTP ?? Deno.env.get("LANCHAT_HTTP")) ||
    `${DEFAULT_HTTP.hostname}:${DEFAULT_HTTP.port}`;
  let token: string | undefined;
  try {
    token = tokens.get(key(options.netns, /^https?:\/\//.test(where) ? where : `http://${where}`));
  } catch { /* malformed: the CLI says so */ }
  return token === undefined ? env : { ...env, LANCHAT_HTTP_TOKEN: token };
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
    /** Environment variables set for the daemon, on top of the test's. */
    env?: Record<string, string>;
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
  ], { prefix: options.prefix, repo: options.repo, env: options.env });
}

/** Polls `pred` every 50 ms until it holds; throws after `ms`, naming `what`. */
export async function until(what: string, pred: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
