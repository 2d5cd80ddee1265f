/**
 * One file service (tests/support/files_node.ts) in a Worker of its own, so
 * that two of them in one benchmark run on two threads, as two daemons
 * would: the benchmark of the end-to-end encrypted file stream, before the
 * daemons' rosters carry the static keys. Commands come as messages, each
 * answered with its `rid`; a message a node sends to the other goes out as
 * `{note}` for the benchmark to hand over.
 *
 * @module
 */
import { FilesNode, type FilesNodeOptions } from "../tests/support/files_node.ts";

let node: FilesNode | undefined;
const scope = globalThis as unknown as {
  onmessage: (e: MessageEvent<Command & { rid: number }>) => void;
  postMessage(m: unknown): void;
};

type Command =
  | { cmd: "start"; name: string; options: FilesNodeOptions }
  | { cmd: "know"; id: string; name: string; port: number; key?: Uint8Array }
  | { cmd: "note"; from: string; text: string }
  | { cmd: "offer"; to: string; paths: string[] }
  | { cmd: "get"; id: string }
  | { cmd: "stop" };

async function run(m: Command): Promise<unknown> {
  switch (m.cmd) {
    case "start":
      node = await FilesNode.start(m.name, m.options);
      return { id: node.id, port: node.port, key: node.e2e?.dh.publicKey };
    case "know":
      node!.peers.set(m.id, {
        name: m.name,
        port: m.port,
        receive: (from, text) => scope.postMessage({ note: { to: m.id, from, text } }),
      });
      if (m.key) node!.keys.set(m.id, m.key);
      return {};
    case "note":
      node!.receive(m.from, m.text);
      return {};
    case "offer":
      return await node!.service.offer(m.to, m.paths);
    case "get":
      return node!.get(m.id) ?? null;
    case "stop":
      await node?.remove();
      return {};
  }
}

scope.onmessage = (e) => {
  run(e.data).then(
    (result) => scope.postMessage({ rid: e.data.rid, result }),
    (error) => scope.postMessage({ rid: e.data.rid, error: (error as Error).message }),
  );
};
