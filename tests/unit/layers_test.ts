/**
 * The layout of src/ is a rule, not a habit: each folder is a layer, a file
 * imports only from its own folder and the layers below it (static,
 * dynamic and type-only imports alike), and no two files import each other,
 * directly or around a loop. See docs/architecture.md.
 */
import assert from "node:assert/strict";

/** Each layer and the layers it may import from (besides itself). */
const LAYERS: Record<string, string[]> = {
  common: [],
  wire: ["common"],
  storage: ["common"],
  protocol: ["wire", "storage", "common"],
  sim: ["protocol", "wire", "common"],
  security: ["protocol", "wire", "storage", "common"],
  api: ["security", "protocol", "wire", "storage", "common"],
  node: ["api", "security", "protocol", "wire", "storage", "common"],
  cli: ["node", "api", "security", "protocol", "wire", "storage", "common"],
};

const SRC = new URL("../../src/", import.meta.url);

function sourceFiles(dir: URL, out: string[] = []): string[] {
  for (const e of Deno.readDirSync(dir)) {
    if (e.isDirectory) sourceFiles(new URL(`${e.name}/`, dir), out);
    else if (e.name.endsWith(".ts")) out.push(new URL(e.name, dir).pathname);
  }
  return out;
}

/** Every relative import of a file (static, re-export, dynamic, type-only), resolved to a path. */
function importsOf(path: string): string[] {
  const text = Deno.readTextFileSync(path);
  const specs = [
    ...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"/g),
    ...text.matchAll(/import\(\s*"(\.[^"]+)"\s*\)/g),
  ].map((m) => m[1]!);
  return specs.map((s) => new URL(s, `file://${path}`).pathname).filter((p) => p.endsWith(".ts"));
}

function layerOf(path: string): string {
  return path.slice(SRC.pathname.length).split("/")[0]!;
}

Deno.test("every src/ file sits in a layer and imports only its own layer and the ones below", () => {
  const files = sourceFiles(SRC);
  const wrong: string[] = [];
  for (const f of files) {
    const layer = layerOf(f);
    assert.ok(LAYERS[layer], `${f} is in no known layer (${layer}/): add it to the table and to docs/architecture.md`);
    for (const target of importsOf(f)) {
      if (!target.startsWith(SRC.pathname)) continue; // deno.json, read for the version
      const to = layerOf(target);
      if (to !== layer && !LAYERS[layer]!.includes(to)) {
        wrong.push(`${f.slice(SRC.pathname.length)} (${layer}) imports ${target.slice(SRC.pathname.length)} (${to})`);
      }
    }
  }
  assert.deepEqual(wrong, []);
});

Deno.test("no src/ files import each other, directly or around a loop", () => {
  const files = sourceFiles(SRC);
  const edges = new Map(files.map((f) => [f, importsOf(f).filter((t) => t.startsWith(SRC.pathname))]));
  // Depth-first search with colours: reaching a file still on the stack is a cycle.
  const state = new Map<string, "open" | "done">();
  const cycles: string[] = [];
  const stack: string[] = [];
  const visit = (f: string) => {
    state.set(f, "open");
    stack.push(f);
    for (const t of edges.get(f) ?? []) {
      if (state.get(t) === "open") {
        cycles.push(stack.slice(stack.indexOf(t)).concat(t).map((p) => p.slice(SRC.pathname.length)).join(" → "));
      } else if (!state.has(t)) visit(t);
    }
    stack.pop();
    state.set(f, "done");
  };
  for (const f of files) if (!state.has(f)) visit(f);
  assert.deepEqual(cycles, []);
});

Deno.test("the layer check sees a cycle and an upward import when there is one", () => {
  // The checks above parse imports with these two expressions: prove they find what they must.
  const dir = Deno.makeTempDirSync();
  Deno.writeTextFileSync(`${dir}/a.ts`, 'import type { B } from "./b.ts";\nexport const a = 1;\n');
  Deno.writeTextFileSync(`${dir}/b.ts`, 'export type B = 1;\nconst m = await import("./a.ts");\n');
  assert.deepEqual(importsOf(`${dir}/a.ts`), [`${dir}/b.ts`]);
  assert.deepEqual(importsOf(`${dir}/b.ts`), [`${dir}/a.ts`]);
});

/** Imports that load code when the importer runs: static ones, not `import type` nor `import(…)`. */
function loadedImportsOf(path: string): string[] {
  const text = Deno.readTextFileSync(path);
  return [...text.matchAll(/(?:^|\n)\s*(import|export)\s(?!type\s)[^;]*?from\s+"(\.[^"]+)"/g)]
    .map((m) => new URL(m[2]!, `file://${path}`).pathname)
    .filter((p) => p.endsWith(".ts"));
}

Deno.test("a daemon without --ipmsg never loads IP Messenger's codec (iconv-lite's GBK tables, ~1.3 MB)", () => {
  const seen = new Set<string>();
  const stack = [new URL("../../main.ts", import.meta.url).pathname];
  while (stack.length > 0) {
    const p = stack.pop()!;
    if (seen.has(p)) continue;
    seen.add(p);
    stack.push(...loadedImportsOf(p));
  }
  const codec = [...seen].filter((p) =>
    /iconv-lite/.test(Deno.readTextFileSync(p)) && /^import iconv/m.test(Deno.readTextFileSync(p))
  );
  assert.deepEqual(
    codec.map((p) => p.slice(SRC.pathname.length)),
    [],
    "loaded at start: only through import(…) with --ipmsg",
  );
  assert.ok([...seen].some((p) => p.endsWith("node/services/files.ts")), "the walk reaches the daemon's services");
});

/** Most lines a file in src/ may have: past it, a file holds more than one concern and is split (docs/architecture.md). */
const MAX_LINES = 600;
/** Files allowed past {@link MAX_LINES}, each with why; keep this short and say in the note when one is added. */
const LONG_FILES: Record<string, string> = {};

/** The files of src/ over `max` lines that `allowed` does not name, with their sizes. */
function oversized(files: string[], max: number, allowed: Record<string, string>): string[] {
  return files
    .map((f) => ({
      f: f.startsWith(SRC.pathname) ? f.slice(SRC.pathname.length) : f,
      lines: Deno.readTextFileSync(f).split("\n").length - 1,
    }))
    .filter(({ f, lines }) => lines > max && allowed[f] === undefined)
    .map(({ f, lines }) => `${f}: ${lines} lines`);
}

Deno.test(`no src/ file is over ${MAX_LINES} lines (split it by concern; see docs/architecture.md)`, () => {
  assert.deepEqual(oversized(sourceFiles(SRC), MAX_LINES, LONG_FILES), []);
  for (const f of Object.keys(LONG_FILES)) {
    assert.ok(sourceFiles(SRC).some((p) => p.endsWith(`/src/${f}`)), `LONG_FILES names ${f}, which is gone`);
  }
});

Deno.test("the size check sees a file one line over the limit, and not one at it", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const at = `${dir}/at.ts`, over = `${dir}/over.ts`;
    Deno.writeTextFileSync(at, "//\n".repeat(MAX_LINES));
    Deno.writeTextFileSync(over, "//\n".repeat(MAX_LINES + 1));
    const sizes = oversized([at, over], MAX_LINES, {}).map((s) => s.replace(/^.*\//, ""));
    assert.deepEqual(sizes, [`over.ts: ${MAX_LINES + 1} lines`]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
