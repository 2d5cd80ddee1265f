/**
 * The page's conversation view in a real browser (see tests/support/browser.ts):
 * where a conversation opens and stays, the new-messages divider and the
 * jump button, bidi spoofing in messages and names, links, the 360 px
 * layout with and without a touch keyboard, and axe-core in each view.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { until } from "../support/daemon_process.ts";
import { axeViolations, browserTest, filledDaemon, livePage, pair } from "../support/browser.ts";
import { BOB } from "../../scripts/history_fill.ts";

/** How far the message list is from its bottom, in pixels (0: at the bottom). */
const fromBottom = (page: Page) =>
  page.evaluate(
    `(() => { const l = document.getElementById("messages"); return l.scrollHeight - l.scrollTop - l.clientHeight; })()`,
  ) as Promise<number>;

/** Waits (bounded) until the list is at its bottom, then checks it stays there for a while (no late jump up). */
async function staysAtBottom(page: Page, what: string) {
  await until(`${what}: the list at its bottom`, async () => await fromBottom(page) < 4, 10_000).catch(async (e) => {
    throw new Error(`${e.message} (${await fromBottom(page)} px from it)`);
  });
  for (let i = 0; i < 8; i++) {
    await page.waitForTimeout(250);
    assert.ok(
      await fromBottom(page) < 4,
      `${what}: still at the bottom after ${(i + 1) * 250} ms (${await fromBottom(page)} px)`,
    );
  }
}

/** Whether the message with this text has at least half of it inside the list's box. */
function onScreen(page: Page, text: string): Promise<boolean> {
  return page.evaluate(`(() => {
    const li = [...document.querySelectorAll("#messages li[data-id]")].find((x) => x.textContent.includes(${
    JSON.stringify(text)
  }));
    if (!li) return false;
    const r = li.getBoundingClientRect();
    const box = document.getElementById("messages").getBoundingClientRect();
    return Math.min(r.bottom, box.bottom) - Math.max(r.top, box.top) >= r.height / 2;
  })()`) as Promise<boolean>;
}

browserTest(
  "a conversation opens at its newest message and stays there; scrolled up, new ones get a divider and a jump button with their count",
  async (browser) => {
    const { a, b, say } = await pair();
    // Long and short messages, some multi-line: the list is many screens tall and items differ in height.
    for (let i = 1; i <= 45; i++) await say(i % 5 === 0 ? `long ${i}\n${"line\n".repeat(6)}end` : `message ${i}`);
    const page = await livePage(browser, `${await b.webLink()}#peer=${a.id}`, { width: 900, height: 600 });
    await page.locator("#messages li[data-id]", { hasText: "long 45" }).waitFor({ timeout: 10_000 });
    await staysAtBottom(page, "opened");
    assert.equal(await onScreen(page, "long 45"), true, "the newest message is on screen");
    // Where the unread messages start (all 45 were unread when it opened): the divider.
    const divider = page.locator("#messages li.divider");
    assert.equal(await divider.count(), 1, "a new-messages divider");
    assert.match(await divider.innerText(), /new messages/i);
    const next = await divider.evaluate((d) => d.nextElementSibling?.querySelector(".text")?.textContent ?? "");
    assert.match(next, /^message 1\b/, `before the first unread message: ${next}`);
    // A new message while at the bottom: shown, and the list stays at the bottom.
    await say(`live 1\n${"more\n".repeat(8)}end`);
    await page.locator("#messages li[data-id]", { hasText: "live 1" }).waitFor({ timeout: 10_000 });
    await staysAtBottom(page, "a message arrived");
    assert.equal(await page.locator("#jump").isVisible(), false, "no jump button at the bottom");
    // Scrolled up: new messages do not move the list; the jump button counts them.
    await page.evaluate("document.getElementById('messages').scrollTop = 0");
    await page.waitForTimeout(300);
    const top = await page.evaluate("document.getElementById('messages').scrollTop");
    for (const t of ["up 1", "up 2", "up 3"]) await say(t);
    await page.locator("#jump", { hasText: "3" }).waitFor({ timeout: 10_000 });
    assert.ok(
      (await page.evaluate("document.getElementById('messages').scrollTop") as number) <= (top as number) + 400,
      "the list was not pulled down",
    );
    assert.equal(await onScreen(page, "up 3"), false);
    await page.click("#jump");
    await staysAtBottom(page, "jumped");
    assert.equal(await onScreen(page, "up 3"), true);
    await page.locator("#jump").waitFor({ state: "hidden", timeout: 5000 });
  },
);

