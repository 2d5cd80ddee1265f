/**
 * IP Messenger download, 1 GiB on tmpfs: the real iptux 0.8.3 (headless,
 * driven by iptux_drive.sh) in one namespace offers a file to lanchat
 * `--ipmsg` in another; the same offer is read by a bare GETFILEDATA
 * reader (connect, send the request, read to the end with 1 MiB reads,
 * write the file) and downloaded by lanchat (accept to done), alternated,
 * in the same run: lanchat's MiB/s as a share of the bare reader's.
 *
 * Run alone: `deno run -A scripts/bench_ipmsg_files.ts [--gib 1] [--rounds 2] [--cpu-prof DIR] [--repo DIR]`
 * (root, iptux); `deno task bench --only files` runs it too. `--cpu-prof DIR` writes the daemon's CPU
 * profile there; `--repo DIR` runs another checkout's daemon (a "before" figure).
 *
 * @module
 */
import { createLan, type LanHost } from "./lan.ts";
import { DaemonProcess, killAll, tempDataDir } from "../tests/support/daemon_process.ts";
import { driver, iptuxUnavailable } from "../tests/support/iptux_driver.ts";
import { mountTmpfs, removeTmpfs } from "../tests/support/tmpfs.ts";

/** Runs inside lanchat's namespace: the bare reader, or lanchat's accept timed to done. */
const HELPER = `
const [mode, ...a] = Deno.args;
if (mode === "bare") {
  const [host, packetNo, fileId, out, size] = a;
  const t0 = performance.now();
  const c = await Deno.connect({ hostname: host, port: 2425 });
  const req = new TextEncoder().encode(
    "1:" + Date.now() + ":bench:bench:" + (0x60 | 0x200000) + ":" + Number(packetNo).toString(16) + ":" +
      Number(fileId).toString(16) + ":0:\\0",
  );
  for (let w = 0; w < req.length;) w += await c.write(req.subarray(w));
  using o = await Deno.open(out, { write: true, create: true, truncate: true });
  const buf = new Uint8Array(1024 * 1024);
  let got = 0;
  // iptux does not close after the last byte: the reader stops at the size offered, as a receiver must.
  while (got < Number(size)) {
    const n = await c.read(buf);
    if (n === null) break;
    for (let w = 0; w < n;) w += await o.write(buf.subarray(w, n));
    got += n;
  }
  c.close();
  console.log(JSON.stringify({ bytes: got, seconds: (performance.now() - t0) / 1000 }));
} else {
  const [url, token, id] = a;
  const h = { authorization: "Bearer " + token };
  const t0 = Date.now();
  const r = await fetch(url + "/transfers/" + id + "/accept", { method: "POST", headers: h, body: "{}" });
  if (!r.ok) throw new Error("accept: " + await r.text());
  await r.body?.cancel();
  for (;;) {
    const t = await (await fetch(url + "/transfers/" + id, { headers: h })).json();
    if (t.state === "done") {
      // Its end as the daemon stamped it: polled slowly, so that the polling is not part of the figure.
      console.log(JSON.stringify({ bytes: t.transferred, seconds: (Date.parse(t.updatedAt) - t0) / 1000 }));
      break;
    }
    if (t.state === "failed" || t.state === "cancelled") throw new Error("transfer " + t.state + ": " + t.error);
    await new Promise((r) => setTimeout(r, 250));
  }
}
`;

const t00 = performance.now();
/** Where the bench is (each step, with seconds since it started), for a run that hangs. */
const step = (what: string) => console.error(`  [ipmsg ${((performance.now() - t00) / 1000).toFixed(1)} s] ${what}`);

