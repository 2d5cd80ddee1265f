/**
 * `lanchat send --reply`, `lanchat edit`, `lanchat delete` between real
 * daemons on loopback, as a person types them: what `inbox` shows at the
 * peer (`(re: …)`, `(edited)`, `(deleted)`, and `--json` exactly), a
 * message of someone else's refused, and a peer running main as it was
 * before this (a previous version, commit PREVIOUS), which shows the edit as a message of its
 * own and the deletion as a short line.
 */
import assert from "node:assert/strict";
import type { MessageJson } from "../../src/api/types.ts";
import { freeUdpPort, killAll, runCli, startLoopbackDaemon, until } from "../support/daemon_process.ts";
import { chatProcess } from "../support/chat_process.ts";

const REPO = new URL("../..", import.meta.url).pathname;

/** The last commit of main before replies, edits and deletions: the previous version. */
const PREVIOUS = "2865ef1";

/** The previous version, unpacked (git archive: no worktree, nothing changed in the repository). */
async function previousVersion(): Promise<string | undefined> {
  const dir = Deno.makeTempDirSync({ prefix: "lanchat-previous-" });
  const archive = await new Deno.Command("sh", {
    args: ["-c", `git -C '${REPO}' archive ${PREVIOUS} | tar -x -C '${dir}'`],
  }).output();
  return archive.code === 0 ? dir : undefined;
}

Deno.test("lanchat send --reply, edit and delete reach the peer's inbox; a previous version gets plain messages", async () => {
  const port = freeUdpPort();
  const old = await previousVersion();
  assert.ok(old, "git archive main worked");
  try {
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob").started();
    const c = await startLoopbackDaemon(port, "carol", { repo: old }).started();
    await a.joined(b.id, 5000);
    await a.joined(c.id, 5000);
    const [ha, hb, hc] = [a, b, c].map((d) => d.httpUrl.replace("http://", ""));
    const cli = async (args: string[], http: string, stdin?: string) => {
      const r = await runCli([...args, "--http", http], stdin === undefined ? {} : { stdin });
      return r;
    };
    const sent = await cli(["send", "bob", "lunch?", "--json"], ha!);
    assert.equal(sent.code, 0, sent.stderr);
    const id = (JSON.parse(sent.stdout) as MessageJson).id;
    // bob finds its id with inbox --ids, and answers it.
    const ids = await cli(["inbox", "--ids"], hb!);
    assert.match(ids.stdout, new RegExp(`^${id.slice(0, 12)}  .* alice: lunch\\?\\n`, "m"));
    const reply = await cli(["send", "alice", "yes", "--reply", id.slice(0, 12)], hb!);
    assert.equal(reply.code, 0, reply.stderr);
    await until("alice has the reply", async () => (await cli(["inbox"], ha!)).stdout.includes("yes"), 5000);
    assert.match((await cli(["inbox"], ha!)).stdout, /bob: \(re: “lunch\?”\) yes\n/);
    // Edges: someone else's message, an unknown one, a reply to nothing of the conversation.
    const replyId = ((await cli(["inbox", "--json"], ha!)).stdout.trim().split("\n").map((l) =>
      JSON.parse(l)
    ) as MessageJson[]).find((m) => m.text === "yes")!.id;
    const theirs = await cli(["edit", replyId, "no"], ha!);
    assert.equal(theirs.code, 1);
    assert.match(theirs.stderr, /written by someone else: you can edit only your own/);
    const unknown = await cli(["delete", "0123456789ab"], ha!);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /No message 0123456789ab/);
    const nowhere = await cli(["send", "carol", "x", "--reply", id], ha!);
    assert.equal(nowhere.code, 1);
    assert.match(nowhere.stderr, /replyTo/);

    // alice edits it, with the text from standard input: bob's inbox shows it edited, its JSON exactly so.
    const edited = await cli(["edit", id.slice(0, 10), "-"], ha!, "lunch at one?\n");
    assert.equal(edited.code, 0, edited.stderr);
    // (issue 27: a message of yours shows its state, ✓ delivered or ✓✓ read, before its other marks)
    assert.match(edited.stdout, /you → bob: lunch at one\? {2}✓✓? \(edited\)\n$/);
    await until("bob sees the edit", async () =>
      (await cli(["inbox"], hb!)).stdout.includes("one?"), 5000);
    assert.match(
      (await cli(["inbox"], hb!)).stdout,
      /alice: lunch at one\? {2}\(edited\)\n.*you → alice: \(re: “lunch at one\?”\) yes {2}✓✓?\n/s,
    );
    const json = (await cli(["inbox", "--json"], hb!)).stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(json[0].text, "lunch at one?");
    assert.equal(typeof json[0].editedAt, "number");
    assert.deepEqual(json[1].quote, { id, text: "lunch at one?", direction: "in" });
    // Deleted: "(deleted)" at bob.
    const deleted = await cli(["delete", id, "--json"], ha!);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal(JSON.parse(deleted.stdout).text, "");
    await until("bob sees the deletion", async () => (await cli(["inbox"], hb!)).stdout.includes("(deleted)"), 5000);
    assert.match((await cli(["inbox"], hb!)).stdout, /alice: \(deleted\)\n.*\(re: a deleted message\) yes/s);

    // carol runs the previous version: the edit is a new message, the deletion a line.
    const toCarol = JSON.parse((await cli(["send", "carol", "hello", "--json"], ha!)).stdout) as MessageJson;
    assert.equal((await cli(["edit", toCarol.id, "hello there"], ha!)).code, 0);
    assert.equal((await cli(["delete", toCarol.id], ha!)).code, 0);
    await until("carol has three messages", async () => {
      const r = await cli(["inbox", "--json"], hc!);
      return r.stdout.trim().split("\n").filter((l) => l).length === 3;
    }, 10_000);
    const atCarol = (await cli(["inbox", "--json"], hc!)).stdout.trim().split("\n").map((l) => JSON.parse(l).text);
    assert.equal(atCarol[0], "hello");
    assert.equal(atCarol[1], "(edited) hello there");
    assert.match(atCarol[2], /^\(deleted the message sent \d{4}-\d\d-\d\d \d\d:\d\d\)$/);
    // alice's own history: the one message, deleted.
    const atAlice = (await cli(["inbox", "--peer", "carol"], ha!)).stdout;
    assert.match(atAlice, /you → carol: \(deleted\)\n$/);
  } finally {
    await killAll();
    if (old) Deno.removeSync(old, { recursive: true });
  }
});

