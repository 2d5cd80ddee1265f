/**
 * End-to-end encryption on the namespace LAN (scripts/lan.ts): what crosses
 * the bridge during a conversation in an open group, captured with tcpdump,
 * holds none of its text; and a daemon of the previous version (a git
 * worktree of main before any e2e code) still talks with a new one in the
 * clear, marked unencrypted, while a new one with --require-encryption
 * refuses it; and in a keyed group, a member on a third host speaking
 * under another member's id is refused and counted. Needs root and tcpdump; without them these tests are ignored
 * with the reason printed.
 */
import assert from "node:assert/strict";
import { type Lan, lanUnavailable, sh } from "../../scripts/lan.ts";
import { DaemonProcess, runCli, tempDataDir, until } from "../support/daemon_process.ts";
import { peersIn, statusIn, withLan } from "../support/lan_hosts.ts";
import type { MessageJson } from "../../src/api/types.ts";
import { writeKeyFile } from "../support/hostile.ts";

/** main before any end-to-end code: the previous version. */
const PREVIOUS = "07dbdb9";
const REPO = new URL("../..", import.meta.url).pathname;

const tcpdump = await new Deno.Command("tcpdump", { args: ["--version"], stdout: "null", stderr: "null" }).output()
  .then((o) => o.success ? undefined : "tcpdump does not run").catch(() => "tcpdump is not installed");
const unavailable = (await lanUnavailable()) ?? tcpdump;
if (unavailable) console.warn(`e2e LAN tests ignored: ${unavailable}`);

function startIn(lan: Lan, i: number, o: { repo?: string; extra?: string[]; name?: string } = {}): DaemonProcess {
  const h = lan.hosts[i]!;
  return new DaemonProcess([
    "--name",
    o.name ?? `user@${h.ns}`,
    "--data-dir",
    tempDataDir(),
    "--interval",
    "500ms",
    "--probe-timeout",
    "500ms",
    ...(o.extra ?? []),
  ], { netns: h.ns, repo: o.repo });
}

async function cli(lan: Lan, i: number, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return await runCli(args, { netns: lan.hosts[i]!.ns });
}

