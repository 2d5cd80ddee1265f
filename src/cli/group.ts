/**
 * `lanchat group`: group conversations. `group create NAME PEER...`,
 * `group add NAME PEER...`, `group leave NAME`, `group list`, `group show
 * NAME`; messages go with `send @NAME`, history with `inbox --group NAME`,
 * a conversation with `chat @NAME`.
 */
import type { Command } from "commander";
import type { GroupJson, MessageJson } from "../api/types.ts";
import { printableLine } from "../common/printable.ts";
import { daemonUrl, getJson, request, table } from "./client.ts";
import { httpOption, shellWord, UsageError } from "./options.ts";
import { memberWords } from "./api_words.ts";
import { newGroupNameProblem } from "../protocol/groups.ts";

/** A group by what a user typed (`@NAME`, a name, an id or id prefix), or the API's error. */
export async function resolveGroup(base: string, query: string): Promise<GroupJson> {
  const q = query.startsWith("@") ? query.slice(1) : query;
  if (q.trim() === "") throw new UsageError("The group is an empty name: name it by @NAME, its name or its id");
  return await getJson<GroupJson>(base, `/groups/${encodeURIComponent(q)}`);
}

export function registerGroup(program: Command): void {
  const group = program.command("group")
    .description("Group conversations: create one, add people, leave; write with send @NAME, read with inbox --group");
  group.command("create")
    .description("Create a group of you and some peers; they are told at once (or when they are back)")
    .argument("<name>", "the group's name, as you will write it after @")
    .argument("<peers...>", "its members besides you: node ids, names, users or addresses")
    .option("--new", "make it even if you are in a group of that name already (then name each by its id)")
    .addOption(httpOption())
    .action(async (name: string, peers: string[], opts: { new?: boolean; http?: string }) => {
      const problem = newGroupNameProblem(name);
      if (problem && name.startsWith("@") && name.length > 1) {
        const ref = shellWord(name);
        throw new UsageError(
          `${problem}: write it without, e.g. lanchat group create ${shellWord(name.slice(1))} PEER...; ` +
            `to add people to ${printableLine(ref)}: lanchat group add ${printableLine(ref)} PEER...`,
        );
      }
      if (problem) throw new UsageError(`${problem}${name === "" || name === "@" ? ": give it one, e.g. lab" : ""}`);
      const { body } = await request<{ group: GroupJson }>(daemonUrl(opts.http), "/groups", {
        method: "POST",
        body: { name, members: peers, ...(opts.new ? { new: true } : {}) },
      });
      console.log(`Created @${printableLine(body.group.name)}: ${memberWords(body.group)}`);
    });
  group.command("add")
    .description("Add peers to a group you are in; every member is told")
    .argument("<group>", "the group: @NAME, its name or its id")
    .argument("<peers...>", "the peers to add")
    .addOption(httpOption())
    .action(async (query: string, peers: string[], opts: { http?: string }) => {
      const base = daemonUrl(opts.http);
      const g = await resolveGroup(base, query);
      const { body } = await request<{ group: GroupJson }>(base, `/groups/${g.id}/add`, {
        method: "POST",
        body: { members: peers },
      });
      console.log(`@${printableLine(body.group.name)}: ${memberWords(body.group)}`);
    });
  group.command("leave")
    .description("Leave a group: its members are told, and you get no more of its messages; its history stays")
    .argument("<group>", "the group: @NAME, its name or its id")
    .addOption(httpOption())
    .action(async (query: string, opts: { http?: string }) => {
      const base = daemonUrl(opts.http);
      const g = await resolveGroup(base, query);
      await request<{ group: GroupJson; message: MessageJson }>(base, `/groups/${g.id}/leave`, { method: "POST" });
      console.log(`You left @${printableLine(g.name)}`);
    });
  group.command("list", { isDefault: true })
    .description("The groups you are in (with --all, also those you left)")
    .option("--all", "also the groups you left")
    .option("--json", "print them as JSON, as GET /groups does")
    .addOption(httpOption())
    .action(async (opts: { all?: boolean; json?: boolean; http?: string }) => {
      const groups = (await getJson<GroupJson[]>(daemonUrl(opts.http), "/groups")).filter((g) => opts.all || !g.left);
      if (opts.json) return console.log(JSON.stringify(groups, null, 2));
      if (groups.length === 0) {
        return console.log('No groups. Make one with "lanchat group create NAME PEER..."');
      }
      const rows = groups.map((g) => [`@${g.name}`, memberWords(g) + (g.left ? " (you left)" : ""), g.id.slice(0, 12)]);
      Deno.stdout.writeSync(new TextEncoder().encode(table(["GROUP", "MEMBERS", "ID"], rows)));
    });
  group.command("show")
    .description("One group's members")
    .argument("<group>", "the group: @NAME, its name or its id")
    .option("--json", "print it as JSON")
    .addOption(httpOption())
    .action(async (query: string, opts: { json?: boolean; http?: string }) => {
      const g = await resolveGroup(daemonUrl(opts.http), query);
      if (opts.json) return console.log(JSON.stringify(g, null, 2));
      console.log(`@${printableLine(g.name)} (${g.id})${g.left ? ", which you left" : ""}`);
      for (const m of g.members) {
        console.log(`  ${m.self ? "you" : printableLine(m.name)}${m.self ? "" : m.online ? "  online" : "  offline"}`);
      }
    });
}
