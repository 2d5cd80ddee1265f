// Groups: the dialog that makes one or adds people, and leaving.
import { printableLine } from "./text.js";
import { $, alertLine, api, el, state } from "./core.js";
import { loadGroups } from "./people.js";
import { openConversation } from "./conversation.js";

/** The dialog that makes a group (a name and people) or adds people to the open one. */
export function pickPeople(mode) {
  const g = state.groups.find((x) => x.id === state.current);
  const members = new Set(mode === "add" && g ? g.members.map((m) => m.id) : []);
  $("group-form").dataset.mode = mode;
  $("group-name-row").hidden = mode !== "create";
  $("group-name").required = mode === "create";
  $("group-dialog-title").textContent = mode === "create"
    ? "New group"
    : `Add people to @${printableLine(g?.name ?? "")}`;
  $("group-error").textContent = "";
  const list = $("group-people");
  list.replaceChildren();
  for (const p of state.peers.filter((p) => !members.has(p.id))) {
    const label = el("label");
    const box = el("input");
    box.type = "checkbox";
    box.value = p.id;
    label.append(box, document.createTextNode(` ${printableLine(p.name)}${p.state === "offline" ? " (offline)" : ""}`));
    list.append(el("li"));
    list.lastChild.append(label);
  }
  $("group-dialog").showModal();
}

export async function submitGroup(e) {
  if (e.submitter?.value === "cancel") return;
  e.preventDefault();
  const members = [...$("group-people").querySelectorAll("input:checked")].map((b) => b.value);
  try {
    if ($("group-form").dataset.mode === "create") {
      const r = await api("/groups", { name: $("group-name").value.trim(), members });
      $("group-dialog").close();
      await loadGroups();
      await openConversation(r.group.id, "group");
    } else {
      await api(`/groups/${state.current}/add`, { members });
      $("group-dialog").close();
      await loadGroups();
    }
  } catch (err) {
    $("group-error").textContent = err.message;
  }
}

export async function leaveGroup() {
  const g = state.groups.find((x) => x.id === state.current);
  if (!g || !confirm(`Leave @${printableLine(g.name)}? Its members are told; its history stays here.`)) return;
  try {
    await api(`/groups/${g.id}/leave`, {});
    await loadGroups();
  } catch (e) {
    alertLine(`Not left: ${e.message}`);
  }
}
