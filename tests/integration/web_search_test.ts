/**
 * Search in the page (web/search.js) over a history of 100,000 messages
 * (scripts/history_fill.ts: half from bob, half to carol): across all
 * conversations and within one; a hit opens its conversation at that
 * message, far from the newest, highlighted and in view; what is shown of
 * a message and of the query stays text.
 */
import assert from "node:assert/strict";
import { axeViolations, browserTest, filledDaemon, holds, livePage } from "../support/browser.ts";
import { BOB } from "../../scripts/history_fill.ts";

browserTest(
  "search finds a message in a 100,000-message history, across conversations and within one, and opens its conversation scrolled to it, highlighted",
  async (browser, tempDir) => {
    const a = await filledDaemon(tempDir(), 100_000);
    const page = await livePage(browser, `${await a.webLink()}#peer=${BOB}`);
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.locator("#messages li[data-cursor]").first().waitFor({ timeout: 15_000 });
    const search = async (text: string, scope: "all" | RegExp) => {
      await page.click("#search-button");
      await page.locator("#search-dialog[open]").waitFor({ timeout: 5000 });
      if (scope === "all") await page.selectOption("#search-scope", "all");
      else assert.match(await page.locator("#search-scope option:checked").innerText(), scope);
      await page.fill("#search-text", text);
      await page.press("#search-text", "Enter");
      await page.locator("#search-note", { hasText: /found/ }).waitFor({ timeout: 15_000 });
    };

    // A hostile query: found nowhere, shown as text.
    await search(`<img src=x onerror="window.pwned=1">`, "all");
    assert.match(await page.locator("#search-note").innerText(), /^Nothing found for “<img src=x onerror=/);
    assert.equal(await page.locator("#search-dialog img").count(), 0);
    await page.keyboard.press("Escape");

    // Across all conversations: "zebracorn" is in the first 5 messages of history only, newest first.
    await search("ZebraCorn", "all");
    const hits = page.locator("#search-hits li");
    assert.equal(await hits.count(), 5);
    assert.deepEqual(await page.locator("#search-hits mark").allInnerTexts(), Array(5).fill("zebracorn"));
    assert.match(await hits.first().innerText(), /bob@bench/);
    assert.match(await hits.nth(1).innerText(), /carol@bench · You/);
    assert.equal(await page.locator("#search-more").isVisible(), false, "no older results");
    await page.screenshot({ path: new URL("../../docs/web-search.png", import.meta.url).pathname });
    assert.deepEqual(await axeViolations(page), [], "the search dialog with its hits");

    // The oldest hit: bob's conversation opens there, 100,000 messages back, with the match marked and in view.
    await hits.last().locator("button").click();
    const found = page.locator("#messages li.search-found");
    await found.waitFor({ timeout: 15_000 });
    assert.equal(await page.locator("#peer-title").innerText(), "bob@bench");
    assert.equal(await found.locator("mark.search-hit").innerText(), "zebracorn");
    assert.equal(await page.locator("#messages[data-newest='false']").count(), 1, "the window is far from the end");
    const inView = `(() => {
      const li = document.querySelector("#messages li.search-found").getBoundingClientRect();
      const list = document.getElementById("messages").getBoundingClientRect();
      return li.top >= list.top - 1 && li.bottom <= list.bottom + 1;
    })()`;
    await holds(page, inView, 5000);
    await page.screenshot({ path: new URL("../../docs/web-search-hit.png", import.meta.url).pathname });
    const oldest: { cursor: number }[] = await (await fetch(`${a.httpUrl}/messages?peer=${BOB}&after=0&limit=1`))
      .json();
    assert.equal(Number(await found.getAttribute("data-cursor")), oldest[0]!.cursor);

    // Within one conversation: carol's (the scope offered first when a conversation is open).
    await page.locator("#peer-list li", { hasText: "carol@bench" }).click();
    await page.locator("#messages li[data-cursor]").first().waitFor({ timeout: 15_000 });
    await search("zebracorn", /carol@bench/);
    assert.equal(await hits.count(), 2);
    for (const text of await hits.allInnerTexts()) assert.match(text, /^carol@bench · You/);

    // Many hits: a page at a time, older ones on request.
    await page.selectOption("#search-scope", "all");
    await page.fill("#search-text", "午饭吃什么");
    await page.press("#search-text", "Enter");
    await page.locator("#search-note", { hasText: /30 messages found/ }).waitFor({ timeout: 15_000 });
    await page.click("#search-more");
    await page.locator("#search-note", { hasText: /60 messages found/ }).waitFor({ timeout: 15_000 });
    const cursors = await page.locator("#search-hits li").evaluateAll((lis) => lis.length);
    assert.equal(cursors, 60);
    await hits.nth(45).locator("button").click();
    await page.locator("#messages li.search-found mark.search-hit", { hasText: "午饭吃什么" }).waitFor({
      timeout: 15_000,
    });

    assert.equal(await page.evaluate(() => (globalThis as { pwned?: number }).pwned), undefined);
    assert.deepEqual(errors, []);
  },
);
