/**
 * `lanchat web --lan` on the namespace LAN (scripts/lan.ts): the daemon on
 * host 1 (HTTP on loopback, as by default) serves the page on its LAN
 * address once asked, to the LAN link's cookie only. From host 2: every
 * route but /healthz is 401 without that cookie (the owner's token too), a
 * forged Host or another site's Origin is 403, the link works once; the QR
 * code printed decodes (jsQR) to the link, and Chromium in host 2 opens it
 * and gets the live page, its manifest and icons. Needs root and ip/nft;
 * without them ignored, with the reason.
 */
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { type Lan, lanUnavailable } from "../../scripts/lan.ts";
import { DaemonProcess, runCli, tempDataDir } from "../support/daemon_process.ts";
import { withLan } from "../support/lan_hosts.ts";
import { decodeQrs } from "../support/qr_decode.ts";

const CHROMIUM = "/usr/bin/chromium";
const unavailable = (await lanUnavailable()) ??
  await Deno.stat(CHROMIUM).then(() => undefined, () => `${CHROMIUM} is not installed`);
if (unavailable) console.warn(`web LAN test ignored: ${unavailable}`);

/** curl from inside namespace `ns`: status, headers and body. */
async function curl(ns: string, url: string, args: string[] = []) {
  const out = await new Deno.Command("ip", {
    args: ["netns", "exec", ns, "curl", "-s", "-i", "--max-time", "10", ...args, url],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const [head = "", ...rest] = text.split("\r\n\r\n");
  return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1] ?? 0), head, body: rest.join("\r\n\r\n") };
}

function start(lan: Lan, dataDir: string): DaemonProcess {
  return new DaemonProcess([
    "--name",
    "alice",
    "--data-dir",
    dataDir,
    "--interval",
    "500ms",
    "--probe-timeout",
    "500ms",
  ], { netns: lan.hosts[0]!.ns });
}

