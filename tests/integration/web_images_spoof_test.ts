/**
 * A peer's file offer that names another peer's transfer (its id learnt
 * somehow) shows none of that transfer's pictures: the page draws an
 * offer's thumbnails only from a transfer with the same peer, the same way.
 * The lying offers are written into alice's history as bob's (a made-up
 * peer) by scripts/history_fill.ts, naming a real transfer from carol.
 */
import assert from "node:assert/strict";
import { freeUdpPort, startLoopbackDaemon, tempDataDir, until } from "../support/daemon_process.ts";
import { browserTest, livePage } from "../support/browser.ts";
import { pngOf } from "../support/pictures.ts";
import { BOB } from "../../scripts/history_fill.ts";

browserTest(
  "an offer from one peer naming another peer's transfer shows none of its pictures; the real offer shows them",
  async (browser, tempDir) => {
    const work = tempDir();
    const dir = tempDataDir();
    const port = freeUdpPort();
    let a = await startLoopbackDaemon(port, "alice", { dataDir: dir, extra: ["--downloads", `${work}/dl`] }).started();
    const c = await startLoopbackDaemon(port, "carol").started();
    await a.joined(c.id, 5000);
    await c.joined(a.id, 5000);
    const painter = await browser.newPage();
    await Deno.writeFile(`${work}/secret.png`, await pngOf(painter, 120, 90));
    const sent = await (await fetch(`${c.httpUrl}/files`, {
      method: "POST",
      body: JSON.stringify({ to: a.id, paths: [`${work}/secret.png`] }),
    })).json();
    let id = "";
    await until("carol's offer at alice", async () => {
      const r = await fetch(`${a.httpUrl}/transfers/${sent.id}`);
      id = r.ok ? (await r.json()).id : (await r.body?.cancel(), "");
      return id !== "";
    }, 10_000);
    assert.equal((await fetch(`${a.httpUrl}/transfers/${id}/accept`, { method: "POST", body: "{}" })).status, 200);
    await until("the picture at alice", async () => {
      const t = await (await fetch(`${a.httpUrl}/transfers/${id}`)).json();
      return t.state === "done" && t.images?.length === 1;
    }, 10_000);
    // bob (made up) "offers" carol's transfer, in alice's history.
    a.signal("SIGTERM");
    await a.wait();
    await Deno.writeTextFile(
      `${work}/offers.json`,
      JSON.stringify({ peer: BOB, offers: [{ id, names: ["secret.png"], bytes: 1 }] }),
    );
    const fill = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../../scripts/history_fill.ts", import.meta.url).pathname,
        dir,
        "40",
        `${work}/offers.json`,
      ],
      stdout: "piped",
    }).output();
    assert.ok(fill.success);
    a = await startLoopbackDaemon(port, "alice", { dataDir: dir, extra: ["--downloads", `${work}/dl`] }).started();
    // Positive control: carol's own offer shows the picture.
    const page = await livePage(browser, `${await a.webLink()}#peer=${c.id}`);
    await page.locator("#messages li .thumb img[alt='secret.png']").waitFor({ timeout: 15_000 });
    // bob's lying offer: there, as text, with no picture.
    const lied = await livePage(browser, `${await a.webLink()}#peer=${BOB}`);
    await lied.locator("#peer-title", { hasText: "bob@bench" }).waitFor({ timeout: 15_000 });
    await lied.locator("#messages li", { hasText: "Files offered: secret.png" }).waitFor({ timeout: 15_000 });
    await lied.waitForTimeout(1000); // time for a thumbnail that should not come
    assert.equal(await lied.locator("#messages .thumb, #messages img[src*='/transfers/']").count(), 0);
  },
);
