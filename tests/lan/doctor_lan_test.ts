/**
 * `lanchat doctor` on a real LAN of namespaces (scripts/lan.ts), its
 * findings in sequence on one lab: a host with no daemon and a program on
 * the discovery port (said first, the port's holder named); all is well (exit 0); an nftables rule on
 * the host that drops the discovery port (named); a one-way link (the
 * bridge drops what B sends A: B names A); a skewed clock via the hello's
 * send time (refused past the keyed group's window, and warned within it);
 * a full tmpfs under the downloads folder; a network key file others may
 * read; a peer killed without a goodbye (B says it heard it and it is gone). Each fault is undone before the
 * next. Needs root, ip, nft and mount.
 */
import assert from "node:assert/strict";
import { type Lan, lanUnavailable, sh } from "../../scripts/lan.ts";
import { DaemonProcess, runCli, tempDataDir } from "../support/daemon_process.ts";
import { writeKeyFile } from "../support/hostile.ts";
import { withLan } from "../support/lan_hosts.ts";
import { CHECK_INTERVALS, CHECK_TIMEOUT_MS } from "../../src/protocol/reachability.ts";
import { fillUp, mountTmpfs, removeTmpfs, tmpfsUnavailable } from "../support/tmpfs.ts";

const unavailable = (await lanUnavailable()) ?? tmpfsUnavailable;
const INTERVAL_MS = 500;
/** Binds the discovery port and says so, then waits (a program that took lanchat's port). */
const SQUAT = "import socket,sys,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',47474))\n" +
  "print('bound',flush=True)\ntime.sleep(120)";
const HOSTILE = new URL("../support/hostile.ts", import.meta.url).pathname;

interface Report {
  ok: boolean;
  daemon: { url: string; version: string } | null;
  findings: { id: string; severity: string; message: string; fix: string }[];
}

async function doctor(ns: string): Promise<{ code: number; report: Report; stderr: string }> {
  const r = await runCli(["doctor", "--json"], { netns: ns });
  let report: Report;
  try {
    report = JSON.parse(r.stdout);
  } catch {
    throw new Error(`doctor printed no JSON (exit ${r.code}): ${r.stdout}${r.stderr}`);
  }
  return { code: r.code, report, stderr: r.stderr };
}

