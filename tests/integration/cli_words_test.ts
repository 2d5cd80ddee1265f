/**
 * The CLI's words (issue 27 items 5, 6, 7), as a person meets them, against
 * real daemons on loopback: a second group of a name you are in is refused
 * (by the daemon: the API and page get a 409 too), whatever the case, width
 * or invisible characters, and a group someone else made counts; group
 * ambiguity is worded for groups; input that is not UTF-8 (standard input,
 * arguments, chat lines) is refused with where, or converted by
 * `--encoding`; the API's HTTP words do not reach a person; usage errors exit
 * 2; `--wait` takes the durations every flag takes.
 */
import assert from "node:assert/strict";
import type { GroupJson, MessageJson } from "../../src/api/types.ts";
import {
  CLI_PERMISSIONS,
  CONFIG,
  freeUdpPort,
  killAll,
  MAIN,
  ownerEnv,
  ownerFetch,
  runCli,
  startLoopbackDaemon,
  until,
} from "../support/daemon_process.ts";

const enc = new TextEncoder();
const bytes = (...b: (number | string)[]) =>
  new Uint8Array(b.flatMap((x) => typeof x === "string" ? [...enc.encode(x)] : [x]));

/**
 * The CLI with arguments as bytes (a shell hands a program what it was
 * given, UTF-8 or not; `Deno.Command` takes strings only, so bash's printf
 * makes each one) and standard input as bytes.
 */
