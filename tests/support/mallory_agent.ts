/**
 * A hostile member of a group on the namespace LAN (tests/lan/e2e_lan_test.ts),
 * run inside its host's namespace with `ip netns exec`: it announces itself
 * to a target daemon with a signed hello carrying its static key (sealed
 * with the network key when given one: it is a member), speaks once under
 * its own id inside its own session, then twice under a victim's id: clear,
 * and inside its own session. Prints one JSON line when done.
 *
 * Usage: deno run -A tests/support/mallory_agent.ts BIND TARGET_HOST TARGET_PORT TARGET_ID TARGET_STATIC_KEY VICTIM_ID
 *        [NETWORK_KEY_FILE]
 */
import { parseStaticKeyText } from "../../src/security/e2e_wire.ts";
import { parseNetworkKey, Sealer } from "../../src/security/seal.ts";
import { E2eMember } from "./e2e_member.ts";

const [bind, host, portText, targetId, targetKeyText, victim, keyFile] = Deno.args;
const port = Number(portText);
const targetKey = parseStaticKeyText(targetKeyText ?? "");
if (!bind || !host || !targetId || !victim || !targetKey || !(port > 0)) {
  console.error(
    "usage: mallory_agent.ts BIND TARGET_HOST TARGET_PORT TARGET_ID TARGET_STATIC_KEY VICTIM_ID [KEY_FILE]",
  );
  Deno.exit(2);
}
const sealer = keyFile ? await Sealer.create(parseNetworkKey(Deno.readTextFileSync(keyFile), keyFile)) : undefined;
const mallory = new E2eMember(sealer, { bind, host });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
try {
  // Announced until the target has it in its roster and answers the handshake (hellos may be lost or early).
  for (let i = 0; i < 50 && !mallory.established(targetId); i++) {
    await mallory.hello(port);
    await sleep(100);
    if (i % 5 === 0) {
      await mallory.sendInSession(targetId, targetKey, E2eMember.msg(mallory.id, targetId, "ping"), port);
    }
  }
  if (!mallory.established(targetId)) throw new Error("no session with the target");
  await mallory.sendInSession(targetId, targetKey, E2eMember.msg(mallory.id, targetId, "from mallory"), port);
  await mallory.sendClear(E2eMember.msg(victim, targetId, "forged clear"), port);
  await mallory.sendInSession(targetId, targetKey, E2eMember.msg(victim, targetId, "forged inside"), port);
  await sleep(300);
  console.log(JSON.stringify({ ok: true, id: mallory.id }));
} finally {
  await mallory.close();
}
