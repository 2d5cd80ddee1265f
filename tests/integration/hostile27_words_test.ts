/**
 * Hostile tests of issue 27 items 5-7 (hostile2, M2, M3, L1-L3): each of
 * these failed on main at 5bb68ce. Loopback only.
 */
import assert from "node:assert/strict";
import type { MessageJson } from "../../src/api/types.ts";
import {
  type DaemonProcess,
  freeUdpPort,
  killAll,
  ownerFetch,
  runCli,
  startLoopbackDaemon,
} from "../support/daemon_process.ts";

const hp = (d: DaemonProcess) => d.httpUrl.replace("http://", "");
/** The CLI run against daemon `d`. */
const on = (d: DaemonProcess, ...args: string[]) => runCli([...args, "--http", hp(d)]);

/** Alice and bob on loopback, each seeing the other. */
async function aliceAndBob(): Promise<{ a: DaemonProcess; b: DaemonProcess }> {
  const port = freeUdpPort();
  const a = await startLoopbackDaemon(port, "alice").started();
  const b = await startLoopbackDaemon(port, "bob").started();
  await a.joined(b.id, 5000);
  return { a, b };
}

async function history(d: DaemonProcess, q = ""): Promise<MessageJson[]> {
  return await (await ownerFetch(`${d.httpUrl}/messages?limit=1000${q}`)).json();
}

Deno.test("a NUL in standard input is sent whole or refused, never cut there", async () => {
  try {
    const port = freeUdpPort();
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob").started();
    await a.joined(b.id, 5000);
    const r = await runCli(["send", "bob", "-", "--http", hp(a)], { stdin: "before\0after" });
    if (r.code === 2) return; // refused, with a word: fine
    assert.equal(r.code, 0, r.stderr);
    await new Promise((res) => setTimeout(res, 500));
    const mine = (await history(a)).filter((m) => m.direction === "out").map((m) => m.text);
    const got = (await history(b)).filter((m) => m.direction === "in").map((m) => m.text);
    assert.deepEqual(mine, ["before\0after"], "the sender's own history");
    assert.deepEqual(got, ["before\0after"], "what bob got");
    // And a lone NUL is not an empty message sent (`send bob ""` is refused).
    const z = await runCli(["send", "bob", "-", "--http", hp(a)], { stdin: "\0" });
    const stored = (await history(b)).filter((m) => m.direction === "in").map((m) => m.text);
    assert.ok(z.code === 2 || stored.includes("\0"), `got ${JSON.stringify(stored)}`);
  } finally {
    await killAll();
  }
});

Deno.test("a NUL from a local client is refused with where it is: the CLI exits 2, the API answers 400 text_nul", async () => {
  try {
    const { a, b } = await aliceAndBob();
    const r = await runCli(["send", "bob", "-", "--http", hp(a)], { stdin: "before\0after" });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /NUL byte \(0x00\) at byte 6/);
    const z = await runCli(["send", "bob", "-", "--http", hp(a)], { stdin: "\0" });
    assert.equal(z.code, 2, z.stderr);
    const res = await ownerFetch(`${a.httpUrl}/messages`, {
      method: "POST",
      body: JSON.stringify({ to: b.id, text: "p\u0000q" }),
    });
    const body = await res.json();
    assert.equal(res.status, 400);
    assert.equal(body.code, "text_nul");
    assert.equal(body.at, 1);
    assert.deepEqual((await history(a)).filter((m) => m.direction === "out"), [], "nothing stored, nothing sent");
  } finally {
    await killAll();
  }
});

