/**
 * The web page in a real browser (Debian's chromium, headless, driven by
 * playwright-core): two daemons on loopback, a page on each. Ignored, with
 * the reason, where chromium is not installed.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { browserTest, filledDaemon, pair } from "../support/browser.ts";
import { freeUdpPort, runCli, startLoopbackDaemon, tempDataDir, until } from "../support/daemon_process.ts";
import { newNodeKey, sendHello } from "../support/hostile.ts";
import { BOB } from "../../scripts/history_fill.ts";

browserTest(
  "a message typed in page A appears live in page B, gets its delivery tick in A, and a hostile name and text stay text",
  async (browser) => {
    const port = freeUdpPort();
    const hostile = `<img src=x onerror="window.pwned=1">`;
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, hostile).started();
    await a.joined(b.id, 3000);
    await b.joined(a.id, 3000);
    const dialogs: string[] = [];
    const open = async (url: string) => {
      const page = await browser.newPage();
      page.on("dialog", (d) => {
        dialogs.push(d.message());
        void d.dismiss();
      });
      await page.goto(url);
      await page.locator("body[data-live='true']").waitFor({ timeout: 10_000 });
      return page;
    };
    const pageA = await open(await a.webLink());
    const pageB = await open(await b.webLink());
    // A sees bob by his hostile name, as text.
    const bobInA = pageA.locator("#peer-list li", { hasText: "<img src=x" });
    await bobInA.waitFor({ timeout: 10_000 });
    assert.equal(await pageA.locator("#peer-list img").count(), 0, "no element was made of the name");
    await bobInA.click();
    await pageA.fill("#text", `hello bob ${hostile}\nsecond line 你好 🎉`);
    await pageA.press("#text", "Enter");
    // B: the message arrives live, as text; unread count and title show it until opened.
    const aliceInB = pageB.locator("#peer-list li", { hasText: "alice" });
    await aliceInB.locator(".unread").waitFor({ timeout: 10_000 });
    assert.match(await pageB.title(), /^\(1\) lanchat/);
    await aliceInB.click();
    const got = pageB.locator("#messages li.in").last();
    await got.waitFor({ timeout: 10_000 });
    // Messages are `content-visibility: auto`: one is rendered (and has an innerText) once the list has scrolled to it.
    await pageB.waitForFunction(
      `[...document.querySelectorAll("#messages li.in")].at(-1)?.innerText.includes("hello bob")`,
      undefined,
      { timeout: 10_000 },
    );
    assert.match(await got.innerText(), /hello bob <img src=x onerror="window.pwned=1">\nsecond line 你好 🎉/);
    assert.equal(await pageB.locator("#messages img").count(), 0);
    assert.match(await pageB.title(), /^lanchat/);
    // A: the delivery tick.
    await pageA.locator("#messages li.out .meta", { hasText: /delivered ✓|read ✓✓/ }).waitFor({ timeout: 10_000 });
    // B has the conversation open and in view: A learns it was read (a read receipt).
    await pageA.locator("#messages li.out .meta", { hasText: "read ✓✓" }).waitFor({ timeout: 10_000 }).catch(
      async (e) => {
        const atA = await (await fetch(`${a.httpUrl}/messages`)).json();
        const atB = await (await fetch(`${b.httpUrl}/messages`)).json();
        const hidden = await pageB.evaluate("document.hidden") + " A meta: " +
          (await pageA.locator("#messages").innerText());
        throw new Error(`${e.message}\nA: ${JSON.stringify(atA)}\nB: ${JSON.stringify(atB)}\nB hidden: ${hidden}`);
      },
    );
    // Nothing ran.
    for (const page of [pageA, pageB]) {
      assert.equal(await page.evaluate(() => (globalThis as { pwned?: number }).pwned), undefined);
    }
    assert.deepEqual(dialogs, []);
    // Another site's page cannot post a message through the user's browser.
    const evil = await browser.newPage();
    await evil.goto("about:blank");
    const status = await evil.evaluate(async (url) => {
      try {
        const r = await fetch(`${url}/messages`, {
          method: "POST",
          body: JSON.stringify({ to: "alice", text: "forged" }),
          mode: "no-cors",
        });
        return r.type;
      } catch (e) {
        return String(e);
      }
    }, b.httpUrl);
    assert.ok(status === "opaque" || /Failed/.test(status), status);
    const inA: { text: string }[] = await (await fetch(`${a.httpUrl}/messages`)).json();
    assert.ok(!inA.some((m) => m.text === "forged"), "the forged message was not sent");
    await Deno.mkdir(new URL("../../docs/", import.meta.url), { recursive: true });
    await pageB.setViewportSize({ width: 1000, height: 600 });
    await pageB.screenshot({ path: new URL("../../docs/web.png", import.meta.url).pathname });
  },
);

browserTest(
  "the page opens only through the one-time link of lanchat web: an HttpOnly cookie no script can read, a clean URL, and the link works once",
  async (browser) => {
    const a = await startLoopbackDaemon(freeUdpPort(), "alice").started();
    // Without the link: a short page saying how to open it, and nothing of the API.
    const stranger = await browser.newPage();
    const bare = await stranger.goto(a.httpUrl);
    assert.equal(bare!.status(), 401);
    assert.equal(
      await stranger.locator("p").first().innerText(),
      "Run `lanchat web` on this computer to open lanchat.",
    );
    assert.equal(await stranger.locator("#me").count(), 0);
    // With it: the page, at a URL without the code, in history without it either.
    const link = await a.webLink();
    const page = await browser.newPage();
    const requests: string[] = [];
    page.on("request", (r) => requests.push(`${r.url()} referer=${r.headers()["referer"] ?? ""}`));
    await page.goto(link);
    await page.locator("#me", { hasText: "alice" }).waitFor({ timeout: 10_000 });
    assert.equal(page.url(), `${a.httpUrl}/`, "the code is not in the address bar");
    assert.ok(requests.filter((r) => r.includes("code=")).length === 1, requests.join("\n"));
    assert.ok(!requests.some((r) => /referer=.*code=/.test(r)), "no request tells the code as its referrer");
    assert.equal(await page.evaluate("document.cookie"), "", "the cookie is HttpOnly");
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === "lanchat_session")!;
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, "Strict");
    assert.ok(a.token && !session.value.includes(a.token), "the browser never holds the token");
    // Back in history: the entry before, not the link (a redirect leaves no entry of its own).
    await page.goBack();
    assert.ok(!page.url().includes("code="), page.url());
    // The same link again, in another browser: refused.
    const again = await browser.newPage();
    const replay = await again.goto(link);
    assert.equal(replay!.status(), 401);
    assert.match(await again.locator("p").first().innerText(), /used already, or is more than a minute old/);
    assert.equal((await again.context().cookies()).length, 0);
  },
);

browserTest(
  "a conversation of 3,000 messages scrolls to its first message and back with at most a window of them in the page",
  async (browser, tempDir) => {
    const a = await filledDaemon(tempDir(), 6000);
    const page = await browser.newPage();
    await page.goto(`${await a.webLink()}#peer=${BOB}`);
    const list = page.locator("#messages");
    await list.locator("li").first().waitFor({ timeout: 10_000 });
    let most = 0;
    for (let i = 0; i < 400 && await page.locator("#messages[data-oldest='true']").count() === 0; i++) {
      await page.evaluate("document.getElementById('messages').scrollTop = 0");
      await page.waitForTimeout(15);
      most = Math.max(most, await list.locator("li").count());
    }
    assert.equal(await page.locator("#messages[data-oldest='true']").count(), 1, "reached the first message");
    assert.ok(most <= 400, `${most} items in the page at most`);
    const first = await list.locator("li[data-cursor]").first().getAttribute("data-cursor");
    const oldest: { cursor: number }[] = await (await fetch(`${a.httpUrl}/messages?peer=${BOB}&after=0&limit=1`))
      .json();
    assert.equal(Number(first), oldest[0]!.cursor);
    // And back down to the newest.
    for (let i = 0; i < 400 && await page.locator("#messages[data-newest='true']").count() === 0; i++) {
      await page.evaluate("const l = document.getElementById('messages'); l.scrollTop = l.scrollHeight");
      await page.waitForTimeout(15);
    }
    assert.equal(await page.locator("#messages[data-newest='true']").count(), 1, "back at the newest message");
  },
);

browserTest(
  "a file picked in page A is offered in page B, accepted there, and arrives verified; its staging copy is gone",
  async (browser, tempDir) => {
    const port = freeUdpPort();
    const work = tempDir();
    const aDir = tempDataDir();
    const a = await startLoopbackDaemon(port, "alice", { dataDir: aDir }).started();
    const b = await startLoopbackDaemon(port, "bob", { extra: ["--downloads", `${work}/dl`] }).started();
    await a.joined(b.id, 3000);
    const bytes = new Uint8Array(300_000).map((_, i) => (i * 2654435761) >>> 24);
    await Deno.writeFile(`${work}/photo 照片.bin`, bytes);
    const pageA = await browser.newPage();
    const pageB = await browser.newPage();
    for (const p of [pageA, pageB]) p.on("pageerror", (e) => console.log("page error:", e.message));
    await pageA.goto(`${await a.webLink()}#peer=${b.id}`);
    await pageB.goto(`${await b.webLink()}#peer=${a.id}`);
    for (const p of [pageA, pageB]) await p.locator("body[data-live='true']").waitFor({ timeout: 10_000 });
    await pageA.locator("#composer").waitFor({ state: "visible", timeout: 10_000 }).catch(async (e) => {
      throw new Error(`${e.message}\n${await pageA.locator("body").innerText()}`);
    });
    await pageB.locator("#composer").waitFor({ state: "visible", timeout: 10_000 });
    await pageA.setInputFiles("#file-input", `${work}/photo 照片.bin`);
    const offer = pageB.locator("#transfers .transfer", { hasText: "photo 照片.bin" });
    await offer.locator("button", { hasText: "Accept" }).click({ timeout: 15_000 });
    await pageB.locator("#transfers .transfer", { hasText: "done" }).waitFor({ timeout: 15_000 }).catch(async (e) => {
      const state = async (d: { httpUrl: string }) =>
        JSON.stringify(await (await fetch(`${d.httpUrl}/transfers`)).json());
      throw new Error(
        `${e.message}\nA: ${await state(a)}\nB: ${await state(b)}\nA log: ${
          a.rawStderr.slice(-15).join("\n")
        }\nB log: ${b.rawStderr.slice(-15).join("\n")}`,
      );
    });
    await pageA.locator("#transfers .transfer", { hasText: "done" }).waitFor({ timeout: 15_000 });
    await pageB.setViewportSize({ width: 1000, height: 600 });
    await pageB.screenshot({ path: new URL("../../docs/web-files.png", import.meta.url).pathname });
    // The same page on a phone, in the dark.
    await pageA.emulateMedia({ colorScheme: "dark" });
    await pageA.setViewportSize({ width: 360, height: 700 });
    assert.equal(
      await pageA.evaluate("document.documentElement.scrollWidth <= 360"),
      true,
      "nothing wider than 360 px",
    );
    await pageA.screenshot({ path: new URL("../../docs/web-narrow-dark.png", import.meta.url).pathname });
    const got = await Deno.readFile(`${work}/dl/photo 照片.bin`);
    assert.deepEqual(got, bytes);
    // The copy the upload left in alice's data directory goes once the transfer is done.
    await new Promise((r) => setTimeout(r, 500));
    const staged = [...Deno.readDirSync(`${aDir}/uploads`)];
    assert.deepEqual(staged, []);
  },
);

browserTest(
  "a group made in the page: its members see it, each message says who wrote it, delivery counts every member, and a hostile group name stays text",
  async (browser) => {
    const port = freeUdpPort();
    const hostile = `<b onmouseover="x()">lab</b>`;
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob").started();
    const c = await startLoopbackDaemon(port, "carol").started();
    for (const [x, y] of [[a, b], [a, c], [b, c]] as const) await x.joined(y.id, 5000);
    const open = async (url: string) => {
      const page = await browser.newPage();
      await page.goto(url);
      await page.locator("body[data-live='true']").waitFor({ timeout: 10_000 });
      return page;
    };
    const pageA = await open(await a.webLink());
    const pageB = await open(await b.webLink());
    await pageA.locator("#peer-list li", { hasText: "carol" }).waitFor({ timeout: 10_000 });
    // Alice makes the group in the dialog: a name, two people ticked.
    await pageA.click("#new-group");
    await pageA.fill("#group-name", hostile);
    for (const name of ["bob", "carol"]) {
      await pageA.locator("#group-people label", { hasText: name }).locator("input").check();
    }
    await pageA.click("#group-form button[value='ok']");
    await pageA.locator("#peer-title", { hasText: `@${hostile}` }).waitFor({ timeout: 10_000 });
    assert.match(await pageA.locator("#group-members").innerText(), /bob, carol and you|carol, bob and you/);
    await pageA.fill("#text", "hi both");
    await pageA.press("#text", "Enter");
    // Bob: the group is in his list, with what came unread; opened, it says who wrote what.
    const groupInB = pageB.locator("#peer-list li.group", { hasText: `@${hostile}` });
    await groupInB.locator(".unread").waitFor({ timeout: 10_000 });
    await groupInB.click();
    await pageB.locator("#messages li.in", { hasText: "alice: hi both" }).waitFor({ timeout: 10_000 });
    assert.match(await pageB.locator("#messages li.change").first().innerText(), /^alice created the group/);
    await pageB.fill("#text", "hi alice");
    await pageB.press("#text", "Enter");
    await pageA.locator("#messages li.in", { hasText: "bob: hi alice" }).waitFor({ timeout: 10_000 });
    // Alice's message: delivered to both members.
    await pageA.locator("#messages li.out", { hasText: "hi both" }).locator(".meta", {
      hasText: /delivered to 2 of 2|read by/,
    }).waitFor({ timeout: 10_000 });
    for (const page of [pageA, pageB]) assert.equal(await page.locator("#messages b, #peer-list b").count(), 0);
    // Group messages are the group's: bob's conversation with alice has none of them.
    await pageB.locator("#peer-list li:not(.group)", { hasText: "alice" }).click();
    await pageB.locator("#messages li.in", { hasText: "hi both" }).waitFor({ state: "detached", timeout: 2000 })
      .catch(() => {});
    assert.equal(await pageB.locator("#messages li", { hasText: "hi both" }).count(), 0);
    // Bob leaves from the page (after saying yes); alice's page shows the group without him.
    pageB.on("dialog", (d) => void d.accept());
    await groupInB.click();
    await pageB.click("#leave-group");
    await pageB.locator("#group-members", { hasText: "You left this group." }).waitFor({ timeout: 10_000 });
    assert.equal(await pageB.locator("#composer").isVisible(), false, "nothing to write in a group you left");
    await pageA.locator("#group-members", { hasText: /^carol and you$/ }).waitFor({ timeout: 10_000 });
    await pageA.locator("#messages li.change", { hasText: "bob left the group" }).waitFor({ timeout: 10_000 });
    // Alice adds him back from her page: his page has the group to write in again.
    await pageA.click("#add-people");
    await pageA.locator("#group-people label", { hasText: "bob" }).locator("input").check();
    assert.equal(
      await pageA.locator("#group-people label", { hasText: "carol" }).count(),
      0,
      "members are not offered",
    );
    await pageA.click("#group-form button[value='ok']");
    await pageB.locator("#group-members", { hasText: /alice/ }).waitFor({ timeout: 10_000 });
    await pageB.locator("#composer").waitFor({ state: "visible", timeout: 10_000 });
  },
);

browserTest(
  "the page notifies of a message while hidden, and not while the user is busy (the message is still there)",
  async (browser) => {
    const port = freeUdpPort();
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob").started();
    await a.joined(b.id, 3000);
    const page = await browser.newPage();
    // Notifications allowed, recorded instead of shown; the tab hidden when the test says so.
    await page.addInitScript(() => {
      const w = globalThis as unknown as { notes: string[]; hiddenNow: boolean; Notification: unknown };
      w.notes = [];
      w.hiddenNow = false;
      w.Notification = class {
        static permission = "granted";
        static requestPermission() {
          return Promise.resolve("granted");
        }
        constructor(title: string) {
          w.notes.push(title);
        }
      };
      const doc = (globalThis as unknown as { document: object }).document;
      Object.defineProperty(doc, "hidden", { get: () => w.hiddenNow, configurable: true });
    });
    await page.goto(await a.webLink());
    await page.locator("body[data-live='true']").waitFor({ timeout: 10_000 });
    const notes = () => page.evaluate(() => (globalThis as unknown as { notes: string[] }).notes.length);
    await page.evaluate(() => (globalThis as unknown as { hiddenNow: boolean }).hiddenNow = true);
    const send = (text: string) =>
      fetch(`${b.httpUrl}/messages?wait=5`, { method: "POST", body: JSON.stringify({ to: "alice", text }) });
    assert.equal((await send("while you were out")).status, 200);
    await page.waitForFunction(() => (globalThis as unknown as { notes: string[] }).notes.length === 1, null, {
      timeout: 10_000,
    });
    await page.selectOption("#presence", "busy");
    await until(
      "alice to be busy",
      async () => (await (await fetch(`${a.httpUrl}/status`)).json()).presence === "busy",
      5000,
    );
    assert.equal((await send("during the meeting")).status, 200, "stored and acknowledged as always");
    await page.locator("#peer-list li .unread", { hasText: "2" }).waitFor({ timeout: 10_000 });
    assert.equal(await notes(), 1, "no notification while busy");
  },
);

/** What a daemon's API says of the messages with these texts in its conversation with `peer`: read or not. */
async function readState(
  daemon: { httpUrl: string },
  peer: string,
  texts: string[],
): Promise<Record<string, string | undefined>> {
  const all: { text: string; readAt?: string }[] = await (await fetch(
    `${daemon.httpUrl}/messages?peer=${peer}&limit=200`,
  )).json();
  return Object.fromEntries(texts.map((t) => [t, all.find((m) => m.text === t)?.readAt]));
}