browserTest(
  "bidi spoofing: invoice_\\u202Efdp.exe in a message and in a peer's name shows the override, and names and texts are isolated",
  async (browser) => {
    const spoof = "invoice_\u202Efdp.exe";
    const { a, b, say } = await pair(spoof, "bob");
    await say(spoof);
    // Printing as nothing, and joiners where they join (the rule the CLI shares, web/hidden.js, in Chromium's engine).
    const family = "\u{1F468}\u200d\u{1F469}\u200d\u{1F467}";
    await say(`bo\u00adb bo\u200db ${family} می\u200cخواهم bob\u{e0062}`);
    await say("שלום 123 abc \u2067isolate\u2069 and \u200bzero width");
    const page = await livePage(browser, `${await b.webLink()}#peer=${a.id}`);
    await page.locator("#messages li.in", { hasText: "שלום" }).waitFor({ timeout: 10_000 });
    const texts = await page.evaluate(`(() => {
      const t = (sel) => [...document.querySelectorAll(sel)].map((e) => e.textContent).join("\\n");
      return { list: t("#peer-list li"), title: t("#peer-title"), messages: t("#messages li[data-id]") };
    })()`) as Record<string, string>;
    for (const [where, text] of Object.entries(texts)) {
      assert.ok(
        !/[\u202a-\u202e\u2066-\u2069\u200b]/.test(text),
        `${where} has no raw override: ${JSON.stringify(text)}`,
      );
    }
    assert.match(texts.list!, /invoice_<U\+202E>fdp\.exe/);
    assert.match(texts.title!, /invoice_<U\+202E>fdp\.exe/);
    assert.match(texts.messages!, /invoice_<U\+202E>fdp\.exe/);
    assert.match(texts.messages!, /<U\+2067>isolate<U\+2069> and <U\+200B>zero width/);
    assert.ok(
      texts.messages!.includes(`bo<U+00AD>b bo<U+200D>b ${family} می\u200cخواهم bob<U+E0062>`),
      JSON.stringify(texts.messages),
    );
    // What is drawn: "exe" is the end of the line as read, not "pdf".
    const shown = await page.locator("#messages li.in .text").first().innerText();
    assert.ok(!shown.includes("exe.pdf") && shown.includes("fdp.exe"), shown);
    // Each name and text is isolated, so a right-to-left one cannot reorder what is around it.
    const isolated = await page.evaluate(
      `[...document.querySelectorAll("#peer-list .name, #messages .text, #peer-title bdi")]
      .map((e) => getComputedStyle(e).unicodeBidi)`,
    ) as string[];
    assert.ok(isolated.length >= 3 && isolated.every((u) => u === "isolate" || u === "plaintext"), String(isolated));
  },
);

browserTest(
  "links: http(s) and mailto only, opened with noopener noreferrer in a new tab; hostile texts stay text",
  async (browser) => {
    const { a, b, say } = await pair();
    const texts = [
      `see ${a.httpUrl}/nothing-here, then`,
      "write to mailto:alice@example.com.",
      "javascript:alert(1) data:text/html,<script>alert(1)</script> file:///etc/passwd ftp://x.test/",
      `http://x.test/"><img src=x onerror=alert(1)>`,
      "https://example.com/a_(b) and (https://example.com/c)",
      "http://ex\u202Eample.com/",
    ];
    for (const t of texts) await say(t);
    const page = await livePage(browser, `${await b.webLink()}#peer=${a.id}`);
    const dialogs: string[] = [];
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.locator("#messages li.in", { hasText: "ex<U+202E>ample" }).waitFor({ timeout: 10_000 });
    const links = await page.evaluate(`[...document.querySelectorAll("#messages a")].map((a) => ({
      href: a.getAttribute("href"), text: a.textContent, rel: a.rel, target: a.target }))`) as {
      href: string;
      text: string;
      rel: string;
      target: string;
    }[];
    assert.deepEqual(links.map((l) => l.text), [
      `${a.httpUrl}/nothing-here`,
      "mailto:alice@example.com",
      "http://x.test/",
      "https://example.com/a_(b)",
      "https://example.com/c",
      "http://ex",
    ]);
    for (const l of links) {
      assert.match(l.href, /^(https?:\/\/|mailto:)/);
      assert.equal(l.target, "_blank");
      assert.deepEqual(l.rel.split(" ").sort(), ["noopener", "noreferrer"]);
    }
    assert.equal(await page.locator("#messages img, #messages script").count(), 0);
    // Opened: a new tab that cannot reach back to the page.
    const [popup] = await Promise.all([
      page.context().waitForEvent("page"),
      page.locator("#messages a").first().click(),
    ]);
    await popup.waitForLoadState();
    assert.equal(await popup.evaluate("window.opener"), null);
    assert.deepEqual(dialogs, []);
  },
);

