// @ts-check
// The chat view: history over REST, then live over /chat/<id>. It owns the open session, its connection and its
// message store, and wires them to the views (header, message list, composer, microphone, playback).

import { api, audioUrl, storedAuth } from "../api.js";
import { MessageStore } from "../chat/store.js";
import { ChatConnection, newClientId } from "../socket.js";
import { Composer } from "./composer.js";
import { $, h, toast } from "./dom.js";
import { ChatHeader, setBanner, showConnection } from "./header.js";
import { MessageList } from "./messages.js";
import { Microphone } from "./microphone.js";
import { Playback } from "./playback.js";
import { Room } from "./room.js";
import { TypingLine } from "./typing.js";

/**
 * @typedef {import("../api.js").Session} Session
 * @typedef {import("../chat/store.js").Message} Message
 * @typedef {import("../chat/store.js").Change} Change
 * @typedef {import("../socket.js").ChatView} ChatView
 */

/** Socket errors the page says nothing more about: the ack already did (busy) or nothing went wrong (no_speech). */
const QUIET_ERRORS = new Set(["busy", "no_speech"]);

/** @param {{code?: string, message?: string, event?: string, retry_after?: number}} error */
function describeError(error) {
  const what = error.event === "audio_chunk" ? "Voice" : error.event ? `“${error.event}”` : "";
  const retry = error.retry_after ? ` Try again in ${Math.ceil(error.retry_after)} s.` : "";
  return `${what ? `${what}: ` : ""}${error.message || error.code}${retry}`;
}

/**
 * @param {{me: {id: string | null}, onSessionChanged: (session: Session) => void, onLeft: () => void,
 *          onExpired: () => void}} options
 */