/** Whether the message with this text is on screen in the page (at least half of it, inside the list). */
function onScreen(page: Page, text: string): Promise<boolean> {
  const needle = JSON.stringify(text);
  return page.evaluate(`(() => {
    const li = [...document.querySelectorAll("#messages li.in")].find((x) => x.textContent.includes(${needle}));
    if (!li) return false;
    const r = li.getBoundingClientRect();
    const box = document.getElementById("messages").getBoundingClientRect();
    return Math.min(r.bottom, box.bottom) - Math.max(r.top, box.top) >= r.height / 2;
  })()`);
}

/** Both sides agree these messages are unread (bob's store) and unreceipted (alice's), a few seconds after they arrived. */
async function staysUnread(a: { httpUrl: string; id: string }, b: { httpUrl: string; id: string }, texts: string[]) {
  await new Promise((r) => setTimeout(r, 3000));
  assert.deepEqual(await readState(b, a.id, texts), Object.fromEntries(texts.map((t) => [t, undefined])), "bob's");
  assert.deepEqual(await readState(a, b.id, texts), Object.fromEntries(texts.map((t) => [t, undefined])), "alice's");
}

/** Both sides come to say these messages were read (bob's store, and alice's by his receipt). */
async function becomeRead(a: { httpUrl: string; id: string }, b: { httpUrl: string; id: string }, texts: string[]) {
  for (const [who, d, peer] of [["bob", b, a.id], ["alice", a, b.id]] as const) {
    await until(
      `${who} to have ${texts.join(", ")} read`,
      async () => Object.values(await readState(d, peer, texts)).every((x) => x !== undefined),
      15_000,
    );
  }
}

