/**
 * File transfer from the command line: `send-file`, `transfers`, `accept`,
 * `refuse`, `cancel`.
 *
 * `send-file` offers the files and follows the transfer: a live progress
 * bar on a terminal (bytes, rate, time left), a plain line every few
 * seconds when standard output is not one, only the result with `--json`.
 * Exit 0 once the peer has every file and checked it (its SHA-256, or only
 * its size for an IP Messenger user, whose protocol has none), 75 when it is still
 * waiting for the peer (to come online or to accept) after `--wait`, 1 when
 * it was refused or failed.
 *
 * @module
 */
import { resolve } from "node:path";
import type { Command } from "commander";
import cliProgress from "cli-progress";
import type { TransferJson } from "../api/types.ts";
import { formatBytes } from "../protocol/files.ts";
import { printableLine } from "../common/printable.ts";
import { daemonUrl, getJson, request, table } from "./client.ts";
import { EXIT, httpOption, outcome, parseWaitSeconds } from "./options.ts";
import { filesAndSize } from "./marks.ts";

const ENDED = new Set(["done", "refused", "failed", "cancelled"]);

/** "12.3 MB/s, 4 s left" */
function speed(t: TransferJson): string {
  if (t.state !== "active" || !t.rate) return "";
  const eta = t.etaSeconds !== undefined ? `, ${formatEta(t.etaSeconds)} left` : "";
  return `${formatBytes(t.rate)}/s${eta}`;
}