export function setupChat({ me, onSessionChanged, onLeft, onExpired }) {
  /** @type {Session | null} */
  let session = null;
  /** @type {ChatConnection | null} */
  let connection = null;
  let store = new MessageStore("");
  let generation = 0; // bumps on every open(), so stale async work is dropped
  let speech = { stt: true, tts: true }; // what the server can do (GET /speech/status)
  const typing = new TypingLine(() => Boolean(store.streaming()), me);
  const room = new Room({
    me,
    onLeft() {
      closeChat();
      onLeft();
      toast("You left the chat.");
    },
    onMembers: () => {
      for (const m of store.list()) messages.refresh(m.id); // authors are named once the chat is shared
    },
  });
  /** The open chat takes my messages (not archived, and I am not a viewer there). */
  const writable = () => Boolean(session && !session.is_archived && session.role !== "viewer");

  const playback = new Playback((id) => messages.refresh(id));
  const messages = new MessageList({
    list: $("#messages"),
    announcer: $("#announcer"),
    me,
    playback,
    can: { act: () => Boolean(session), write: writable, tts: () => speech.tts, shared: () => room.shared() },
    actions: {
      setEditing: (message, editing) => apply(store.upsert({ id: message.id, editing })),
      async saveEdit(message, content) {
        try {
          const ack = await call("edit_message", { message_id: message.id, content });
          apply(store.upsert({ ...ack.message, editing: false }));
        } catch (err) {
          toast(`Could not edit: ${/** @type {Error} */ (err).message}`, "error");
        }
      },
      async remove(message) {
        try {
          apply(store.upsert((await call("delete_message", { message_id: message.id })).message));
        } catch (err) {
          toast(`Could not delete: ${/** @type {Error} */ (err).message}`, "error");
        }
      },
      async speak(message) {
        try {
          const reply = await api.tts(message.id);
          playback.play(message.id, audioUrl(reply.audio_url));
        } catch (err) {
          const e = /** @type {{code?: string, message: string}} */ (err);
          toast(
            e.code === "tts_unavailable" ? "Speech output is not available on this server." : `Could not read aloud: ${e.message}`,
            "error",
          );
        }
      },
    },
  });
  const composer = new Composer({
    busy: () => Boolean(store.streaming()),
    send,
    async stop() {
      const streaming = store.streaming();
      try {
        await call("stop_generation", streaming && !streaming.id.startsWith("local") ? { message_id: streaming.id } : {});
      } catch (err) {
        toast(`Could not stop: ${/** @type {Error} */ (err).message}`, "error");
      }
    },
    typing: (isTyping) => connection?.connected && connection.emit("typing", { is_typing: isTyping }),
  });
  const microphone = new Microphone({
    canRecord: () => (store.streaming() ? "Wait for the answer to finish, or press Stop." : null),
    onMessage: (message) => apply(store.upsert(message)),
  });
  const header = new ChatHeader({
    async rename(title) {
      if (!session) return;
      changed(await api.updateSession(session.id, { title }));
    },
    async archive() {
      if (!session) return;
      try {
        const archived = await api.archiveSession(session.id);
        onSessionChanged(archived);
        toast("Chat archived. Find it under “Show archived”.");
        await open(archived);
      } catch (err) {
        toast(`Could not archive: ${/** @type {Error} */ (err).message}`, "error");
      }
    },
    async restore() {
      if (!session) return;
      try {
        const restored = await api.updateSession(session.id, { is_archived: false });
        onSessionChanged(restored);
        await open(restored);
      } catch (err) {
        toast(`Could not restore: ${/** @type {Error} */ (err).message}`, "error");
      }
    },
    async autoSpeak(on) {
      if (!session) return;
      changed(await api.updateSession(session.id, { speech_config: { ...session.speech_config, auto_tts: on } }));
    },
  });

  /** @param {string} event @param {object} data @param {number} [timeoutMs] */
  function call(event, data, timeoutMs) {
    if (!connection) return Promise.reject(new Error("not connected"));
    return connection.call(event, data, timeoutMs);
  }

  /** Show what a store update did. @param {Change | null} change */
  function apply(change) {
    if (!change) return;
    messages.apply(change, store.nextId(change.message.id));
    composer.setStreaming(Boolean(store.streaming()));
    typing.render();
  }

  /** @param {Session} updated */
  function changed(updated) {
    session = updated;
    header.show(updated, speech.tts);
    onSessionChanged(updated);
  }

  /**
   * A message with an attachment goes over REST (multipart, with upload progress); its answer streams over the socket.
   * @param {string} content @param {File} file @param {(fraction: number) => void} progress
   * @returns {Promise<boolean>}
   */
  async function sendWithFile(content, file, progress) {
    if (!session) return false;
    try {
      const message = await api.sendAttachment(session.id, file, content, newClientId(), progress);
      apply(store.upsert(message));
      return true;
    } catch (err) {
      const e = /** @type {{code?: string, message: string}} */ (err);
      toast(
        e.code === "busy" ? "The assistant is still answering: wait, or press Stop, then send again." : `Not sent: ${e.message}`,
        "error",
      );
      return false;
    }
  }

  /** @param {string} content @param {File | null} file @param {(fraction: number) => void} progress @returns {Promise<boolean>} */
  async function send(content, file, progress) {
    if (!connection || !session || !writable()) return false;
    if (file) return sendWithFile(content, file, progress);
    const clientId = newClientId();
    const pending = store.addPending({ content, clientId, userId: me.id });
    apply(pending);
    try {
      const ack = await call("user_message", { content, content_type: "text", client_id: clientId }, 30000);
      apply(store.upsert({ ...ack.message, pending: false }));
      if (ack.session) view.sessionUpdated(ack.session); // the sender's session_updated comes in its ack
      return true;
    } catch (err) {
      store.remove(pending.message.id);
      messages.drop(pending.message.id);
      const e = /** @type {{code?: string, message: string}} */ (err);
      toast(
        e.code === "busy" ? "The assistant is still answering: wait, or press Stop, then send again." : `Not sent: ${e.message}`,
        "error",
      );
      return false;
    }
  }

  // ---------- the view's side of the connection ----------
  /** @type {ChatView} */
  const view = {
    state: (state, detail) => showConnection(state, detail, () => connection?.socket.connect()),
    upsert: (message) => apply(store.upsert(message)),
    streamStart: (id, replyTo) => apply(store.startStream(id, replyTo)),
    streamText(id, text) {
      const message = store.streamText(id, text);
      if (message) messages.streamText(message);
    },
    streamEnd(id, response) {
      const change = store.endStream(id, response);
      apply(change);
      typing.set("assistant", false);
      if (change && change.message.status === "complete") messages.announce(change.message);
    },
    typing: (userId, isTyping, username) => typing.set(userId, isTyping, username),
    presence: (users) => room.presence(users),
    sessionUpdated(updated) {
      if (!session || updated.id !== session.id) return;
      changed({ ...session, ...updated });
    },
    transcript: (kind, data) => microphone.transcript(kind, data),
    ttsReady(data) {
      if (header.autoSpeak.checked) playback.play(data.message_id, audioUrl(data.audio_url));
    },
    error(error) {
      // refusals of events this page awaited were handled where they were sent (socket.js keeps those away)
      if (!error || QUIET_ERRORS.has(error.code || "")) return;
      toast(describeError(error), "error");
    },
    expired: onExpired,
    lastMessageId: () => store.lastConfirmedId(),
  };

  // ---------- open / close ----------
  function close() {
    generation += 1;
    playback.reset();
    microphone.detach();
    if (connection) connection.close();
    connection = null;
    typing.clear();
    room.clear();
    store = new MessageStore("");
    messages.clear();
    setBanner(null);
    showConnection("idle");
    composer.setStreaming(false);
  }

  /** @param {Session} next */
  async function open(next) {
    close();
    const mine = generation;
    session = next;
    store = new MessageStore(next.id);
    $("#empty-state").hidden = true;
    $("#chat-pane").hidden = false;
    header.endRename();
    header.show(next, speech.tts);
    composer.show(
      writable(),
      next.role === "viewer" && !next.is_archived ? "You are a viewer in this chat: you can read it, not write to it." : undefined,
    );
    room.show(next);
    const list = $("#messages");
    list.append(h("li.loading", {}, "Loading messages…"));
    /** @type {Message[]} */
    let history;
    try {
      history = await api.history(next.id);
    } catch (err) {
      if (mine !== generation) return;
      list.replaceChildren(h("li.empty-note", {}, `Could not load the messages: ${/** @type {Error} */ (err).message}`));
      return;
    }
    if (mine !== generation) return;
    list.replaceChildren();
    for (const message of history) apply(store.upsert(message));
    if (!history.length) list.append(firstHint());
    messages.scrollToEnd(true);
    if (next.is_archived) {
      showConnection("readonly");
      return;
    }
    const auth = storedAuth();
    connection = new ChatConnection(next.id, auth ? auth.token : "", view);
    for (const m of history) if (m.message_type === "assistant" && m.status === "streaming") connection.follow(m.id);
    microphone.attach(connection);
    composer.focus();
  }

  /** What to ask in a chat with no messages yet. */
  function firstHint() {
    return h(
      "li.empty-note.first-hint",
      {},
      h("p", {}, "Ask a question to start: answers cite the documents you uploaded, with links to each passage."),
      h("p.muted.small-text", {}, "Enter sends · Shift+Enter adds a line · Escape stops an answer · hold the microphone to talk"),
    );
  }

  function closeChat() {
    close();
    session = null;
    $("#chat-pane").hidden = true;
    $("#empty-state").hidden = false;
  }

  return {
    open,
    /** Disable what the server cannot do, saying why. @param {any} status  GET /speech/status */
    setSpeech(status) {
      speech = { stt: Boolean(status.stt?.available), tts: Boolean(status.tts?.available) };
      if (!speech.stt) {
        microphone.disable(`Speech input is unavailable on this server${status.stt?.reason ? `: ${status.stt.reason}` : ""}`);
      }
      if (session) {
        header.show(session, speech.tts);
        for (const m of store.list()) messages.refresh(m.id);
      }
    },
    close: closeChat,
    get sessionId() {
      return session ? session.id : null;
    },
  };
}