Deno.test({
  name: "lanchat web --lan: the page on the LAN answers its link's cookie only; the QR code opens it in Chromium",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withLan(2, async (lan) => {
      const [h1, h2] = lan.hosts as [Lan["hosts"][0], Lan["hosts"][0]];
      const dataDir = tempDataDir();
      const alice = await start(lan, dataDir).started();
      const token = Deno.readTextFileSync(`${dataDir}/http_token`).trim();
      const origin = `http://${h1.address}:47476`;
      // Not served on the LAN until asked.
      assert.equal((await curl(h2.ns, `${origin}/healthz`)).status, 0, "nothing listens on the LAN yet");

      const printed = await runCli(["web", "--lan", "--print"], { netns: h1.ns });
      assert.equal(printed.code, 0, printed.stderr);
      const link = printed.stdout.trim();
      assert.match(link, new RegExp(`^${origin}/session\\?code=[\\w-]{43}$`));
      await alice.waitFor((l) => /Serving the web page on the LAN/.test(l.message), 5000);
      const status = await runCli(["status", "--json"], { netns: h1.ns });
      assert.deepEqual(JSON.parse(status.stdout).http.lan, [origin], "/status says where the page is on the LAN");

      // No cookie, the owner's token, a forged Host, another site's Origin.
      assert.equal((await curl(h2.ns, `${origin}/healthz`)).status, 200);
      for (const path of ["/", "/peers", "/status", "/events", "/messages", "/app.js", "/manifest.webmanifest"]) {
        assert.equal((await curl(h2.ns, `${origin}${path}`)).status, 401, path);
        const bearer = await curl(h2.ns, `${origin}${path}`, ["-H", `Authorization: Bearer ${token}`]);
        assert.equal(bearer.status, 401, `${path} with the token`);
      }
      const send = (headers: string[]) =>
        curl(h2.ns, `${origin}/messages`, [
          "-X",
          "POST",
          "-H",
          `Authorization: Bearer ${token}`,
          ...headers,
          "--data",
          '{"to":"alice","text":"x"}',
        ]);
      assert.equal((await send([])).status, 401);
      assert.equal((await curl(h2.ns, `${origin}/peers`, ["-H", "Host: evil.example"])).status, 403);
      assert.equal((await curl(h2.ns, `${origin}/session/link`, ["-X", "POST"])).status, 401);

      // The link: once, then a cookie that is neither the token nor the loopback cookie.
      const first = await curl(h2.ns, link);
      assert.equal(first.status, 303, first.head);
      const cookie = /set-cookie: (lanchat_session=[^;]+)/i.exec(first.head)![1]!;
      assert.ok(!cookie.includes(token));
      assert.equal((await curl(h2.ns, link)).status, 401, "used once");
      assert.equal((await curl(h2.ns, `${origin}/peers`, ["-H", `Cookie: ${cookie}`])).status, 200);
      const forgedHost = await curl(h2.ns, `${origin}/peers`, ["-H", `Cookie: ${cookie}`, "-H", "Host: evil.example"]);
      assert.equal(forgedHost.status, 403);
      const crossSite = await curl(h2.ns, `${origin}/presence`, [
        "-X",
        "PUT",
        "-H",
        `Cookie: ${cookie}`,
        "-H",
        "Origin: http://evil.example",
        "--data",
        '{"presence":"busy"}',
      ]);
      assert.equal(crossSite.status, 403);
      // The LAN cookie opens nothing on loopback.
      const local = await new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          h1.ns,
          "curl",
          "-s",
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
          "-H",
          `Cookie: ${cookie}`,
          "http://127.0.0.1:47476/peers",
        ],
        stdout: "piped",
      }).output();
      assert.equal(new TextDecoder().decode(local.stdout), "401");

      // The QR code decodes to the link printed under it; Chromium on host 2 opens it.
      const shown = await runCli(["web", "--lan"], { netns: h1.ns });
      assert.equal(shown.code, 0, shown.stderr);
      const printedLink = shown.stdout.trim().split("\n").at(-1)!;
      assert.match(printedLink, new RegExp(`^${origin}/session\\?code=[\\w-]{43}$`));
      assert.deepEqual(decodeQrs(shown.stdout), [printedLink]);
      console.log(`QR code: ${shown.stdout.split("\n").filter((l) => /[█▀▄]/.test(l)).length} lines`);

      const wrapper = await Deno.makeTempFile({ suffix: ".sh" });
      await Deno.writeTextFile(wrapper, `#!/bin/sh\nexec ip netns exec ${h2.ns} ${CHROMIUM} "$@"\n`);
      await Deno.chmod(wrapper, 0o755);
      const browser = await chromium.launch({ executablePath: wrapper, args: ["--no-sandbox"] });
      try {
        const page = await browser.newPage({ viewport: { width: 360, height: 740 } });
        await page.goto(printedLink);
        assert.equal(page.url(), `${origin}/`, "the code is gone from the address bar");
        await page.locator("body[data-live='true']").waitFor({ timeout: 15_000 });
        const cdp = await page.context().newCDPSession(page);
        const manifest = await cdp.send("Page.getAppManifest") as {
          errors: unknown[];
          data?: string;
          url: string;
        };
        assert.equal(manifest.url, `${origin}/manifest.webmanifest`);
        assert.deepEqual(manifest.errors, []);
        assert.equal(JSON.parse(manifest.data!).name, "lanchat");
        const icon = await page.evaluate(async () => (await fetch("/icons/icon-192.png")).status);
        assert.equal(icon, 200);
        await page.screenshot({ path: `${Deno.makeTempDirSync()}/lan.png` });
        // The same link again, in a fresh browser: spent.
        const other = await browser.newContext();
        const spent = await other.newPage();
        await spent.goto(printedLink);
        assert.match(await spent.locator("body").innerText(), /used already/);
      } finally {
        await browser.close();
        await Deno.remove(wrapper);
      }
    }),
});