/** The rectangles of these elements, by selector. */
function boxes(page: Page, selectors: string[]) {
  return page.evaluate(`(${JSON.stringify(selectors)}).map((s) => {
    const e = document.querySelector(s);
    const r = e.getBoundingClientRect();
    return { s, top: r.top, bottom: r.bottom, left: r.left, right: r.right, shown: r.width > 0 && r.height > 0 };
  })`) as Promise<{ s: string; top: number; bottom: number; left: number; right: number; shown: boolean }[]>;
}

const intersect = (p: { top: number; bottom: number; left: number; right: number }, q: typeof p) =>
  Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top) > 0.5 &&
  Math.min(p.right, q.right) - Math.max(p.left, q.left) > 0.5;

/** No two of the shown boxes intersect, and each control named is the element at its own centre (nothing over it). */
async function noOverlap(page: Page, what: string, controls: string[]) {
  const all = (await boxes(page, ["header", "#people", "#conversation"])).filter((b) => b.shown);
  for (const p of all) {
    for (const q of all) {
      if (p !== q) assert.ok(!intersect(p, q), `${what}: ${p.s} and ${q.s} overlap ${JSON.stringify([p, q])}`);
    }
  }
  for (const c of controls) {
    const hit = await page.evaluate(`(() => {
      const e = document.querySelector(${JSON.stringify(c)});
      const r = e.getBoundingClientRect();
      const x = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
      return r.width > 0 && (x === e || e.contains(x)) ? true : \`\${x?.outerHTML.slice(0, 120)} at \${JSON.stringify(r)}\`;
    })()`);
    assert.equal(hit, true, `${what}: ${c} is on top where it is drawn`);
  }
}

browserTest(
  "at 360 px a tall message draws over nothing: header, people and conversation never overlap, with and without a touch keyboard; 1280 px too",
  async (browser) => {
    const { b, say } = await pair();
    await say("Morning! The notes: https://example.com/notes");
    await say(`tall\n${"a line of a tall message\n".repeat(60)}end`);
    await say("hello??");
    await say("and the file: invoice_\u202Efdp.exe");
    const page = await livePage(browser, await b.webLink(), { width: 360, height: 640 });
    await noOverlap(page, "360 px, the roster", ["#search", "#new-group", "#peer-list li"]);
    await page.locator("#peer-list li", { hasText: "alice" }).click();
    await page.locator("#messages li.in", { hasText: "and the file" }).waitFor({ timeout: 10_000 });
    await staysAtBottom(page, "360 px");
    await noOverlap(page, "360 px, a conversation", ["#text", "#composer button[type=submit]"]);
    assert.equal(await page.evaluate("document.documentElement.scrollWidth <= 360"), true, "nothing wider than 360 px");
    // Back to the people from the conversation: Esc, or its button.
    await page.keyboard.press("Escape");
    await page.locator("#search").waitFor({ state: "visible", timeout: 5000 });
    await page.locator("#peer-list li", { hasText: "alice" }).click();
    await page.locator("#back").waitFor({ state: "visible", timeout: 5000 });
    await page.click("#back");
    await noOverlap(page, "360 px, back to the roster", ["#search", "#new-group"]);
    await page.locator("#peer-list li", { hasText: "alice" }).click();
    // The touch keyboard takes half the screen (the layout viewport shrinks, interactive-widget=resizes-content).
    await page.focus("#text");
    await page.setViewportSize({ width: 360, height: 330 });
    await staysAtBottom(page, "keyboard open");
    await noOverlap(page, "360 px with a keyboard", ["#text"]);
    assert.equal(await onScreen(page, "and the file"), true, "the newest message still in view above the keyboard");
    await page.setViewportSize({ width: 360, height: 640 });
    await page.screenshot({ path: new URL("../../docs/web-360.png", import.meta.url).pathname });
    await page.setViewportSize({ width: 1280, height: 800 });
    await noOverlap(page, "1280 px", ["#search", "#new-group", "#text"]);
    await page.screenshot({ path: new URL("../../docs/web-1280.png", import.meta.url).pathname });
    assert.match(await page.getAttribute("meta[name=viewport]", "content") ?? "", /interactive-widget=resizes-content/);
  },
);