Deno.test("lanchat chat shows a reply's quote, and a line when the peer edits or deletes a message shown", async () => {
  const port = freeUdpPort();
  try {
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob").started();
    await a.joined(b.id, 5000);
    const chat = chatProcess(["chat", "bob", "--http", a.httpUrl.replace("http://", "")]);
    await chat.waitFor(/chatting with bob \(online\)/);
    const post = async (path: string, body?: unknown) =>
      await (await fetch(`${b.httpUrl}${path}`, {
        method: "POST",
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      })).json() as MessageJson;
    const hi = await post("/messages?wait=5", { to: "alice", text: "hi alice" });
    await chat.waitFor(/^bob: hi alice$/m);
    await post("/messages?wait=5", { to: "alice", text: "did you see?", replyTo: hi.id });
    await chat.waitFor(/^bob: \(re: “hi alice”\) did you see\?$/m);
    await post(`/messages/${hi.id}/edit`, { text: "hi, alice" });
    await chat.waitFor(new RegExp(`^\\(bob edited ${hi.id.slice(0, 12)}\\): hi, alice$`, "m"));
    await post(`/messages/${hi.id}/delete`);
    await chat.waitFor(new RegExp(`^\\(bob deleted a message: ${hi.id.slice(0, 12)}\\)$`, "m"));
    await chat.end();
    assert.equal((await chat.status).code, 0, chat.output());
    assert.equal(chat.output().match(/hi alice/g)?.length, 2, "the message and the quote, nothing printed twice");
  } finally {
    await killAll();
  }
});

Deno.test("lanchat inbox --follow prints a line when a message shown is edited or deleted; --json the message again", async () => {
  const port = freeUdpPort();
  try {
    const a = await startLoopbackDaemon(port, "alice").started();
    const b = await startLoopbackDaemon(port, "bob").started();
    await a.joined(b.id, 5000);
    const http = b.httpUrl.replace("http://", "");
    const post = async (path: string, body?: unknown) =>
      await (await fetch(`${a.httpUrl}${path}`, {
        method: "POST",
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      })).json() as MessageJson;
    await post("/messages?wait=5", { to: "bob", text: "hello" });
    const text = chatProcess(["inbox", "--follow", "--peer", "alice", "--http", http]);
    const json = chatProcess(["inbox", "--follow", "--json", "--http", http]);
    // inbox --follow subscribes, then prints history: the first message printed says it follows.
    await text.waitFor(/alice: hello\n/);
    await json.waitFor(/"text":"hello"/);
    const m = await post("/messages?wait=5", { to: "bob", text: "first draft" });
    await text.waitFor(/alice: first draft\n/);
    await post(`/messages/${m.id}/edit`, { text: "final" });
    await text.waitFor(new RegExp(`\\(alice edited ${m.id.slice(0, 12)}\\): final\\n`));
    await post(`/messages/${m.id}/delete`);
    await text.waitFor(new RegExp(`\\(alice deleted a message: ${m.id.slice(0, 12)}\\)\\n`));
    await json.waitFor(/"deletedAt":\d+/);
    const lines = json.output().trim().split("\n").map((l) => JSON.parse(l) as MessageJson);
    assert.deepEqual(lines.slice(1).map((l) => [l.id, l.text, l.editedAt !== undefined, l.deletedAt !== undefined]), [
      [m.id, "first draft", false, false],
      [m.id, "final", true, false],
      [m.id, "", true, true],
    ]);
    await text.interrupt();
    await json.interrupt();
  } finally {
    await killAll();
  }
});
