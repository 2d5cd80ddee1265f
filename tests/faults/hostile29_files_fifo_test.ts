/**
 * hostile29: an offered small file replaced at the sender by a named pipe
 * (mkfifo, same name) before the fetch — what another user can do in a
 * shared folder, or a tool by accident. The sender serves small files with
 * calls that block the daemon's thread (files_serve.ts readSmall opens the
 * file before looking at what it is), and opening a pipe for reading waits
 * for a writer: the whole sender must not freeze (HTTP, messages); the file
 * fails alone, saying it changed, and the others arrive.
 */
import assert from "node:assert/strict";
import { until } from "../support/daemon_process.ts";
import { api, cleanUp, offeredFolder, waitState } from "../support/transfer_files.ts";

Deno.test("hostile29 fifo: an offered small file replaced by a named pipe does not freeze the sender; it fails alone", async () => {
  try {
    const { src, downloads, a, b, id } = await offeredFolder(20);
    await Deno.remove(`${src}/many/f3.bin`);
    const mk = await new Deno.Command("mkfifo", { args: [`${src}/many/f3.bin`] }).output();
    assert.ok(mk.success);
    await api(b, `/transfers/${id}/accept`, {});
    // Give the fetch time to reach f3, then: does alice still answer?
    await new Promise((r) => setTimeout(r, 3000));
    const alive = await Promise.race([
      fetch(`${a.httpUrl}/healthz`).then((r) => r.text()).then((t) => t.trim()),
      new Promise<string>((r) => setTimeout(() => r("no answer in 15 s"), 15_000)),
    ]);
    assert.equal(alive, "ok", "the sender froze: its HTTP does not answer");
    const failed = await waitState(b, id, "failed", 60_000);
    assert.match(failed.error ?? "", /f3\.bin/);
    await until(
      "the others",
      () => Promise.resolve(Deno.readDirSync(`${downloads}/many`).toArray().length === 19),
      10_000,
    );
  } finally {
    // The daemons are killed by pid (a sender frozen in open() on the pipe dies with SIGKILL), then the folders go.
    await cleanUp();
  }
});
