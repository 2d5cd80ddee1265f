/**
 * Browser tests' ground: Debian's chromium, headless, driven by
 * playwright-core; a test is ignored (with the reason) where it is not
 * installed. The browser, every daemon and every folder a test made are gone
 * after it, whatever happened. `axeViolations` runs axe-core (npm, pinned) in
 * a page.
 *
 * @module
 */
import { type Browser, chromium, type Page } from "playwright-core";
import axe from "axe-core";
import assert from "node:assert/strict";
import { type DaemonProcess, freeUdpPort, killAll, startLoopbackDaemon } from "./daemon_process.ts";

const CHROMIUM = "/usr/bin/chromium";
const unavailable = await Deno.stat(CHROMIUM).then(
  () => undefined,
  () => `${CHROMIUM} is not installed (apt-get install chromium)`,
);
if (unavailable) console.warn(`web test ignored: ${unavailable}`);

/** A test with a browser (see the module's note). `tempDir` makes a folder removed after the test. */
export function browserTest(name: string, fn: (browser: Browser, tempDir: () => string) => Promise<void>): void {
  Deno.test({
    name,
    ignore: unavailable !== undefined,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const dirs: string[] = [];
      const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
      try {
        await fn(browser, () => {
          dirs.push(Deno.makeTempDirSync());
          return dirs.at(-1)!;
        });
      } finally {
        await browser.close();
        await killAll();
        for (const dir of dirs) await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    },
  });
}

/** A page of `browser` opened at `url` (a one-time link), once live; its script errors are printed. */
export async function livePage(
  browser: Browser,
  url: string,
  viewport = { width: 1000, height: 700 },
): Promise<Page> {
  const page = await browser.newPage({ viewport });
  page.on("pageerror", (e) => console.log("page error:", e.message));
  await page.goto(url);
  await page.locator("body[data-live='true']").waitFor({ timeout: 15_000 });
  return page;
}

/** One axe-core finding: the rule, how bad, and where. */
export interface AxeFinding {
  id: string;
  impact: string;
  help: string;
  nodes: string[];
}

/**
 * What axe-core finds serious or critical in the page as it is now. Its
 * source is evaluated through the DevTools protocol (the page's CSP allows
 * no inline script, and stays as strict for the test).
 */
export async function axeViolations(page: Page): Promise<AxeFinding[]> {
  if (!await page.evaluate("typeof globalThis.axe === 'object'")) {
    await page.evaluate((axe as unknown as { source: string }).source);
  }
  const found = await page.evaluate(`axe.run(document, { resultTypes: ["violations"] }).then((r) =>
    r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")) })))`);
  return (found as AxeFinding[]).filter((v) => v.impact === "serious" || v.impact === "critical");
}

/** alice's daemon on a history of `count` messages made by scripts/history_fill.ts in `dir` (half with bob). */
export async function filledDaemon(dir: string, count: number): Promise<DaemonProcess> {
  const fill = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../../scripts/history_fill.ts", import.meta.url).pathname, dir, String(count)],
    stdout: "piped",
  }).output();
  assert.ok(fill.success);
  return await startLoopbackDaemon(freeUdpPort(), "alice", { dataDir: dir }).started();
}

/** Two daemons on loopback, joined both ways; `say` sends from the first to the second through its API. */
export async function pair(nameA = "alice", nameB = "bob") {
  const port = freeUdpPort();
  const a = await startLoopbackDaemon(port, nameA).started();
  const b = await startLoopbackDaemon(port, nameB).started();
  await a.joined(b.id, 5000);
  await b.joined(a.id, 5000);
  const say = async (text: string) => {
    const r = await fetch(`${a.httpUrl}/messages?wait=10`, {
      method: "POST",
      body: JSON.stringify({ to: b.id, text }),
    });
    const m = await r.json();
    assert.equal(m.status, "delivered", JSON.stringify(m));
    return m as { id: string; cursor: number };
  };
  return { a, b, say };
}

/**
 * Waits until `expression` is true in `page`, asking every 50 ms (Playwright's
 * own `waitForFunction` polls by evaluating a string in the page, which the
 * page's CSP refuses), for at most `ms`.
 */
export async function holds(page: Page, expression: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await page.evaluate(expression))) {
    if (Date.now() > end) throw new Error(`Not true after ${ms} ms: ${expression}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
