/**
 * Installed like a real tool: `lanchat install` from a fresh clone puts a
 * launcher on PATH that runs the CLI with no noise and the daemon so that
 * SIGTERM and Ctrl-C say goodbye and exit 0; `lanchat service` writes a
 * systemd unit that systemd-analyze accepts; completion for bash and zsh.
 */
import assert from "node:assert/strict";
import denoJson from "../../deno.json" with { type: "json" };
import { freeTcpPort, freeUdpPort, tempDataDir } from "../support/daemon_process.ts";
import { LaunchedDaemon } from "../support/launched_daemon.ts";

const REPO = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const dec = new TextDecoder();

async function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function has(tool: string): Promise<boolean> {
  return (await run("sh", ["-c", `command -v ${tool}`]).catch(() => ({ code: 1 }))).code === 0;
}

/** `lanchat daemon` on loopback, on ports no other test uses. */
function loopbackDaemonArgs(http: string): string[] {
  return ["daemon", "--interface", "lo", "--port", String(freeUdpPort()), "--unicast-port", "0", "--http", http];
}

/** Installs from a fresh clone of this repository (its committed state) into a temporary prefix. */
async function installFromClone(): Promise<{ prefix: string; clone: string }> {
  const dir = Deno.makeTempDirSync({ prefix: "lanchat-install-" });
  const clone = `${dir}/clone`;
  const cloned = await run("git", ["clone", "--quiet", REPO, clone]);
  assert.equal(cloned.code, 0, cloned.stderr);
  await installFrom(clone, `${dir}/prefix`);
  return { prefix: `${dir}/prefix`, clone };
}

/** Runs `lanchat install --prefix` from a clone (with `netns`: inside that network namespace, where no registry answers). */
async function installFrom(clone: string, prefix: string, netns?: string) {
  const flags = denoJson.tasks.install.split(/\s+/).filter((w) => w.startsWith("--"));
  const cmd = [Deno.execPath(), "run", ...flags, `${clone}/main.ts`, "install", "--prefix", prefix];
  const r = netns ? await run("ip", ["netns", "exec", netns, ...cmd]) : await run(cmd[0]!, cmd.slice(1));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`wrote ${prefix}/bin/lanchat`));
  return r;
}

Deno.test({
  name:
    "lanchat install from a fresh clone: the launcher runs the CLI quietly, the daemon exits 0 on SIGTERM and SIGINT",
  ignore: !(await has("git")),
  async fn() {
    const { prefix } = await installFromClone();
    const lanchat = `${prefix}/bin/lanchat`;
    assert.ok((Deno.statSync(lanchat).mode! & 0o111) !== 0, "executable");
    const version = await run(lanchat, ["--version"]);
    assert.deepEqual([version.code, version.stdout, version.stderr], [0, `${denoJson.version}\n`, ""]);
    const t0 = performance.now();
    const none = await run(lanchat, ["peers", "--http", `127.0.0.1:${freeTcpPort()}`]);
    console.log(`lanchat peers (no daemon) through the launcher: ${(performance.now() - t0).toFixed(0)} ms`);
    assert.equal(none.code, 3);
    assert.equal(none.stdout, "");
    assert.equal(none.stderr.trim().split("\n").length, 1, `one line, no task runner noise: ${none.stderr}`);
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      const child = new Deno.Command(lanchat, {
        args: [...loopbackDaemonArgs("127.0.0.1:0"), "--data-dir", tempDataDir()],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      let err = "";
      const reading = (async () => {
        for await (const c of child.stderr.pipeThrough(new TextDecoderStream())) err += c;
      })();
      for (let i = 0; i < 200 && !/ started as /.test(err); i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(err, / started as /);
      child.kill(signal); // the launcher exec'd the daemon: this pid is the daemon
      const status = await child.status;
      await reading;
      await child.stdout.cancel();
      assert.equal(status.code, 0, `${signal}: exit ${status.code}\n${err}`);
      assert.match(err, /lanchat stopped; goodbye sent to \d+ targets/);
    }
  },
});

Deno.test("lanchat service writes a systemd unit that runs the launcher and that systemd-analyze verifies", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "lanchat-service-" });
  const launcher = `${dir}/bin/lanchat`;
  Deno.mkdirSync(`${dir}/bin`);
  Deno.writeTextFileSync(launcher, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
  // DENO_DIR: a HOME elsewhere must not make Deno fetch every npm package again (20 s).
  const env = {
    HOME: dir,
    XDG_CONFIG_HOME: `${dir}/config`,
    DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
  };
  const flags = denoJson.tasks.lanchat.split(/\s+/).filter((w) => w.startsWith("--"));
  const cli = (args: string[]) => run(Deno.execPath(), ["run", ...flags, `${REPO}/main.ts`, ...args], env);
  const r = await cli(["service", "install", "--launcher", launcher, "--", "--name", "alice b", "--interval", "1s"]);
  const unit = `${dir}/config/systemd/user/lanchat.service`;
  const text = Deno.readTextFileSync(unit);
  assert.match(r.stdout, new RegExp(`^wrote ${unit}:`));
  assert.match(text, new RegExp(`^ExecStart=${launcher} daemon --name "alice b" --interval 1s$`, "m"));
  assert.match(text, /^KillSignal=SIGTERM$/m);
  assert.match(text, /^WantedBy=default\.target$/m);
  if (r.code === 0) assert.match(r.stdout, /ran systemctl --user enable --now lanchat\.service/);
  else {
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /systemctl --user .* failed: .*\nThe unit is written; once systemd runs for you, enable it with:/,
    );
  }
  const system = await cli(["service", "print", "--system", "--user-name", "lanchat", "--launcher", launcher]);
  assert.match(system.stdout, /^User=lanchat$/m);
  assert.match(system.stdout, /^WantedBy=multi-user\.target$/m);
  if (await has("systemd-analyze")) {
    const v = await run("systemd-analyze", ["verify", unit]);
    assert.equal(v.code, 0, v.stderr);
    assert.doesNotMatch(v.stderr, /lanchat\.service/, v.stderr);
  }
});