async function cliBytes(
  args: (string | Uint8Array)[],
  stdin?: Uint8Array,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const word = (a: string | Uint8Array) => {
    const b = typeof a === "string" ? enc.encode(a) : a;
    return `"$(printf '${[...b].map((x) => "\\" + x.toString(8).padStart(3, "0")).join("")}')"`;
  };
  const script = `exec ${[Deno.execPath(), "run", "--config", CONFIG, ...CLI_PERMISSIONS, MAIN].map(word).join(" ")} ${
    args.map(word).join(" ")
  }`;
  const child = new Deno.Command("bash", {
    args: ["-c", script],
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
    env: ownerEnv(args.map((a) => typeof a === "string" ? a : new TextDecoder().decode(a))),
  }).spawn();
  if (stdin) {
    const w = child.stdin.getWriter();
    await w.write(stdin);
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Alice and bob on loopback, each seeing the other; `http` is alice's, as `--http` takes it. */
async function aliceAndBob() {
  const port = freeUdpPort();
  const a = await startLoopbackDaemon(port, "alice").started();
  const b = await startLoopbackDaemon(port, "bob").started();
  await a.joined(b.id, 5000);
  return { a, b, http: a.httpUrl.replace("http://", "") };
}

async function groups(d: { httpUrl: string }): Promise<GroupJson[]> {
  return await (await ownerFetch(`${d.httpUrl}/groups`)).json();
}

async function inboxTexts(d: { httpUrl: string }): Promise<string[]> {
  const r = await ownerFetch(`${d.httpUrl}/messages?limit=1000`);
  return ((await r.json()) as MessageJson[]).filter((m) => !m.group).map((m) => m.text);
}

Deno.test("a second group of a name you are in is refused by the daemon, alike names and invited groups too; --new makes one; ambiguity is worded for groups", async () => {
  const port = freeUdpPort();
  try {
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob").started();
    const c = await startLoopbackDaemon(port, "carol").started();
    for (const [x, y] of [[a, b], [a, c], [b, c]] as const) await x.joined(y.id, 5000);
    const http = a.httpUrl.replace("http://", "");
    const cli = (...args: string[]) => runCli([...args, "--http", http]);

    const made = await cli("group", "create", "lab", "bob");
    assert.equal(made.code, 0, made.stderr);
    const lab = (await groups(a)).find((g) => g.name === "lab")!;

    // The same name, and names that read the same: refused, exit 1, in words, with the group that has it.
    for (const name of ["lab", "Lab", "ｌａｂ", "la\u200Bb", "l\u00ADab"]) {
      const r = await cli("group", "create", name, "carol");
      assert.equal(r.code, 1, `${name}: ${r.stdout}${r.stderr}`);
      assert.equal(
        r.stderr,
        `lanchat: You are already in @lab (${
          lab.id.slice(0, 8)
        }, with bob): write to it with "lanchat send @lab TEXT", ` +
          `add people with "lanchat group add @lab PEER...", or choose another name (--new makes a second one, then named by its id)\n`,
      );
    }
    assert.equal((await groups(a)).length, 1, "no second group made");
    // The API (and so the page) gets it too: 409, a code, the group that has the name; nothing stored.
    const api = await ownerFetch(`${a.httpUrl}/groups`, {
      method: "POST",
      body: JSON.stringify({ name: "LAB", members: ["carol"] }),
    });
    assert.equal(api.status, 409);
    const body = await api.json();
    assert.equal(body.code, "group_name_taken");
    assert.equal(body.group.id, lab.id);
    assert.match(body.error, /You are already in a group named “lab”/);
    const notBool = await ownerFetch(`${a.httpUrl}/groups`, {
      method: "POST",
      body: JSON.stringify({ name: "lab", members: ["carol"], new: "yes" }),
    });
    assert.equal(notBool.status, 400);
    assert.deepEqual(await notBool.json(), {
      error: 'Field "new" must be true or false',
      status: 400,
      code: "bad_field",
      field: "new",
    });
    // --json: the API's error as it came, on stderr; nothing on stdout.
    const verbatim = await runCli(["send", "@nolab", "hi", "--json", "--http", http]);
    assert.equal(verbatim.code, 1);
    assert.equal(verbatim.stdout, "");
    assert.deepEqual(JSON.parse(verbatim.stderr), {
      error: 'No group matches "@nolab" (see GET /groups)',
      status: 404,
      code: "unknown_group",
    });
    const unknown = await cli("send", "@nolab", "hi");
    assert.equal(
      unknown.stderr,
      'lanchat: No group is named @nolab ("lanchat group list" shows yours; --all also those you left)\n',
    );

    // A group someone else made, that you were invited to, has its name too.
    const team = await runCli(["group", "create", "team", "alice", "--http", b.httpUrl.replace("http://", "")]);
    assert.equal(team.code, 0, team.stderr);
    await until("alice to be told of team", async () => (await groups(a)).some((g) => g.name === "team"), 5000);
    const invited = await cli("group", "create", "Team", "carol");
    assert.equal(invited.code, 1);
    assert.match(invited.stderr, /^lanchat: You are already in @team \(\w{8}, with /);
    // A hostile name (a right-to-left override that would show "team" backwards) is shown, not obeyed, in the refusal.
    const rlo = "evil\u202Emaet";
    assert.equal((await runCli(["group", "create", rlo, "alice", "--http", b.httpUrl.replace("http://", "")])).code, 0);
    await until(
      "alice to be told of the hostile group",
      async () => (await groups(a)).some((g) => g.name === rlo),
      5000,
    );
    const hostile = await cli("group", "create", rlo, "carol");
    assert.equal(hostile.code, 1);
    assert.ok(!hostile.stderr.includes("\u202E"), `no raw override: ${JSON.stringify(hostile.stderr)}`);
    assert.match(
      hostile.stderr,
      /^lanchat: You are already in @evil<U\+202E>maet \(\w{8}, with bob\): write to it with "lanchat send '@evil<U\+202E>maet' TEXT"/,
    );
    // A group you left does not hold its name: a new one of that name is yours (and @team names it).
    const teamId = (await groups(a)).find((g) => g.name === "team")!.id;
    assert.equal((await cli("group", "leave", teamId)).code, 0);
    const again = await cli("group", "create", "team", "carol");
    assert.equal(again.code, 0, again.stderr);
    const send = await cli("send", "@team", "hi", "--wait", "5s");
    assert.equal(send.code, 0, send.stderr);
    assert.match(send.stdout, /^@team: delivered to 1 of 1$/m);

    // --new: a second @lab on purpose; then @lab is ambiguous, and the answer is about groups, with ids and members.
    const second = await cli("group", "create", "lab", "carol", "--new");
    assert.equal(second.code, 0, second.stderr);
    const labs = (await groups(a)).filter((g) => g.name === "lab");
    assert.equal(labs.length, 2);
    const amb = await cli("send", "@lab", "hi");
    assert.equal(amb.code, 1);
    assert.ok(!/peer/i.test(amb.stderr), `worded for groups: ${amb.stderr}`);
    const [head, ...rows] = amb.stderr.trimEnd().split("\n");
    assert.equal(head, "lanchat: @lab names 2 groups; say which by its id:");
    for (const g of labs) {
      const other = g.members.find((m) => !m.self)!.name;
      assert.ok(rows.includes(`  @lab  ${g.id.slice(0, 12)}  with ${other}`), `${g.id} listed: ${amb.stderr}`);
    }
    assert.match(rows.at(-1)!, /^e\.g\. @id:[0-9a-f]{8} for the first$/);
    const byId = await cli("send", `@${labs[1]!.id.slice(0, 8)}`, "to the second lab");
    assert.equal(byId.code, 0, byId.stderr);
    // chat and group show are worded the same way.
    const show = await cli("group", "show", "@lab");
    assert.match(show.stderr, /^lanchat: @lab names 2 groups; say which by its id:\n/);
    const chat = await runCli(["chat", "@lab", "--http", http], { stdin: "" });
    assert.equal(chat.code, 1);
    assert.match(chat.stderr, /^lanchat: @lab names 2 groups; say which by its id:\n/);
  } finally {
    await killAll();
  }
});

Deno.test("input that is not UTF-8 is refused with the byte (exit 2, nothing sent) or converted by --encoding: stdin, arguments, chat lines, names", async () => {
  try {
    const { b, http } = await aliceAndBob();
    const hint = "convert it, e.g. iconv -f latin1 -t utf-8, or pass --encoding latin1";

    const stdin = await cliBytes(["send", "bob", "-", "--http", http], bytes("caf", 0xe9));
    assert.equal(stdin.code, 2, stdin.stderr);
    assert.equal(stdin.stderr, `lanchat: standard input is not valid UTF-8 at byte 3 (0xe9); ${hint}\n`);
    const lines = await cliBytes(["send", "bob", "-", "--lines", "--http", http], bytes("one\ntwo\nthr", 0xe9, "e\n"));
    assert.equal(lines.code, 2);
    assert.match(lines.stderr, /at byte 11 \(0xe9\), line 3; convert it/);
    const arg = await cliBytes(["send", "bob", bytes("caf", 0xe9), "--http", http]);
    assert.equal(arg.code, 2);
    assert.equal(
      arg.stderr,
      'lanchat: argument 3 ("caf?") is not valid UTF-8 at byte 3; convert it, e.g. iconv -f latin1 -t utf-8, ' +
        'or give the text on standard input ("-") with --encoding latin1\n',
    );
    const name = await cliBytes(["group", "create", bytes("l", 0xe9, "b"), "bob", "--http", http]);
    assert.equal(name.code, 2);
    assert.match(name.stderr, /^lanchat: argument 3 \("l\?b"\) is not valid UTF-8 at byte 1;/);
    const file = await cliBytes(["send-file", "bob", bytes("r", 0xe9, "sum", 0xe9, ".pdf"), "--http", http]);
    assert.equal(file.code, 2);
    assert.match(file.stderr, /rename it, e\.g\. convmv -f latin1 -t utf-8/);
    const badEncoding = await cliBytes(["send", "bob", "-", "--encoding", "klingon", "--http", http], bytes("hi"));
    assert.equal(badEncoding.code, 2);
    assert.match(badEncoding.stderr, /--encoding "klingon" is not an encoding lanchat knows/);
    assert.deepEqual(await inboxTexts(b), [], "nothing was sent");

    // Converted when the encoding of standard input is named.
    const latin = await cliBytes(
      ["send", "bob", "-", "--encoding", "latin1", "--http", http],
      bytes("caf", 0xe9, "\n"),
    );
    assert.equal(latin.code, 0, latin.stderr);
    const gbk = await cliBytes(
      ["send", "bob", "-", "--encoding", "gbk", "--http", http],
      bytes(0xc4, 0xe3, 0xba, 0xc3),
    );
    assert.equal(gbk.code, 0, gbk.stderr);
    // --encoding is standard input's: with the text as an argument it is refused, not ignored (hostile27b L1).
    const mixed = await cliBytes(["send", "bob", "naïve", "--encoding", "latin1", "--http", http]);
    assert.equal(mixed.code, 2, mixed.stderr);
    assert.match(mixed.stderr, /--encoding applies to standard input/);

    // chat: a line that is not UTF-8 is not sent, and said; the others go; exit 2 at the end.
    const chat = await cliBytes(["chat", "bob", "--http", http], bytes("hello\ncaf", 0xe9, "\nbye\n"));
    assert.equal(chat.code, 2, chat.stdout + chat.stderr);
    assert.match(chat.stdout, new RegExp(`\\(not sent: line 2 is not valid UTF-8 at byte 3 \\(0xe9\\); ${hint}\\)`));
    await until("bob to have bye", async () => (await inboxTexts(b)).includes("bye"), 5000);
    assert.deepEqual(await inboxTexts(b), ["café", "你好", "hello", "bye"]);
  } finally {
    await killAll();
  }
});

Deno.test("usage errors exit 2 in the CLI's words, before the daemon is asked; --wait takes 30s, 500ms and seconds", async () => {
  try {
    const { b, http } = await aliceAndBob();
    const cli = (args: string[], stdin?: string) => runCli([...args, "--http", http], { stdin });
    const cases: [string[], string | undefined, RegExp][] = [
      [["send", "bob", ""], undefined, /^lanchat: The message is empty: nothing to send\n$/],
      [["send", "bob", "   "], undefined, /^lanchat: The message is empty/],
      [["send", "bob", "-"], "\n", /^lanchat: The message is empty/],
      [["broadcast", ""], undefined, /^lanchat: The message is empty/],
      [["search", ""], undefined, /^lanchat: The text to look for is empty: say what to search for\n$/],
      [
        ["group", "create", "", "bob"],
        undefined,
        /^lanchat: A group name must not be empty: give it one, e\.g\. lab\n$/,
      ],
      [["group", "create", " lab", "bob"], undefined, /^lanchat: A group name must not start or end with spaces\n$/],
      [
        ["group", "create", "lab", ""],
        undefined,
        /^lanchat: One of the PEERS is empty \(expected: its members besides you/,
      ],
      [["send", "", "hi"], undefined, /^lanchat: PEER is empty \(expected: node id, id prefix, name, user or address/],
      [["accept", ""], undefined, /^lanchat: ID is empty/],
      [["open", " "], undefined, /^lanchat: ID is empty/],
      [["verify", ""], undefined, /^lanchat: PEER is empty/],
      [["inbox", "--peer", ""], undefined, /^lanchat: --peer is empty: give it a value\n$/],
      [["send", "bob", "hi", "--reply", ""], undefined, /^lanchat: --reply is empty/],
      [
        ["edit", "0123456789ab", ""],
        undefined,
        /^lanchat: The new text is empty: to remove the message, lanchat delete ID\n$/,
      ],
      [["group", "show", "@"], undefined, /^lanchat: The group is an empty name/],
      [
        ["send", "bob", "x".repeat(70_000)],
        undefined,
        /^lanchat: The message is 68\.4 KiB; the limit is 64 KiB: send it as a file: lanchat send-file bob FILE\n$/,
      ],
      [["send", "bob", "hi", "--wait", "2m"], undefined, /"2m" is out of range \(0ms to 1m\)/],
      [["send", "bob", "hi", "--wait", "soon"], undefined, /"soon" is not a duration/],
      [["send-file", "bob", "/etc/hostname", "--wait", "61"], undefined, /"61" has no unit: did you mean 61ms\?/],
      [["send", "bob", "hi", "--bogus"], undefined, /unknown option '--bogus'/],
      [["inbox", "--limit", "0"], undefined, /is not a whole number/],
    ];
    for (const [args, stdin, re] of cases) {
      const r = await cli(args, stdin);
      assert.equal(r.code, 2, `${args.join(" ").slice(0, 80)}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(" ").slice(0, 80));
      assert.ok(!/Field "|GET \/|POST \/|Body is|Query parameter/.test(r.stderr), `no HTTP words: ${r.stderr}`);
    }
    // A text the daemon refuses by the size of its request (control characters take 6 bytes each in JSON):
    // in words, exit 2; with --json, the API's error as it came.
    const control = "\x02".repeat(30_000);
    const big = await cli(["send", "bob", "-"], control);
    assert.equal(big.code, 2, big.stderr);
    assert.match(
      big.stderr,
      /^lanchat: What you gave is 17\d\.\d KiB; the daemon takes at most 128 KiB in one request: send it as a file: lanchat send-file bob FILE\n$/,
    );
    const bigJson = await cli(["send", "bob", "-", "--json"], control);
    assert.equal(bigJson.code, 2);
    assert.equal(bigJson.stdout, "");
    const raw = JSON.parse(bigJson.stderr);
    assert.equal(raw.code, "body_too_large");
    assert.match(raw.error, /^Body is \d+ bytes; the limit is 131072$/);
    // A bad id reaches the daemon: its answer has no HTTP words.
    const edit = await cli(["edit", "zz", "new text"]);
    assert.ok(edit.code === 1 || edit.code === 2, edit.stderr);
    assert.ok(!/Field "/.test(edit.stderr), edit.stderr);

    // Durations as every flag takes them.
    for (const wait of ["5s", "500ms", "5", "0.5", "1m"]) {
      const r = await cli(["send", "bob", `wait ${wait}`, "--wait", wait]);
      assert.ok(r.code === 0 || r.code === 75, `--wait ${wait}: ${r.stderr}`);
    }
    const file = Deno.makeTempFileSync();
    Deno.writeTextFileSync(file, "a file");
    const offered = await cli(["send-file", "bob", file, "--wait", "500ms"]);
    assert.equal(offered.code, 75, `waiting for bob to accept: ${offered.stderr}`);
    // Of all that was refused, nothing reached bob: only the messages sent with each --wait (and the offer's note).
    await until("bob to have the last", async () => (await inboxTexts(b)).includes("wait 1m"), 5000);
    const texts = (await inboxTexts(b)).filter((t) => !t.startsWith("wait ") && !t.startsWith("Files offered: "));
    assert.deepEqual(texts, [], "nothing refused was sent");
  } finally {
    await killAll();
  }
});
