/**
 * A private D-Bus session bus for tests: `dbus-daemon --session` on a
 * socket in a temporary folder, the processes run on it (a notification
 * server that prints what it is asked to show, tests/support/notify_server.py;
 * `dbus-monitor`), all killed by pid after the test. Ignored, with the
 * reason, without dbus-daemon, gdbus or python3-gi.
 */
import { type DaemonProcess, freeUdpPort, killAll, startLoopbackDaemon, until } from "./daemon_process.ts";

export const NOTIFY_SERVER = new URL("./notify_server.py", import.meta.url).pathname;
const has = (cmd: string, args: string[]) =>
  new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output().then((o) => o.success, () => false);
export const missing = !(await has("dbus-daemon", ["--version"]))
  ? "dbus-daemon is not installed"
  : !(await has("gdbus", ["help"]))
  ? "gdbus is not installed (libglib2.0-bin)"
  : !(await has("/usr/bin/python3", ["-c", "from gi.repository import Gio"]))
  ? "python3-gi is not installed"
  : undefined;
if (missing) console.warn(`session bus tests ignored: ${missing}`);

/** A child process whose stdout lines are kept; killed by pid. */
export class Child {
  readonly lines: string[] = [];
  readonly child: Deno.ChildProcess;
  readonly done: Promise<void>;
  constructor(cmd: string, args: string[], env: Record<string, string> = {}) {
    const child = this.child = new Deno.Command(cmd, { args, env, stdin: "null", stdout: "piped", stderr: "null" })
      .spawn();
    this.done = (async () => {
      let buf = "";
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        const parts = buf.split("\n");
        buf = parts.pop()!;
        this.lines.push(...parts);
      }
    })();
  }
  async waitFor(pred: (line: string) => boolean, what: string, ms = 10_000): Promise<string> {
    await until(what, () => Promise.resolve(this.lines.some(pred)), ms);
    return this.lines.find(pred)!;
  }
  async kill(): Promise<void> {
    try {
      this.child.kill("SIGTERM");
    } catch { /* gone */ }
    await this.child.status;
    await this.done.catch(() => {});
  }
}

/** A private session bus in a temporary folder, and whatever runs on it; all gone after. */
export function busTest(
  name: string,
  fn: (bus: { address: string; run: (c: string, a: string[]) => Child }) => Promise<void>,
  /** Why else the test cannot run here (a missing browser), if it cannot. */
  alsoMissing?: string,
) {
  Deno.test({
    name,
    ignore: missing !== undefined || alsoMissing !== undefined,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const dir = await Deno.makeTempDir();
      const address = `unix:path=${dir}/bus`;
      const children: Child[] = [];
      const run = (cmd: string, args: string[]) => {
        children.push(new Child(cmd, args, { DBUS_SESSION_BUS_ADDRESS: address }));
        return children.at(-1)!;
      };
      try {
        const bus = new Child("dbus-daemon", ["--session", "--nofork", "--nopidfile", `--address=${address}`]);
        children.push(bus);
        await until("the session bus", () => Deno.stat(`${dir}/bus`).then(() => true, () => false), 10_000);
        await fn({ address, run });
      } finally {
        await killAll();
        for (const c of children.reverse()) await c.kill();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    },
  });
}

export interface Shown {
  summary: string;
  body: string;
  id: number;
  replaces: number;
  app: string;
  hints: Record<string, string>;
}
export const shown = (server: Child): Shown[] =>
  server.lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));

/** alice, whose daemon has the session bus at `address`, and bob (named `bobName`), who see each other. */
export async function alicePair(
  address: string,
  bobName = "bob",
): Promise<{ alice: DaemonProcess; bob: DaemonProcess }> {
  const port = freeUdpPort();
  const alice = await startLoopbackDaemon(port, "alice", { env: { DBUS_SESSION_BUS_ADDRESS: address } }).started();
  const bob = await startLoopbackDaemon(port, bobName).started();
  await alice.joined(bob.id, 5000);
  await bob.joined(alice.id, 5000);
  return { alice, bob };
}

/** `dbus-monitor` watching the notification server's interface, once it listens. */
export async function notificationMonitor(run: (c: string, a: string[]) => Child): Promise<Child> {
  const monitor = run("dbus-monitor", ["--session", "interface='org.freedesktop.Notifications'"]);
  await monitor.waitFor((l) => l.includes("NameAcquired"), "dbus-monitor");
  return monitor;
}
