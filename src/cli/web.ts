/**
 * `lanchat web`: opens the web page with a one-time link. The daemon makes
 * the link's code for its owner (this CLI sends the token), the browser
 * trades it once, within a minute, for the page's HttpOnly cookie.
 *
 * The browser is not given the link on its command line, which every user
 * of the host can read (`ps`, /proc/PID/cmdline) while it starts: it opens a
 * file only this user can read (mode 0600) that sends it on to the link, as
 * Jupyter does. `--print` only prints the link (scripts, tests, a browser
 * elsewhere). `--lan` asks for a link a phone on the LAN opens (the daemon
 * then serves the page on its LAN addresses too, to that link's cookie
 * only), and prints it with a QR code to scan.
 *
 * @module
 */
import type { Command } from "commander";
import { httpOption } from "./options.ts";
import { ApiError, daemonUrl, request } from "./client.ts";
import { escapeHtml } from "../api/web_link.ts";
import { qrText } from "./qr.ts";

/** Whether stdout is a terminal that takes colour (for the QR code's white on black). */
function colorTerminal(): boolean {
  try {
    return Deno.stdout.isTerminal() && !Deno.env.get("NO_COLOR");
  } catch {
    return false;
  }
}

/** Whether a graphical session is there to open a browser in. */
function hasDisplay(): boolean {
  try {
    return Boolean(Deno.env.get("DISPLAY") || Deno.env.get("WAYLAND_DISPLAY"));
  } catch {
    return false; // not allowed to look: as if there were none
  }
}

/** A page (mode 0600, this user's only) that sends the browser on to `url`; its path. */
async function redirectFile(url: string): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "lanchat-web-", suffix: ".html" });
  await Deno.chmod(path, 0o600);
  const attr = escapeHtml(url);
  await Deno.writeTextFile(
    path,
    `<!doctype html><meta charset="utf-8"><meta name="referrer" content="no-referrer">` +
      `<meta http-equiv="refresh" content="0;url=${attr}"><title>lanchat</title>` +
      `<p><a href="${attr}">Open lanchat</a> (this link works once, for a minute)</p>\n`,
  );
  return path;
}

export function registerWeb(program: Command): void {
  program.command("web")
    .description(
      "Open the web page in a browser, with a link that works once for a minute (the page then keeps a cookie)",
    )
    .option("--print", "only print the link (for scripts, or a browser on another computer)")
    .option(
      "--lan",
      "a link for a phone on the same LAN, with a QR code: the daemon then also serves the page on its LAN addresses, " +
        "to that link's cookie only (plain HTTP: use it on a network you trust)",
    )
    .addOption(httpOption())
    .action(async (opts: { print?: boolean; lan?: boolean; http?: string }) => {
      const base = daemonUrl(opts.http);
      const { body } = await request<{ path: string; urls?: string[]; expiresInSeconds: number }>(
        base,
        "/session/link",
        { method: "POST", body: opts.lan ? { lan: true } : {} },
      ).catch((e) => {
        if (!(e instanceof ApiError) || e.status !== 401) throw e;
        // No token of this daemon in our data directory: it is another user's (or ours under another --data-dir).
        throw new Error(
          `The daemon at ${base.replace(/^https?:\/\//, "")} answers its owner only, and you have no token for it: ` +
            `it is another user's daemon (they open its page with their own lanchat web), or yours with another ` +
            `--data-dir (set LANCHAT_HTTP_TOKEN to the http_token in it)`,
        );
      });
      if (opts.lan) {
        const urls = body.urls ?? [];
        if (urls.length === 0) {
          throw new Error(
            "The daemon did not open the page on the LAN (a lanchat before --lan?): restart it and try again",
          );
        }
        if (opts.print) {
          for (const u of urls) console.log(u);
          return;
        }
        console.log(
          `Open ${urls.length > 1 ? "one of these links" : "this link"} on your phone, on the same network ` +
            `(it works once, within ${body.expiresInSeconds} s; the phone then keeps a cookie):`,
        );
        for (const u of urls) console.log(`\n${qrText(u, colorTerminal())}\n${u}`);
        return;
      }
      const url = `${base}${body.path}`;
      if (opts.print) {
        console.log(url);
        return;
      }
      if (!hasDisplay()) {
        console.log(`No display to open a browser on: open this link (good once, for ${body.expiresInSeconds} s):`);
        console.log(url);
        return;
      }
      const file = await redirectFile(url);
      try {
        const opened = await new Deno.Command("xdg-open", { args: [file], stdout: "null", stderr: "null" }).output();
        if (!opened.success) throw new Error(`xdg-open exited with ${opened.code}`);
        console.log(`Opened lanchat in your browser (if not, open ${url} within ${body.expiresInSeconds} s)`);
      } catch (e) {
        console.log(
          `Cannot open a browser (${(e as Error).message}): open this link within ${body.expiresInSeconds} s:`,
        );
        console.log(url);
      }
    });
}
