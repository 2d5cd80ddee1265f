/**
 * `deno task bench --only web`: the web page in Debian's chromium (headless,
 * playwright-core) against a daemon with 1,000 peers (fake, signed hellos
 * from loopback) and 100,000 messages in one conversation:
 *
 * - first contentful paint and time until the roster is on screen and the
 *   conversation's newest page is shown;
 * - the page's JS heap and DOM size after scrolling to the top of that
 *   conversation (every page of it loaded);
 * - SSE latency: from a message's POST at another daemon to its appearance
 *   in the page (p50 / p99 of 200).
 *
 * Writes bench/results/web.{json,md}.
 *
 * @module
 */
import { chromium } from "playwright-core";
import { BOB } from "./history_fill.ts";
import { freeUdpPort, killAll, startLoopbackDaemon, tempDataDir } from "../tests/support/daemon_process.ts";
import type { BenchContext } from "./bench_history.ts";

export async function benchWeb(ctx: BenchContext, o: { messages: number; peers: number }): Promise<void> {
  const dir = tempDataDir();
  const fill = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./history_fill.ts", import.meta.url).pathname, dir, String(o.messages * 2)],
    stdout: "piped",
  }).output();
  console.log(`web — filled: ${new TextDecoder().decode(fill.stdout).trim()}`);
  const port = freeUdpPort();
  const a = await startLoopbackDaemon(port, "alice", { dataDir: dir }).started();
  const fakes = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./fake_peers.ts", import.meta.url).pathname,
      "--count",
      String(o.peers),
      "--to",
      `127.0.0.1:${a.unicastPort}`,
    ],
    stdout: "piped",
  }).spawn();
  const reader = fakes.stdout.pipeThrough(new TextDecoderStream()).getReader();
  await reader.read(); // "ready"
  await new Promise((r) => setTimeout(r, 2000));
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
  const rows: [string, string, string][] = [];
  const results: Record<string, unknown> = {};
  try {
    const page = await browser.newPage();
    const link = await a.webLink();
    const t0 = Date.now();
    await page.goto(`${link}#peer=${BOB}`);
    await page.locator("#messages li").first().waitFor({ timeout: 60_000 });
    const shown = Date.now() - t0;
    const fcp = await page.evaluate(
      "performance.getEntriesByType('paint').find((e) => e.name === 'first-contentful-paint')?.startTime ?? -1",
    ) as number;
    const listed = await page.locator("#peer-list li").count();
    console.log(`first paint ${fcp.toFixed(0)} ms; roster (${listed}) and newest page shown ${shown} ms`);
    results.load = { fcpMs: fcp, shownMs: shown, peersListed: listed };
    rows.push([
      `first contentful paint; roster of ${listed} and the newest page of a ${o.messages}-message conversation on screen`,
      `${fcp.toFixed(0)} ms; ${shown} ms`,
      "first paint ≤ 300 ms",
    ]);
    // Scroll to the top: every page of the conversation is loaded, 50 at a time (the page keeps a window of them).
    const t1 = Date.now();
    while (Date.now() - t1 < 600_000) {
      await page.evaluate("document.getElementById('messages').scrollTop = 0");
      await page.waitForTimeout(20);
      if (await page.locator("#messages[data-oldest='true']").count() > 0) break;
    }
    const scrolled = Date.now() - t1;
    const items = await page.locator("#messages li").count();
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("HeapProfiler.collectGarbage");
    const metrics = (await cdp.send("Performance.enable"), await cdp.send("Performance.getMetrics")) as {
      metrics: { name: string; value: number }[];
    };
    const m = (n: string) => metrics.metrics.find((x) => x.name === n)?.value ?? 0;
    const heap = m("JSHeapUsedSize") / 2 ** 20;
    console.log(
      `scrolled to the top in ${scrolled} ms: ${items} items, JS heap ${heap.toFixed(1)} MiB, ${m("Nodes")} DOM nodes`,
    );
    results.scroll = { ms: scrolled, items, heapMiB: heap, domNodes: m("Nodes") };
    rows.push([
      `scrolled to the top of ${o.messages} messages: time, items in the page, JS heap after GC, DOM nodes`,
      `${(scrolled / 1000).toFixed(1)} s, ${items}, ${heap.toFixed(1)} MiB, ${m("Nodes")}`,
      "smooth (render only what is visible)",
    ]);

    // SSE latency: messages from a second daemon to alice, seen in alice's page (conversation with b open).
    const b = await startLoopbackDaemon(port, "bob2").started();
    await a.joined(b.id, 10_000);
    await page.close();
    const live = await browser.newPage();
    await live.goto(`${await a.webLink()}#peer=${b.id}`);
    await live.locator("#composer").waitFor({ state: "visible", timeout: 30_000 });
    await live.evaluate(`window.__seen = {};
      new MutationObserver(() => {
        for (const li of document.querySelectorAll('#messages li.in')) {
          const k = li.firstChild?.textContent ?? '';
          if (k.startsWith('lat ') && !(k in window.__seen)) window.__seen[k] = Date.now();
        }
      }).observe(document.getElementById('messages'), { childList: true, subtree: true });`);
    const sent: Record<string, number> = {};
    for (let i = 0; i < 200; i++) {
      const text = `lat ${i}`;
      sent[text] = Date.now();
      await fetch(`${b.httpUrl}/messages`, { method: "POST", body: JSON.stringify({ to: a.id, text }) }).then((r) =>
        r.body?.cancel()
      );
      await new Promise((r) => setTimeout(r, 20));
    }
    await live.waitForTimeout(2000);
    const seen = await live.evaluate("window.__seen") as Record<string, number>;
    const lat = Object.entries(sent).filter(([k]) => k in seen).map(([k, t]) => seen[k]! - t).sort((x, y) => x - y);
    const p = (q: number) => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))] ?? NaN;
    console.log(`SSE: ${lat.length} of 200 seen, p50 ${p(0.5)} ms, p99 ${p(0.99)} ms`);
    results.sse = { seen: lat.length, p50: p(0.5), p99: p(0.99) };
    rows.push([
      "a message posted at another daemon until it is in the page (SSE), p50 / p99 of 200",
      `${p(0.5)} / ${p(0.99)} ms (${lat.length} of 200 seen)`,
      "reported",
    ]);
  } finally {
    await browser.close();
    try {
      fakes.kill("SIGKILL");
    } catch { /* gone */ }
    await killAll();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  const md = [
    "| figure | measured | target |",
    "|---|---|---|",
    ...rows.map(([f, m, t]) => `| ${f} | ${m} | ${t} |`),
    "",
    `Measured ${ctx.started.toISOString()} on ${ctx.machine}, Debian's chromium headless. Reproduce: \`deno task bench --only web\`.`,
    "",
  ].join("\n");
  console.log("\n" + md);
  await ctx.writeResult("web", { measuredAt: ctx.started.toISOString(), machine: ctx.machine, results }, md);
  ctx.summary.push(...rows);
}