function formatEta(s: number): string {
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** One line for a transfer: what, with whom, how far. */
export function describeTransfer(t: TransferJson): string {
  const name = printableLine(t.peer.name);
  const what = t.files === 1 ? printableLine(t.names[0] ?? "1 file") : `${t.files} files`;
  const way = t.direction === "out" ? `to ${name}` : `from ${name}`;
  const pct = t.bytes > 0 ? ` ${Math.floor((t.transferred / t.bytes) * 100)} %` : "";
  const tail = t.error ? `: ${printableLine(t.error)}` : "";
  return `${what} ${way}: ${t.state}${t.state === "active" ? pct : ""} (${formatBytes(t.bytes)})${tail}`;
}

/** The exit code a transfer's state implies. */
export function transferExit(t: TransferJson): number {
  if (t.state === "done") return EXIT.ok;
  if (t.state === "refused" || t.state === "failed" || t.state === "cancelled") return EXIT.error;
  return EXIT.queued;
}

export function registerFiles(program: Command): void {
  program.command("send-file")
    .description(
      "Offer files and folders to a peer (or each member of a group) and follow the transfer; exit 0 when it has them all, checked",
    )
    .argument("<peer>", "node id, id prefix, name, user or address; @NAME for a group (one transfer per member)")
    .argument("<paths...>", "files and folders")
    .option(
      "--wait <seconds>",
      "how long to wait for the peer to accept (the transfer itself is followed to its end)",
      parseWaitSeconds,
      30,
    )
    .option("--json", "print only the result, as JSON")
    .addOption(httpOption())
    .action(async (peer: string, paths: string[], opts: { wait: number; json?: boolean; http?: string }) => {
      const base = daemonUrl(opts.http);
      // Paths are the daemon's: make them absolute from here (the daemon may run elsewhere in the tree).
      const abs = paths.map((p) => p.startsWith("/") ? p : `${Deno.cwd()}/${p}`);
      const { body: offered } = await request<TransferJson | GroupOffer>(base, "/files", {
        method: "POST",
        body: { to: peer, paths: abs },
        timeoutMs: 3_600_000,
      });
      if ("group" in offered) return await followGroup(base, peer, offered, opts);
      const t = await follow(base, offered, opts);
      console.log(opts.json ? JSON.stringify(t, null, 2) : outcomeLine(t));
      outcome.code = transferExit(t);
    });

  program.command("transfers")
    .description("File transfers, incoming and outgoing")
    .option("--json", "print them as JSON")
    .addOption(httpOption())
    .action(async (opts: { json?: boolean; http?: string }) => {
      const list = await getJson<TransferJson[]>(daemonUrl(opts.http), "/transfers");
      if (opts.json) return console.log(JSON.stringify(list, null, 2));
      if (list.length === 0) return console.log("No file transfers.");
      console.log(table(
        ["ID", "WAY", "PEER", "STATE", "FILES", "SIZE", "DONE", "RATE", "WHAT"],
        list.map((t) => [
          t.id.slice(0, 8),
          t.direction === "in" ? "in" : "out",
          // As `peers` marks the peer: a stream that went in the clear (a previous version's peer).
          printableLine(t.peer.name) + (t.encrypted === false ? " (unencrypted)" : ""),
          t.state,
          `${t.filesDone}/${t.files}`,
          formatBytes(t.bytes),
          t.bytes ? `${Math.floor((t.transferred / t.bytes) * 100)} %` : "-",
          t.state === "active" && t.rate ? `${formatBytes(t.rate)}/s` : "",
          printableLine(t.names.join(", ")).slice(0, 40) + (t.error ? ` (${printableLine(t.error).slice(0, 60)})` : ""),
        ]),
      ));
    });

  for (
    const [name, help] of [
      [
        "accept",
        "Accept a file offer: says where the files go (--downloads, or --to DIR), follows it, says where they are",
      ],
      ["refuse", "Refuse a file offer"],
      ["cancel", "Cancel a transfer, either way"],
    ] as const
  ) {
    const cmd = program.command(name).description(help).argument(
      "<id>",
      "the transfer's id (or its first 4+ characters)",
    );
    if (name === "accept") {
      cmd.option("--to <dir>", "folder to put the files in (on the daemon's host)")
        .option(
          "--wait <seconds>",
          "how long to wait for the sender when it does not send (the transfer itself is followed to its end)",
          parseWaitSeconds,
          30,
        )
        .option("--no-wait", "say where the files go and return at once (the daemon fetches them by itself)");
    }
    cmd.option(
      "--json",
      name === "accept" ? "print the transfer as JSON, as accepted (at once)" : "print the transfer as JSON",
    )
      .addOption(httpOption())
      .action(async (id: string, opts: { to?: string; json?: boolean; http?: string; wait?: number | false }) => {
        const base = daemonUrl(opts.http);
        const dir = opts.to === undefined ? undefined : resolve(opts.to);
        const { body: t } = await request<TransferJson>(base, `/transfers/${encodeURIComponent(id)}/${name}`, {
          method: "POST",
          body: dir ? { dir } : {},
        });
        if (opts.json) return console.log(JSON.stringify(t, null, 2));
        if (name !== "accept") return console.log(describeTransfer(t));
        await acceptAndFollow(base, t, opts.wait);
      });
  }
}

/**
 * `accept`: says where the files go (the absolute folder, on the daemon's
 * host), then, unless `wait` is false, follows the transfer as `send-file`
 * does and says where they are: exit 0 when every file came and was
 * checked, 75 while the sender does not send, 1 when it failed.
 */
async function acceptAndFollow(base: string, t: TransferJson, wait: number | false | undefined): Promise<void> {
  const from = printableLine(t.peer.name);
  const folder = t.dir ? printableLine(t.dir) : "the downloads folder";
  console.log(`accepted ${filesAndSize(t)} from ${from}: saving in ${folder}`);
  if (wait === false) return;
  const end = await follow(base, t, { wait: wait ?? 30 });
  outcome.code = transferExit(end);
  if (end.state === "done") {
    const names = (end.saved ?? end.names).map(printableLine);
    const shown = names.slice(0, 10).join(", ") + (names.length > 10 ? `, … (${names.length} in all)` : "");
    const how = end.check === "size" ? "size checked" : "checked";
    return console.log(`received ${filesAndSize(end)} from ${from}, ${how}, in ${folder}: ${shown}`);
  }
  if (ENDED.has(end.state)) return console.log(`${end.state}${end.error ? `: ${printableLine(end.error)}` : ""}`);
  console.log(
    `not all here yet (${end.state}): the daemon goes on fetching into ${folder}; see lanchat transfers ${
      end.id.slice(0, 8)
    }`,
  );
}

/** What `POST /files` answers for a group: a transfer per member offered, and those it could not be offered to. */
interface GroupOffer {
  group: string;
  transfers: TransferJson[];
  failed?: { peer: { id: string; name: string }; error: string }[];
}

/** The line `send-file` ends with for a transfer. */
function outcomeLine(t: TransferJson): string {
  const name = printableLine(t.peer.name);
  if (t.state === "done") {
    const what = t.files === 1 ? "the file" : `all ${t.files} files`;
    return `${name} has ${what} (${formatBytes(t.bytes)}), ${t.check === "size" ? "size checked" : "checked"}`;
  }
  if (ENDED.has(t.state)) return `${t.state}${t.error ? `: ${printableLine(t.error)}` : ""}`;
  const what = t.state === "waiting" ? "to come online" : "to accept";
  return `offered; waiting for ${name} ${what} (lanchat transfers ${t.id.slice(0, 8)})`;
}

/**
 * Follows the transfers of a file sent to a group, one per member, all at
 * once; prints a line per member (those it could not be offered to too).
 * Exit 1 when any was refused or failed, else 75 while any waits, else 0.
 */
async function followGroup(base: string, group: string, offered: GroupOffer, opts: { wait: number; json?: boolean }) {
  const final = await Promise.all(offered.transfers.map((t) => follow(base, t, { ...opts, json: true })));
  const failed = offered.failed ?? [];
  if (opts.json) console.log(JSON.stringify({ ...offered, transfers: final }, null, 2));
  else {
    const lines = final.map((t) => {
      const line = outcomeLine(t);
      return line.startsWith(printableLine(t.peer.name)) ? line : `${printableLine(t.peer.name)}: ${line}`;
    });
    for (const f of failed) lines.push(`${printableLine(f.peer.name)}: not offered: ${printableLine(f.error)}`);
    console.log(
      `${printableLine(group)}: ${final.length} of ${final.length + failed.length} offered\n` +
        lines.map((l) => `  ${l}`).join("\n"),
    );
  }
  const codes = final.map(transferExit);
  outcome.code = failed.length > 0 || codes.includes(EXIT.error)
    ? EXIT.error
    : codes.includes(EXIT.queued)
    ? EXIT.queued
    : EXIT.ok;
}

/**
 * Follows a transfer until it ends, or until `wait` seconds pass with the
 * peer not fetching (offline or not accepted): polls its state four times a
 * second, drawing progress.
 */
async function follow(
  base: string,
  first: TransferJson,
  opts: { wait: number; json?: boolean },
): Promise<TransferJson> {
  const tty = !opts.json && Deno.stdout.isTerminal();
  const bar = tty
    ? new cliProgress.SingleBar({
      format: " {bar} {percentage}% | {done} of {size} | {speed}",
      hideCursor: true,
      barsize: 30,
      stopOnComplete: false,
      clearOnComplete: true,
    }, cliProgress.Presets.shades_classic)
    : undefined;
  let t = first;
  let lastLine = 0;
  let idleSince = Date.now();
  let started = false;
  const values = (x: TransferJson) => ({
    done: formatBytes(x.transferred),
    size: formatBytes(x.bytes),
    speed: speed(x),
  });
  try {
    for (;;) {
      if (ENDED.has(t.state)) break;
      if (t.state === "active") {
        idleSince = Date.now();
        if (bar && !started) {
          bar.start(Math.max(1, t.bytes), t.transferred, values(t));
          started = true;
        }
        bar?.update(t.transferred, values(t));
        if (!tty && !opts.json && Date.now() - lastLine >= 5000) {
          console.log(describeTransfer(t) + (speed(t) ? `, ${speed(t)}` : ""));
          lastLine = Date.now();
        }
      } else if (Date.now() - idleSince > opts.wait * 1000) break;
      await new Promise((r) => setTimeout(r, 250));
      t = await getJson<TransferJson>(base, `/transfers/${t.id}`);
    }
  } finally {
    if (started) {
      bar?.update(t.transferred, values(t));
      bar?.stop();
    }
  }
  return t;
}
