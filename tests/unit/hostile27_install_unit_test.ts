/**
 * Hostile tests for issue 27 items 1 and 2 (from the hostile tester's findings
 * 4, 5 and 13), pure parts: the launcher script and the systemd unit's text.
 * Each failed on a5b7e8c. Kept as regression tests.
 */
import assert from "node:assert/strict";
import { launcherScript } from "../../src/cli/install.ts";
import { checkDaemonArgs, systemUnitOptions, unitText } from "../../src/cli/service_unit.ts";

/** Runs a launcher script with sh; returns whether `marker` was created. */
async function launcherRunsInjected(lib: string, marker: string): Promise<boolean> {
  const dir = Deno.makeTempDirSync({ prefix: "hostile27-launcher-" });
  Deno.writeTextFileSync(`${dir}/lanchat`, launcherScript(lib), { mode: 0o755 });
  await new Deno.Command("sh", { args: [`${dir}/lanchat`, "--version"], stdout: "null", stderr: "null" }).output();
  const made = await Deno.stat(marker).then(() => true, () => false);
  Deno.removeSync(dir, { recursive: true });
  await Deno.remove(marker).catch(() => {});
  return made;
}

Deno.test("hostile27: a prefix with a newline does not run its second line in the launcher", async () => {
  const marker = `${Deno.makeTempDirSync()}/injected-newline`;
  const lib = `/nonexistent-hostile27\ntouch ${marker}\n#/lib/lanchat`;
  assert.equal(await launcherRunsInjected(lib, marker), false, "the launcher ran a line of the prefix");
});

Deno.test("hostile27: a prefix with $(...) or backquotes is not expanded by the launcher's error message", async () => {
  const marker = `${Deno.makeTempDirSync()}/injected-subst`;
  const lib = `/nonexistent-hostile27$(touch ${marker})/lib/lanchat`;
  assert.equal(await launcherRunsInjected(lib, marker), false, "the launcher expanded $(...) from the prefix");
});

Deno.test("hostile27: a key file path cannot add directives to the system unit (LoadCredential=)", () => {
  const text = unitText({
    launcher: "/usr/local/bin/lanchat",
    daemonArgs: [],
    system: true,
    keyFile: "/etc/lanchat/k\nDynamicUser=no\nUser=root",
  });
  assert.doesNotMatch(text, /^User=root$/m, "a newline in the key path wrote User=root into the unit");
  assert.doesNotMatch(text, /^DynamicUser=no$/m);
});

Deno.test("hostile27: % in a key file path is not left for systemd to expand (LoadCredential=)", () => {
  const text = unitText({ launcher: "/usr/local/bin/lanchat", daemonArgs: [], system: true, keyFile: "/k/100%i.key" });
  const line = text.split("\n").find((l) => l.startsWith("LoadCredential="))!;
  // systemd expands specifiers in LoadCredential's path: %i would become the (empty) instance name.
  assert.equal(line, "LoadCredential=network-key:/k/100%%i.key");
});

Deno.test("hostile27: --user-name is checked: a newline cannot add directives", () => {
  const make = () =>
    unitText(
      systemUnitOptions("/usr/local/bin/lanchat", { args: [], pathAt: new Set() }, "nobody\nExecStartPre=+/bin/id"),
    );
  let text = "";
  try {
    text = make();
  } catch {
    return; // refused: good
  }
  assert.doesNotMatch(text, /^ExecStartPre=/m, "the user name wrote ExecStartPre=+ (runs as root) into the unit");
});

Deno.test("hostile27: ReadWritePaths= names the real folder when its path has a $", () => {
  const o = systemUnitOptions(
    "/usr/local/bin/lanchat",
    { args: ["--downloads", "/srv/dl $x"], pathAt: new Set([1]) },
    "lanchat",
  );
  const line = unitText(o).split("\n").find((l) => l.startsWith("ReadWritePaths="))!;
  // ReadWritePaths= expands specifiers (%) but not environment variables: $$ stays two dollars, a folder that does not exist.
  assert.doesNotMatch(line, /\$\$/, line);
});

Deno.test("hostile27: service refuses an empty --data-dir instead of writing the current folder into the unit", () => {
  // The daemon refuses it at start ("Cannot create data directory : Empty path is not allowed"); the unit got cwd.
  assert.throws(() => checkDaemonArgs(["--data-dir="], "/home/me/project"));
});
