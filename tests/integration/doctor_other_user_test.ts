/**
 * Hostile tester's finding (issue 27 item 9, MED 7): another user's daemon on
 * the default ports (a real lanchat daemon run as `nobody` in a network
 * namespace of its own), and root runs `lanchat doctor` there, with a token
 * file of its own (the CLI keeps it back from another user's port) and
 * without one (a plain 401). Doctor must say daemon-refused, naming that
 * user, and not "none answers", nor call that daemon's ports taken with a
 * fix to stop it.
 *
 * `nobody` cannot read root's Deno binary or cache (/root is 0700): they are
 * bind-mounted, read-only use, into a folder it can reach, in a mount
 * namespace private to the daemon (`unshare -m`), so the host sees no mount.
 */
import assert from "node:assert/strict";
import { CLI_PERMISSIONS, CONFIG, DAEMON_PERMISSIONS, MAIN } from "../support/daemon_process.ts";

const isRoot = Deno.uid() === 0;

async function has(cmd: string): Promise<boolean> {
  try {
    return (await new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" }).output()).success;
  } catch {
    return false;
  }
}

async function run(cmd: string, args: string[], env?: Record<string, string>) {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", env }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

interface Report {
  ok: boolean;
  daemon: unknown;
  findings: { id: string; severity: string; message: string; fix: string }[];
}

Deno.test({
  name: "doctor: another user's daemon on the default ports is daemon-refused, not 'none answers' and ports to stop",
  ignore: !isRoot || !(await has("setpriv")) || !(await has("unshare")) || !(await has("ip")) || !(await has("ss")),
  sanitizeResources: false,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "lanchat-doctor-other-" });
    Deno.chmodSync(dir, 0o755);
    for (const d of ["bin", "deno_dir", "home", "data"]) Deno.mkdirSync(`${dir}/${d}`);
    Deno.chownSync(`${dir}/home`, 65534, 65534);
    Deno.chownSync(`${dir}/data`, 65534, 65534);
    Deno.chmodSync(`${dir}/data`, 0o700);
    const denoDir = Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`;
    const denoBin = Deno.execPath();
    const ns = `lcdoc${Deno.pid}${Math.floor(Math.random() * 1e4)}`;
    assert.equal((await run("ip", ["netns", "add", ns])).code, 0);
    let daemon: Deno.ChildProcess | undefined;
    try {
      assert.equal((await run("ip", ["-n", ns, "link", "set", "lo", "up"])).code, 0);
      const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
      const argv = [
        `${dir}/bin/${denoBin.replace(/^.*\//, "")}`,
        "run",
        "--config",
        CONFIG,
        ...DAEMON_PERMISSIONS,
        MAIN,
        "daemon",
        "--data-dir",
        `${dir}/data`,
      ];
      const script = `mount --bind ${q(denoBin.replace(/\/[^/]*$/, ""))} ${q(`${dir}/bin`)} && ` +
        `mount --bind ${q(denoDir)} ${q(`${dir}/deno_dir`)} && ` +
        `exec setpriv --reuid=65534 --regid=65534 --clear-groups -- env -i HOME=${q(`${dir}/home`)} ` +
        `DENO_DIR=${q(`${dir}/deno_dir`)} PATH=/usr/bin:/bin ${argv.map(q).join(" ")}`;
      daemon = new Deno.Command("ip", {
        args: ["netns", "exec", ns, "unshare", "-m", "sh", "-c", script],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const end = Date.now() + 60_000;
      for (;;) {
        const ss = await run("ip", ["netns", "exec", ns, "ss", "-H", "-l", "-t", "-n", "-e", "sport = :47476"]);
        if (/uid:65534/.test(ss.stdout)) break;
        if (Date.now() > end) throw new Error(`nobody's daemon did not listen on 47476 in 60 s: ${ss.stdout}`);
        await new Promise((r) => setTimeout(r, 300));
      }
      // Root's own token file (the CLI keeps it back from nobody's port), then none (a plain 401).
      const rootHome = `${dir}/roothome`;
      Deno.mkdirSync(`${rootHome}/.local/share/lanchat`, { recursive: true, mode: 0o700 });
      Deno.writeTextFileSync(`${rootHome}/.local/share/lanchat/http_token`, "root-token\n", { mode: 0o600 });
      Deno.mkdirSync(`${dir}/emptyhome`);
      for (const home of [rootHome, `${dir}/emptyhome`]) {
        const env = { DENO_DIR: denoDir, HOME: home, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" };
        const cli = (args: string[]) =>
          run("ip", ["netns", "exec", ns, denoBin, "run", "--config", CONFIG, ...CLI_PERMISSIONS, MAIN, ...args], env);
        const j = await cli(["doctor", "--json"]);
        let report: Report;
        try {
          report = JSON.parse(j.stdout);
        } catch {
          throw new Error(`doctor printed no JSON (exit ${j.code}): ${j.stdout}${j.stderr}`);
        }
        const ids = report.findings.map((f) => f.id);
        assert.ok(ids.includes("daemon-refused"), `HOME=${home}: ${JSON.stringify(report.findings)}`);
        assert.ok(!ids.includes("daemon-not-running"), `HOME=${home}: ${ids}`);
        assert.ok(!ids.includes("port-taken"), `HOME=${home}: its own ports called taken: ${ids}`);
        const refused = report.findings.find((f) => f.id === "daemon-refused")!;
        assert.match(refused.message, /is another user's \(nobody \(uid 65534\), pid \d+\)/);
        assert.match(refused.fix, /sudo -u nobody lanchat doctor/);
        for (const f of report.findings) assert.doesNotMatch(f.fix, /Stop that program|Start it: lanchat daemon/);
        const text = await cli(["doctor"]);
        assert.equal(text.code, 1);
        assert.doesNotMatch(text.stdout, /none answers/, text.stdout);
        assert.match(text.stdout, /^daemon: another user's daemon answers at 127\.0\.0\.1:47476/m);
      }
    } finally {
      if (daemon) {
        try {
          daemon.kill("SIGTERM");
        } catch { /* exited */ }
        await daemon.status;
        await daemon.stderr.cancel();
      }
      await run("ip", ["netns", "del", ns]);
      // Only empty mount points are left here (the bind mounts lived in the daemon's own mount namespace).
      Deno.removeSync(`${dir}/bin`);
      Deno.removeSync(`${dir}/deno_dir`);
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