async function messagesIn(lan: Lan, i: number): Promise<MessageJson[]> {
  const r = await cli(lan, i, ["inbox", "--json", "--limit", "100"]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
}

/** Whether `haystack` contains the bytes of `needle`. */
function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

Deno.test({
  name:
    "open group: tcpdump on the bridge during messages, a read receipt, a note and a file sees none of their text or bytes",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withLan(2, async (lan) => {
      const pcap = `${Deno.makeTempDirSync({ prefix: "lanchat-pcap-" })}/bridge.pcap`;
      const tag = crypto.randomUUID().slice(0, 8);
      const capture = new Deno.Command("ip", {
        args: ["netns", "exec", lan.bridgeNs, "tcpdump", "-i", "br0", "-U", "-n", "-s", "0", "-w", pcap, "udp or tcp"],
        stdout: "null",
        stderr: "piped",
      }).spawn();
      try {
        // tcpdump says "listening on br0" once it captures.
        const reader = capture.stderr.pipeThrough(new TextDecoderStream()).getReader();
        let said = "";
        while (!said.includes("listening on")) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`tcpdump stopped: ${said}`);
          said += value;
        }
        void reader.cancel().catch(() => {});
        const downloads = Deno.makeTempDirSync({ prefix: "lanchat-e2e-dl-" });
        const [a, b] = await Promise.all([
          startIn(lan, 0).started(),
          startIn(lan, 1, { extra: ["--accept-files", "always", "--downloads", downloads] }).started(),
        ]);
        await a.joined(b.id, 5000);
        await b.joined(a.id, 5000);
        const secrets = [`the launch code is ${tag}`, `reply about ${tag} stays between us`, `note ${tag} for peers`];
        let r = await cli(lan, 0, ["send", b.id, secrets[0]!]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        r = await cli(lan, 1, ["send", a.id, secrets[1]!]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        // Bob reads alice's message (a receipt goes back); alice goes away with a note.
        assert.equal((await cli(lan, 1, ["inbox"])).code, 0);
        assert.equal((await cli(lan, 0, ["away", secrets[2]!])).code, 0);
        await until("bob to see alice's note", async () => {
          const p = (await peersIn(lan.hosts[1]!.ns)).find((x) => x.id === a.id);
          return p?.note === secrets[2];
        }, 5000);
        await until("alice's message read", async () => {
          return (await messagesIn(lan, 0)).some((m) => m.direction === "out" && m.readAt !== undefined);
        }, 5000);
        const got = await messagesIn(lan, 1);
        assert.deepEqual(got.map((m) => [m.text, m.encrypted]), [[secrets[0], true], [secrets[1], true]]);
        // A file: its name travels in the offer (a message), its bytes on the TCP file stream.
        const dir = Deno.makeTempDirSync({ prefix: "lanchat-e2e-file-" });
        Deno.writeTextFileSync(`${dir}/plans-${tag}.txt`, `the file body ${tag} is private\n`.repeat(8000));
        r = await cli(lan, 0, ["send-file", b.id, `${dir}/plans-${tag}.txt`, "--json"]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const sent = JSON.parse(r.stdout);
        assert.deepEqual([sent.state, sent.encrypted], ["done", true]);
        const fetched = JSON.parse((await cli(lan, 1, ["transfers", "--json"])).stdout);
        assert.deepEqual(fetched.map((t: { state: string; encrypted?: boolean }) => [t.state, t.encrypted]), [[
          "done",
          true,
        ]]);
        assert.equal(
          Deno.readTextFileSync(`${downloads}/plans-${tag}.txt`),
          Deno.readTextFileSync(`${dir}/plans-${tag}.txt`),
        );
      } finally {
        capture.kill("SIGINT");
        await capture.status;
      }
      const bytes = Deno.readFileSync(pcap);
      const enc = new TextEncoder();
      // The capture saw the conversation: the hellos (readable in an open group, as discovery needs) and e2e datagrams.
      assert.ok(contains(bytes, enc.encode(`user@${lan.hosts[0]!.ns}`)), "the capture holds the hellos");
      assert.ok(contains(bytes, enc.encode("LNCE")), "the capture holds end-to-end datagrams");
      const status = await statusIn(lan.hosts[0]!.ns);
      assert.ok(status.security.e2e.counters.sealed >= 2);
      for (const s of ["launch code", "stays between us", "for peers", `plans-${tag}`, "is private"]) {
        assert.ok(!contains(bytes, enc.encode(s)), `“${s}” is not on the wire`);
      }
    }),
});

Deno.test({
  name:
    "a previous-version daemon talks with a new one in the clear, marked unencrypted; --require-encryption refuses it",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const tmp = Deno.makeTempDirSync({ prefix: "lanchat-previous-" });
    const old = `${tmp}/previous`;
    await sh("git", ["-C", REPO, "worktree", "add", "--detach", old, PREVIOUS]);
    try {
      await withLan(3, async (lan) => {
        const o = await startIn(lan, 0, { repo: old, name: "oldie", extra: ["--accept-files", "always"] }).started();
        const n = await startIn(lan, 1, { name: "newbie" }).started();
        const strict = await startIn(lan, 2, { name: "strict", extra: ["--require-encryption"] }).started();
        for (const [x, y] of [[n, o], [strict, o], [n, strict], [o, n]] as const) await x.joined(y.id, 5000);
        // New ↔ previous: both ways, in the clear.
        let r = await cli(lan, 1, ["send", "oldie", "hello old friend"]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        r = await cli(lan, 0, ["send", "newbie", "hello new friend"]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const atNew = await messagesIn(lan, 1);
        assert.deepEqual(
          atNew.map((m) => [m.direction, m.text, m.encrypted]),
          [["out", "hello old friend", false], ["in", "hello new friend", false]],
          "both directions marked unencrypted",
        );
        const peers = await peersIn(lan.hosts[1]!.ns);
        assert.equal(peers.find((p) => p.id === o.id)?.encrypted, false);
        assert.equal(peers.find((p) => p.id === strict.id)?.encrypted, true);
        const table = await cli(lan, 1, ["peers"]);
        assert.match(table.stdout, /^oldie .*lanchat \(unencrypted\)/m);
        await n.waitFor((l) => /without end-to-end encryption/.test(l.message), 2000, "the warning");
        assert.equal(n.lines.filter((l) => /without end-to-end encryption/.test(l.message)).length, 1, "one warning");
        // The previous version got the text (it reads clear packets as always).
        const atOld = await messagesIn(lan, 0);
        assert.ok(atOld.some((m) => m.direction === "in" && m.text === "hello old friend"));
        // A file to it goes in the clear too, and the transfer says so (JSON and table).
        const file = `${tempDataDir()}/note.txt`;
        Deno.writeTextFileSync(file, "a file for the previous version");
        r = await cli(lan, 1, ["send-file", "oldie", file, "--json"]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.equal(JSON.parse(r.stdout).encrypted, false, r.stdout);
        r = await cli(lan, 1, ["transfers"]);
        assert.match(r.stdout, /^\S+ +out +oldie \(unencrypted\) +done/m, r.stdout);
        // --require-encryption: nothing sent to it, its clear message dropped and counted.
        r = await cli(lan, 0, ["send", "strict", "let me in", "--wait", "2"]);
        assert.notEqual(r.code, 0, "never delivered");
        r = await cli(lan, 2, ["send", "oldie", "not for you", "--wait", "2"]);
        assert.notEqual(r.code, 0, "never sent");
        const s = await statusIn(lan.hosts[2]!.ns);
        assert.ok(s.counters.dropped.unencrypted >= 1, "its clear fragments counted");
        assert.ok(s.security.e2e.counters.notSent >= 1);
        assert.ok(!(await messagesIn(lan, 2)).some((m) => m.text === "let me in"));
        assert.ok(!(await messagesIn(lan, 0)).some((m) => m.text === "not for you"));
        assert.equal((await peersIn(lan.hosts[2]!.ns)).find((p) => p.id === o.id)?.encrypted, false);
        await strict.waitFor((l) => /refused \(--require-encryption\)/.test(l.message), 2000, "the refusal");
        // Between the two new ones, end to end as always.
        r = await cli(lan, 2, ["send", "newbie", "strict but fair"]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
      });
    } finally {
      await sh("git", ["-C", REPO, "worktree", "remove", "--force", old]).catch(() => {});
      Deno.removeSync(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "keyed group on the LAN: a member speaking under another member's id, clear or inside its own session, is refused and counted",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withLan(3, async (lan) => {
      const keyFile = writeKeyFile();
      const alice = await startIn(lan, 0, { name: "alice", extra: ["--key-file", keyFile] }).started();
      const bob = await startIn(lan, 1, { name: "bob", extra: ["--key-file", keyFile] }).started();
      await alice.joined(bob.id, 5000);
      const r = await cli(lan, 1, ["send", "alice", "genuine"]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const aliceKey: string = (await statusIn(lan.hosts[0]!.ns)).security.e2e.staticKey;
      // Mallory, on a third host, holds the network key: a member of the group.
      const agent = new URL("../support/mallory_agent.ts", import.meta.url).pathname;
      const h = lan.hosts[2]!;
      const out = await new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          h.ns,
          Deno.execPath(),
          "run",
          "-A",
          agent,
          h.address,
          lan.hosts[0]!.address,
          String(alice.unicastPort),
          alice.id,
          aliceKey,
          bob.id,
          keyFile,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const said = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.ok(out.success, said);
      const mallory: string = JSON.parse(said.trim().split("\n").at(-1)!).id;
      await until("mallory's own message", async () => {
        return (await messagesIn(lan, 0)).some((m) => m.peer.id === mallory && m.text === "from mallory");
      }, 5000);
      await until("both forgeries counted", async () => {
        const d = (await statusIn(lan.hosts[0]!.ns)).counters.dropped;
        return d.unencrypted >= 1 && d.impersonation >= 1;
      }, 5000);
      const atAlice = await messagesIn(lan, 0);
      assert.deepEqual(
        atAlice.filter((m) => m.peer.id === bob.id).map((m) => m.text),
        ["genuine"],
        "nothing stored under bob's id but what bob sent",
      );
    }),
});