/** Runs doctor in `ns` until a finding `id` shows (bounded), and returns that report. */
async function doctorUntil(ns: string, id: string, ms: number): Promise<Report> {
  const end = Date.now() + ms;
  for (;;) {
    const { code, report } = await doctor(ns);
    if (report.findings.some((f) => f.id === id)) {
      assert.equal(code, 1, "exit 1 with the list");
      assert.equal(report.ok, false);
      return report;
    }
    if (Date.now() > end) throw new Error(`No ${id} finding within ${ms} ms: ${JSON.stringify(report.findings)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

function startIn(lan: Lan, i: number, extra: string[]): DaemonProcess {
  const h = lan.hosts[i]!;
  return new DaemonProcess(
    ["--name", `user@${h.ns}`, "--data-dir", tempDataDir(), "--interval", `${INTERVAL_MS}ms`, ...extra],
    { netns: h.ns },
  );
}

async function hostile(ns: string, args: string[]): Promise<void> {
  const out = await new Deno.Command("ip", {
    args: ["netns", "exec", ns, Deno.execPath(), "run", "-A", HOSTILE, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, `hostile ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
}

Deno.test({
  name:
    "lanchat doctor: no daemon and a taken port, all well, a firewall rule, a one-way link, skewed clocks, a full disk, an open key file",
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  fn: async () => {
    const downloads = Deno.makeTempDirSync({ prefix: "lanchat-doctor-dl-" });
    try {
      await mountTmpfs(downloads, "2g"); // room enough that no offer is refused: all is well
      await withLan(3, async (lan) => {
        const [ha, hb, hc] = lan.hosts as [Lan["hosts"][0], Lan["hosts"][0], Lan["hosts"][0]];
        const key = writeKeyFile();
        const [a, b] = await Promise.all([
          startIn(lan, 0, ["--key-file", key, "--downloads", downloads]).started(),
          startIn(lan, 1, ["--key-file", key]).started(),
        ]);
        await a.joined(b.id, 5000);
        await b.joined(a.id, 5000);

        // No daemon on C: said first, and the host still checked (a program holding the discovery port named).
        const squatter = new Deno.Command("ip", {
          args: ["netns", "exec", hc.ns, "python3", "-c", SQUAT],
          stdout: "piped",
          stderr: "null",
        }).spawn();
        try {
          await squatter.stdout.getReader().read(); // it printed: the port is bound
          const none = await doctor(hc.ns);
          assert.equal(none.code, 1);
          assert.equal(none.report.daemon, null);
          assert.equal(none.report.findings[0]?.id, "daemon-not-running");
          const taken = none.report.findings.find((f) => f.id === "port-taken");
          assert.match(
            taken?.message ?? JSON.stringify(none.report),
            /^UDP port 47474 \(discovery\) is bound by python3 \(pid \d+\)/,
          );
        } finally {
          squatter.kill("SIGKILL");
          await squatter.status;
        }

        // All is well, also once each has asked the other three times whether it hears it (check pings
        // answered: unanswered, two would make a one-way link).
        await new Promise((r) => setTimeout(r, 3 * CHECK_INTERVALS * INTERVAL_MS + CHECK_TIMEOUT_MS));
        const well = await doctor(ha.ns);
        assert.deepEqual(well.report.findings.filter((f) => f.severity !== "info"), [], JSON.stringify(well.report));
        assert.equal(well.code, 0);
        assert.equal(well.report.ok, true);
        assert.equal(well.report.daemon?.version, "0.1.0");
        const diag = JSON.parse((await runCli(["status", "--json"], { netns: ha.ns })).stdout);
        // Asked by a check ping, or (since the failure detector) by its probes, whose pongs are the same evidence.
        assert.ok(
          diag.counters.checksSent + (diag.counters.detector?.probePings ?? 0) >= 1,
          "A asked B whether it hears it",
        );

        // A firewall rule on A that drops the discovery port: named.
        await sh(
          "ip",
          ["netns", "exec", ha.ns, "nft", "-f", "-"],
          [
            "table inet doctor_test {",
            "  chain input { type filter hook input priority 0; policy accept;",
            "    udp dport 47474 drop",
            "  }",
            "}",
          ].join("\n"),
        );
        const fw = (await doctorUntil(ha.ns, "firewall-drop", 10_000)).findings.find((f) => f.id === "firewall-drop")!;
        assert.match(
          fw.message,
          /udp 47474 \(discovery\): nftables inet doctor_test input \(handle \d+\): udp dport 47474 drop/,
        );
        await sh("ip", ["netns", "exec", ha.ns, "nft", "delete", "table", "inet", "doctor_test"]);

        // One way: the bridge drops what B sends A (as an access point that isolates clients would).
        await sh(
          "ip",
          ["netns", "exec", lan.bridgeNs, "nft", "-f", "-"],
          [
            "table bridge doctor_oneway {",
            "  chain forward { type filter hook forward priority 0; policy accept;",
            `    oifname "${ha.bridgePort}" ip saddr ${hb.address} drop`,
            "  }",
            "}",
          ].join("\n"),
        );
        const oneWay = (await doctorUntil(hb.ns, "one-way", 60_000)).findings.find((f) => f.id === "one-way")!;
        assert.match(oneWay.message, new RegExp(`^One-way link: this host hears user@${ha.ns} \\(${ha.address}\\)`));
        assert.match(oneWay.fix, new RegExp(`^Run lanchat doctor on `));
        await sh("ip", ["netns", "exec", lan.bridgeNs, "nft", "delete", "table", "bridge", "doctor_oneway"]);

        // Clocks: a host 95 s ahead (refused by the keyed group's 30 s window), one 20 s ahead (taken, warned).
        const to = `${ha.address}:47475`;
        await hostile(hc.ns, ["skewed-hello", "--key", key, "--ahead-ms", "95000", "--to", to, "--name", "far"]);
        await hostile(hc.ns, ["skewed-hello", "--key", key, "--ahead-ms", "20000", "--to", to, "--name", "near"]);
        const clocks = await doctorUntil(ha.ns, "clock-skew-refused", 10_000);
        const refused = clocks.findings.find((f) => f.id === "clock-skew-refused")!;
        assert.match(
          refused.message,
          new RegExp(`^3 datagram\\(s\\) from ${hc.address} refused: its clock is 9[45] s ahead`),
        );
        const near = clocks.findings.find((f) => f.id === "clock-skew");
        assert.ok(near, JSON.stringify(clocks.findings));
        assert.match(near.message, /^near \(198\.18\.0\.13\)'s clock is (19|20|21) s ahead of this host's/);

        // The downloads folder's file system full.
        await sh("mount", ["-o", "remount,size=256k", downloads]);
        await fillUp(`${downloads}/filler`);
        const disk = (await doctorUntil(ha.ns, "disk-full", 10_000)).findings.find((f) => f.id === "disk-full")!;
        assert.match(disk.message, new RegExp(`^The downloads folder ${downloads} has 0 B free: downloads fail`));

        // The network key readable by others.
        Deno.chmodSync(key, 0o644);
        const open = (await doctorUntil(ha.ns, "file-open-to-others", 10_000)).findings
          .find((f) => f.id === "file-open-to-others")!;
        assert.equal(open.message, `The network key file ${key} has mode 644: other users of this host may read it`);
        assert.equal(open.fix, `chmod 600 ${key}`);

        // A killed without a goodbye (kill -9): B heard it, and says it is gone, not that it never heard anyone.
        a.signal("SIGKILL");
        await b.left(a.id, 30_000);
        const gone = (await doctorUntil(hb.ns, "no-peers", 10_000)).findings.find((f) => f.id === "no-peers")!;
        assert.match(
          gone.message,
          /^\d+ peer\(s\) heard since the daemon started, all gone now \(\d+ said goodbye, [1-9]\d* stopped answering\)/,
        );
        assert.match(
          gone.message,
          new RegExp(`the last hello came \\d+ s ago from (${ha.address.replaceAll(".", "\\.")}|[0-9a-f:%\\w]+)$`),
        );
        assert.doesNotMatch(gone.message, /No lanchat peer heard|made no peer/);
      });
    } finally {
      await removeTmpfs(downloads);
    }
  },
});