browserTest(
  "messages that arrive below a conversation scrolled to its top are not marked read until scrolled into view",
  async (browser) => {
    const { a, b, say: send } = await pair();
    for (let i = 1; i <= 40; i++) await send(`history ${i}`);
    // Read before, through bob's API: only the new ones are unread.
    const r = await fetch(`${b.httpUrl}/messages/read`, { method: "POST", body: JSON.stringify({ peer: a.id }) });
    assert.equal((await r.json()).read, 40);
    const page = await browser.newPage({ viewport: { width: 900, height: 500 } });
    page.on("pageerror", (e) => console.log("page error:", e.message));
    await page.goto(`${await b.webLink()}#peer=${a.id}`);
    await page.locator("body[data-live='true']").waitFor({ timeout: 10_000 });
    await page.locator("#messages li.in", { hasText: "history 40" }).waitFor({ timeout: 10_000 });
    // Scrolled to the top, explicitly (whatever the page did on opening).
    await page.evaluate("document.getElementById('messages').scrollTop = 0");
    await until(
      "the list to be at its top",
      async () => await page.evaluate("document.getElementById('messages').scrollTop") === 0,
      5000,
    );
    assert.equal(await onScreen(page, "history 1"), true, "the first message is on screen");
    assert.equal(await onScreen(page, "history 40"), false, "the conversation is longer than the screen");
    const fresh = ["fresh one", "fresh two"];
    for (const t of fresh) await send(t);
    for (const t of fresh) await page.locator("#messages li.in", { hasText: t }).waitFor({ state: "attached" });
    assert.equal(await onScreen(page, "fresh one"), false);
    assert.equal(await page.evaluate("document.getElementById('messages').scrollTop"), 0, "still at the top");
    await staysUnread(a, b, fresh);
    assert.equal(await onScreen(page, "fresh two"), false, "still out of view");
    assert.match(await page.title(), /^\(2\) lanchat/, "counted unread in the title");
    // Scrolled down to them: read, and alice gets the receipt.
    await page.evaluate("const l = document.getElementById('messages'); l.scrollTop = l.scrollHeight");
    await becomeRead(a, b, fresh);
    await until("the title to count nothing unread", async () => /^lanchat/.test(await page.title()), 5000);
  },
);

