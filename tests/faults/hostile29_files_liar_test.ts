/**
 * hostile29: a sender that lies to a pipelining fetcher. The real file
 * service sends (in the clear, as a previous-version sender's stream is,
 * so a proxy can rewrite it: tests/support/hostile29_liar_proxy.ts), and
 * the proxy answers out of order, twice, a request not asked, never, with
 * more bytes than the file's size, cuts a frame in half, or sends wrong
 * bytes every time. The fetcher must end with every file whole under its
 * final name (or fail with a clear reason), never wrong bytes under a final
 * name, no `.part` left, and never crash.
 */
import assert from "node:assert/strict";
import { FilesNode, waitFor } from "../support/files_node.ts";
import { type Answer, control, frame, LiarProxy, type Policy } from "../support/hostile29_liar_proxy.ts";
import { sha } from "../support/transfer_files.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const N = 12;
const SIZE = 4096;

function folder(): { dir: string; name: string; files: Map<string, string> } {
  const root = Deno.makeTempDirSync({ prefix: "h29-liar-src-" });
  const name = "batch";
  Deno.mkdirSync(`${root}/${name}`);
  const files = new Map<string, string>();
  for (let i = 0; i < N; i++) {
    const bytes = crypto.getRandomValues(new Uint8Array(SIZE));
    const f = `f${String(i).padStart(2, "0")}.bin`;
    Deno.writeFileSync(`${root}/${name}/${f}`, bytes);
    files.set(f, sha(bytes));
  }
  return { dir: root, name, files };
}

function list(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of Deno.readDirSync(d)) {
      if (e.isDirectory) walk(`${d}/${e.name}`, `${rel}${e.name}/`);
      else out.push(`${rel}${e.name}`);
    }
  };
  walk(dir, "");
  return out.sort();
}

/** What bob's downloads hold: no `.part`, and no final file with bytes other than the source's. */
function checkDownloads(b: FilesNode, name: string, files: Map<string, string>, whole: boolean) {
  const have = list(b.downloads);
  assert.deepEqual(have.filter((p) => p.endsWith(".part")), [], `a .part left behind: ${have.join(", ")}`);
  for (const p of have) {
    const base = p.split("/").pop()!;
    const want = files.get(base);
    assert.ok(want, `an unexpected file in the downloads: ${p}`);
    assert.equal(sha(Deno.readFileSync(`${b.downloads}/${p}`)), want, `${p} holds bytes other than the source's`);
  }
  if (whole) assert.equal(have.length, files.size, `files missing: ${have.join(", ")}`);
  assert.ok(have.every((p) => p.startsWith(`${name}/`)));
}

