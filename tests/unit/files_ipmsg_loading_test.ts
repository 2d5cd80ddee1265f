/**
 * The file service's IP Messenger half is loaded with --ipmsg only: Deno's
 * own module graph of main.ts (`deno info --json`) says which modules load
 * when the daemon starts (static imports of code, followed from main.ts)
 * and which only through an `import()`.
 */
import assert from "node:assert/strict";

interface Dependency {
  code?: { specifier: string };
  isDynamic?: boolean;
}
interface GraphModule {
  specifier: string;
  dependencies?: Dependency[];
}

const SRC = new URL("../../src/", import.meta.url).href;
const SERVICES = `${SRC}node/services/`;
/** The IP Messenger side of file transfer: what a daemon without --ipmsg must not load. */
const IPMSG_FILE_MODULES = ["files_ipmsg.ts", "ipmsg_file_stream.ts", "ipmsg_resume.ts"].map((f) => SERVICES + f);

async function graph(): Promise<Map<string, GraphModule>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL("../../main.ts", import.meta.url).pathname],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const json = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: GraphModule[] };
  return new Map(json.modules.map((m) => [m.specifier, m]));
}

/** Modules reached from main.ts by the imports that load code at once (not `import type`, not `import()`). */
function loadedAtStart(modules: Map<string, GraphModule>): Set<string> {
  const seen = new Set<string>();
  const stack = [new URL("../../main.ts", import.meta.url).href];
  while (stack.length > 0) {
    const s = stack.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const d of modules.get(s)?.dependencies ?? []) {
      if (d.code && !d.isDynamic) stack.push(d.code.specifier);
    }
  }
  return seen;
}

Deno.test("a daemon without --ipmsg loads none of the file service's IP Messenger modules; import() reaches them", async () => {
  const modules = await graph();
  const atStart = loadedAtStart(modules);
  assert.ok(atStart.has(SERVICES + "files.ts"), "the walk reaches the file service");
  assert.ok(atStart.has(SERVICES + "files_fetch.ts"), "and its parts");
  for (const m of IPMSG_FILE_MODULES) {
    assert.ok(modules.has(m), `${m} is in the graph (through an import())`);
    assert.ok(!atStart.has(m), `${m} is loaded only with --ipmsg`);
  }
  // The one way in: the file service's dynamic import of its IP Messenger side.
  const into = [...modules.values()].flatMap((m) =>
    (m.dependencies ?? []).filter((d) => d.code?.specifier === IPMSG_FILE_MODULES[0]).map((d) => ({
      from: m.specifier.slice(SRC.length),
      dynamic: d.isDynamic === true,
    }))
  );
  assert.deepEqual(into, [{ from: "node/services/files.ts", dynamic: true }]);
});