/** The last SENDMSG with attachments iptux logged to `ip`: its packet number and first file's id. */
export function lastOffer(log: string, ip: string): { packetNo: number; fileId: number } | undefined {
  const lines = log.split("\n");
  let found: { packetNo: number; fileId: number } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const m = /send udp message to ([0-9.]+):\d+, size (\d+)/.exec(lines[i]!);
    if (!m || m[1] !== ip) continue;
    const bytes: number[] = [];
    while (i + 1 < lines.length && /^[0-9a-f]{8} {2}/.test(lines[i + 1]!)) {
      for (const tok of lines[++i]!.slice(10).split("|")[0]!.trim().split(/\s+/)) bytes.push(parseInt(tok, 16));
    }
    const text = new TextDecoder().decode(new Uint8Array(bytes.slice(0, Number(m[2]))));
    const parts = text.split(":");
    const command = Number(parts[4]);
    if ((command & 0xff) !== 0x20 || !(command & 0x200000)) continue;
    const attach = text.slice(text.indexOf("\0") + 1);
    found = { packetNo: Number(parts[1]), fileId: parseInt(attach.split(":")[0]!, 16) };
  }
  return found;
}

async function inNs(ns: string, script: string, args: string[]): Promise<{ bytes: number; seconds: number }> {
  const out = await new Deno.Command("ip", {
    args: ["netns", "exec", ns, Deno.execPath(), "run", "-A", script, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`helper ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** Rows for the files table: [figure, measured, target]; empty (with the reason printed) without iptux. */
export async function benchIpmsgFiles(o: { gib: number; rounds?: number; cpuProf?: string; repo?: string }): Promise<{
  rows: [string, string, string][];
  results: Record<string, unknown>;
}> {
  const why = await iptuxUnavailable();
  if (why) {
    console.log(`IP Messenger download: skipped (${why})`);
    return { rows: [], results: { skipped: why } };
  }
  const size = Math.round(o.gib * 1024 ** 3);
  // A tmpfs of its own (the daemon may not write under /dev/shm): the source, the bare reader's copy, lanchat's.
  const work = Deno.makeTempDirSync({ prefix: "lanchat-bench-ipmsg-" });
  await mountTmpfs(work, `${Math.ceil(o.gib * 3) + 1}g`);
  const script = `${work}/helper.ts`;
  Deno.writeTextFileSync(script, HELPER);
  const lan = await createLan(2);
  const [iptuxHost, lanchatHost] = lan.hosts as [LanHost, LanHost];
  const run = Deno.makeTempDirSync({ prefix: "iptux-drive-" });
  const drive = driver(run);
  const bare: number[] = [];
  const ours: number[] = [];
  try {
    const { makeFile } = await import("./bench_files.ts");
    await makeFile(`${work}/big.bin`, size);
    step("file written; starting iptux");
    await drive(`iptux_drive_start A ${iptuxHost.ns} ${100 + Math.floor(Math.random() * 800)} iptuxuser`);
    const prof = o.cpuProf
      ? ["bash", "-c", `exec "$0" "$1" --cpu-prof --cpu-prof-dir=${o.cpuProf} "\${@:2}"`]
      : undefined;
    const daemon = await new DaemonProcess(
      ["--name", "alice", "--data-dir", tempDataDir(), "--interval", "2s", "--ipmsg", "--downloads", `${work}/dl`],
      { netns: lanchatHost.ns, ...(prof ? { prefix: prof } : {}), ...(o.repo ? { repo: o.repo } : {}) },
    ).started();
    await daemon.waitFor((l) => /^IP Messenger peer joined/.test(l.message), 20_000, "iptux to join");
    step("iptux joined");
    const log = (await drive("iptux_drive_log A")).trim();
    for (let round = 0; round < (o.rounds ?? 2); round++) {
      await drive(`iptux_drive_send_file A ${lanchatHost.address} '${work}/big.bin'`);
      step("offer sent");
      const offer = lastOffer(await Deno.readTextFile(log), lanchatHost.address);
      if (!offer) throw new Error("no offer in iptux's log");
      // lanchat's transfer for that offer (offered, not yet accepted).
      let id = "";
      for (const end = Date.now() + 20_000; !id && Date.now() < end;) {
        const r = await new Deno.Command("ip", {
          args: [
            "netns",
            "exec",
            lanchatHost.ns,
            "curl",
            "-s",
            "-H",
            `authorization: Bearer ${daemon.token}`,
            `${daemon.httpUrl}/transfers`,
          ],
          stdout: "piped",
        }).output();
        const list = JSON.parse(new TextDecoder().decode(r.stdout) || "[]") as { id: string; state: string }[];
        id = list.find((t) => t.state === "offered")?.id ?? "";
        if (!id) await new Promise((r) => setTimeout(r, 200));
      }
      if (!id) throw new Error("lanchat saw no offer");
      const bareRun = async () => {
        const r = await inNs(lanchatHost.ns, script, [
          "bare",
          iptuxHost.address,
          String(offer.packetNo),
          String(offer.fileId),
          `${work}/bare.out`,
          String(size),
        ]);
        if (r.bytes !== size) throw new Error(`the bare reader got ${r.bytes} of ${size} bytes`);
        await Deno.remove(`${work}/bare.out`);
        bare.push(size / 1024 ** 2 / r.seconds);
      };
      const oursRun = async () => {
        const seen = daemon.lines.length;
        const r = await inNs(lanchatHost.ns, script, ["accept", daemon.httpUrl, daemon.token ?? "", id]);
        // A figure that took a retry says so (it is not the pump's speed).
        for (const l of daemon.lines.slice(seen)) {
          if (!/^(info|debug)$/i.test(l.level)) step(`lanchat: ${l.level} ${l.message}`);
        }
        await Deno.remove(`${work}/dl`, { recursive: true });
        ours.push(size / 1024 ** 2 / r.seconds);
      };
      // Alternated: bare first in even rounds, lanchat first in odd ones.
      if (round % 2 === 0) {
        await bareRun();
        await oursRun();
      } else {
        await oursRun();
        await bareRun();
      }
      console.log(
        `IP Messenger download round ${round + 1}: lanchat ${ours.at(-1)!.toFixed(0)} MiB/s, bare reader ${
          bare.at(-1)!.toFixed(0)
        } MiB/s`,
      );
    }
    if (o.cpuProf) {
      daemon.signal("SIGTERM");
      await daemon.wait();
    }
  } finally {
    await drive("iptux_drive_stop_all").catch(() => "");
    await killAll();
    await lan.destroy();
    await Deno.remove(run, { recursive: true }).catch(() => {});
    await removeTmpfs(work);
  }
  const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
  const share = ours.map((x, i) => `${(x / bare[i]! * 100).toFixed(0)} %`).join(", ");
  return {
    rows: [[
      `IP Messenger download from iptux, ${o.gib} GiB on tmpfs: lanchat MiB/s (accept to done) vs a bare GETFILEDATA reader MiB/s, same offer, alternated (each round)`,
      `${ours.map((x) => x.toFixed(0)).join(", ")} vs ${bare.map((x) => x.toFixed(0)).join(", ")}: ${share} (mean ${
        (mean(ours) / mean(bare) * 100).toFixed(0)
      } %)`,
      "≥ 90 %",
    ]],
    results: { mibps: ours, bareMibps: bare },
  };
}

if (import.meta.main) {
  const arg = (name: string) => {
    const i = Deno.args.indexOf(`--${name}`);
    return i >= 0 ? Deno.args[i + 1] : undefined;
  };
  const { rows } = await benchIpmsgFiles({
    gib: Number(arg("gib") ?? 1),
    rounds: Number(arg("rounds") ?? 2),
    ...(arg("cpu-prof") ? { cpuProf: arg("cpu-prof")! } : {}),
    ...(arg("repo") ? { repo: arg("repo")! } : {}),
  });
  for (const [f, m, t] of rows) console.log(`| ${f} | ${m} | ${t} |`);
}
