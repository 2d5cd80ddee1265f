/**
 * Files to a group from the page (web/files.js): picked in the group's
 * conversation, offered to each member (a transfer each), shown in the
 * group with each member's progress, and arriving intact at every member.
 */
import assert from "node:assert/strict";
import { freeUdpPort, startLoopbackDaemon, until } from "../support/daemon_process.ts";
import { browserTest, livePage } from "../support/browser.ts";

browserTest(
  "a file picked in a group's conversation is offered to each member and arrives intact at every one",
  async (browser, tempDir) => {
    const port = freeUdpPort();
    const work = tempDir();
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob", { extra: ["--downloads", `${work}/b`] }).started();
    const c = await startLoopbackDaemon(port, "carol", { extra: ["--downloads", `${work}/c`] }).started();
    for (const [x, y] of [[a, b], [a, c], [b, c]] as const) await x.joined(y.id, 5000);
    const made = await (await fetch(`${a.httpUrl}/groups`, {
      method: "POST",
      body: JSON.stringify({ name: "lab", members: [b.id, c.id] }),
    })).json();
    const page = await livePage(browser, `${await a.webLink()}#group=${made.group.id}`);
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.locator("#peer-title", { hasText: "@lab" }).waitFor({ timeout: 10_000 });
    await page.locator("#file-button").waitFor({ state: "visible", timeout: 5000 });
    const bytes = new Uint8Array(200_000).map((_, i) => (i * 2654435761) >>> 24);
    await Deno.writeFile(`${work}/notes 笔记.bin`, bytes);
    await page.setInputFiles("#file-input", `${work}/notes 笔记.bin`);
    // The group shows a transfer to each member.
    for (const name of ["bob", "carol"]) {
      await page.locator("#transfers .transfer", { hasText: `To ${name}: notes 笔记.bin` }).waitFor({
        timeout: 15_000,
      });
    }
    // Each member has an offer of its own; accepted, the file arrives intact.
    for (const [d, dir] of [[b, "b"], [c, "c"]] as const) {
      let id = "";
      await until(`an offer at ${dir}`, async () => {
        const list: { id: string; direction: string; names: string[]; peer: { id: string } }[] =
          await (await fetch(`${d.httpUrl}/transfers`)).json();
        id = list.find((t) => t.direction === "in" && t.peer.id === a.id && t.names.includes("notes 笔记.bin"))?.id ??
          "";
        return id !== "";
      }, 15_000);
      const r = await fetch(`${d.httpUrl}/transfers/${id}/accept`, { method: "POST", body: "{}" });
      assert.equal(r.status, 200, await r.text());
    }
    for (const dir of ["b", "c"]) {
      await until(`the file at ${dir}`, async () => {
        const got = await Deno.readFile(`${work}/${dir}/notes 笔记.bin`).catch(() => undefined);
        return got !== undefined && got.length === bytes.length;
      }, 20_000);
      assert.deepEqual(await Deno.readFile(`${work}/${dir}/notes 笔记.bin`), bytes);
    }
    for (const name of ["bob", "carol"]) {
      await page.locator("#transfers .transfer", { hasText: `To ${name}: notes 笔记.bin` }).filter({ hasText: "done" })
        .waitFor({ timeout: 15_000 });
    }
    assert.deepEqual(errors, []);
  },
);
