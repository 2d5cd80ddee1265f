/**
 * Reply, edit and delete in the page (web/compose.js) between two daemons,
 * a page on each: a reply shows what it answers at both ends, an edit and a
 * deletion reach the other page live and the other node's history (as
 * `lanchat inbox` shows it), hostile text stays text, and a message of
 * someone else's has no Edit or Delete.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { freeUdpPort, runCli, startLoopbackDaemon } from "../support/daemon_process.ts";
import { axeViolations, browserTest, livePage } from "../support/browser.ts";

/** The list item of the first message in `page` with `text` (a reply quoting it comes after it). */
const item = (page: Page, text: string | RegExp) => page.locator("#messages li[data-id]", { hasText: text }).first();

/** Clicks one of a message's actions (shown when it is hovered). */
async function action(page: Page, text: string | RegExp, name: "Reply" | "Edit" | "Delete"): Promise<void> {
  const li = item(page, text);
  await li.hover();
  await li.locator(".actions button", { hasText: name }).click();
}

browserTest(
  "a reply, an edit and a deletion made in one page reach the other page live and the other node's inbox; hostile text stays text",
  async (browser) => {
    const port = freeUdpPort();
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob").started();
    await a.joined(b.id, 5000);
    await b.joined(a.id, 5000);
    const pageA = await livePage(browser, `${await a.webLink()}#peer=${b.id}`);
    const pageB = await livePage(browser, `${await b.webLink()}#peer=${a.id}`);
    const errors: string[] = [];
    const dialogs: string[] = [];
    for (const p of [pageA, pageB]) {
      p.on("pageerror", (e) => errors.push(e.message));
      p.on("dialog", (d) => {
        dialogs.push(d.message());
        void d.accept();
      });
    }
    await pageA.locator("#composer").waitFor({ state: "visible", timeout: 10_000 });
    await pageB.locator("#composer").waitFor({ state: "visible", timeout: 10_000 });

    // Alice writes; Bob answers it with Reply.
    await pageA.fill("#text", "lunch at noon?");
    await pageA.press("#text", "Enter");
    await item(pageB, "lunch at noon?").waitFor({ timeout: 10_000 });
    assert.equal(await item(pageB, "lunch at noon?").locator(".actions button", { hasText: "Edit" }).count(), 0);
    await action(pageB, "lunch at noon?", "Reply");
    assert.match(await pageB.locator("#compose-mode").innerText(), /Replying to alice: lunch at noon\?/);
    assert.deepEqual(await axeViolations(pageB), [], "a message's actions and the reply bar");
    await pageB.fill("#text", "yes, 12:30");
    await pageB.press("#text", "Enter");
    await pageB.locator("#compose-mode").waitFor({ state: "hidden", timeout: 5000 });
    // Both pages show the reply with what it answers.
    for (const page of [pageA, pageB]) {
      const reply = item(page, "yes, 12:30");
      await reply.locator(".quote", { hasText: "lunch at noon?" }).waitFor({ timeout: 10_000 });
    }
    const atA: { text: string; replyTo?: string; quote?: { text: string } }[] =
      await (await fetch(`${a.httpUrl}/messages?peer=${b.id}`)).json();
    const lunch = atA.find((m) => m.text === "lunch at noon?") as unknown as { id: string };
    assert.equal(atA.find((m) => m.text === "yes, 12:30")?.replyTo, lunch.id);

    // Alice edits her message (to hostile text): both pages show the new text, as text, and "(edited)".
    const hostile = `lunch at 1? <img src=x onerror="window.pwned=1">`;
    await action(pageA, "lunch at noon?", "Edit");
    assert.equal(await pageA.inputValue("#text"), "lunch at noon?");
    await pageA.fill("#text", hostile);
    await pageA.press("#text", "Enter");
    for (const page of [pageA, pageB]) {
      const edited = item(page, "lunch at 1?");
      await edited.locator(".edited").waitFor({ timeout: 10_000 });
      assert.equal(await page.locator("#messages img").count(), 0);
    }
    // Bob's reply quotes it as it is now (live in Bob's page, which had it open).
    await item(pageB, "yes, 12:30").locator(".quote", { hasText: "lunch at 1?" }).waitFor({ timeout: 10_000 });
    assert.equal(await pageA.inputValue("#text"), "", "the composer is empty after saving");

    // Bob edits his reply with Up in an empty composer; Esc first leaves an edit untouched.
    await pageB.focus("#text");
    await pageB.press("#text", "ArrowUp");
    assert.equal(await pageB.inputValue("#text"), "yes, 12:30");
    await pageB.press("#text", "Escape");
    assert.equal(await pageB.inputValue("#text"), "");
    await pageB.press("#text", "ArrowUp");
    await pageB.fill("#text", "yes, 13:00 then");
    await pageB.press("#text", "Enter");
    await item(pageA, "yes, 13:00 then").locator(".edited").waitFor({ timeout: 10_000 });

    // Alice deletes her message: gone at both ends, the quote says so.
    await action(pageA, "lunch at 1?", "Delete");
    for (const page of [pageA, pageB]) {
      await page.locator("#messages li.deleted .deleted-note").waitFor({ timeout: 10_000 });
      assert.equal(await page.locator("#messages li", { hasText: "lunch at 1?" }).count(), 0);
    }
    await item(pageB, "yes, 13:00 then").locator(".quote.quote-deleted").waitFor({ timeout: 10_000 });
    assert.match(dialogs.join("\n"), /Delete this message\? It is deleted for bob too/);

    // The other node's history, as the CLI gives it.
    const inboxB = await runCli(["inbox", "--json", "--http", b.httpUrl.replace("http://", "")]);
    assert.equal(inboxB.code, 0, inboxB.stderr);
    const lines = (out: string) => out.trim().split("\n").map((l) => JSON.parse(l));
    const atB: { text: string; deletedAt?: number; direction: string }[] = lines(inboxB.stdout);
    const deleted = atB.filter((m) => m.direction === "in" && m.deletedAt);
    assert.equal(deleted.length, 1);
    assert.equal(deleted[0]!.text, "");
    assert.ok(!inboxB.stdout.includes("lunch at"), "nothing of the deleted message is left");
    const inboxA = await runCli(["inbox", "--json", "--http", a.httpUrl.replace("http://", "")]);
    const atA2: { text: string; editedAt?: number }[] = lines(inboxA.stdout);
    assert.ok(atA2.find((m) => m.text === "yes, 13:00 then")?.editedAt, inboxA.stdout);
    // And as a person reads it.
    const textB = await runCli(["inbox", "--http", b.httpUrl.replace("http://", "")]);
    assert.match(textB.stdout, /alice: \(deleted\)/);
    const textA = await runCli(["inbox", "--http", a.httpUrl.replace("http://", "")]);
    assert.match(textA.stdout, /yes, 13:00 then {2}\((.*, )?edited\)/);

    for (const page of [pageA, pageB]) {
      assert.equal(await page.evaluate(() => (globalThis as { pwned?: number }).pwned), undefined);
    }
    assert.deepEqual(errors, []);
    await pageB.setViewportSize({ width: 1000, height: 600 });
    await item(pageB, "yes, 13:00 then").hover();
    await pageB.screenshot({ path: new URL("../../docs/web-reply.png", import.meta.url).pathname });
  },
);
