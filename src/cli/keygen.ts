/** `lanchat keygen PATH`: writes a new network key (mode 0600). */
import type { Command } from "commander";
import { newNetworkKeyText } from "../security/seal.ts";

export function registerKeygen(program: Command): void {
  program.command("keygen")
    .description("Write a new network key for a group of hosts (give every host the same file)")
    .argument("<path>", "where to write it")
    .option("--force", "replace an existing file")
    .action(async (path: string, opts: { force?: boolean }) => {
      try {
        await Deno.writeTextFile(path, newNetworkKeyText(), { mode: 0o600, createNew: !opts.force });
        await Deno.chmod(path, 0o600);
      } catch (e) {
        if (e instanceof Deno.errors.AlreadyExists) {
          throw new Error(
            `${path} exists; pass --force to replace it (daemons using the old key will no longer see this one)`,
          );
        }
        throw new Error(`Cannot write ${path}: ${(e as Error).message}`);
      }
      console.log(
        `Wrote a new network key to ${path} (mode 0600). Copy it to every host of the group and start each daemon with --key-file ${path}.`,
      );
    });
}
