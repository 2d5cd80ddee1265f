/**
 * Hostile tests of issue 26 in the page as merged (found by an outside
 * tester): a message its sender edits or deletes. The daemon applies both
 * (history, SSE `message-updated`, `lanchat inbox` shows `(edited)` /
 * `(deleted)`), but the page open on the conversation keeps showing the
 * deleted words, and shows an edit as if it had been said so from the start.
 */
import assert from "node:assert/strict";
import { browserTest, livePage, pair } from "../support/browser.ts";

browserTest(
  "a message deleted by its sender leaves the open page, and an edited one is marked edited",
  async (browser) => {
    const { a, b, say } = await pair();
    const gone = await say("the door code is 4711");
    const changed = await say("meet at 10");
    const page = await livePage(browser, `${await b.webLink()}#peer=${a.id}`);
    await page.locator("#messages li[data-id]", { hasText: "meet at 10" }).waitFor({ timeout: 10_000 });

    const del = await fetch(`${a.httpUrl}/messages/${gone.id}/delete`, { method: "POST", body: "{}" });
    assert.equal(del.status, 200);
    const edit = await fetch(`${a.httpUrl}/messages/${changed.id}/edit`, {
      method: "POST",
      body: JSON.stringify({ text: "meet at 11" }),
    });
    assert.equal(edit.status, 200);
    // The peer's daemon has both (what `lanchat inbox` reads).
    const history = await (await fetch(`${b.httpUrl}/messages?peer=${a.id}`)).json() as {
      text: string;
      editedAt?: number;
      deletedAt?: number;
    }[];
    assert.ok(history.some((m) => m.deletedAt && m.text === ""), JSON.stringify(history));
    assert.ok(history.some((m) => m.editedAt && m.text === "meet at 11"), JSON.stringify(history));

    // The open page: the deleted words go (live), the edit shows with a mark.
    await page.locator("#messages", { hasText: "meet at 11" }).waitFor({ timeout: 10_000 }).catch(() => {});
    const shown = await page.locator("#messages").innerText();
    assert.ok(!shown.includes("4711"), `the page still shows the deleted message: ${JSON.stringify(shown)}`);
    assert.ok(shown.includes("meet at 11"), `the page does not show the edit: ${JSON.stringify(shown)}`);
    assert.match(shown, /edited/i, "an edit is marked as one");

    // Opened afresh: still no deleted words, the edit marked, the deletion said (not an empty bubble).
    await page.reload();
    await page.locator("body[data-live='true']").waitFor({ timeout: 15_000 });
    await page.locator("#messages li[data-id]", { hasText: "meet at 11" }).waitFor({ timeout: 10_000 });
    const again = await page.locator("#messages").innerText();
    assert.match(again, /edited/i, `reloaded, the edit is not marked: ${JSON.stringify(again)}`);
    assert.match(again, /deleted/i, `reloaded, the deletion is not said: ${JSON.stringify(again)}`);
  },
);
