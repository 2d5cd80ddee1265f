/**
 * `deno task bench --only web`: the web page in Debian's chromium (headless,
 * playwright-core) against a daemon with 1,000 peers (fake, signed hellos
 * from loopback) and 100,000 messages in one conversation:
 *
 * - first contentful paint and time until the roster is on screen and the
 *   conversation's newest page is shown;
 * - the page's JS heap and DOM size after scrolling to the top of that
 *   conversation (every page of it loaded), with 1,000 pictures among its
 *   messages (100 offers of 10 pictures another daemon sent, auto-accepted
 *   from a verified peer, spread through the history by history_fill.ts),
 *   and how many thumbnails were painted on the way;
 * - SSE latency: from a message's POST at another daemon to its appearance
 *   in the page (p50 / p99 of 200);
 * - a thumbnail's arrival to its paint: from the moment the page learns a
 *   received picture can be shown (the transfer's event) until the
 *   thumbnail is painted (Element Timing), p50 / p99 of 20.
 *
 * Writes bench/results/web.{json,md}.
 *
 * @module
 */
import { chromium } from "playwright-core";
import {
  type DaemonProcess,
  freeUdpPort,
  killAll,
  startLoopbackDaemon,
  tempDataDir,
  until,
} from "../tests/support/daemon_process.ts";
import { pngOf } from "../tests/support/pictures.ts";
import type { BenchContext } from "./bench_history.ts";

/** A transfer as this benchmark reads it. */
interface Transfer {
  id: string;
  direction: string;
  state: string;
  peer: { id: string };
  images?: { name: string; size: number }[];
}

const post = (url: string, body: unknown, method = "POST") =>
  fetch(url, { method, body: JSON.stringify(body) }).then(async (r) => {
    const text = await r.text();
    if (!r.ok) throw new Error(`${url}: ${r.status} ${text}`);
    return JSON.parse(text);
  });

/** Pictures in one offer, as a burst of photos is sent: a daemon keeps its newest 500 finished transfers only. */
const PER_OFFER = 10;

/**
 * `b` sends `a` the pictures of `files`, {@link PER_OFFER} to an offer,
 * `inFlight` offers at a time; `a` takes them (auto-accept, b verified).
 * Answers the transfers at `a` once it has them all (each asked for by id:
 * GET /transfers lists the newest 500 only).
 */
async function sendPictures(
  a: DaemonProcess,
  b: DaemonProcess,
  files: string[],
  inFlight = 4,
): Promise<Transfer[]> {
  const offers = Array.from(
    { length: Math.ceil(files.length / PER_OFFER) },
    (_, i) => files.slice(i * PER_OFFER, (i + 1) * PER_OFFER),
  );
  let next = 0;
  const ids: string[] = [];
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < offers.length) ids.push((await post(`${b.httpUrl}/files`, { to: a.id, paths: offers[next++] })).id);
  }));
  const done = new Map<string, Transfer>();
  await until(`${files.length} pictures at alice`, async () => {
    for (const id of ids.filter((id) => !done.has(id)).slice(0, 50)) {
      const r = await fetch(`${a.httpUrl}/transfers/${id}`);
      const t: Transfer = r.ok ? await r.json() : await r.body?.cancel();
      if (t?.state === "done" && t.images?.length) done.set(id, t);
    }
    return done.size === ids.length;
  }, 600_000);
  return ids.map((id) => done.get(id)!);
}

