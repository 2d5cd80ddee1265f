/**
 * The daemon's database, `<data-dir>/lanchat.db`: {@link Store}, the one
 * thing the node layer opens, over rooms that each keep one group of tables
 * and share one connection (connection.ts: the lock, the prepared
 * statements, the one group commit, the damage state), as syncthing's
 * `internal/db/sqlite` keeps one file per concern over one connection:
 *
 * - schema.ts: the tables and the migrations, in order;
 * - messages.ts: outgoing and incoming messages, the outbox, held ones, sequence numbers;
 * - delivery_status.ts: sent / delivered / failed, written behind;
 * - read_marks.ts: when messages were read;
 * - history.ts: pages of history; search.ts: the search index;
 * - transfers.ts, peers.ts (peers and pins), groups.ts, settings.ts.
 *
 * Every name is exported from here too, so importers need not know the rooms.
 *
 * @module
 */
import { Connection } from "./connection.ts";
import { DeliveryStatus } from "./delivery_status.ts";
import { Groups } from "./groups.ts";
import { History, type HistoryQuery } from "./history.ts";
import { type HeldMessage, Messages, type OutgoingRow, type Release } from "./messages.ts";
import { type KnownPeer, Peers, type Pin } from "./peers.ts";
import { ReadMarks } from "./read_marks.ts";
import { SearchIndex, type SearchResult } from "./search.ts";
import { Settings } from "./settings.ts";
import type { StoredMessage } from "./stored_message.ts";
import { Thread, type ThreadChanges } from "./thread.ts";
import { type TransferRow, Transfers } from "./transfers.ts";

export { DataDirInUseError, StoreError, WAL_CHECKPOINT_PAGES, WAL_FILE_LIMIT } from "./connection.ts";
export { type HistoryQuery, MAX_PAGE } from "./history.ts";
export type { HeldMessage, OutgoingRow, Release } from "./messages.ts";
export type { KnownPeer, Pin } from "./peers.ts";
export { SCHEMA_VERSION } from "./schema.ts";
export {
  MAX_SEARCH_PAGE,
  SEARCH_PARTITION,
  SEARCH_PARTITION_BITS,
  SEARCH_SCAN_LIMIT,
  type SearchResult,
  SHORT_SEARCH_WINDOW,
} from "./search.ts";
export type { MessageRef, StoredMessage } from "./stored_message.ts";
export { EDITED_PREFIX, type ThreadChanges, withoutEditedPrefix } from "./thread.ts";
export type { TransferRow } from "./transfers.ts";

/**
 * The daemon's database: one connection, one group commit and one damage
 * state, and a method for each thing the node layer stores or reads, each
 * handed to the room that keeps it (the documentation is there).
 */
export class Store {
  readonly #c: Connection;
  readonly #messages: Messages;
  readonly #status: DeliveryStatus;
  readonly #reads: ReadMarks;
  readonly #history: History;
  readonly #search: SearchIndex;
  readonly #transfers: Transfers;
  readonly #peers: Peers;
  readonly #groups: Groups;
  readonly #settings: Settings;
  readonly #thread: Thread;

  private constructor(c: Connection) {
    this.#c = c;
    this.#settings = new Settings(c);
    this.#history = new History(c);
    this.#search = new SearchIndex(c, this.#history);
    this.#messages = new Messages(c, this.#search);
    this.#thread = new Thread(c, this.#search);
    this.#status = new DeliveryStatus(c);
    this.#reads = new ReadMarks(c, this.#settings);
    this.#transfers = new Transfers(c);
    this.#peers = new Peers(c);
    this.#groups = new Groups(c);
    // Every commit and every read writes the status updates written behind first; a rollback may undo a partition.
    c.flush = () => this.#status.flush();
    c.rolledBack = () => this.#search.loadPartitions();
  }

  /**
   * Opens (creating if needed, mode 0600) and locks the database in `dir`,
   * bringing its schema up to date.
   *
   * @throws {DataDirInUseError} when another daemon holds it.
   */
  static async open(dir: string): Promise<Store> {
    return new Store(await Connection.open(dir));
  }

