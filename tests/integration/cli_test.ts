/** The CLI as a user runs it: a child process against a real daemon on loopback, or none. */
import assert from "node:assert/strict";
import { freeTcpPort, freeUdpPort, killAll, runCli, startLoopbackDaemon } from "../support/daemon_process.ts";

const start = (port: number, name: string) => startLoopbackDaemon(port, name);

Deno.test("lanchat peers prints the roster as a table and as JSON", async () => {
  const port = freeUdpPort();
  try {
    const a = await start(port, "alice").started();
    const b = await start(port, "bob").started();
    await a.joined(b.id, 2000);
    const http = a.httpUrl.replace("http://", "");
    const tableOut = await runCli(["peers", "--http", http]);
    assert.equal(tableOut.code, 0, tableOut.stderr);
    const [header, row, ...rest] = tableOut.stdout.trimEnd().split("\n");
    assert.match(header!, /^NAME\s+HOST\s+ADDRESS\s+STATE\s+SEEN\s+ID$/);
    assert.match(
      row!,
      new RegExp(
        `^bob\\s+\\S+\\s+127\\.0\\.0\\.1:${b.unicastPort}\\s+alive\\s+\\d+\\.\\ds ago\\s+${b.id.slice(0, 12)}$`,
      ),
    );
    assert.deepEqual(rest, []);
    const json = await runCli(["peers", "--json"], { env: { LANCHAT_HTTP: http } });
    assert.equal(json.code, 0, json.stderr);
    const peers = JSON.parse(json.stdout);
    assert.equal(peers.length, 1);
    assert.equal(peers[0].id, b.id);
    const status = await runCli(["status", "--http", http]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`^alice \\(${a.id}\\)`));
    assert.match(status.stdout, /announcing every 500 ms on: lo \(127\.255\.255\.255\)/);
  } finally {
    await killAll();
  }
});

Deno.test("lanchat peers with no daemon says so in one line and exits 3", async () => {
  const port = freeTcpPort();
  for (const cmd of ["peers", "status"]) {
    const r = await runCli([cmd, "--http", `127.0.0.1:${port}`]);
    assert.equal(r.code, 3);
    assert.equal(r.stdout, "");
    assert.equal(
      r.stderr,
      `lanchat: No lanchat daemon answers at http://127.0.0.1:${port} (connection refused). Start one with "lanchat daemon", or point --http or LANCHAT_HTTP at a running one.\n`,
    );
  }
});

Deno.test("lanchat rejects bad flags and values with exit code 2", async () => {
  const cases: [string[], RegExp][] = [
    [["daemon", "--bogus"], /unknown option '--bogus'/],
    [["daemon", "--port", "70000"], /"70000" is not a port/],
    [["daemon", "--interval", "soon"], /"soon" is not a duration/],
    [["daemon", "--interval", "10ms"], /"10ms" is out of range/],
    [["daemon", "--broadcast", "198.18.0"], /is not an IPv4 address/],
    [["daemon", "--log-format", "xml"], /Allowed choices are text, json/],
    [["daemon", "--log-level", "loud"], /Unknown log level "loud"/],
    [["peers", "--jsn"], /unknown option '--jsn'/],
    [["fly"], /unknown command 'fly'/],
  ];
  for (const [args, message] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
});

Deno.test("lanchat --help on every subcommand describes it and exits 0", async () => {
  for (const cmd of [[], ["daemon"], ["peers"], ["status"]]) {
    const r = await runCli([...cmd, "--help"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: lanchat/);
  }
  const d = await runCli(["daemon", "--help"]);
  for (
    const flag of [
      "--interface",
      "--exclude-interface",
      "--broadcast",
      "--peer",
      "--interval",
      "--http",
      "--data-dir",
      "--log-format",
    ]
  ) {
    assert.match(d.stdout, new RegExp(flag));
  }
});