Deno.test("--encoding converts as iconv does or refuses: no silent U+FFFD, no dropped byte, no encoding backwards", async () => {
  try {
    const port = freeUdpPort();
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob").started();
    await a.joined(b.id, 5000);
    const cases: [string, string, string | undefined][] = [
      ["\\201", "cp1252", undefined], // 0x81 is unassigned in cp1252: iconv refuses
      ["h\\000i", "utf-16le", undefined], // odd length: iconv "incomplete character"
      ["h\\000\\000\\330", "utf-16le", undefined], // a lone high surrogate
      ["Y2Fm", "base64", "caf"], // if base64 is taken at all, it is decoded, not encoded
    ];
    const wrong: string[] = [];
    for (const [octal, enc, expected] of cases) {
      const before = (await history(b)).filter((m) => m.direction === "in").length;
      // runCli takes stdin as a string (UTF-8 encoded): pipe the raw bytes ourselves.
      const p = new Deno.Command("bash", {
        args: [
          "-c",
          `printf '${octal}' | "$0" "$@"`,
          ...cliArgs(["send", "bob", "-", "--encoding", enc, "--http", hp(a)]),
        ],
        stdout: "piped",
        stderr: "piped",
        env: { LANCHAT_HTTP_TOKEN: a.token ?? "" },
      });
      const out = await p.output();
      const after = (await history(b)).filter((m) => m.direction === "in").slice(before);
      const texts = after.map((m) => m.text);
      const ok = expected === undefined ? out.code === 2 : out.code === 2 || texts.at(-1) === expected;
      if (!ok) wrong.push(`--encoding ${enc} of printf '${octal}': exit ${out.code}, bob got ${JSON.stringify(texts)}`);
    }
    assert.deepEqual(wrong, []);
  } finally {
    await killAll();
  }
});

/** The CLI as argv for bash's "$0" "$@". */
function cliArgs(args: string[]): string[] {
  const cfg = new URL("../../deno.json", import.meta.url).pathname;
  const main = new URL("../../main.ts", import.meta.url).pathname;
  return [Deno.execPath(), "run", "--config", cfg, "--allow-all", main, ...args];
}

Deno.test("usage errors exit 2: a NOTE too long, a group name that starts with @", async () => {
  try {
    const port = freeUdpPort();
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob").started();
    await a.joined(b.id, 5000);
    const away = await runCli(["away", "n".repeat(101), "--http", hp(a)]);
    assert.equal(away.code, 2, `away with a 101-character note: exit ${away.code}: ${away.stderr}`);
    assert.equal((await runCli(["group", "create", "lab", "bob", "--http", hp(a)])).code, 0);
    // "@lab" is how GROUP is written everywhere else: not a second group "@lab" (shown "@@lab").
    const again = await runCli(["group", "create", "@lab", "bob", "--http", hp(a)]);
    assert.notEqual(again.code, 0, `created ${again.stdout}`);
  } finally {
    await killAll();
  }
});

Deno.test("reading one conversation does not mark another read (✓✓ only for what the peer was shown)", async () => {
  try {
    const port = freeUdpPort();
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob").started();
    await a.joined(b.id, 5000);
    const cli = (d: DaemonProcess, ...args: string[]) => runCli([...args, "--http", hp(d)]);
    assert.equal((await cli(a, "group", "create", "lab", "bob")).code, 0);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await cli(b, "inbox", "--group", "lab")).code, 0); // bob has read the group so far
    // Bob is sent a group message he does not look at, then a direct one he reads.
    assert.equal((await cli(a, "send", "@lab", "group: not shown to bob")).code, 0);
    assert.equal((await cli(a, "send", "bob", "direct: shown")).code, 0);
    const shown = await cli(b, "inbox", "--peer", "alice");
    assert.doesNotMatch(shown.stdout, /not shown to bob/);
    await new Promise((r) => setTimeout(r, 2000));
    const mine = (await history(a)).find((m) => m.text === "group: not shown to bob")!;
    assert.equal(mine.readAt, undefined, "alice's group message is marked read by bob, who never saw it");
    const lab = await cli(a, "inbox", "--group", "lab");
    assert.doesNotMatch(lab.stdout, /not shown to bob {2}✓✓/, lab.stdout);
  } finally {
    await killAll();
  }
});

