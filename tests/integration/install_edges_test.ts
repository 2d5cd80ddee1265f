/**
 * `lanchat install` and `lanchat service` at their edges (issue 27, from the
 * hostile tester's findings 1, 14, 15 and 16): a full disk mid-install keeps
 * the previous install working; the launcher runs with no PATH and no HOME;
 * the service's defaults and refusals (a system unit asked for by a user who
 * is not root; a copy another user could change).
 */
import assert from "node:assert/strict";
import denoJson from "../../deno.json" with { type: "json" };

const REPO = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const dec = new TextDecoder();
const isRoot = Deno.uid() === 0;
const CLI_FLAGS = denoJson.tasks.lanchat.split(/\s+/).filter((w) => w.startsWith("--"));

async function run(cmd: string, args: string[], opts: { env?: Record<string, string>; clearEnv?: boolean } = {}) {
  const out = await new Deno.Command(cmd, { args, ...opts, stdout: "piped", stderr: "piped" }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function has(tool: string): Promise<boolean> {
  return (await run("sh", ["-c", `command -v ${tool}`]).catch(() => ({ code: 1 }))).code === 0;
}

/** `argv` with /etc/systemd/system a fresh tmpfs of its own mount namespace: nothing reaches the host's. */
function privateUnitDir(argv: string[]): [string, string[]] {
  return ["unshare", [
    ...["-m", "--propagation", "private", "sh", "-c"],
    'mount -t tmpfs -o mode=755 tmpfs /etc/systemd/system && exec "$@"',
    ...["sh", ...argv],
  ]];
}

/** `lanchat install --prefix prefix` from this checkout. */
function install(prefix: string) {
  const flags = denoJson.tasks.install.split(/\s+/).filter((w) => w.startsWith("--"));
  return run(Deno.execPath(), ["run", ...flags, `${REPO}/main.ts`, "install", "--prefix", prefix]);
}

/** Bytes used on the file system of `path`. */
async function usedBytes(path: string): Promise<number> {
  const r = await run("df", ["--block-size=1", "--output=used", path]);
  return Number(r.stdout.trim().split("\n").at(-1));
}

Deno.test({
  name: "an install that runs out of space changes nothing: the previous copy, launcher and link stay, exit 1",
  ignore: !isRoot || !(await has("df")),
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "lanchat-install-full-" });
    const mounted = await run("mount", ["-t", "tmpfs", "-o", "size=400M", "tmpfs", dir]);
    assert.equal(mounted.code, 0, mounted.stderr);
    try {
      const prefix = `${dir}/prefix`;
      const first = await install(prefix);
      assert.equal(first.code, 0, first.stderr);
      const lib = `${prefix}/lib/lanchat`;
      const before = Deno.readLinkSync(`${lib}/current`);
      const launcher = Deno.readTextFileSync(`${prefix}/bin/lanchat`);
      // Room for the runtime of a second copy and a little more: it fails in its code, packages or caches.
      const runtime = Deno.statSync(Deno.execPath()).size;
      const size = await usedBytes(dir) + runtime + 3 * 1024 * 1024;
      const shrunk = await run("mount", ["-o", `remount,size=${size}`, dir]);
      assert.equal(shrunk.code, 0, shrunk.stderr);
      const second = await install(prefix);
      assert.equal(second.code, 1, second.stdout);
      assert.match(second.stderr, /nothing was changed: the previous install, if any, works as before/);
      assert.doesNotMatch(second.stdout, /switched|removed/, second.stdout);
      assert.equal(Deno.readLinkSync(`${lib}/current`), before);
      assert.deepEqual([...Deno.readDirSync(lib)].map((e) => e.name).sort(), [before, "current"].sort());
      assert.equal(Deno.readTextFileSync(`${prefix}/bin/lanchat`), launcher);
      assert.deepEqual([...Deno.readDirSync(`${prefix}/bin`)].map((e) => e.name), ["lanchat"]);
      const version = await run(`${prefix}/bin/lanchat`, ["--version"]);
      assert.deepEqual([version.code, version.stdout], [0, `${denoJson.version}\n`], version.stderr);
      // A failure after the copy is complete (the completion files cannot be written: share is a file) changes
      // nothing either: current is switched only once everything is written.
      const grown = await run("mount", ["-o", "remount,size=400M", dir]);
      assert.equal(grown.code, 0, grown.stderr);
      Deno.removeSync(`${prefix}/share`, { recursive: true });
      Deno.writeTextFileSync(`${prefix}/share`, "");
      const third = await install(prefix);
      assert.equal(third.code, 1, third.stdout);
      assert.match(third.stderr, /nothing was changed/);
      assert.equal(Deno.readLinkSync(`${lib}/current`), before);
      assert.deepEqual([...Deno.readDirSync(lib)].map((e) => e.name).sort(), [before, "current"].sort());
      assert.deepEqual([...Deno.readDirSync(`${prefix}/bin`)].map((e) => e.name), ["lanchat"]);
      assert.equal(Deno.readTextFileSync(`${prefix}/bin/lanchat`), launcher);
    } finally {
      await run("umount", [dir]);
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "the launcher runs as another user with no PATH and no HOME; a system service refuses a copy that user owns",
  ignore: !isRoot || !(await has("setpriv")) || !(await has("unshare")),
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "lanchat-install-env-" });
    Deno.chmodSync(dir, 0o755);
    try {
      const r = await install(`${dir}/prefix`);
      assert.equal(r.code, 0, r.stderr);
      const lanchat = `${dir}/prefix/bin/lanchat`;
      const bare = await run("setpriv", [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
        lanchat,
        "--version",
      ], {
        clearEnv: true,
      });
      assert.deepEqual([bare.code, bare.stdout, bare.stderr], [0, `${denoJson.version}\n`, ""]);
      // The installed command's service defaults to that launcher, not ~/.local's.
      const unit = await run(lanchat, ["service", "print"], { env: { HOME: dir } });
      assert.equal(unit.code, 0, unit.stderr);
      assert.match(unit.stdout, new RegExp(`^ExecStart=${lanchat} daemon$`, "m"));
      // Another user asking for a system unit is told it needs root, in words.
      const asUser = await run(
        ...privateUnitDir([
          ...["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", "env", "-i", `HOME=${dir}`],
          ...[lanchat, "service", "install", "--system", "--no-enable"],
        ]),
      );
      assert.equal(asUser.code, 1, asUser.stdout);
      assert.match(
        asUser.stderr,
        /Cannot write \/etc\/systemd\/system\/lanchat\.service: permission denied: a system unit needs root/,
      );
      assert.doesNotMatch(asUser.stderr, /os error/);
      // A system service must not run what another user can change: a folder of the copy owned by nobody.
      const system = () => run(...privateUnitDir([lanchat, "service", "install", "--system", "--no-enable"]));
      Deno.chownSync(`${dir}/prefix/lib`, 65534, 65534);
      const refused = await system();
      assert.equal(refused.code, 1, refused.stdout);
      assert.match(refused.stderr, new RegExp(`${dir}/prefix/lib \\(owner uid 65534, mode 755\\) lets someone other`));
      Deno.chownSync(`${dir}/prefix/lib`, 0, 0);
      Deno.chmodSync(`${dir}/prefix/bin`, 0o777);
      const writable = await system();
      assert.equal(writable.code, 1, writable.stdout);
      assert.match(writable.stderr, new RegExp(`${dir}/prefix/bin \\(owner uid 0, mode 777\\) lets someone other`));
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test("service print with HOME unset and no --launcher refuses (exit 2) instead of writing /.local/bin/lanchat", async () => {
  const r = await run(Deno.execPath(), ["run", ...CLI_FLAGS, `${REPO}/main.ts`, "service", "print"], {
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
    },
  });
  assert.equal(r.code, 2, r.stdout);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /HOME is not set: cannot find your lanchat launcher; pass --launcher PATH/);
});