Deno.test("completion for bash completes commands, options and option values; zsh's script parses", async () => {
  const flags = denoJson.tasks.lanchat.split(/\s+/).filter((w) => w.startsWith("--"));
  const script = (shell: string) =>
    run(Deno.execPath(), ["run", ...flags, `${REPO}/main.ts`, "completion", shell]).then((r) => r.stdout);
  const bash = await script("bash");
  const complete = async (words: string[]) => {
    const r = await run("bash", [
      "-c",
      `${bash}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${
        words.length - 1
      }; _lanchat; printf '%s\\n' "\${COMPREPLY[@]}"`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim().split("\n").filter(Boolean);
  };
  assert.deepEqual(await complete(["lanchat", "se"]), ["send", "search", "send-file", "service"]);
  assert.deepEqual(await complete(["lanchat", "daemon", "--log-f"]), ["--log-format"]);
  assert.deepEqual(await complete(["lanchat", "daemon", "--log-format", ""]), ["text", "json"]);
  assert.deepEqual(await complete(["lanchat", "peers", "--"]), ["--all", "--json", "--http", "--help"]);
  assert.deepEqual(await complete(["lanchat", "service", ""]), ["install", "uninstall", "print"]);
  const zsh = await script("zsh");
  assert.match(zsh, /^#compdef lanchat/);
  assert.match(zsh, /'--log-format=\[log line format\]:log-format:\(text json\)'/);
  if (await has("zsh")) {
    const path = Deno.makeTempFileSync({ suffix: ".zsh" });
    Deno.writeTextFileSync(path, zsh);
    const r = await run("zsh", ["-n", path]);
    assert.equal(r.code, 0, r.stderr);
  }
});

const isRoot = Deno.uid() === 0;

/** A network namespace with only `lo` up: no route out, so any registry fetch fails. */
async function loopbackOnlyNamespace(): Promise<string> {
  const ns = `lcinst${Deno.pid}${Math.floor(Math.random() * 1e4)}`;
  const add = await run("ip", ["netns", "add", ns]);
  assert.equal(add.code, 0, add.stderr);
  const up = await run("ip", ["-n", ns, "link", "set", "lo", "up"]);
  assert.equal(up.code, 0, up.stderr);
  return ns;
}

/**
 * `argv` as user nobody in `ns`, with nothing of root's environment: HOME an
 * empty folder nobody owns, PATH the system's, no DENO_DIR or XDG_* variable.
 * setpriv execs (runuser would fork a session and catch SIGTERM itself), so
 * the pid is the launcher's, which execs the daemon.
 */
function asNobody(ns: string, home: string, argv: string[]): string[] {
  return [
    "ip",
    "netns",
    "exec",
    ns,
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "--",
    "env",
    "-i",
    `HOME=${home}`,
    "PATH=/usr/local/bin:/usr/bin:/bin",
    ...argv,
  ];
}

Deno.test({
  name: "an installed lanchat runs as another user with an empty HOME and no network: daemon, status, peers, goodbye",
  ignore: !isRoot || !(await has("git")) || !(await has("setpriv")) || !(await has("ip")),
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "lanchat-install-other-" });
    Deno.chmodSync(dir, 0o755); // the prefix is readable by others (a+rX), as /usr/local or /opt is
    const clone = `${dir}/clone`;
    assert.equal((await run("git", ["clone", "--quiet", REPO, clone])).code, 0);
    const ns = await loopbackOnlyNamespace();
    let daemon: LaunchedDaemon | undefined;
    try {
      // Installed with no network too: the npm packages come from the installing user's cache.
      await installFrom(clone, `${dir}/prefix`, ns);
      const lanchat = `${dir}/prefix/bin/lanchat`;
      const home = `${dir}/home`;
      Deno.mkdirSync(home, { mode: 0o700 });
      Deno.chownSync(home, 65534, 65534);
      const cli = async (args: string[]) => {
        const argv = asNobody(ns, home, [lanchat, ...args]);
        return await run(argv[0]!, argv.slice(1));
      };
      const version = await cli(["--version"]);
      assert.deepEqual([version.code, version.stdout], [0, `${denoJson.version}\n`], version.stderr);
      const argv = asNobody(ns, home, [lanchat, "daemon", "--interface", "lo", "--name", "nobody-test"]);
      daemon = new LaunchedDaemon(argv[0]!, argv.slice(1));
      assert.ok(await daemon.started(), daemon.stderr);
      const status = await cli(["status"]);
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, new RegExp(`version ${denoJson.version.replaceAll(".", "\\.")}`));
      assert.match(status.stdout, new RegExp(`data directory: ${home}/\\.local/share/lanchat`));
      const peers = await cli(["peers", "--json"]);
      assert.equal(peers.code, 0, peers.stderr);
      assert.deepEqual(JSON.parse(peers.stdout), []);
      assert.equal(await daemon.stop(), 0, daemon.stderr);
      assert.match(daemon.stderr, /lanchat stopped; goodbye sent to \d+ targets/);
      // Deno kept no cache in HOME: what the run needs is in the install.
      const inHome = [...Deno.readDirSync(home)].map((e) => e.name).sort();
      assert.deepEqual(inHome, [".local"], `HOME holds ${inHome.join(", ")}`);
      // The clone is no longer needed, and the installed command installs itself elsewhere (as `sudo lanchat
      // install --prefix /usr/local` would), still with no network and no cache in root's HOME.
      Deno.removeSync(clone, { recursive: true });
      const rootHome = Deno.makeTempDirSync({ prefix: "lanchat-install-roothome-" });
      const copy = await run("ip", [
        ...["netns", "exec", ns, "env", "-i", `HOME=${rootHome}`, "PATH=/usr/bin:/bin"],
        ...[lanchat, "install", "--prefix", `${dir}/prefix2`],
      ]);
      assert.equal(copy.code, 0, copy.stderr);
      const again = await cli(["--version"]);
      assert.equal(again.code, 0, again.stderr);
      const other = asNobody(ns, home, [`${dir}/prefix2/bin/lanchat`, "--version"]);
      const version2 = await run(other[0]!, other.slice(1));
      assert.deepEqual([version2.code, version2.stdout], [0, `${denoJson.version}\n`], version2.stderr);
      Deno.removeSync(rootHome, { recursive: true });
    } finally {
      await daemon?.kill();
      await run("ip", ["netns", "del", ns]);
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "reinstalling switches to a new copy while a daemon from the old one runs on, and removes copies no process uses",
  ignore: !(await has("git")),
  async fn() {
    const { prefix, clone } = await installFromClone();
    const lib = `${prefix}/lib/lanchat`;
    const lanchat = `${prefix}/bin/lanchat`;
    const first = Deno.readLinkSync(`${lib}/current`);
    const env = { XDG_DATA_HOME: Deno.makeTempDirSync({ prefix: "lanchat-reinstall-data-" }) };
    const http = `127.0.0.1:${freeTcpPort()}`;
    const daemon = new LaunchedDaemon(lanchat, loopbackDaemonArgs(http), env);
    try {
      assert.ok(await daemon.started(), daemon.stderr);
      const second = await installFrom(clone, prefix);
      const now = Deno.readLinkSync(`${lib}/current`);
      assert.notEqual(now, first);
      assert.match(second.stdout, new RegExp(`kept ${lib}/${first}: a lanchat process runs from it`));
      assert.ok(Deno.statSync(`${lib}/${first}/app/main.ts`).isFile, "the running copy is still there");
      // The new launcher's CLI talks to the daemon of the old copy, which still answers and stops cleanly.
      const status = await run(lanchat, ["status", "--http", http], env);
      assert.equal(status.code, 0, status.stderr);
      assert.equal(await daemon.stop(), 0, daemon.stderr);
      assert.match(daemon.stderr, /lanchat stopped; goodbye sent to \d+ targets/);
      // A third install removes both older copies: no process runs from them any more.
      const third = await installFrom(clone, prefix);
      const last = Deno.readLinkSync(`${lib}/current`);
      assert.match(third.stdout, new RegExp(`removed ${lib}/${first}\n`));
      assert.match(third.stdout, new RegExp(`removed ${lib}/${now}\n`));
      assert.deepEqual([...Deno.readDirSync(lib)].map((e) => e.name).sort(), [last, "current"].sort());
      assert.equal((await run(lanchat, ["--version"])).stdout, `${denoJson.version}\n`);
    } finally {
      await daemon.kill();
      Deno.removeSync(clone.replace(/\/clone$/, ""), { recursive: true });
      Deno.removeSync(env.XDG_DATA_HOME, { recursive: true });
    }
  },
});