browserTest(
  "a message on screen is not marked read while another window has the focus or the page is hidden, and is when it comes back",
  async (browser) => {
    const { a, b, say: send } = await pair();
    await send("hello bob");
    const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
    const page = await context.newPage();
    page.on("pageerror", (e) => console.log("page error:", e.message));
    // The page's visibility, switched by the test: headless chromium keeps every page visible.
    await page.addInitScript(() => {
      const w = globalThis as unknown as { hiddenNow: boolean; setHidden: (h: boolean) => void };
      const doc = (globalThis as unknown as { document: EventTarget }).document;
      w.hiddenNow = false;
      Object.defineProperty(doc, "hidden", { get: () => w.hiddenNow, configurable: true });
      Object.defineProperty(doc, "visibilityState", {
        get: () => w.hiddenNow ? "hidden" : "visible",
        configurable: true,
      });
      w.setHidden = (h) => {
        w.hiddenNow = h;
        doc.dispatchEvent(new Event("visibilitychange"));
      };
    });
    await page.goto(`${await b.webLink()}#peer=${a.id}`);
    // Real focus: without playwright's focus emulation, the page in front has it and the others lose it.
    const cdp = await context.newCDPSession(page);
    await cdp.send("Emulation.setFocusEmulationEnabled", { enabled: false });
    await page.bringToFront();
    await page.locator("body[data-live='true']").waitFor({ timeout: 10_000 });
    await page.locator("#messages li.in", { hasText: "hello bob" }).waitFor({ timeout: 10_000 });
    await becomeRead(a, b, ["hello bob"]);
    // Another window in front: bob's page is still visible, but nobody is looking at it.
    const other = await context.newPage();
    await other.bringToFront();
    await until("bob's page to lose the focus", async () => await page.evaluate("document.hasFocus()") === false, 5000);
    await send("while you were elsewhere");
    await page.locator("#messages li.in", { hasText: "while you were elsewhere" }).waitFor({ timeout: 10_000 });
    assert.equal(await onScreen(page, "while you were elsewhere"), true, "on screen, in a page without the focus");
    await staysUnread(a, b, ["while you were elsewhere"]);
    await page.bringToFront();
    await until("bob's page to have the focus", async () => await page.evaluate("document.hasFocus()") === true, 5000);
    await becomeRead(a, b, ["while you were elsewhere"]);
    // The tab hidden: nothing is read until it is shown again.
    await page.evaluate(() => (globalThis as unknown as { setHidden: (h: boolean) => void }).setHidden(true));
    await send("while hidden");
    await page.locator("#messages li.in", { hasText: "while hidden" }).waitFor({ timeout: 10_000 });
    assert.equal(await onScreen(page, "while hidden"), true);
    await staysUnread(a, b, ["while hidden"]);
    await page.evaluate(() => (globalThis as unknown as { setHidden: (h: boolean) => void }).setHidden(false));
    await becomeRead(a, b, ["while hidden"]);
  },
);