  // The connection: see connection.ts.

  get path(): string {
    return this.#c.path;
  }
  /** The schema version the database had, and how long bringing it up to date took, when it was older. */
  get upgraded(): { from: number; to: number; ms: number } | undefined {
    return this.#c.upgraded;
  }
  preparedStatements(): string[] {
    return this.#c.preparedStatements();
  }
  startGroupCommit(schedule: () => void): void {
    this.#c.startGroupCommit(schedule);
  }
  get uncommitted(): boolean {
    return this.#c.uncommitted;
  }
  commit(): void {
    this.#c.commit();
  }
  transaction<T>(what: string, fn: () => T): T {
    return this.#c.transaction(what, fn);
  }
  get damaged(): string | undefined {
    return this.#c.damaged;
  }
  damageAdvice(): string {
    return this.#c.damageAdvice();
  }
  onDamaged(fn: (what: string) => void): void {
    this.#c.onDamaged(fn);
  }
  markDamaged(what: string): void {
    this.#c.markDamaged(what);
  }
  noteError(e: unknown): void {
    this.#c.noteError(e);
  }
  tablesToCheck(): string[] {
    return this.#c.tablesToCheck();
  }
  quickCheck(table?: string): string[] {
    return this.#c.quickCheck(table);
  }
  checkpoint(): void {
    this.#c.checkpoint();
  }
  databaseBytes(): number {
    return this.#c.databaseBytes();
  }
  walBytes(): number {
    return this.#c.walBytes();
  }
  close(): void {
    this.#c.close();
  }

  // Messages: see messages.ts.

