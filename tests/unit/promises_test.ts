/**
 * No promise in `src/` is left floating: each is awaited, returned, given a
 * `.catch`, or marked `void` on purpose (where its function handles its own
 * errors). A floating promise that rejects is an "Uncaught (in promise)" that
 * ends the daemon (issue 23: a broken pipe while a disk read was awaited).
 *
 * The check is typescript-eslint's `no-floating-promises`, with type
 * information from a TypeScript program built here over `src/` and Deno's own
 * declarations (`deno types`). Imports of npm and node modules are not
 * resolved (their values type as `any`, which the rule leaves alone); the
 * Deno API, web APIs and the project's own modules are typed.
 */
import assert from "node:assert/strict";
import { Linter } from "eslint";
import tseslint from "typescript-eslint";
import ts from "typescript";

const ROOT = new URL("../../", import.meta.url).pathname;

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...sources(p));
    else if (e.isFile && p.endsWith(".ts")) out.push(p);
  }
  return out.sort();
}

/** Deno's declarations, as this Deno prints them. */
function denoTypes(): string {
  const out = new Deno.Command(Deno.execPath(), { args: ["types"], stdout: "piped", stderr: "piped" }).outputSync();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const dir = Deno.makeTempDirSync({ prefix: "lanchat-types-" });
  const path = `${dir}/lib.deno.d.ts`;
  // Its lib references name Deno's own libs, which TypeScript does not have: the web and esnext libs stand in.
  Deno.writeTextFileSync(
    path,
    new TextDecoder().decode(out.stdout).replace(/^\/\/\/ <reference (no-default-lib|lib)=.*$/gm, ""),
  );
  return path;
}

/** The floating promises in `files` (paths), as "path:line: message". */
function floating(files: string[], extra: Record<string, string> = {}): string[] {
  const types = denoTypes();
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ESNext,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    allowImportingTsExtensions: true,
    noEmit: true,
    strict: true,
    skipLibCheck: true,
    lib: ["lib.esnext.d.ts", "lib.dom.d.ts", "lib.dom.iterable.d.ts"],
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => extra[name] ?? readFile(name);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name in extra || fileExists(name);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, onError, create) =>
    name in extra ? ts.createSourceFile(name, extra[name]!, lang) : getSourceFile(name, lang, onError, create);
  const program = ts.createProgram([types, ...files, ...Object.keys(extra)], options, host);
  const linter = new Linter({ configType: "flat" });
  const config = [{
    files: ["**/*.ts"],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { programs: [program] },
    },
    plugins: { "@typescript-eslint": tseslint.plugin },
    rules: { "@typescript-eslint/no-floating-promises": "error" },
  }] as unknown as Linter.Config[];
  const found: string[] = [];
  for (const file of [...files, ...Object.keys(extra)]) {
    const text = program.getSourceFile(file)!.text;
    for (const m of linter.verify(text, config, file)) {
      found.push(`${file.slice(ROOT.length)}:${m.line}: ${m.message.split(". ")[0]}`);
    }
  }
  Deno.removeSync(types.slice(0, types.lastIndexOf("/")), { recursive: true });
  return found;
}

Deno.test("no promise in src/ is left floating (typescript-eslint no-floating-promises, with types)", () => {
  const found = floating(sources(`${ROOT}src`));
  assert.deepEqual(found, [], `floating promises:\n${found.join("\n")}`);
});

Deno.test("the floating-promise check finds one: a Deno call, a method of ours, a .then without a handler", () => {
  const file = `${ROOT}src/__floating_probe__.ts`;
  const found = floating([], {
    [file]: [
      `import { hashFile } from "./node/services/files.ts";`,
      `export function f(): void {`,
      `  Deno.remove("/nonexistent");`,
      `  hashFile("/nonexistent");`,
      `  hashFile("/x").then(() => {});`,
      `  void hashFile("/y");`,
      `  hashFile("/z").catch(() => {});`,
      `}`,
    ].join("\n"),
  });
  assert.deepEqual(found.map((l) => l.split(":")[1]), ["3", "4", "5"], found.join("\n"));
});