async function run(policy: Policy, expect: "done" | "failed", ms = 90_000) {
  const { dir, name, files } = folder();
  const a = await FilesNode.start("alice", { e2e: false });
  const b = await FilesNode.start("bob", { e2e: false });
  FilesNode.introduce(a, b);
  const proxy = new LiarProxy(a.port, policy);
  b.route.set(a.id, proxy.port);
  try {
    const t = await a.service.offer(b.id, [`${dir}/${name}`]);
    await waitFor(
      `transfer to end (${expect})`,
      () => ["done", "failed"].includes(b.get(t.id)?.state ?? ""),
      ms,
      () => JSON.stringify(b.get(t.id)),
    );
    const end = b.get(t.id)!;
    assert.equal(end.state, expect, JSON.stringify(end));
    // Give a stray write a moment, then look at the disk.
    await new Promise((r) => setTimeout(r, 300));
    checkDownloads(b, name, files, expect === "done");
    return { end, proxy };
  } finally {
    await proxy.close();
    await a.remove();
    await b.remove();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

const withHead = (a: Answer, head: Record<string, unknown>): Uint8Array[] => [control(5, head), ...a.frames.slice(1)];

Deno.test({
  name: "hostile29 liar: answers out of order (1 before 0) on the first connection: every file arrives whole",
  ...opts,
  fn: async () => {
    await run((conn, a, s) => {
      if (conn !== 0) return a.frames;
      if (a.file === 0) {
        s.set("held", a);
        return [];
      }
      if (a.file === 1 && s.has("held")) return [...a.frames, ...(s.get("held") as Answer).frames];
      return a.frames;
    }, "done");
  },
});

Deno.test({
  name: "hostile29 liar: answers one request twice: every file arrives whole",
  ...opts,
  fn: async () => {
    await run((conn, a) => conn === 0 && a.file === 0 ? [...a.frames, ...a.frames] : a.frames, "done");
  },
});

Deno.test({
  name: "hostile29 liar: answers a request it was not asked (file 7 before file 0): every file arrives whole",
  ...opts,
  fn: async () => {
    await run(
      (conn, a) => conn === 0 && a.file === 0 ? [...withHead(a, { ...a.head, file: 7 }), ...a.frames] : a.frames,
      "done",
    );
  },
});

Deno.test({
  name: "hostile29 liar: sends 100 bytes more than the file's size: every file arrives whole",
  ...opts,
  fn: async () => {
    await run((conn, a) => {
      if (conn !== 0 || a.file !== 2) return a.frames;
      const end = a.frames.length - 1;
      return [...a.frames.slice(0, end), frame(6, new Uint8Array(100)), control(7, { bytes: SIZE + 100 })];
    }, "done");
  },
});

Deno.test({
  name: "hostile29 liar: cuts a data frame in half and closes: every file arrives whole",
  ...opts,
  fn: async () => {
    await run((conn, a) => {
      if (conn !== 0 || a.file !== 3) return a.frames;
      const data = a.frames[1]!;
      return [a.frames[0]!, data.subarray(0, data.length >> 1)].concat([]) as Uint8Array[];
    }, "done");
  },
});

Deno.test({
  name: "hostile29 liar: answers out of order without naming the file (same sizes): wrong bytes never kept",
  ...opts,
  fn: async () => {
    await run((conn, a, s) => {
      const strip = (x: Answer) => {
        const { file: _f, ...head } = x.head;
        return withHead(x, head);
      };
      if (conn !== 0) return a.frames;
      if (a.file === 0 && !s.has("held")) {
        s.set("held", a);
        return [];
      }
      if (a.file === 1 && s.has("held") && !s.has("done")) {
        s.set("done", true);
        return [...strip(a), ...strip(s.get("held") as Answer)];
      }
      return a.frames;
    }, "done");
  },
});

Deno.test({
  name:
    "hostile29 liar: every connection sends wrong bytes for file 4: it fails with a clear reason, no wrong bytes kept",
  ...opts,
  fn: async () => {
    const { end } = await run((_conn, a) => {
      if (a.file !== 4) return a.frames;
      return [a.frames[0]!, frame(6, crypto.getRandomValues(new Uint8Array(SIZE))), a.frames.at(-1)!];
    }, "failed");
    assert.match(end.error ?? "", /f04\.bin.*(damaged|SHA-256)/, end.error);
  },
});

Deno.test({
  name:
    "hostile29 liar: every connection sends more bytes than file 5's size: it ends failed (not forever), no wrong bytes",
  ...opts,
  fn: async () => {
    const { end } = await run(
      (_conn, a) => {
        if (a.file !== 5) return a.frames;
        const cut = a.frames.length - 1;
        return [...a.frames.slice(0, cut), frame(6, new Uint8Array(10)), a.frames.at(-1)!];
      },
      "failed",
      120_000,
    );
    assert.ok(end.error && end.error.length > 0, JSON.stringify(end));
    // It names the file and what was wrong with it.
    assert.match(end.error, /more data than the size of \S*f05\.bin/, end.error);
  },
});

Deno.test({
  name:
    "hostile29 liar: a frame bigger than agreed (its header says MAX_FRAME_BODY + 1): refused, then every file arrives whole",
  ...opts,
  fn: async () => {
    await run((conn, a) => {
      if (conn !== 0 || a.file !== 1) return a.frames;
      const big = new Uint8Array(4 + 1024 * 1024 + 65);
      new DataView(big.buffer).setUint32(0, 1024 * 1024 + 65);
      big[4] = 6;
      return [a.frames[0]!, big];
    }, "done");
  },
});