browserTest(
  "system lines are lines, a short message's bubble fits it, consecutive messages of one sender are grouped under a day separator",
  async (browser, tempDir) => {
    const { a, b, say } = await pair();
    const work = tempDir();
    await Deno.writeFile(`${work}/report.pdf`, new Uint8Array(1000));
    await say("hello??");
    await say("second from alice");
    const up = await fetch(`${a.httpUrl}/files/upload?to=${b.id}&name=report.pdf`, {
      method: "POST",
      body: await Deno.readFile(`${work}/report.pdf`),
    });
    const offer = await up.json();
    assert.equal(up.status, 202, JSON.stringify(offer));
    await until("bob to have the offer", async () => {
      const ts: { id: string; state: string }[] = await (await fetch(`${b.httpUrl}/transfers`)).json();
      return ts.some((t) => t.state === "offered");
    }, 10_000);
    const ts: { id: string; state: string }[] = await (await fetch(`${b.httpUrl}/transfers`)).json();
    const refused = await fetch(`${b.httpUrl}/transfers/${ts.find((t) => t.state === "offered")!.id}/refuse`, {
      method: "POST",
      body: "{}",
    });
    assert.equal(refused.status, 200, await refused.text());
    for (const [daemon, peer] of [[a, b], [b, a]] as const) {
      const page = await livePage(browser, `${await daemon.webLink()}#peer=${peer.id}`);
      const note = page.locator("#messages li[data-id]", { hasText: "Files refused" });
      await note.waitFor({ timeout: 10_000 });
      const look = await note.evaluate((li) => {
        const s = (li.ownerDocument.defaultView as unknown as {
          getComputedStyle(e: unknown): { backgroundColor: string; alignSelf: string };
        }).getComputedStyle(li);
        return { system: li.classList.contains("system"), bg: s.backgroundColor, align: s.alignSelf };
      });
      assert.deepEqual(look, { system: true, bg: "rgba(0, 0, 0, 0)", align: "center" }, `${daemon.id}: a line`);
      const offered = page.locator("#messages li[data-id]", { hasText: "Files offered" });
      assert.equal(await offered.evaluate((li) => li.classList.contains("system")), true);
      const widths = await page.evaluate(`(() => {
        const li = [...document.querySelectorAll("#messages li[data-id]")].find((x) => x.textContent.startsWith("hello??"));
        return { li: li.getBoundingClientRect().width, list: document.getElementById("messages").clientWidth };
      })()`) as { li: number; list: number };
      assert.ok(widths.li < widths.list * 0.3, `hello?? is ${widths.li} px wide in a ${widths.list} px list`);
      // The two messages of alice a moment apart: one group; a day separator above the first message.
      const second = page.locator("#messages li[data-id]", { hasText: "second from alice" });
      assert.equal(await second.evaluate((li) => li.classList.contains("cont")), true, "grouped with hello??");
      const first = await page.evaluate(
        `document.querySelector("#messages li[data-id]").previousElementSibling?.className`,
      );
      assert.ok(["day", "divider"].includes(first as string), `before the first message: ${first}`);
      assert.equal(await page.locator("#messages li.day").first().innerText(), "Today");
      await page.close();
    }
  },
);