  insertOutgoing(m: Parameters<Messages["insertOutgoing"]>[0]): StoredMessage {
    return this.#messages.insertOutgoing(m);
  }
  insertOutgoingMany(ms: readonly OutgoingRow[]): StoredMessage[] {
    return this.#messages.insertOutgoingMany(ms);
  }
  copies(id: string): StoredMessage[] {
    return this.#messages.copies(id);
  }
  messageByPrefix(prefix: string): StoredMessage | undefined {
    return this.#messages.messageByPrefix(prefix);
  }
  outbox(peer?: string): StoredMessage[] {
    return this.#messages.outbox(peer);
  }
  outboxCounts(): Map<string, number> {
    return this.#messages.outboxCounts();
  }
  outboxPage(peer: string, afterSeq: number, limit: number): StoredMessage[] {
    return this.#messages.outboxPage(peer, afterSeq, limit);
  }
  hasMessage(id: string): boolean {
    return this.#messages.hasMessage(id);
  }
  message(id: string): StoredMessage | undefined {
    return this.#messages.message(id);
  }
  receiveUnordered(m: Parameters<Messages["receiveUnordered"]>[0]): StoredMessage {
    return this.#messages.receiveUnordered(m);
  }
  expectedSeq(peer: string): number {
    return this.#messages.expectedSeq(peer);
  }
  hold(m: HeldMessage): void {
    this.#messages.hold(m);
  }
  heldMessages(): HeldMessage[] {
    return this.#messages.heldMessages();
  }
  /**
   * Stores incoming messages (see messages.ts); in the same transaction,
   * applies the edits and deletions among them, or waiting for them
   * (thread.ts), and adds what that changed to `thread` if given. Returns
   * the messages stored (edits and deletions among them, with their `ref`).
   */
  release(
    peer: string,
    messages: Release[],
    nextExpected: number,
    now: number,
    encrypted?: boolean,
    thread?: ThreadChanges,
  ): StoredMessage[] {
    return this.#messages.release(peer, messages, nextExpected, now, encrypted, (stored) => {
      const changes = this.#thread.received(peer, stored);
      if (thread) {
        thread.updated.push(...changes.updated);
        thread.refused += changes.refused;
      }
    });
  }

  // Replies, edits and deletions: see thread.ts.

  /** A message of history (not an edit, deletion or group copy) by id. */
  shownMessage(id: string): StoredMessage | undefined {
    return this.#thread.shown(id);
  }
  /** A member's copy of a group message, by the id of the message as written to the group. */
  byGroupMessage(group: string, id: string): StoredMessage | undefined {
    return this.#thread.byGroupMessage(group, id);
  }
  /** Edits or deletes a message of this node's (its own transaction; the edit's message is stored apart). */
  amendOwn(id: string, kind: "edit" | "delete", text: string, at: number): StoredMessage {
    return this.#thread.amendOwn(id, kind, text, at);
  }
  nextIncarnation(): number {
    return this.#messages.nextIncarnation();
  }

  // Delivery status, written behind: see delivery_status.ts.

  markSent(id: string): void {
    this.#status.markSent(id);
  }
  markDelivered(id: string, at: number, rttMs: number, encrypted?: boolean): void {
    this.#status.markDelivered(id, at, rttMs, encrypted);
  }
  markFailed(id: string, error: string): void {
    this.#status.markFailed(id, error);
  }
  flush(): void {
    this.#status.flush();
  }

  // Read marks: see read_marks.ts.

  markReadIn(
    peer: string,
    upTo: number,
    at: number,
    unlessContaining: string,
    group?: string,
  ): ReturnType<ReadMarks["markReadIn"]> {
    return this.#reads.markReadIn(peer, upTo, at, unlessContaining, group);
  }
  markReadOut(peer: string, upToId: string, at: number): StoredMessage[] {
    return this.#reads.markReadOut(peer, upToId, at);
  }
  markReadOne(id: string, at: number): boolean {
    return this.#reads.markReadOne(id, at);
  }

  // History: see history.ts.

  history(q?: HistoryQuery): StoredMessage[] {
    return this.#history.history(q);
  }
  historyRange(q?: HistoryQuery): ReturnType<History["historyRange"]> {
    return this.#history.historyRange(q);
  }
  cursorAt(time: number): number {
    return this.#history.cursorAt(time);
  }
  lastCursor(): number {
    return this.#history.lastCursor();
  }

  // Search: see search.ts.

  search(q: Parameters<SearchIndex["search"]>[0]): SearchResult {
    return this.#search.search(q);
  }
  searchIndexProgress(): ReturnType<SearchIndex["searchIndexProgress"]> {
    return this.#search.searchIndexProgress();
  }
  indexForSearch(rows: number): ReturnType<SearchIndex["indexForSearch"]> {
    return this.#search.indexForSearch(rows);
  }

  // File transfers: see transfers.ts.

  saveTransfer(t: TransferRow): void {
    this.#transfers.saveTransfer(t);
  }
  transfers(): TransferRow[] {
    return this.#transfers.transfers();
  }
  saveTransferFiles(id: string, direction: string, files: { idx: number; json: string }[]): void {
    this.#transfers.saveTransferFiles(id, direction, files);
  }
  transferFiles(id: string, direction: string): { idx: number; json: string }[] {
    return this.#transfers.transferFiles(id, direction);
  }
  deleteTransfer(id: string, direction: string): void {
    this.#transfers.deleteTransfer(id, direction);
  }

  // Peers and pins: see peers.ts.

  rememberPeer(p: KnownPeer): void {
    this.#peers.rememberPeer(p);
  }
  knownPeers(): KnownPeer[] {
    return this.#peers.knownPeers();
  }
  pruneKnownPeers(seenBefore: number, keep: number): string[] {
    return this.#peers.pruneKnownPeers(seenBefore, keep);
  }
  pins(): Pin[] {
    return this.#peers.pins();
  }
  savePins(pins: Pin[]): void {
    this.#peers.savePins(pins);
  }
  deletePin(id: string): void {
    this.#peers.deletePin(id);
  }

  // Groups and settings: see groups.ts, settings.ts.

  groups(): { id: string; json: string }[] {
    return this.#groups.groups();
  }
  saveGroup(id: string, json: string, at: number): void {
    this.#groups.saveGroup(id, json, at);
  }
  setting(key: string): string | undefined {
    return this.#settings.setting(key);
  }
  saveSetting(key: string, value: string): void {
    this.#settings.saveSetting(key, value);
  }
}
