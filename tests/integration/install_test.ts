/**
 * Installed like a real tool: `lanchat install` from a fresh clone puts a
 * launcher on PATH that runs the CLI with no noise and the daemon so that
 * SIGTERM and Ctrl-C say goodbye and exit 0; `lanchat service` writes a
 * systemd unit that systemd-analyze accepts; completion for bash and zsh.
 */
import assert from "node:assert/strict";
import denoJson from "../../deno.json" with { type: "json" };
import { freeTcpPort, freeUdpPort, tempDataDir } from "../support/daemon_process.ts";

const REPO = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const dec = new TextDecoder();

async function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function has(tool: string): Promise<boolean> {
  return (await run("sh", ["-c", `command -v ${tool}`]).catch(() => ({ code: 1 }))).code === 0;
}

/** Installs from a fresh clone of this repository (its committed state) into a temporary prefix. */
async function installFromClone(): Promise<{ prefix: string; clone: string }> {
  const dir = Deno.makeTempDirSync({ prefix: "lanchat-install-" });
  const clone = `${dir}/clone`;
  const cloned = await run("git", ["clone", "--quiet", REPO, clone]);
  assert.equal(cloned.code, 0, cloned.stderr);
  const flags = denoJson.tasks.install.split(/\s+/).filter((w) => w.startsWith("--"));
  const r = await run(Deno.execPath(), ["run", ...flags, `${clone}/main.ts`, "install", "--prefix", `${dir}/prefix`]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`wrote ${dir}/prefix/bin/lanchat, which runs ${clone}/main\\.ts`));
  return { prefix: `${dir}/prefix`, clone };
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
        args: [
          "daemon",
          "--interface",
          "lo",
          "--port",
          String(freeUdpPort()),
          "--unicast-port",
          "0",
          "--http",
          "127.0.0.1:0",
          "--data-dir",
          tempDataDir(),
        ],
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
  const env = { HOME: dir, XDG_CONFIG_HOME: `${dir}/config` };
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
