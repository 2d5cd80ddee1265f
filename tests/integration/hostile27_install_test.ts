/**
 * Hostile tests for issue 27 item 1 (lanchat install), run for real: an
 * install run by root from a user's own install, two installs at once into
 * one prefix, a relative --prefix. Each fails on a5b7e8c. Copy into
 * tests/integration/. Root only (chown; other tests of this kind are too).
 */
import assert from "node:assert/strict";
import denoJson from "../../deno.json" with { type: "json" };

const REPO = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const dec = new TextDecoder();
const isRoot = Deno.uid() === 0;

async function run(cmd: string, args: string[], opts: { cwd?: string } = {}) {
  const out = await new Deno.Command(cmd, { args, cwd: opts.cwd, stdout: "piped", stderr: "piped" }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** `lanchat install --prefix prefix` from this checkout, run by the Deno at `deno`. */
function installWith(deno: string, prefix: string, cwd?: string) {
  const flags = denoJson.tasks.install.split(/\s+/).filter((w) => w.startsWith("--"));
  return run(deno, ["run", ...flags, `${REPO}/main.ts`, "install", "--prefix", prefix], { cwd });
}

Deno.test({
  name: "hostile27: root installing from a user's copy does not give that user the runtime root runs",
  ignore: !isRoot,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "hostile27-owner-" });
    try {
      // The user's own install's runtime: owned by the user (nobody, 65534), as in ~/.local/lib/lanchat/<v>/deno.
      Deno.mkdirSync(`${dir}/user`);
      Deno.copyFileSync(Deno.execPath(), `${dir}/user/deno`);
      Deno.chmodSync(`${dir}/user/deno`, 0o755);
      Deno.chownSync(`${dir}/user/deno`, 65534, 65534);
      // "sudo lanchat install --prefix /usr/local" from that install.
      const r = await installWith(`${dir}/user/deno`, `${dir}/system`);
      assert.equal(r.code, 0, r.stderr);
      const runtime = Deno.statSync(`${dir}/system/lib/lanchat/current/deno`);
      assert.equal(
        runtime.uid,
        0,
        "the system-wide runtime is owned by the user whose install it came from: they can rewrite it",
      );
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "hostile27: two installs at once into one prefix leave a working install",
  ignore: !isRoot,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "hostile27-twice-" });
    try {
      const first = await installWith(Deno.execPath(), `${dir}/a`);
      assert.equal(first.code, 0, first.stderr);
      const lanchat = `${dir}/a/bin/lanchat`;
      for (let round = 0; round < 3; round++) {
        const [x, y] = await Promise.all([
          run(lanchat, ["install", "--prefix", `${dir}/b`]),
          run(lanchat, ["install", "--prefix", `${dir}/b`]),
        ]);
        const v = await run(`${dir}/b/bin/lanchat`, ["--version"]);
        if (x.code === 0 && y.code === 0) {
          assert.equal(v.code, 0, `both installs said they succeeded, and the install is broken: ${v.stderr}`);
        } else {
          assert.equal(v.code, 0, `an install failed and the install is broken: ${v.stderr}`);
        }
      }
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "hostile27: lanchat install --prefix with a relative path installs, and the launcher works from anywhere",
  ignore: !isRoot,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "hostile27-relative-" });
    try {
      const r = await installWith(Deno.execPath(), "rel/prefix", dir);
      assert.equal(r.code, 0, r.stderr);
      const v = await run(`${dir}/rel/prefix/bin/lanchat`, ["--version"], { cwd: "/" });
      assert.equal(v.code, 0, v.stderr);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "hostile27: a reinstall through a symlinked prefix keeps the copy a running daemon runs from",
  ignore: !isRoot,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "hostile27-symlink-" });
    let proc: Deno.ChildProcess | undefined;
    try {
      const first = await installWith(Deno.execPath(), `${dir}/real`);
      assert.equal(first.code, 0, first.stderr);
      Deno.symlinkSync(`${dir}/real`, `${dir}/link`);
      const copy = Deno.realPathSync(`${dir}/real/lib/lanchat/current`);
      // What the launcher leaves in /proc/PID/cmdline: it resolves `current` with cd -P, so the physical path.
      proc = new Deno.Command("sh", { args: ["-c", "sleep 60", `${copy}/deno`], stdout: "null", stderr: "null" })
        .spawn();
      await new Promise((r) => setTimeout(r, 200));
      const again = await run(`${dir}/link/bin/lanchat`, ["install", "--prefix", `${dir}/link`]);
      assert.equal(again.code, 0, again.stderr);
      assert.ok(
        await Deno.stat(copy).then(() => true, () => false),
        `the copy a running process uses was removed: ${again.stdout}`,
      );
    } finally {
      try {
        proc?.kill("SIGKILL");
        await proc?.status;
      } catch { /* gone */ }
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
