/**
 * The local API answers its owner only, on loopback too: another Unix user
 * of the host (`nobody`, through `runuser`) gets 401 from every route of the
 * router's table but `/healthz`, cannot open the page, nor use a link the
 * owner used; the owner's CLI needs no flag; the token file is 0600 in a
 * 0700 data directory, and a token file others could read stops the daemon.
 */
import assert from "node:assert/strict";
import { type Api, createHandler } from "../../src/api/http.ts";
import {
  DaemonProcess,
  freeTcpPort,
  freeUdpPort,
  killAll,
  runCli,
  startLoopbackDaemon,
  strangerFetch,
  tempDataDir,
} from "../support/daemon_process.ts";

/** Every `METHOD /path` the daemon's router has (the same table the daemon builds). */
const ROUTES = createHandler({} as Api, { token: "x".repeat(16) }).routes();

/** Runs curl as user nobody; returns each request's status, in order. */
async function curlAsNobody(requests: { method: string; url: string }[]): Promise<number[]> {
  const args = ["-u", "nobody", "--", "curl", "-s", "--max-time", "10"];
  requests.forEach(({ method, url }, i) => {
    if (i > 0) args.push("--next", "-s", "--max-time", "10");
    args.push("-o", "/dev/null", "-w", "%{http_code}\\n", "-X", method);
    if (method !== "GET") args.push("-H", "content-type: application/json", "--data", "{}");
    args.push(url);
  });
  const out = await new Deno.Command("runuser", { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  return text.trim().split("\n").map(Number);
}

async function asNobody(cmd: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command("runuser", {
    args: ["-u", "nobody", "--", ...cmd],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("another user of the host gets 401 from every route but /healthz, and cannot open the page", async () => {
  const root = tempDataDir();
  try {
    // A data directory the daemon makes itself.
    const dir = `${root}/new/lanchat`;
    const a = await startLoopbackDaemon(freeUdpPort(), "alice", { dataDir: dir }).started();
    assert.equal(Deno.statSync(dir).mode! & 0o777, 0o700, "data directory 0700");
    assert.equal(Deno.statSync(`${dir}/http_token`).mode! & 0o777, 0o600, "token file 0600");
    assert.ok(ROUTES.length > 25, ROUTES.join(", "));
    const requests = ROUTES.map((r) => {
      const [method, path] = r.split(" ") as [string, string];
      return { method, url: `${a.httpUrl}${path.replace(/:\w+/g, "x")}` };
    });
    const pageFiles = ["/", "/app.js", "/app.css"].map((p) => ({ method: "GET", url: `${a.httpUrl}${p}` }));
    const statuses = await curlAsNobody([...requests, ...pageFiles]);
    assert.equal(statuses.length, requests.length + pageFiles.length, "curl ran as nobody");
    requests.forEach(({ method, url }, i) => {
      assert.equal(statuses[i], url.endsWith("/healthz") ? 200 : 401, `${method} ${url}`);
    });
    assert.deepEqual(statuses.slice(requests.length), [401, 401, 401], "the page's files");
    // The page, as nobody sees it: how to open it, as HTML.
    const page = await asNobody(["curl", "-s", `${a.httpUrl}/`]);
    assert.match(page.stdout, /<p>Run `lanchat web` on this computer to open lanchat\.<\/p>/);
    const api = await asNobody(["curl", "-s", `${a.httpUrl}/messages`]);
    assert.match(JSON.parse(api.stdout).error, /answers its owner only\. Run `lanchat web`/);
    // Nor can nobody read the token.
    const read = await asNobody(["cat", `${dir}/http_token`]);
    assert.notEqual(read.code, 0);
    assert.match(read.stderr, /Permission denied/);
    // A link the owner used is spent for nobody.
    const link = await a.webLink();
    assert.match(link, new RegExp(`^${a.httpUrl}/session\\?code=[\\w-]{43}$`));
    const used = await strangerFetch(link, { redirect: "manual" });
    assert.equal(used.status, 303);
    assert.match(used.headers.get("set-cookie")!, /HttpOnly; SameSite=Strict/);
    await used.body?.cancel();
    const replay = await asNobody(["curl", "-s", "-i", link]);
    assert.match(replay.stdout, /^HTTP\/1\.1 401/);
    assert.doesNotMatch(replay.stdout, /set-cookie/i);
    assert.match(replay.stdout, /used already, or is more than a minute old/);
    // The owner's own requests (tokens from tests/support) work, as before.
    assert.equal((await fetch(`${a.httpUrl}/status`)).status, 200);
    assert.equal((await strangerFetch(`${a.httpUrl}/status`)).status, 401);
  } finally {
    await killAll();
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("the owner's CLI needs no flag: it reads the token in the default data directory", async () => {
  const home = tempDataDir();
  const stranger = tempDataDir();
  const http = `127.0.0.1:${freeTcpPort()}`;
  try {
    const a = await new DaemonProcess(
      ["--interface", "lo", "--port", String(freeUdpPort()), "--unicast-port", "0", "--http", http, "--name", "alice"],
      { env: { XDG_DATA_HOME: home } },
    ).started();
    const owner = { XDG_DATA_HOME: home, LANCHAT_HTTP: http };
    const status = await runCli(["status", "--json"], { env: owner });
    assert.equal(status.code, 0, status.stderr);
    assert.equal(JSON.parse(status.stdout).id, a.id);
    const web = await runCli(["web", "--print"], { env: owner });
    assert.equal(web.code, 0, web.stderr);
    assert.match(web.stdout, new RegExp(`^http://${http}/session\\?code=[\\w-]{43}\\n$`));
    // Someone whose data directory holds no token: told how to get in.
    const other = await runCli(["status"], { env: { XDG_DATA_HOME: stranger, LANCHAT_HTTP: http } });
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, /answers its owner only\. Run `lanchat web` on this computer/);
  } finally {
    await killAll();
    Deno.removeSync(home, { recursive: true });
    Deno.removeSync(stranger, { recursive: true });
  }
});

Deno.test("lanchat web by someone without the daemon's token says whose daemon it is, not to run lanchat web", async () => {
  const home = tempDataDir();
  const stranger = tempDataDir();
  const http = `127.0.0.1:${freeTcpPort()}`;
  try {
    await new DaemonProcess(
      ["--interface", "lo", "--port", String(freeUdpPort()), "--unicast-port", "0", "--http", http, "--name", "alice"],
      { env: { XDG_DATA_HOME: home } },
    ).started();
    const web = await runCli(["web", "--print"], { env: { XDG_DATA_HOME: stranger, LANCHAT_HTTP: http } });
    assert.notEqual(web.code, 0);
    assert.equal(web.stdout, "", "no link");
    assert.match(web.stderr, /answers its owner only, and you have no token for it: it is another user's daemon/);
  } finally {
    await killAll();
    Deno.removeSync(home, { recursive: true });
    Deno.removeSync(stranger, { recursive: true });
  }
});

Deno.test("a token file others could read stops the daemon at start with what to do", async () => {
  const dir = tempDataDir();
  try {
    const first = await startLoopbackDaemon(freeUdpPort(), "alice", { dataDir: dir }).started();
    await first.kill();
    Deno.chmodSync(`${dir}/http_token`, 0o644);
    const again = startLoopbackDaemon(freeUdpPort(), "alice", { dataDir: dir });
    const status = await again.wait();
    assert.notEqual(status.code, 0);
    const said = again.rawStderr.join("\n");
    assert.match(
      said,
      /HTTP token file .*http_token has mode 644: other users of this host may have read it; remove it/,
    );
    assert.equal(Deno.statSync(`${dir}/http_token`).mode! & 0o777, 0o644, "left for the admin to decide");
    // Removed: a new token, and the daemon starts.
    Deno.removeSync(`${dir}/http_token`);
    // A data directory others may enter: a warning (the token file itself is still private).
    Deno.chmodSync(dir, 0o755);
    const third = await startLoopbackDaemon(freeUdpPort(), "alice", { dataDir: dir }).started();
    assert.equal(Deno.statSync(`${dir}/http_token`).mode! & 0o777, 0o600);
    assert.equal((await fetch(`${third.httpUrl}/status`)).status, 200);
    const warning = third.lines.find((l) => /^Data directory .* has mode 755: other users/.test(l.message));
    assert.equal(warning?.level, "WARN", third.rawStderr.join("\n"));
  } finally {
    await killAll();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("lanchat web hands the browser a private file, not the link: no code on a command line others can read", async () => {
  const work = tempDataDir();
  try {
    const a = await startLoopbackDaemon(freeUdpPort(), "alice").started();
    // A stand-in for xdg-open that says what it was given and what that file held (and its mode).
    Deno.mkdirSync(`${work}/bin`);
    Deno.writeTextFileSync(
      `${work}/bin/xdg-open`,
      `#!/bin/sh\necho "$@" > ${work}/argv\nstat -c %a "$1" > ${work}/mode\ncat "$1" > ${work}/page\n`,
      { mode: 0o755 },
    );
    const config = new URL("../../deno.json", import.meta.url).pathname;
    const task = (JSON.parse(Deno.readTextFileSync(config)) as { tasks: Record<string, string> }).tasks.lanchat!;
    const flags = task.split(/\s+/).filter((w) => w.startsWith("--allow-") || w.startsWith("--v8-flags="));
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--config", config, ...flags, new URL("../../main.ts", import.meta.url).pathname, "web"],
      env: {
        PATH: `${work}/bin:${Deno.env.get("PATH")}`,
        DISPLAY: ":99",
        LANCHAT_HTTP: a.httpUrl.replace("http://", ""),
        LANCHAT_HTTP_TOKEN: a.token!,
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const said = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.match(said, /^Opened lanchat in your browser/);
    const argv = Deno.readTextFileSync(`${work}/argv`).trim();
    assert.doesNotMatch(argv, /code=|http/, "the browser's command line holds a file name only");
    assert.equal(Deno.readTextFileSync(`${work}/mode`).trim(), "600");
    const page = Deno.readTextFileSync(`${work}/page`);
    const link = /url=([^"]+)"/.exec(page)![1]!;
    assert.match(link, new RegExp(`^${a.httpUrl}/session\\?code=[\\w-]{43}$`));
    assert.match(page, /<meta name="referrer" content="no-referrer">/);
    const res = await strangerFetch(link, { redirect: "manual" });
    assert.equal(res.status, 303, "the link in the file opens the page");
    await res.body?.cancel();
    Deno.removeSync(argv);
  } finally {
    await killAll();
    Deno.removeSync(work, { recursive: true });
  }
});
