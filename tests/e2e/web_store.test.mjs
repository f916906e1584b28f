// The web client's message store under node's test runner: ordering, optimistic copies, edits, the streaming merge.
import assert from "node:assert/strict";
import { test } from "node:test";
import { MessageStore } from "../../web/js/chat/store.js";
import { relativeTime } from "../../web/js/time.js";

const SESSION = "s1";
const at = (seconds) => new Date(Date.UTC(2026, 0, 1, 12, 0, seconds)).toISOString();
const msg = (id, seconds, fields = {}) => ({
  id,
  session_id: SESSION,
  message_type: "user",
  content: id,
  created_at: at(seconds),
  status: "complete",
  ...fields,
});
const ids = (store) => store.list().map((m) => m.id);

test("messages are kept in server time order, whatever order they arrive in", () => {
  const store = new MessageStore(SESSION);
  for (const [id, s] of [["b", 2], ["c", 3], ["a", 1]]) store.upsert(msg(id, s));
  assert.deepEqual(ids(store), ["a", "b", "c"]);
  assert.equal(store.nextId("a"), "b");
  assert.equal(store.nextId("c"), null);
});

test("a message of another chat, or deleted before it was seen, is ignored", () => {
  const store = new MessageStore(SESSION);
  assert.equal(store.upsert(msg("x", 1, { session_id: "other" })), null);
  assert.equal(store.upsert(msg("y", 1, { is_deleted: true })), null);
  assert.deepEqual(ids(store), []);
  store.upsert(msg("z", 1));
  const change = store.upsert({ id: "z", is_deleted: true });
  assert.equal(change?.message.is_deleted, true);
  assert.equal(change?.message.content, "z");
});

test("an optimistic copy stays last until its ack replaces it, then takes the server's place", () => {
  const store = new MessageStore(SESSION);
  store.upsert(msg("old", 5));
  // this device's clock is behind the server's: the copy would sort first by time, but stays last
  const pending = store.addPending({ content: "hello", clientId: "c-1", userId: "u", now: Date.parse(at(0)) });
  assert.equal(pending.message.id, "local-c-1");
  assert.equal(pending.message.pending, true);
  store.upsert(msg("other-device", 6));
  assert.deepEqual(ids(store), ["old", "other-device", "local-c-1"]);
  assert.equal(store.lastConfirmedId(), "other-device"); // sync never starts from an optimistic copy
  const ack = store.upsert({ ...msg("m-1", 7, { content: "hello", client_id: "c-1" }), pending: false });
  assert.deepEqual(ack?.removed, ["local-c-1"]);
  assert.deepEqual(ids(store), ["old", "other-device", "m-1"]);
  // the same message again (message_created after the ack) changes nothing
  const again = store.upsert(msg("m-1", 7, { content: "hello", client_id: "c-1" }));
  assert.deepEqual(again?.removed, []);
  assert.equal(again?.added, false);
  assert.equal(again?.moved, false);
});

test("a failed send forgets its optimistic copy", () => {
  const store = new MessageStore(SESSION);
  const pending = store.addPending({ content: "hi", clientId: "c-2", userId: "u" });
  assert.equal(store.remove(pending.message.id), true);
  assert.deepEqual(ids(store), []);
});

test("edits: the edit box stays open across updates until closed, and the edited text replaces the old", () => {
  const store = new MessageStore(SESSION);
  store.upsert(msg("m", 1, { content: "first" }));
  store.upsert({ id: "m", editing: true });
  assert.equal(store.upsert(msg("m", 1, { content: "first" }))?.message.editing, true); // a broadcast meanwhile
  const saved = store.upsert({ ...msg("m", 1, { content: "second", edited_at: at(9) }), editing: false });
  assert.equal(saved?.message.content, "second");
  assert.equal(saved?.message.editing, false);
  assert.equal(saved?.moved, false);
});

test("a streaming answer keeps the text assembled from tokens until it ends", () => {
  const store = new MessageStore(SESSION);
  store.upsert(msg("q", 10));
  // the answer starts; this device's clock is behind the server's, yet it goes after its question
  const start = store.startStream("a", "q", Date.parse(at(0)));
  assert.equal(start?.message.status, "streaming");
  assert.deepEqual(ids(store), ["q", "a"]);
  assert.equal(store.startStream("a", "q"), null); // already streaming
  assert.equal(store.streamText("a", "Hel")?.content, "Hel");
  store.upsert({ id: "a", session_id: SESSION, status: "streaming", content: "" }); // a stale copy (sync)
  assert.equal(store.get("a")?.content, "Hel");
  assert.equal(store.streaming()?.id, "a");
  const sources = [{ n: 1, document_name: "d.md", score: 0.9, snippet: "s" }];
  const end = store.endStream("a", { content: "Hello [1]", status: "complete", rag_context: { sources, citations: [1] } });
  assert.equal(end?.message.content, "Hello [1]");
  assert.deepEqual(end?.message.rag_context?.citations, [1]);
  assert.equal(store.streaming(), undefined);
  assert.equal(store.streamText("a", "late"), null); // tokens after the end change nothing
  assert.equal(store.get("a")?.content, "Hello [1]");
});

test("an answer that ended while away ends from the stored message", () => {
  const store = new MessageStore(SESSION);
  store.startStream("a", null, Date.parse(at(1)));
  store.streamText("a", "par");
  const end = store.endStream("a", { message: { content: "partial", status: "cancelled" } });
  assert.equal(end?.message.content, "partial");
  assert.equal(end?.message.status, "cancelled");
});

test("relative times", () => {
  const now = Date.parse(at(0));
  assert.equal(relativeTime(at(0), now + 10_000), "just now");
  assert.equal(relativeTime(at(0), now + 5 * 60_000), "5 min ago");
  assert.equal(relativeTime(at(0), now + 2 * 3600_000), "2 h ago");
  assert.equal(relativeTime(at(0), now + 3 * 86400_000), "3 d ago");
  assert.match(relativeTime(at(0), now + 30 * 86400_000), /Jan/);
  assert.equal(relativeTime("", now), "");
});