Deno.test("a key file the daemon refuses is refused by service print with the parser's words and no final period", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "lanchat-service-key-" });
  try {
    Deno.writeTextFileSync(`${dir}/bad.key`, "short\n");
    const r = await run(Deno.execPath(), [
      ...["run", ...CLI_FLAGS, `${REPO}/main.ts`, "service", "print", "--launcher", "/usr/local/bin/lanchat"],
      ...["--", "--key-file", `${dir}/bad.key`],
    ]);
    assert.equal(r.code, 2, r.stdout);
    assert.match(r.stderr, /Key file .*bad\.key is not base64; make one with "lanchat keygen"\n$/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a system unit asked for from a launcher in a home folder runs /usr/local/bin/lanchat, a user unit that launcher", async () => {
  const print = (extra: string[]) =>
    run(Deno.execPath(), ["run", ...CLI_FLAGS, `${REPO}/main.ts`, "service", "print", ...extra], {
      env: { LANCHAT_LAUNCHER: "/home/x/.local/bin/lanchat" },
    });
  const system = await print(["--system"]);
  assert.equal(system.code, 0, system.stderr);
  assert.match(system.stdout, /^ExecStart=\/usr\/local\/bin\/lanchat daemon /m);
  const user = await print([]);
  assert.match(user.stdout, /^ExecStart=\/home\/x\/\.local\/bin\/lanchat daemon$/m);
});
