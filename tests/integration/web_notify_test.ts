/**
 * The page and desktop notifications in a real browser: while a page of
 * alice's daemon is open in Chromium (two tabs, then one) the daemon leaves
 * notifications to it; once the last tab is closed they pop up on the
 * session bus again. A private session bus with a notification server
 * (tests/support/session_bus.ts); ignored, with the reason, without it or
 * without chromium.
 */
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { until } from "../support/daemon_process.ts";
import { alicePair, busTest, NOTIFY_SERVER, shown } from "../support/session_bus.ts";

const CHROMIUM = "/usr/bin/chromium";
const noBrowser = await Deno.stat(CHROMIUM).then(() => undefined, () => `${CHROMIUM} is not installed`);
if (noBrowser) console.warn(`web notify test ignored: ${noBrowser}`);

busTest(
  "no desktop notification while a tab of the page is open; after the last tab closes they resume",
  async ({ address, run }) => {
    const server = run("/usr/bin/python3", [NOTIFY_SERVER, "body"]);
    await server.waitFor((l) => l === "ready", "the notification server");
    const { alice, bob } = await alicePair(address);
    const skipped = async () =>
      (await (await fetch(`${alice.httpUrl}/status`)).json()).notifications.skippedPageOpen as number;
    const send = async (text: string) => {
      const res = await fetch(`${bob.httpUrl}/messages?wait=5`, {
        method: "POST",
        body: JSON.stringify({ to: alice.id, text }),
      });
      assert.equal(res.status, 200, await res.text());
    };
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    try {
      const context = await browser.newContext();
      const tab1 = await context.newPage();
      await tab1.goto(await alice.webLink());
      await tab1.locator("body[data-live='true']").waitFor({ timeout: 15_000 });
      const tab2 = await context.newPage();
      await tab2.goto(alice.httpUrl);
      await tab2.locator("body[data-live='true']").waitFor({ timeout: 15_000 });

      await send("two tabs open");
      await until("skipped: two tabs open", async () => (await skipped()) === 1, 10_000);
      await tab1.close();
      await send("one tab open");
      await until("skipped: one tab open", async () => (await skipped()) === 2, 10_000);
      await tab2.close();
      // The stream ends when the tab's connection closes: a message from then on pops up.
      await until("a notification once the last tab closed", async () => {
        if (shown(server).length > 0) return true;
        await send("no tab open");
        await new Promise((r) => setTimeout(r, 300));
        return shown(server).length > 0;
      }, 20_000);
      assert.equal(shown(server)[0]!.summary, "bob");
      assert.match(shown(server)[0]!.body, /no tab open/);
      assert.ok(!shown(server).some((n) => /tabs? open$/.test(n.body) && !/no tab/.test(n.body)), "none while open");
    } finally {
      await browser.close();
    }
  },
  noBrowser,
);
