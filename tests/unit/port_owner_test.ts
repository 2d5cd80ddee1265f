import assert from "node:assert/strict";
import { listenerUids, listenerUidsIn, listenerUidsOfSs } from "../../src/cli/port_owner.ts";

// Lines as Linux writes them (ss reads the same): 127.0.0.1:47476 (0xB974) listening as uid 1000, a connection on
// that port as uid 0, 0.0.0.0:47476 listening as uid 65534, another port listening as uid 0.
const TABLE = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:B974 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:B974 0100007F:D2C4 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1
   2: 00000000:B974 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65534        0 3 1 0000000000000000 100 0 0 10 0
   3: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 100 0 0 10 0
`;

Deno.test("the listeners of a port are read from the socket table: LISTEN sockets only, every address", () => {
  assert.deepEqual(listenerUidsIn(TABLE, 47476), [1000, 65534]);
  assert.deepEqual(listenerUidsIn(TABLE, 8080), [0]);
  assert.deepEqual(listenerUidsIn(TABLE, 9), []);
  assert.deepEqual(listenerUidsIn("", 47476), []);
});

Deno.test("a port this process listens on is found with this process's uid", () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    assert.deepEqual(listenerUids((l.addr as Deno.NetAddr).port), [Deno.uid()]);
  } finally {
    l.close();
  }
});

Deno.test("ss lines give their uid, and root's (which ss leaves out) as 0", () => {
  const lines = `LISTEN 0      128        127.0.0.1:47476      0.0.0.0:* uid:65534 ino:2429032 sk:1001 cgroup:/ <->
LISTEN 0      511        127.0.0.1:47476      0.0.0.0:* ino:2429099 sk:1002 cgroup:/ <->
`;
  assert.deepEqual(listenerUidsOfSs(lines), [65534, 0]);
  assert.deepEqual(listenerUidsOfSs(""), []);
});
