/**
 * Storage floor for the messaging benchmark: the SQLite work one acked
 * message costs the two daemons, through the daemon's own {@link Store}
 * calls, in one process, with no network, HTTP, JSON or datagram decoding.
 * lanchat stores a message before it says "accepted" (sender) and before it
 * acks (receiver), so no wire format can carry more acked messages a second
 * than this allows.
 *
 *   deno run --allow-read --allow-write scripts/store_floor.ts COUNT [BATCH]
 *
 * Prints one JSON line: µs per message on the sending side (a posted batch
 * of BATCH stored in one call, one transaction, as the daemon does; one group
 * commit per batch; `delivered` written behind) and on the
 * receiving side (a burst of 64 in-order messages released in one call, one
 * group commit per burst), and the messages a second
 * both sides could store on the 2 cores if they did nothing else.
 */
import { Store } from "../src/storage/store.ts";
import { timeOrderedId } from "../src/protocol/messaging.ts";

const count = Number(Deno.args[0] ?? 20_000);
const batch = Number(Deno.args[1] ?? 500);
const text = "lunch at noon? ".repeat(6).trim();
const peerOut = "b".repeat(32);
const peerIn = "a".repeat(32);

const dirs = [Deno.makeTempDirSync({ prefix: "lanchat-floor-" }), Deno.makeTempDirSync({ prefix: "lanchat-floor-" })];
const sender = await Store.open(dirs[0]!);
const receiver = await Store.open(dirs[1]!);
// As in the daemon: writes join a group transaction committed by the caller.
sender.startGroupCommit(() => {});
receiver.startGroupCommit(() => {});
try {
  const ids = Array.from({ length: count }, () => timeOrderedId(Date.now()));
  // Sending side: a posted batch is stored (in one transaction, as sent: its
  // peer is up) and committed before the API answers; then each message is
  // marked delivered on its ack.
  let t0 = performance.now();
  for (let i = 0; i < count; i += batch) {
    sender.insertOutgoingMany(
      ids.slice(i, Math.min(count, i + batch)).map((id) => ({
        id,
        peer: peerOut,
        text,
        sentAt: Date.now(),
        status: "sent" as const,
      })),
    );
    sender.commit();
    for (let j = i; j < Math.min(count, i + batch); j++) sender.markDelivered(ids[j]!, Date.now(), 1);
    sender.flush();
    sender.commit();
  }
  const senderUs = ((performance.now() - t0) * 1000) / count;
  // Receiving side: the in-order messages of a burst (up to the window; 64
  // here) are released into the inbox together, in one savepoint, just
  // before the group commit, as the daemon does (messaging_receive.ts flush).
  t0 = performance.now();
  for (let i = 0; i < count; i += 64) {
    const now = Date.now();
    const burst = ids.slice(i, Math.min(count, i + 64)).map((id, j) => ({
      id,
      peer: peerIn,
      seq: i + j + 1,
      text,
      sentAt: now,
      receivedAt: now,
      gapBefore: 0,
      late: false,
      wasHeld: false,
    }));
    receiver.release(peerIn, burst, i + burst.length + 1, now);
    receiver.commit();
  }
  const receiverUs = ((performance.now() - t0) * 1000) / count;
  const cores = navigator.hardwareConcurrency;
  // Each side on a core of its own: the slower side decides.
  const perSecond = Math.round(
    Math.min(cores, 2) === 2 ? 1e6 / Math.max(senderUs, receiverUs) : 1e6 / (senderUs + receiverUs),
  );
  console.log(JSON.stringify({
    count,
    batch,
    senderUsPerMessage: Math.round(senderUs * 100) / 100,
    receiverUsPerMessage: Math.round(receiverUs * 100) / 100,
    perSecond,
  }));
} finally {
  sender.close();
  receiver.close();
  for (const d of dirs) Deno.removeSync(d, { recursive: true });
}