Deno.test("reading a group does not mark the direct conversation read, nor another group", async () => {
  try {
    const { a, b } = await aliceAndBob();
    assert.equal((await on(a, "group", "create", "lab", "bob")).code, 0);
    assert.equal((await on(a, "group", "create", "ops", "bob")).code, 0);
    await new Promise((r) => setTimeout(r, 500));
    // Bob is sent a direct message and one in ops he does not look at, then one in lab he reads.
    assert.equal((await on(a, "send", "bob", "direct: not shown to bob")).code, 0);
    assert.equal((await on(a, "send", "@ops", "ops: not shown to bob")).code, 0);
    assert.equal((await on(a, "send", "@lab", "lab: shown")).code, 0);
    const shown = await on(b, "inbox", "--group", "lab");
    assert.match(shown.stdout, /lab: shown/);
    assert.doesNotMatch(shown.stdout, /not shown to bob/);
    // The lab message is read (the receipt came), the others are not.
    let mine: MessageJson[] = [];
    for (let i = 0; i < 50; i++) {
      mine = await history(a);
      if (mine.find((m) => m.text === "lab: shown")?.readAt !== undefined) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.notEqual(mine.find((m) => m.text === "lab: shown")?.readAt, undefined, "the message bob read");
    assert.equal(mine.find((m) => m.text === "direct: not shown to bob")?.readAt, undefined, "direct");
    assert.equal(mine.find((m) => m.text === "ops: not shown to bob")?.readAt, undefined, "ops");
    // Bob's own copies of what he was not shown stay unread.
    const his = await history(b);
    assert.equal(his.find((m) => m.text === "direct: not shown to bob")?.readAt, undefined, "bob's direct copy");
    assert.equal(his.find((m) => m.text === "ops: not shown to bob")?.readAt, undefined, "bob's ops copy");
  } finally {
    await killAll();
  }
});

Deno.test("usage errors exit 2 as docs/cli.md lists them: a transfer id, reserved text, an empty group, --peer with --group", async () => {
  try {
    const { a, b } = await aliceAndBob();
    const cli = (args: string[], stdin?: string) =>
      runCli([...args, "--http", hp(a)], stdin === undefined ? undefined : { stdin });
    assert.equal((await cli(["group", "create", "lab", "bob"])).code, 0);
    assert.equal((await cli(["group", "create", "lab", "bob", "--new"])).code, 0);
    const cases: [string[], string?][] = [
      [["accept", "abc"]],
      [["accept", "zzzz"]],
      [["send", "bob", "-"], "x\n\u0001lanchat-files {}"],
      [["send", "@", "hi"]],
      [["send", "@ ", "hi"]],
      [["group", "add", "@", "bob"]],
      [["inbox", "--peer", "bob", "--group", "lab"]], // lab names two groups: still a usage error first
      [["group", "create", "@", "bob"]],
      [["group", "create", "@lab", "bob"]],
      [["away", "n".repeat(101)]],
    ];
    const wrong: string[] = [];
    for (const [args, stdin] of cases) {
      const r = await cli(args, stdin);
      if (r.code !== 2) wrong.push(`${args.join(" ")}: exit ${r.code}: ${r.stderr.trim()}`);
    }
    assert.deepEqual(wrong, []);
    // The daemon refuses a group name that starts with @ too.
    const res = await ownerFetch(`${a.httpUrl}/groups`, {
      method: "POST",
      body: JSON.stringify({ name: "@lab", members: [b.id] }),
    });
    assert.equal(res.status, 400);
    assert.equal((await res.json()).code, "bad_group_name");
    const names = ((await (await ownerFetch(`${a.httpUrl}/groups`)).json()) as { name: string }[]).map((g) => g.name);
    assert.deepEqual(names.filter((n) => n.startsWith("@")), []);
  } finally {
    await killAll();
  }
});

Deno.test("wording: no daemon at a blocked port says so without Deno's TypeError; a transfer accepted twice says what it is", async () => {
  try {
    const blocked = await runCli(["status", "--http", "127.0.0.1:1"]);
    assert.equal(blocked.code, 3, blocked.stderr);
    assert.doesNotMatch(blocked.stderr, /TypeError|Fetch failed/);
    assert.match(
      blocked.stderr,
      /No lanchat daemon answers at http:\/\/127\.0\.0\.1:1 \(port 1 is one a web client may not use/,
    );
    const { a, b } = await aliceAndBob();
    const dir = await Deno.makeTempDir({ prefix: "hostile27-words-" });
    await Deno.writeFile(`${dir}/report.pdf`, new Uint8Array(1000));
    const offer = await runCli(["send-file", "alice", `${dir}/report.pdf`, "--wait", "0", "--http", hp(b)]);
    const id = /transfers ([0-9a-f]{8})/.exec(offer.stdout)?.[1];
    assert.ok(id, offer.stdout + offer.stderr);
    assert.equal((await runCli(["accept", id!, "--wait", "10s", "--http", hp(a)])).code, 0);
    const again = await runCli(["accept", id!, "--http", hp(a)]);
    assert.equal(again.code, 1, again.stderr);
    assert.match(again.stderr, /cannot be accepted: it (is done|is accepted already)/);
    assert.doesNotMatch(again.stderr, /not waiting to be accepted/);
  } finally {
    await killAll();
  }
});
