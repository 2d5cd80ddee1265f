/**
 * Files to a group: `POST /files` and `POST /files/upload` with `to` a
 * group offer to each member, one transfer each (a member offline waits,
 * the others go on); an upload is staged once and its folder goes only when
 * every member's transfer has ended; `lanchat send-file @GROUP` follows
 * them all.
 */
import assert from "node:assert/strict";
import type { TransferJson } from "../../src/api/types.ts";
import {
  type DaemonProcess,
  freeUdpPort,
  killAll,
  runCli,
  startLoopbackDaemon,
  tempDataDir,
  until,
} from "../support/daemon_process.ts";
import { sha } from "../support/transfer_files.ts";

async function call<T>(d: DaemonProcess, path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
  const res = await fetch(`${d.httpUrl}${path}`, init);
  return { status: res.status, body: await res.json() };
}
const post = <T>(d: DaemonProcess, path: string, body: unknown) =>
  call<T>(d, path, { method: "POST", body: JSON.stringify(body) });

async function waitState(d: DaemonProcess, id: string, state: string): Promise<TransferJson> {
  let t: TransferJson | undefined;
  await until(`transfer ${id} to be ${state}`, async () => {
    t = (await call<TransferJson>(d, `/transfers/${id}`)).body;
    return t?.state === state;
  }, 15_000);
  return t!;
}

interface GroupOffer {
  group: string;
  transfers: TransferJson[];
}

Deno.test("a file to a group: one transfer per member, an offline member waits, an upload is staged once for all", async () => {
  const port = freeUdpPort();
  const made: string[] = [];
  const dir = (prefix: string) => {
    const d = Deno.makeTempDirSync({ prefix });
    made.push(d);
    return d;
  };
  try {
    const aDir = tempDataDir();
    made.push(aDir);
    const a = await startLoopbackDaemon(port, "alice", { dataDir: aDir }).started();
    const dl = { bob: dir("lanchat-dl-b-"), carol: dir("lanchat-dl-c-") };
    const b = await startLoopbackDaemon(port, "bob", { extra: ["--downloads", dl.bob] }).started();
    const c = await startLoopbackDaemon(port, "carol", { extra: ["--downloads", dl.carol] }).started();
    const d = await startLoopbackDaemon(port, "dave").started();
    for (const x of [b, c, d]) await a.joined(x.id, 5000);
    const made2 = await post<{ group: { id: string } }>(a, "/groups", { name: "team", members: [b.id, c.id, d.id] });
    assert.equal(made2.status, 201);
    const g = made2.body.group.id;
    // dave goes offline before the file is sent.
    await d.kill();

    // Edges first: a group that does not exist; a path that does not exist (nothing offered to anyone).
    assert.equal((await post(a, "/files", { to: "@nosuch", paths: ["/etc/hostname"] })).status, 404);
    const missing = await post<{ error: string }>(a, "/files", { to: "@team", paths: ["/nonexistent/x"] });
    assert.equal(missing.status, 400);
    assert.match(missing.body.error, /no such file/);
    assert.equal((await call<TransferJson[]>(a, "/transfers")).body.length, 0);

    const src = dir("lanchat-src-");
    const bytes = crypto.getRandomValues(new Uint8Array(65536)).map((x, i) => x ^ i);
    await Deno.writeFile(`${src}/plan.bin`, bytes);
    const offered = await post<GroupOffer>(a, "/files", { to: g, paths: [`${src}/plan.bin`] });
    assert.equal(offered.status, 202, JSON.stringify(offered.body));
    assert.equal(offered.body.group, g);
    const byName = new Map(offered.body.transfers.map((t) => [t.peer.name, t]));
    assert.deepEqual([...byName.keys()].sort(), ["bob", "carol", "dave"]);
    assert.equal(new Set(offered.body.transfers.map((t) => t.id)).size, 3, "one transfer each");
    for (const [who, x] of [["bob", b], ["carol", c]] as const) {
      const id = byName.get(who)!.id;
      await waitState(x, id, "offered");
      assert.equal((await post(x, `/transfers/${id}/accept`, {})).status, 200);
      await waitState(a, id, "done");
      assert.equal(sha(await Deno.readFile(`${dl[who]}/plan.bin`)), sha(bytes), who);
    }
    assert.equal((await call<TransferJson>(a, `/transfers/${byName.get("dave")!.id}`)).body.state, "waiting");

    // From the page: an upload to the group, staged once; its folder stays while dave's transfer waits.
    const upload = await call<GroupOffer>(a, `/files/upload?to=${encodeURIComponent("@team")}&name=note.txt`, {
      method: "POST",
      body: "from the page",
      headers: { "content-length": "13" },
    });
    assert.equal(upload.status, 202, JSON.stringify(upload.body));
    assert.equal(upload.body.transfers.length, 3);
    const staged = () => [...Deno.readDirSync(`${aDir}/uploads`)].length;
    assert.equal(staged(), 1, "one staging folder for the three transfers");
    const up = new Map(upload.body.transfers.map((t) => [t.peer.name, t.id]));
    for (const [who, x] of [["bob", b], ["carol", c]] as const) {
      await waitState(x, up.get(who)!, "offered");
      await post(x, `/transfers/${up.get(who)!}/accept`, {});
      await waitState(a, up.get(who)!, "done");
      assert.equal(await Deno.readTextFile(`${dl[who]}/note.txt`), "from the page");
    }
    assert.equal(staged(), 1, "dave's transfer still needs it");
    assert.equal((await post(a, `/transfers/${up.get("dave")!}/cancel`, {})).status, 200);
    await until("the staging folder goes with the last transfer", () => Promise.resolve(staged() === 0), 5000);

    // The CLI follows every member's transfer: dave still waits, so exit 75, and --json has them all.
    const cli = await runCli([
      "send-file",
      "@team",
      `${src}/plan.bin`,
      "--wait",
      "1",
      "--json",
      "--http",
      a.httpUrl.replace("http://", ""),
    ]);
    assert.equal(cli.code, 75, cli.stderr);
    const out = JSON.parse(cli.stdout) as GroupOffer;
    assert.equal(out.group, g);
    assert.deepEqual(out.transfers.map((t) => t.peer.name).sort(), ["bob", "carol", "dave"]);
  } finally {
    await killAll();
    for (const m of made) await Deno.remove(m, { recursive: true }).catch(() => {});
  }
});