browserTest(
  "a conversation opened with more unread messages than fit marks those above the screen read only when scrolled over",
  async (browser) => {
    const { a, b, say: send } = await pair();
    const texts = Array.from({ length: 40 }, (_, i) => `unread ${i + 1}`);
    for (const t of texts) await send(t);
    const page = await browser.newPage({ viewport: { width: 900, height: 500 } });
    page.on("pageerror", (e) => console.log("page error:", e.message));
    await page.goto(`${await b.webLink()}#peer=${a.id}`);
    await page.locator("body[data-live='true']").waitFor({ timeout: 10_000 });
    await page.locator("#messages li.in", { hasText: "unread 40" }).waitFor({ timeout: 10_000 });
    // At the bottom, explicitly (whatever the page did on opening).
    await page.evaluate("const l = document.getElementById('messages'); l.scrollTop = l.scrollHeight");
    assert.equal(await onScreen(page, "unread 40"), true);
    assert.equal(await onScreen(page, "unread 1"), false);
    // The newest are on screen, but a receipt names the newest message read and means every one before it:
    // nothing is read while older unread ones have not been seen.
    await staysUnread(a, b, ["unread 1", "unread 20", "unread 40"]);
    // Scrolled up over them, half a screen at a time, each step seen: all read.
    for (let i = 0; i < 100; i++) {
      await until(
        "what is on screen to be seen",
        () =>
          page.evaluate(`[...document.querySelectorAll("#messages li[data-unread]")].every((li) => {
          const r = li.getBoundingClientRect(), box = document.getElementById("messages").getBoundingClientRect();
          return li.dataset.seen || Math.min(r.bottom, box.bottom) - Math.max(r.top, box.top) < r.height / 2;
        })`) as Promise<boolean>,
        5000,
      );
      if (await page.evaluate("document.getElementById('messages').scrollTop") === 0) break;
      await page.evaluate("const l = document.getElementById('messages'); l.scrollTop -= l.clientHeight / 2");
    }
    await becomeRead(a, b, texts);
  },
);

