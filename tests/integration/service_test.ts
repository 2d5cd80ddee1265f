/**
 * `lanchat service install|print` checks the daemon flags with the daemon's
 * own parser before writing anything (exit 2 with its message), makes every
 * path absolute, and writes a system unit that runs the daemon as a dynamic
 * user in a sandbox: systemd-analyze verifies it and rates its exposure, and
 * its exact ExecStart runs as such a user, with what systemd would give it
 * (a state directory, the key as a credential, a read-only system, no home
 * folders) in a network namespace of its own.
 *
 * There is no systemd as PID 1 here, so the unit is not started by systemd:
 * the sandbox directives systemd alone applies (the system call filter,
 * RestrictAddressFamilies) are not exercised.
 */
import assert from "node:assert/strict";
import denoJson from "../../deno.json" with { type: "json" };
import { LaunchedDaemon } from "../support/launched_daemon.ts";

const REPO = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const dec = new TextDecoder();
const CLI_FLAGS = denoJson.tasks.lanchat.split(/\s+/).filter((w) => w.startsWith("--"));

async function run(cmd: string, args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}) {
  const out = await new Deno.Command(cmd, { args, ...opts, stdout: "piped", stderr: "piped" }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function has(tool: string): Promise<boolean> {
  return (await run("sh", ["-c", `command -v ${tool}`]).catch(() => ({ code: 1 }))).code === 0;
}

/** Deno's cache of this test run: a HOME elsewhere must not make Deno fetch every npm package again. */
const DENO_DIR = Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`;

/** This checkout's CLI, run in `cwd`, with HOME there too. */
function cli(cwd: string, args: string[]) {
  return run(Deno.execPath(), ["run", ...CLI_FLAGS, `${REPO}/main.ts`, ...args], {
    cwd,
    env: { HOME: cwd, XDG_CONFIG_HOME: `${cwd}/config`, DENO_DIR },
  });
}

/** A folder with a launcher stand-in at bin/lanchat (systemd-analyze verify wants an executable) and a network key. */
async function workDir(): Promise<{ dir: string; launcher: string }> {
  const dir = Deno.makeTempDirSync({ prefix: "lanchat-service-" });
  Deno.mkdirSync(`${dir}/bin`);
  Deno.writeTextFileSync(`${dir}/bin/lanchat`, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
  const key = await cli(dir, ["keygen", "net.key"]);
  assert.equal(key.code, 0, key.stderr);
  return { dir, launcher: `${dir}/bin/lanchat` };
}

/** The ExecStart line of a unit. */
function execStart(unit: string): string {
  return /^ExecStart=(.*)$/m.exec(unit)?.[1] ?? "";
}

Deno.test("service install and print refuse flags the daemon would refuse, with its parser's message, exit 2, writing nothing", async () => {
  const { dir, launcher } = await workDir();
  try {
    const cases: [string[], RegExp][] = [
      [["--bogus"], /unknown option '--bogus'/],
      [["--interval", "soon"], /'--interval <duration>' argument 'soon' is invalid\. "soon" is not a duration/],
      [["--key-file", "missing.key"], /Cannot read key file missing\.key/],
      [["--name"], /option '--name <name>' argument missing/],
      [["stray"], /too many arguments for 'daemon'/],
    ];
    for (const [flags, message] of cases) {
      for (const command of [["install", "--no-enable"], ["print"], ["print", "--system"]]) {
        const r = await cli(dir, ["service", ...command, "--launcher", launcher, "--", ...flags]);
        assert.equal(r.code, 2, `${command.join(" ")} -- ${flags.join(" ")}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /^lanchat: Daemon flag refused: /);
        assert.match(r.stderr, message);
        assert.equal(r.stdout, "");
      }
    }
    assert.throws(() => Deno.statSync(`${dir}/config/systemd/user/lanchat.service`), Deno.errors.NotFound);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("service install makes every path flag absolute against the folder it runs in, and quotes what systemd would expand", async () => {
  const { dir, launcher } = await workDir();
  try {
    const r = await cli(dir, [
      ...["service", "install", "--no-enable", "--launcher", "bin/lanchat", "--"],
      ...["--key-file", "net.key", "--data-dir", "./d", "--downloads=dl/../files", "--http-token-file", "t/tok"],
      ...["--name", 'a "b" 50% $HOME', "--away-reply", "back\nsoon", "--interval", "1s"],
    ]);
    assert.equal(r.code, 0, r.stderr);
    const unit = Deno.readTextFileSync(`${dir}/config/systemd/user/lanchat.service`);
    assert.equal(
      execStart(unit),
      `${launcher} daemon --key-file ${dir}/net.key --data-dir ${dir}/d --downloads ${dir}/files ` +
        `--http-token-file ${dir}/t/tok --name "a \\"b\\" 50%% $$HOME" --away-reply "back\\x0asoon" --interval 1s`,
    );
    // LANCHAT_KEY_FILE, which the daemon would read in this shell, becomes a flag: systemd would not pass it on.
    const env = await run(Deno.execPath(), ["run", ...CLI_FLAGS, `${REPO}/main.ts`, "service", "print"], {
      cwd: dir,
      env: { HOME: dir, DENO_DIR, LANCHAT_KEY_FILE: "net.key" },
    });
    assert.equal(env.code, 0, env.stderr);
    assert.equal(execStart(env.stdout), `${dir}/.local/bin/lanchat daemon --key-file ${dir}/net.key`);
    if (await has("systemd-analyze")) {
      const v = await run("systemd-analyze", ["verify", `${dir}/config/systemd/user/lanchat.service`]);
      assert.equal(v.code, 0, v.stderr);
      assert.doesNotMatch(v.stderr, /lanchat\.service/, v.stderr);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "service --system: a dynamic user, state in /var/lib/lanchat, the key as a credential, sandboxed; verified and rated",
  ignore: !(await has("systemd-analyze")),
  async fn() {
    const { dir, launcher } = await workDir();
    try {
      const r = await cli(dir, ["service", "print", "--system", "--launcher", launcher, "--", "--key-file", "net.key"]);
      assert.equal(r.code, 0, r.stderr);
      const unit = r.stdout;
      assert.equal(
        execStart(unit),
        `${launcher} daemon --data-dir %S/lanchat --downloads %S/lanchat/downloads --key-file %d/network-key`,
      );
      for (
        const line of [
          "DynamicUser=yes",
          "StateDirectory=lanchat",
          `LoadCredential=network-key:${dir}/net.key`,
          "NoNewPrivileges=yes",
          "ProtectSystem=strict",
          "ProtectHome=yes",
          "PrivateTmp=yes",
          "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
        ]
      ) assert.match(unit, new RegExp(`^${line.replaceAll(".", "\\.")}$`, "m"));
      assert.doesNotMatch(unit, /^User=/m);
      const path = `${dir}/lanchat.service`;
      Deno.writeTextFileSync(path, unit);
      const v = await run("systemd-analyze", ["verify", path]);
      assert.equal(v.code, 0, v.stderr);
      assert.doesNotMatch(v.stderr, /lanchat\.service/, v.stderr);
      const s = await run("systemd-analyze", ["security", "--offline=yes", path]);
      const score = /Overall exposure level for lanchat\.service: ([\d.]+) (\w+)/.exec(s.stdout);
      assert.ok(score, s.stdout + s.stderr);
      console.log(`systemd-analyze security --offline=yes: exposure ${score[1]} ${score[2]} (0 best, 10 worst)`);
      assert.ok(Number(score[1]) <= 2, `exposure ${score[1]}: the sandbox lost a directive\n${s.stdout}`);

      // A folder to write outside the state directory: refused for a dynamic user, allowed for a fixed one.
      const dynamic = await cli(dir, ["service", "print", "--system", "--launcher", launcher, "--", "--data-dir", "d"]);
      assert.equal(dynamic.code, 2);
      assert.match(
        dynamic.stderr,
        new RegExp(`--data-dir ${dir}/d: the system service runs as a dynamic user .*--user-name`),
      );
      const fixed = await cli(dir, [
        ...["service", "print", "--system", "--user-name", "nobody", "--launcher", launcher, "--"],
        ...["--data-dir", "d", "--downloads", "/home/alice/Downloads"],
      ]);
      assert.equal(fixed.code, 0, fixed.stderr);
      assert.match(fixed.stdout, /^User=nobody$/m);
      assert.match(fixed.stdout, new RegExp(`^ReadWritePaths=${dir}/d /home/alice/Downloads$`, "m"));
      assert.match(fixed.stdout, /^ProtectHome=read-only$/m);
      // A launcher in a home folder cannot run under ProtectHome: install system-wide first.
      const home = await cli(dir, ["service", "print", "--system", "--launcher", "/root/.local/bin/lanchat"]);
      assert.equal(home.code, 2);
      assert.match(home.stderr, /sudo lanchat install --prefix \/usr\/local/);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "the system unit's ExecStart runs as a dynamic user in what systemd would give it: state, credential, read-only system",
  ignore: Deno.uid() !== 0 || !(await has("git")) || !(await has("setpriv")) || !(await has("unshare")),
  async fn() {
    const { dir } = await workDir();
    Deno.chmodSync(dir, 0o755);
    const ns = `lcsvc${Deno.pid}${Math.floor(Math.random() * 1e4)}`;
    let daemon: LaunchedDaemon | undefined;
    try {
      // A system-wide install (as `sudo lanchat install --prefix /usr/local`), from a clone of this commit.
      assert.equal((await run("git", ["clone", "--quiet", REPO, `${dir}/clone`])).code, 0);
      const flags = denoJson.tasks.install.split(/\s+/).filter((w) => w.startsWith("--"));
      const installed = await run(Deno.execPath(), [
        ...["run", ...flags, `${dir}/clone/main.ts`, "install", "--prefix", `${dir}/prefix`],
      ]);
      assert.equal(installed.code, 0, installed.stderr);
      const launcher = `${dir}/prefix/bin/lanchat`;
      // service install --system, with /etc/systemd/system a tmpfs of its own mount namespace.
      const install = (extra: string[] = []) =>
        run("unshare", [
          ...["-m", "--propagation", "private", "sh", "-c"],
          'mount -t tmpfs tmpfs /etc/systemd/system && "$@" && cat /etc/systemd/system/lanchat.service',
          ...["sh", Deno.execPath(), "run", ...CLI_FLAGS, `${REPO}/main.ts`, "service", "install", "--system"],
          ...["--no-enable", "--launcher", launcher, "--", "--key-file", "net.key", ...extra],
        ], { cwd: dir, env: { DENO_DIR } });
      // Its user could not run a copy others cannot read: refused before anything is written.
      Deno.chmodSync(`${dir}/prefix/lib`, 0o700);
      const unreadable = await install();
      assert.equal(unreadable.code, 1);
      assert.match(unreadable.stderr, new RegExp(`cannot read ${dir}/prefix/lib \\(mode 700\\): run chmod a\\+rX`));
      Deno.chmodSync(`${dir}/prefix/lib`, 0o755);
      const r = await install(["--name", "svc-test", "--interface", "lo"]);
      assert.equal(r.code, 0, r.stderr);
      r.stdout = r.stdout.slice(r.stdout.lastIndexOf("[Unit]"));
      // systemd's specifiers, as it resolves them for a system unit: %S /var/lib, %d the credentials folder.
      const credentials = "/run/credentials/lanchat.service";
      const argv = execStart(r.stdout).split(" ").map((w) =>
        w.replace("%S", "/var/lib").replace("%d", credentials).replaceAll("%%", "%")
      );
      const uid = 61000 + Math.floor(Math.random() * 900); // a dynamic user's uid: owning nothing on the host
      // What systemd gives the service, in a mount namespace of its own: a read-only system (ProtectSystem=strict),
      // /proc with processes only, pseudo-devices only, no home folders (ProtectHome=yes), StateDirectory=lanchat, LoadCredential= (a
      // 0400 copy the user owns).
      const setup = [
        "set -e",
        // PrivateDevices=yes: a /dev of pseudo-devices only.
        "mount -t tmpfs -o mode=755 tmpfs /run && mkdir /run/dev && mount --bind /dev /run/dev",
        "mount -t tmpfs -o mode=755 tmpfs /dev",
        "for d in null zero full random urandom tty; do touch /dev/$d && mount --bind /run/dev/$d /dev/$d; done",
        "mkdir -m 1777 /dev/shm && umount /run/dev && umount /run",
        "mount -o remount,bind,ro /",
        "mount -t proc -o subset=pid,hidepid=invisible proc /proc", // ProcSubset=pid, ProtectProc=invisible
        "mount -t tmpfs -o mode=000 tmpfs /root",
        "mount -t tmpfs -o mode=000 tmpfs /home",
        "mount -t tmpfs -o mode=755 tmpfs /var/lib",
        `mkdir -m 700 /var/lib/lanchat && chown ${uid}:${uid} /var/lib/lanchat`,
        "mount -t tmpfs -o mode=755 tmpfs /run",
        `mkdir -p ${credentials} && cp ${dir}/net.key ${credentials}/network-key`,
        `chown -R ${uid}:${uid} ${credentials} && chmod 400 ${credentials}/network-key && chmod 500 ${credentials}`,
        `exec setpriv --reuid=${uid} --regid=${uid} --clear-groups --no-new-privs -- env -i HOME=/ ` +
        `USER=lanchat LOGNAME=lanchat PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin ` +
        `CREDENTIALS_DIRECTORY=${credentials} STATE_DIRECTORY=/var/lib/lanchat "$@"`,
      ].join("\n");
      assert.equal((await run("ip", ["netns", "add", ns])).code, 0);
      assert.equal((await run("ip", ["-n", ns, "link", "set", "lo", "up"])).code, 0);
      const cmd = ["netns", "exec", ns, "unshare", "--mount", "--propagation", "private", "sh", "-c", setup, "sh"];
      daemon = new LaunchedDaemon("ip", [...cmd, ...argv]);
      assert.ok(await daemon.started(), daemon.stderr);
      assert.doesNotMatch(daemon.stderr, /can be read by other users/, "the credential is 0400");
      // The token the daemon wrote in its state folder, read as root through the daemon's own view of the files.
      const token = Deno.readTextFileSync(`/proc/${daemon.child.pid}/root/var/lib/lanchat/http_token`).trim();
      const status = await run("ip", ["netns", "exec", ns, launcher, "status", "--json"], {
        env: { LANCHAT_HTTP_TOKEN: token },
      });
      assert.equal(status.code, 0, status.stderr);
      const json = JSON.parse(status.stdout);
      assert.equal(json.dataDir, "/var/lib/lanchat");
      assert.equal(json.name, "svc-test");
      assert.equal(json.security.group, "keyed", "the network key, read from the credential");
      assert.equal(await daemon.stop(), 0, daemon.stderr);
      assert.match(daemon.stderr, /lanchat stopped; goodbye sent to \d+ targets/);
    } finally {
      await daemon?.kill();
      await run("ip", ["netns", "del", ns]);
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
