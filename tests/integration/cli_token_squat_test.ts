/**
 * Hostile tester's reproduction (issue 25, "the local API answers its owner
 * only"): the owner's CLI sends the token in its data directory to whatever
 * listens on the loopback port it is pointed at, without any proof that the
 * listener is the owner's daemon. Another Unix user who binds that port
 * while the daemon is down (before it starts, during a restart) learns the
 * token, which stays good across restarts.
 */
import assert from "node:assert/strict";
import { freeTcpPort, runCli } from "../support/daemon_process.ts";

Deno.test("the owner's CLI does not hand its token to a loopback port another user listens on", async () => {
  const home = await Deno.makeTempDir({ prefix: "lanchat-squat-home-" });
  const dataDir = `${home}/.local/share/lanchat`;
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const token = "squat-test-token-" + crypto.randomUUID();
  await Deno.writeTextFile(`${dataDir}/http_token`, token + "\n", { mode: 0o600 });
  const port = freeTcpPort();
  // User nobody listens on the port and prints the Authorization header it is sent.
  const squatter = new Deno.Command("runuser", {
    args: [
      "-u",
      "nobody",
      "--",
      "python3",
      "-c",
      `import socket
s=socket.socket(); s.bind(("127.0.0.1",${port})); s.listen(1); s.settimeout(20); print("ready", flush=True)
c,_=s.accept(); d=c.recv(65536).decode(errors="replace")
print("\\n".join(l for l in d.split("\\r\\n") if l.lower().startswith("authorization")), flush=True)
c.sendall(b"HTTP/1.1 503 Busy\\r\\ncontent-length: 0\\r\\n\\r\\n"); c.close()`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    const reader = squatter.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!seen.includes("ready")) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    // The owner runs a plain `lanchat status` (no flags) while its daemon is down.
    const denoDir = Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`;
    const xdg = {
      DENO_DIR: denoDir,
      HOME: home,
      XDG_DATA_HOME: `${home}/.local/share`,
      LANCHAT_HTTP: `127.0.0.1:${port}`,
    };
    const r = await runCli(["status"], { env: xdg });
    assert.equal(r.code, 3, r.stderr);
    assert.match(
      r.stderr,
      /listened on by another user \(uid \d+\), not by your lanchat daemon: your token was not sent/,
    );
    let heard = seen;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      heard += value;
    }
    assert.ok(!heard.includes(token), `user nobody, listening on 127.0.0.1:${port}, was sent the token: ${heard}`);
  } finally {
    try {
      squatter.kill();
    } catch { /* exited */ }
    await squatter.status;
    await squatter.stderr.cancel();
    await Deno.remove(home, { recursive: true });
  }
});
