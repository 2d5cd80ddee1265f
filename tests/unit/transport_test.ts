import assert from "node:assert/strict";
import {
  BindError,
  bindUdp,
  FakeNetwork,
  RECEIVE_BUFFER_SIZE,
  receiveLoop,
  udpAddr,
} from "../../src/node/transport.ts";

Deno.test("receive loop keeps going after receive errors and handler errors, and ends on close", async () => {
  const net = new FakeNetwork();
  const a = net.bind("198.18.0.1", 47475);
  const b = net.bind("198.18.0.2", 47475);
  a.pendingErrors.push(new Deno.errors.ConnectionRefused("ICMP port unreachable"));
  const got: string[] = [];
  const errors: string[] = [];
  const loop = receiveLoop(a, (bytes) => {
    const s = new TextDecoder().decode(bytes);
    if (s === "throw") throw new Error("handler failed");
    got.push(s);
  }, (e) => errors.push((e as Error).message));
  for (const s of ["one", "throw", "two"]) await b.send(new TextEncoder().encode(s), udpAddr("198.18.0.1", 47475));
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(got, ["one", "two"]);
  assert.deepEqual(errors, ["ICMP port unreachable", "handler failed"]);
  a.close();
  await loop; // resolves: a closed socket ends the loop without an error
});

Deno.test("fake network fans a broadcast out to every socket on the port", async () => {
  const net = new FakeNetwork();
  const socks = [1, 2, 3].map((i) => net.bind(`198.18.0.${i}`, 47474));
  await socks[0]!.send(new Uint8Array([7]), udpAddr("198.18.0.255", 47474));
  const got = await Promise.all(socks.map((s) => s.receive()));
  for (const [bytes, from] of got) {
    assert.deepEqual([...bytes], [7]);
    assert.equal((from as Deno.NetAddr).hostname, "198.18.0.1");
  }
});

Deno.test("real UDP: a datagram larger than the protocol limit arrives whole, not cut", async () => {
  const a = bindUdp("127.0.0.1", 0);
  const b = bindUdp("127.0.0.1", 0);
  try {
    const big = new Uint8Array(60_000).fill(1);
    await b.send(big, a.addr);
    const [bytes] = await a.receive(new Uint8Array(RECEIVE_BUFFER_SIZE));
    assert.equal(bytes.length, 60_000);
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("binding a taken port raises BindError saying so", () => {
  const a = bindUdp("127.0.0.1", 0);
  try {
    const port = (a.addr as Deno.NetAddr).port;
    assert.throws(() => bindUdp("127.0.0.1", port), (e: unknown) => {
      assert.ok(e instanceof BindError);
      assert.equal(e.inUse, true);
      assert.equal(e.message, `Cannot bind UDP 127.0.0.1:${port}: address already in use`);
      return true;
    });
  } finally {
    a.close();
  }
});
