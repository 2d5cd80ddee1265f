/**
 * The refusal of a second group of a name you are in is the daemon's, so the
 * web page gets it too: its dialog says so and stays open, nothing is made.
 */
import assert from "node:assert/strict";
import type { GroupJson } from "../../src/api/types.ts";
import { browserTest, livePage } from "../support/browser.ts";
import { freeUdpPort, ownerFetch, runCli, startLoopbackDaemon } from "../support/daemon_process.ts";

browserTest(
  "the page cannot make a second group of a name you are in (case and width alike): it says so",
  async (browser) => {
    const port = freeUdpPort();
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob").started();
    await a.joined(b.id, 5000);
    const made = await runCli(["group", "create", "lab", "bob", "--http", a.httpUrl.replace("http://", "")]);
    assert.equal(made.code, 0, made.stderr);
    const page = await livePage(browser, await a.webLink());
    await page.locator("#peer-list li:not(.group)", { hasText: "bob" }).waitFor({ timeout: 10_000 });
    await page.click("#new-group");
    await page.fill("#group-name", "ＬＡＢ");
    await page.locator("#group-people label", { hasText: "bob" }).locator("input").check();
    await page.click("#group-form button[value='ok']");
    await page.locator("#group-error", { hasText: "You are already in a group named “lab”" }).waitFor({
      timeout: 10_000,
    });
    assert.equal(await page.locator("#group-dialog").getAttribute("open"), "", "the dialog stays open");
    const groups: GroupJson[] = await (await ownerFetch(`${a.httpUrl}/groups`)).json();
    assert.deepEqual(groups.map((g) => g.name), ["lab"]);
  },
);
