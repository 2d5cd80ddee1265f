// Files: transfers of the open conversation (progress, Accept / Refuse) and sending picked or dropped files.
import { printableLine } from "./text.js";
import { $, alertLine, api, el, state } from "./core.js";

/**
 * Keeps what is known of a transfer, unless it is older than what is kept:
 * a list fetched before an event can answer after it (the page then showed
 * an accepted transfer as offered forever).
 */
export function keepTransfer(t) {
  const old = state.transfers.get(t.id);
  if (old && Date.parse(old.updatedAt) > Date.parse(t.updatedAt)) return;
  state.transfers.set(t.id, t);
}

/** Transfers of files sent to a group from this page, by group: one to each member, shown in the group. */
const toGroups = new Map();

export function renderTransfers() {
  const box = $("transfers");
  box.replaceChildren();
  const ofGroup = toGroups.get(state.current);
  for (const t of state.transfers.values()) {
    if (t.peer.id !== state.current && !ofGroup?.has(t.id)) continue;
    if (["done", "refused", "cancelled", "failed"].includes(t.state) && Date.now() - Date.parse(t.updatedAt) > 60_000) {
      continue;
    }
    const row = el("div", "transfer");
    const what = t.files === 1 ? printableLine(t.names[0] ?? "1 file") : `${t.files} files`;
    // Done means checked: by SHA-256 with lanchat peers, by size alone with IP Messenger users (it has no checksum).
    const checked = t.state === "done" ? (t.check === "size" ? ", size checked" : ", checked") : "";
    row.append(
      el(
        "span",
        "",
        `${t.direction === "in" ? "From" : "To"} ${printableLine(t.peer.name)}: ${what} — ${t.state}${checked}`,
      ),
    );
    const bar = el("progress");
    bar.max = Math.max(1, t.bytes);
    bar.value = t.transferred;
    row.append(bar);
    if (t.direction === "in" && t.state === "offered") {
      const accept = el("button", "", "Accept");
      accept.addEventListener("click", () => act(t.id, "accept"));
      const refuse = el("button", "", "Refuse");
      refuse.addEventListener("click", () => act(t.id, "refuse"));
      row.append(accept, refuse);
    }
    if (t.dir && t.state === "done") row.append(el("span", "", `saved in ${t.dir}`));
    if (t.error) row.append(el("span", "", t.error));
    box.append(row);
  }
}

/**
 * Offers files the user picked, dropped or pasted: each goes up to the daemon, which offers it like any file; in a
 * group, once, and the daemon offers it to each member (one transfer each, as `lanchat send-file @group` does),
 * members who are offline included (their offer waits until they are back).
 */
export async function sendFiles(files) {
  const to = state.current;
  if (!to) return;
  const group = state.kind === "group" ? to : undefined;
  for (const file of files) {
    const note = el("li", "gap", `Sending ${file.name} (${file.size} bytes)…`);
    $("messages").append(note);
    try {
      const res = await fetch(`/files/upload?to=${encodeURIComponent(to)}&name=${encodeURIComponent(file.name)}`, {
        method: "POST",
        body: file,
      });
      const answer = await res.json();
      if (!res.ok) throw new Error(answer.error ?? `${res.status}`);
      // To a group: `{group, transfers, failed?}`, a transfer per member and the members it could not be offered to.
      for (const t of group ? answer.transfers ?? [] : [answer]) {
        keepTransfer(t);
        if (!group) continue;
        if (!toGroups.has(group)) toGroups.set(group, new Set());
        toGroups.get(group).add(t.id);
      }
      const failed = (answer.failed ?? []).map((f) => `${printableLine(f.peer?.name ?? "?")}: ${f.error}`);
      if (failed.length === 0) note.remove();
      else note.textContent = `${file.name} not sent to ${failed.join("; ")}`;
      renderTransfers();
    } catch (e) {
      note.textContent = `${file.name} not sent: ${e.message}`;
    }
  }
}

export async function act(id, what) {
  try {
    const t = await api(`/transfers/${id}/${what}`, {});
    keepTransfer(t);
    renderTransfers();
  } catch (e) {
    alertLine(`${what}: ${e.message}`);
  }
}