browserTest(
  "the page shows each peer's key trust, verifies with the same safety number as the CLI, and says a key changed",
  async (browser) => {
    const port = freeUdpPort();
    const hostile = `<img src=x onerror="window.pwned=1">'"&amp;`;
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, hostile).started();
    await a.joined(b.id, 5000);
    await b.joined(a.id, 5000);
    const page = await browser.newPage();
    page.on("dialog", (d) => void d.dismiss());
    await page.goto(await a.webLink());
    await page.locator("body[data-live='true']").waitFor({ timeout: 10_000 });
    const bob = page.locator("#peer-list li", { hasText: "<img src=x" });
    await bob.locator(".trust", { hasText: "not verified" }).waitFor({ timeout: 10_000 });
    await bob.click();
    await page.locator("#peer-trust", { hasText: "not verified" }).waitFor({ timeout: 5000 });
    await page.click("#verify-button");
    const number = page.locator("#verify-number");
    await number.locator("xpath=self::*[normalize-space(.) != '']").waitFor({ timeout: 10_000 });
    const cli = await runCli(["verify", b.id, "--json", "--http", a.httpUrl.replace("http://", "")]);
    const expected: string = JSON.parse(cli.stdout).safetyNumber;
    const other = await runCli(["verify", a.id, "--json", "--http", b.httpUrl.replace("http://", "")]);
    assert.equal(JSON.parse(other.stdout).safetyNumber, expected, "the same number on both sides");
    const shown = (await number.innerText()).split("\n");
    assert.equal(shown.length, 3, "three lines");
    assert.equal(shown.map((l) => l.trim().split(/\s+/).join(" ")).join(" "), expected);
    assert.match(
      await page.locator("#verify-title").innerText(),
      /^Verify <img src=x onerror="window\.pwned=1">'"&amp;$/,
    );
    await page.click("#verify-match");
    await page.locator("#verify-state", { hasText: "is verified" }).waitFor({ timeout: 10_000 });
    assert.equal(await page.locator("#verify-match").isHidden(), true);
    await page.click("#verify-dialog button[value='cancel']");
    await bob.locator(".trust", { hasText: "verified ✓" }).waitFor({ timeout: 10_000 });
    const peers = await runCli(["peers", "--json", "--http", a.httpUrl.replace("http://", "")]);
    assert.equal(JSON.parse(peers.stdout).find((p: { id: string }) => p.id === b.id).trust, "trusted");
    // Another key claims bob's (hostile) name: KEY CHANGED, and what it means, as text.
    const other2 = newNodeKey();
    await sendHello(other2, hostile, a.unicastPort);
    const changed = page.locator(`#peer-list li[data-id='${other2.id}']`);
    await changed.locator(".trust", { hasText: "KEY CHANGED" }).waitFor({ timeout: 10_000 });
    await changed.click();
    const note = page.locator("#key-note");
    await note.waitFor({ state: "visible", timeout: 5000 });
    assert.match(await note.innerText(), /^<img src=x onerror="window\.pwned=1">'"&amp;'s key changed: this key/);
    assert.match(await note.innerText(), /which you verified/);
    assert.equal(await page.locator("img").count(), 0, "no element was made of the name");
    assert.equal(await page.evaluate(() => (globalThis as { pwned?: number }).pwned), undefined);
    await page.click("#verify-button");
    await page.locator("#verify-note", { hasText: "key changed" }).waitFor({ timeout: 10_000 });
    assert.equal(await page.locator("#verify-match").isVisible(), true, "the new key can be verified");
    await page.click("#verify-dialog button[value='cancel']");
    await page.click("#status-button");
    await page.locator("#status-text", { hasText: "KEY CHANGED: <img src=x" }).waitFor({ timeout: 5000 });
  },
);