browserTest(
  "keyboard: tab order reaches the people, Enter opens one with the focus in the composer, focus is visible, Esc closes a dialog",
  async (browser) => {
    const { b, say } = await pair();
    await say("hello");
    const page = await livePage(browser, await b.webLink());
    await page.locator("#peer-list li", { hasText: "alice" }).waitFor({ timeout: 10_000 });
    await page.focus("#search");
    const order: string[] = [];
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press("Tab");
      order.push(await page.evaluate("document.activeElement.id || document.activeElement.tagName"));
      if (order.at(-1) === "LI") break;
    }
    assert.deepEqual(order, ["new-group", "LI"]);
    const outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle");
    assert.notEqual(outline, "none", "the focused row shows it");
    await page.keyboard.press("Enter");
    await page.locator("#messages li.in", { hasText: "hello" }).waitFor({ timeout: 10_000 });
    assert.equal(await page.evaluate("document.activeElement.id"), "text");
    await page.click("#status-button");
    await page.locator("#status-dialog[open]").waitFor({ timeout: 5000 });
    await page.keyboard.press("Escape");
    await page.locator("#status-dialog[open]").waitFor({ state: "detached", timeout: 5000 });
    assert.equal(await page.evaluate("document.activeElement.id"), "status-button", "the focus back where it was");
  },
);

browserTest(
  "Allow notifications goes once chosen (allowed, refused or dismissed) and is not offered again",
  async (browser) => {
    const { b } = await pair();
    for (const answer of ["denied", "granted", "default"]) {
      const page = await browser.newPage();
      await page.addInitScript((answer: string) => {
        const w = globalThis as unknown as { Notification: unknown };
        w.Notification = class {
          static permission = "default";
          static requestPermission() {
            (w.Notification as { permission: string }).permission = answer;
            return Promise.resolve(answer);
          }
        };
      }, answer);
      await page.goto(await b.webLink());
      await page.locator("body[data-live='true']").waitFor({ timeout: 10_000 });
      await page.click("#notify-button");
      await page.locator("#notify-button").waitFor({ state: "hidden", timeout: 5000 });
      await page.close();
    }
    // Already chosen when the page opens: never shown.
    const page = await browser.newPage();
    await page.addInitScript(() => {
      (globalThis as unknown as { Notification: unknown }).Notification = class {
        static permission = "denied";
      };
    });
    await page.goto(await b.webLink());
    await page.locator("body[data-live='true']").waitFor({ timeout: 10_000 });
    assert.equal(await page.locator("#notify-button").isVisible(), false);
  },
);

browserTest(
  "axe-core finds no serious or critical violation in any view: people, a conversation, a group, each dialog, dark, 360 px",
  async (browser) => {
    const { a, b, say } = await pair();
    await say("hello https://example.com/x and invoice_\u202Efdp.exe");
    const group = await fetch(`${b.httpUrl}/groups`, {
      method: "POST",
      body: JSON.stringify({ name: "lab", members: [a.id] }),
    });
    const made = await group.json();
    assert.equal(group.status, 201, JSON.stringify(made));
    const g = made.group;
    const page = await livePage(browser, await b.webLink());
    const found: string[] = [];
    const check = async (view: string) => {
      for (const v of await axeViolations(page)) {
        found.push(`${view}: ${v.impact} ${v.id} (${v.help}) at ${v.nodes.join(", ")}`);
      }
    };
    await page.locator("#peer-list li:not(.group)", { hasText: "alice" }).waitFor({ timeout: 10_000 });
    for (const scheme of ["light", "dark"] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      await page.setViewportSize({ width: 1000, height: 700 });
      await page.evaluate("location.hash = ''");
      await check(`${scheme}, people`);
      await page.locator("#peer-list li:not(.group)", { hasText: "alice" }).click();
      await page.locator("#messages li.in", { hasText: "hello" }).waitFor({ timeout: 10_000 });
      await check(`${scheme}, a conversation`);
      await page.click("#verify-button");
      await page.locator("#verify-number", { hasText: /\d/ }).waitFor({ timeout: 10_000 });
      await check(`${scheme}, verify dialog`);
      await page.keyboard.press("Escape");
      await page.click("#status-button");
      await page.locator("#status-text", { hasText: "up" }).waitFor({ timeout: 10_000 });
      await check(`${scheme}, status dialog`);
      await page.keyboard.press("Escape");
      await page.locator(`#peer-list li[data-id="${g.id}"]`).click();
      await page.locator("#group-members", { hasText: "alice" }).waitFor({ timeout: 10_000 });
      await check(`${scheme}, a group`);
      await page.click("#new-group");
      await check(`${scheme}, new group dialog`);
      await page.keyboard.press("Escape");
      await page.setViewportSize({ width: 360, height: 640 });
      await check(`${scheme}, 360 px conversation`);
      await page.click("#back");
      await check(`${scheme}, 360 px people`);
    }
    assert.deepEqual(found, []);
  },
);

