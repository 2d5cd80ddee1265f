/**
 * Resuming a download from the real iptux, which ignores the offset of
 * GETFILEDATA and sends from byte 0 (docs/ipmsg.md): iptux attaches a
 * 300 MB file as a person would, lanchat (--accept-files always) fetches
 * it, is killed with SIGKILL once its .part holds more than 30 % of it,
 * and is started again on the same data directory; the file it ends with
 * must be iptux's, byte for byte (its SHA-256), and its transfer `done`
 * with `check: "size"`. Needs root, iptux, Xvfb, xdotool and AT-SPI;
 * without them the test is ignored with the reason.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { iptuxUnavailable, withIptuxAndLanchat } from "../support/iptux_driver.ts";
import type { TransferJson } from "../../src/api/types.ts";
import { DaemonProcess, runCli, tempDataDir, until } from "../support/daemon_process.ts";

const unavailable = await iptuxUnavailable();
if (unavailable) console.warn(`iptux resume test ignored: ${unavailable}`);

const SIZE = Number(Deno.env.get("IPTUX_RESUME_MB") ?? 300) * 1024 * 1024;

async function shaOf(path: string): Promise<string> {
  const h = createHash("sha256");
  using f = await Deno.open(path);
  const buf = new Uint8Array(4 * 1024 * 1024);
  for (;;) {
    const n = await f.read(buf);
    if (n === null) break;
    h.update(buf.subarray(0, n));
  }
  return h.digest("hex");
}

Deno.test({
  name: "a download from iptux, which ignores the resume offset, is the right file after lanchat is killed -9 mid-way",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const src = Deno.makeTempDirSync({ prefix: "iptux-src-" });
    const downloads = Deno.makeTempDirSync({ prefix: "lanchat-dl-" });
    const data = tempDataDir();
    // Random, so no part of the file is like another (its start written after its middle would show).
    {
      using f = await Deno.open(`${src}/resume.bin`, { write: true, create: true });
      const chunk = new Uint8Array(1024 * 1024);
      for (let i = 0; i < SIZE / chunk.length; i++) {
        for (let j = 0; j < chunk.length; j += 65536) crypto.getRandomValues(chunk.subarray(j, j + 65536));
        for (let w = 0; w < chunk.length;) w += await f.write(chunk.subarray(w));
      }
    }
    const want = await shaOf(`${src}/resume.bin`);
    const args = ["--data-dir", data, "--downloads", downloads, "--accept-files", "always"];
    try {
      await withIptuxAndLanchat(args, async ({ drive, daemon: first, lanchatHost }) => {
        await drive(`iptux_drive_send_file A ${lanchatHost.address} '${src}/resume.bin'`);
        // Killed once the .part holds more than 30 % (and before it is whole).
        const part = `${downloads}/resume.bin.part`;
        let seen = 0;
        for (const end = Date.now() + 60_000; Date.now() < end;) {
          try {
            seen = Deno.statSync(part).size;
          } catch { /* not yet */ }
          if (seen > SIZE * 0.3) break;
          await new Promise((r) => setTimeout(r, 2));
        }
        await first.kill();
        const at = Deno.statSync(part).size;
        assert.ok(at > SIZE * 0.3 && at < SIZE, `killed with ${at} of ${SIZE} bytes in the .part (seen ${seen})`);
        // The same daemon again (withIptuxAndLanchat's arguments, then ours: the later --data-dir wins).
        const second = await new DaemonProcess(
          ["--name", "alice", "--data-dir", tempDataDir(), "--interval", "500ms", "--ipmsg", ...args],
          { netns: lanchatHost.ns },
        ).started();
        let t: TransferJson | undefined;
        await until("the resumed transfer to end", async () => {
          const r = await runCli(["transfers", "--json", "--http", second.httpUrl.replace("http://", "")], {
            netns: lanchatHost.ns,
          });
          t = (r.code === 0 ? JSON.parse(r.stdout) as TransferJson[] : []).find((x) => x.direction === "in");
          return t?.state === "done" || t?.state === "failed";
        }, 120_000).catch(async (e) => {
          throw new Error(
            `${e.message}; ${JSON.stringify(t)}; lanchat:\n${
              second.rawStderr.slice(-20).join("\n")
            }\niptux log:\n${await drive(
              `tail -n 30 "$(iptux_drive_log A)"`,
            ).catch(() => "")}`,
          );
        });
        assert.equal(t!.state, "done", JSON.stringify(t));
        assert.equal(await shaOf(`${downloads}/resume.bin`), want, "the received file's SHA-256 is the original's");
        assert.equal(t!.check, "size");
        assert.equal(t!.transferred, SIZE);
        assert.deepEqual([...Deno.readDirSync(downloads)].map((e) => e.name), ["resume.bin"]);
        const how = second.lines.filter((l) => /ignores offsets|Resuming/.test(l.message));
        console.log(
          `killed at ${at} of ${SIZE} bytes; after the restart: ${JSON.stringify(how.map((l) => l.message))}`,
        );
      });
    } finally {
      for (const dir of [src, downloads, data]) await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
