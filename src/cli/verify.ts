/**
 * `lanchat verify PEER`: the safety number of this node and a peer, to read
 * aloud or compare on both screens (both sides show the same 60 digits), and,
 * once the person says they match, the peer's pinned key marked trusted (as
 * `lanchat trust` does). Exit 0 when the key is verified, 1 when not.
 *
 * @module
 */
import type { Command } from "commander";
import type { VerifyJson } from "../api/types.ts";
import { printableLine } from "../common/printable.ts";
import { daemonUrl, request } from "./client.ts";
import { EXIT, httpOption, outcome } from "./options.ts";

/** The safety number as people read it: 12 groups of five digits in 3 lines of 4, indented. */
export function numberLines(safetyNumber: string): string[] {
  const groups = safetyNumber.split(" ");
  return [0, 4, 8].map((i) => `    ${groups.slice(i, i + 4).join("  ")}`);
}

/** What `lanchat verify` prints before asking: who, the number, the key's trust in words. */
export function describeVerification(v: VerifyJson): string[] {
  const peer = printableLine(v.peer.name);
  const lines = [
    `Safety number of you (${printableLine(v.self.name)}, key ${v.self.fingerprint}) ` +
    `and ${peer} (key ${v.peer.fingerprint}, id ${v.peer.id}):`,
    "",
    ...numberLines(v.safetyNumber),
    "",
  ];
  if (v.keyNote) {
    lines.push(`${v.state === "key changed" ? "KEY CHANGED" : "Key replaced"}: ${printableLine(v.keyNote)}`);
  }
  lines.push(
    v.state === "verified"
      ? `${peer}'s key is verified: you confirmed this number before`
      : `${peer}'s key: ${v.state}. Compare the number with ${peer} (read it aloud, or look at both screens: ` +
        `"lanchat verify" on ${peer}'s host shows the same)`,
  );
  return lines;
}

/** Marks the key trusted; the verification as it is now. */
async function confirm(base: string, v: VerifyJson): Promise<VerifyJson> {
  const r = await request<{ trust: VerifyJson["trust"] }>(base, "/trust", {
    method: "POST",
    body: { peer: v.peer.id },
  });
  const { keyNote: _, ...rest } = v;
  return { ...rest, trust: r.body.trust, state: r.body.trust === "trusted" ? "verified" : v.state };
}

export function registerVerify(program: Command): void {
  program.command("verify")
    .description(
      "Show the safety number of you and a peer to compare with them (read aloud or side by side); " +
        "when they match, the peer's key is marked trusted. Exit 0 when verified, 1 when not",
    )
    .argument("<peer>", "node id, id prefix, name or address")
    .option("--yes", "the numbers matched (compared already): mark the key trusted without asking")
    .option("--json", "print the number and the trust as JSON, without asking")
    .addOption(httpOption())
    .action(async (peer: string, opts: { yes?: boolean; json?: boolean; http?: string }) => {
      const base = daemonUrl(opts.http);
      let v = (await request<VerifyJson>(base, `/peers/${encodeURIComponent(peer)}/verify`)).body;
      if (opts.yes && v.state !== "verified") v = await confirm(base, v);
      outcome.code = v.state === "verified" ? EXIT.ok : EXIT.error;
      if (opts.json) {
        console.log(JSON.stringify(v, null, 2));
        return;
      }
      const name = printableLine(v.peer.name);
      if (opts.yes) {
        console.log(numberLines(v.safetyNumber).join("\n"));
        console.log(`Verified: ${name}'s key (${v.peer.fingerprint}) is trusted`);
        return;
      }
      console.log(describeVerification(v).join("\n"));
      if (v.state === "verified") return;
      if (!Deno.stdin.isTerminal()) {
        console.log(
          `Not confirmed: standard input is not a terminal. Once the numbers match, run "lanchat verify ${
            v.peer.id.slice(0, 8)
          } --yes"`,
        );
        return;
      }
      const answer = prompt(`Does ${name}'s screen show the same number? [y/N]`);
      if (!/^\s*y(es)?\s*$/i.test(answer ?? "")) {
        console.log(
          `Not confirmed: ${name}'s key stays ${v.state}. If the numbers differ, someone may be between you ` +
            `or using ${name}'s name: do not trust this key`,
        );
        return;
      }
      v = await confirm(base, v);
      outcome.code = v.state === "verified" ? EXIT.ok : EXIT.error;
      console.log(`Verified: ${name}'s key (${v.peer.fingerprint}) is trusted`);
    });
}