export async function benchWeb(
  ctx: BenchContext,
  o: { messages: number; peers: number; images?: number },
): Promise<void> {
  const images = o.images ?? 1000;
  const dir = tempDataDir();
  const work = Deno.makeTempDirSync({ prefix: "lanchat-bench-web-" });
  const port = freeUdpPort();
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
  const rows: [string, string, string][] = [];
  const results: Record<string, unknown> = {};
  let fakes: Deno.ChildProcess | undefined;
  try {
    // Pictures first: bob2 sends alice `images` pictures, taken without asking (auto-accept, bob2 verified); then
    // alice stops and her history is filled with offers of them spread among bob's messages.
    const aliceArgs = { dataDir: dir, extra: ["--downloads", `${work}/dl`] };
    let a = await startLoopbackDaemon(port, "alice", aliceArgs).started();
    const b = await startLoopbackDaemon(port, "bob2").started();
    await a.joined(b.id, 10_000);
    await b.joined(a.id, 10_000);
    await post(`${a.httpUrl}/settings`, { autoAcceptImages: { enabled: true, maxBytes: 10_000_000 } }, "PUT");
    await post(`${a.httpUrl}/trust`, { peer: b.id });
    const painter = await browser.newPage();
    const files: string[] = [];
    for (let i = 0; i < images + 20; i++) {
      if (i < 10) await Deno.writeFile(`${work}/p${i}.png`, await pngOf(painter, 640, 480, i * 36));
      files.push(`${work}/picture ${i}.png`);
      await Deno.copyFile(`${work}/p${i % 10}.png`, files[i]!);
    }
    await painter.close();
    const t0p = Date.now();
    const got = await sendPictures(a, b, files.slice(0, images));
    console.log(`web — ${images} pictures sent and received in ${((Date.now() - t0p) / 1000).toFixed(1)} s`);
    const offers = got.map((t) => ({
      id: t.id,
      names: t.images!.map((i) => i.name),
      bytes: t.images!.reduce((n, i) => n + i.size, 0),
    }));
    await Deno.writeTextFile(`${work}/offers.json`, JSON.stringify({ peer: b.id, offers }));
    // The history is filled as bob2's (his messages' numbers then run far past his own): he stays away from now on.
    await b.kill();
    a.signal("SIGTERM");
    await a.wait();
    const fill = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./history_fill.ts", import.meta.url).pathname,
        dir,
        String(o.messages * 2),
        `${work}/offers.json`,
      ],
      stdout: "piped",
    }).output();
    console.log(`web — filled: ${new TextDecoder().decode(fill.stdout).trim()}`);
    a = await startLoopbackDaemon(port, "alice", aliceArgs).started();
    fakes = new Deno.Command(Deno.execPath(), {
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
    const page = await browser.newPage();
    const link = await a.webLink();
    const t0 = Date.now();
    await page.goto(`${link}#peer=${b.id}`);
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
    // Thumbnails painted (Element Timing), counted while scrolling.
    await page.evaluate(`window.__painted = 0;
      new PerformanceObserver((l) => { window.__painted += l.getEntries().length; })
        .observe({ type: "element", buffered: true });`);
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
    const painted = await page.evaluate("window.__painted") as number;
    console.log(
      `scrolled to the top in ${scrolled} ms: ${items} items, JS heap ${heap.toFixed(1)} MiB, ${
        m("Nodes")
      } DOM nodes, ${painted} thumbnails painted on the way`,
    );
    results.scroll = { ms: scrolled, items, heapMiB: heap, domNodes: m("Nodes"), images, thumbnailsPainted: painted };
    rows.push([
      `scrolled to the top of ${o.messages} messages with ${images} pictures among them: time, items in the page, JS heap after GC, DOM nodes, thumbnails painted on the way`,
      `${(scrolled / 1000).toFixed(1)} s, ${items}, ${heap.toFixed(1)} MiB, ${m("Nodes")}, ${painted}`,
      "smooth (render only what is visible); heap bounded",
    ]);

    // SSE latency: messages from a third daemon to alice, seen in alice's page (conversation with c open).
    const c = await startLoopbackDaemon(port, "carol2").started();
    await a.joined(c.id, 10_000);
    await c.joined(a.id, 10_000);
    await post(`${a.httpUrl}/trust`, { peer: c.id });
    await page.close();
    const live = await browser.newPage();
    await live.goto(`${await a.webLink()}#peer=${c.id}`);
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
      await fetch(`${c.httpUrl}/messages`, { method: "POST", body: JSON.stringify({ to: a.id, text }) }).then((r) =>
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

    // A thumbnail's arrival to its paint: 20 more pictures from c, one at a time, in the open conversation.
    await live.evaluate(`window.__thumbs = [];
      new PerformanceObserver((l) => {
        for (const e of l.getEntries()) {
          const arrived = Number(e.element?.dataset.arrived);
          if (e.identifier === "thumbnail" && arrived > 0) window.__thumbs.push((e.renderTime || e.loadTime) - arrived);
        }
      }).observe({ type: "element" });`);
    for (const file of files.slice(images)) {
      // At the bottom, where the new picture comes (the transfers bar above the list grows with each transfer).
      await live.evaluate("const l = document.getElementById('messages'); l.scrollTop = l.scrollHeight");
      const before = await live.evaluate("window.__thumbs.length") as number;
      await post(`${c.httpUrl}/files`, { to: a.id, paths: [file] });
      // Polled (waitForFunction's own polling runs script the page's CSP refuses).
      for (const t = Date.now(); Date.now() - t < 30_000;) {
        if (await live.evaluate("window.__thumbs.length") as number > before) break;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const thumbs = (await live.evaluate("window.__thumbs") as number[]).sort((x, y) => x - y);
    const tp = (q: number) => thumbs[Math.min(thumbs.length - 1, Math.floor(q * thumbs.length))] ?? NaN;
    console.log(
      `thumbnail arrival to paint: ${thumbs.length} of 20, p50 ${tp(0.5).toFixed(0)} ms, p99 ${tp(0.99).toFixed(0)} ms`,
    );
    results.thumbnail = { seen: thumbs.length, p50: tp(0.5), p99: tp(0.99) };
    rows.push([
      "a received picture, from the page learning it can be shown (the transfer's event) until its thumbnail is painted, p50 / p99 of 20",
      `${tp(0.5).toFixed(0)} / ${tp(0.99).toFixed(0)} ms (${thumbs.length} of 20 painted)`,
      "reported",
    ]);
  } finally {
    await browser.close();
    try {
      fakes?.kill("SIGKILL");
    } catch { /* gone */ }
    await killAll();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.remove(work, { recursive: true }).catch(() => {});
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