browserTest(
  "opened at a message far back in 6,000 (a search hit, #peer=ID&at=CURSOR): it is in the middle of the list and marked; the jump button brings the newest",
  async (browser, tempDir) => {
    const a = await filledDaemon(tempDir(), 6000);
    // Far back: the 150th message of bob's 3,000 (as the page's search would link it).
    const oldest: { cursor: number; text: string }[] =
      await (await fetch(`${a.httpUrl}/messages?peer=${BOB}&after=0&limit=300`)).json();
    const target = oldest[150]!;
    const page = await livePage(browser, `${await a.webLink()}#peer=${BOB}&at=${target.cursor}`, {
      width: 900,
      height: 600,
    });
    const hit = page.locator("#messages li.hit");
    await hit.waitFor({ timeout: 10_000 });
    assert.equal(await hit.getAttribute("data-cursor"), String(target.cursor));
    await page.waitForTimeout(1000);
    assert.equal(await onScreen(page, target.text.slice(0, 40)), true, "the hit is on screen");
    assert.equal(await page.getAttribute("#messages", "data-newest"), "false");
    await page.locator("#jump").click({ timeout: 5000 });
    await page.locator("#messages[data-newest='true']").waitFor({ timeout: 10_000 });
    await staysAtBottom(page, "jumped to the newest");
  },
);

browserTest(
  "messages that arrive while another window is in front get the new-messages divider, moved on the next time away",
  async (browser) => {
    const { a, b, say } = await pair();
    await say("before");
    const page = await browser.newPage({ viewport: { width: 900, height: 700 } });
    // Whether another window is in front, switched by the test (headless chromium's focus is not reliable enough).
    await page.addInitScript(() => {
      const w = globalThis as unknown as { focusNow: boolean; setFocus: (f: boolean) => void } & EventTarget;
      const doc = (globalThis as unknown as { document: { hasFocus: () => boolean } }).document;
      w.focusNow = true;
      doc.hasFocus = () => w.focusNow;
      w.setFocus = (f) => {
        w.focusNow = f;
        w.dispatchEvent(new Event(f ? "focus" : "blur"));
      };
    });
    await page.goto(`${await b.webLink()}#peer=${a.id}`);
    const setFocus = (f: boolean) =>
      page.evaluate((f) => (globalThis as unknown as { setFocus: (f: boolean) => void }).setFocus(f), f);
    const away = () => setFocus(false);
    const back = () => setFocus(true);
    // Seen: marked so, or already replaced by its read copy.
    const seen = (text: string) =>
      page.locator("#messages li.in[data-seen], #messages li.in:not([data-unread])", { hasText: text })
        .waitFor({ timeout: 10_000 });
    await page.locator("body[data-live='true']").waitFor({ timeout: 10_000 });
    await back();
    await seen("before");
    const dividerBefore = () =>
      page.evaluate(
        `document.querySelector("#messages li.divider")?.nextElementSibling?.querySelector(".text")?.textContent`,
      );
    await away();
    await say("away 1");
    await say("away 2");
    await page.locator("#messages li.in", { hasText: "away 2" }).waitFor({ timeout: 10_000 });
    assert.equal(await dividerBefore(), "away 1");
    await back();
    await seen("away 2");
    await away();
    await say("away 3");
    await page.locator("#messages li.in", { hasText: "away 3" }).waitFor({ timeout: 10_000 });
    assert.equal(await dividerBefore(), "away 3");
    assert.equal(await page.locator("#messages li.divider").count(), 1);
  },
);
