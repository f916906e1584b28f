// @ts-check
// One chat session's namespace (/chat/<id>): connection state, answers assembled by seq, resume with `sync`.

import { io } from "socket.io-client";
import { StreamAssembler } from "./stream.js";

export { StreamAssembler };

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const newClientId = uuid;

/**
 * @typedef {import("./chat/store.js").Message} Message
 * @typedef {import("./chat/store.js").AnswerEnd} AnswerEnd
 * @typedef {{code?: string, message?: string, event?: string, retry_after?: number, details?: unknown}} SocketError
 *
 * @typedef {object} ChatView  what a ChatConnection tells its chat view
 * @property {(state: string, detail?: string) => void} state  "connecting" | "connected" | "reconnecting" | "offline" | "refused"
 * @property {(message: Message) => void} upsert  a message (new or changed) from the server
 * @property {(id: string, replyTo: string | null) => void} streamStart  an answer starts
 * @property {(id: string, text: string) => void} streamText  the assembled text of an answer grew
 * @property {(id: string, response: AnswerEnd) => void} streamEnd  the answer ended (`assistant_response`, or the stored message after a resync)
 * @property {(userId: string, isTyping: boolean, username: string | null) => void} typing  another device, another member (or "assistant") types
 * @property {(users: {user_id: string, username: string, devices: number}[]) => void} presence  who is in the room
 * @property {(session: any) => void} sessionUpdated
 * @property {(kind: "partial" | "final", data: any) => void} transcript
 * @property {(data: {message_id: string, audio_url: string}) => void} ttsReady
 * @property {(error: SocketError) => void} error  an `error` event no awaited ack answers (e.g. a refused audio_chunk)
 * @property {() => void} expired  the token expired or was refused
 * @property {() => string | null} lastMessageId  the id of the newest message the view holds (for `sync`)
 */

/** The live side of a chat view. */
export class ChatConnection {
  /** @param {string} sessionId @param {string} token @param {ChatView} view */
  constructor(sessionId, token, view) {
    this.sessionId = sessionId;
    this.view = view;
    /** @type {Map<string, StreamAssembler>} answer id -> its text, while streaming */
    this.streams = new Map();
    /** @type {Map<string, number>} event -> calls awaiting their ack: their refusals are the caller's to show */
    this.awaiting = new Map();
    this.everConnected = false;
    this.closed = false;
    this.socket = io(`${location.origin}/chat/${sessionId}`, {
      auth: { token },
      transports: ["websocket"],
      forceNew: true, // one manager per chat view: closing it leaves nothing behind
      reconnectionDelay: 500,
      reconnectionDelayMax: 4000,
    });
    this.view.state("connecting");
    this._wire();
  }

  _wire() {
    const s = this.socket;
    s.on("connect", () => {
      this.everConnected = true;
      this.view.state("connected");
      this.resync(); // catch up on anything created between the REST history and this (re)connect
    });
    s.on("disconnect", (reason) => {
      if (this.closed) return;
      // "io server disconnect": the server closed the socket on purpose (e.g. auth_expired); no auto-retry
      if (reason === "io server disconnect") {
        this.view.state("offline", "The server closed the connection.");
        return;
      }
      this.view.state("reconnecting");
    });
    s.on("connect_error", (err) => {
      const code = err?.data?.code;
      if (code === "unauthorized" || code === "auth_revoked") {
        this.view.state("refused", code === "auth_revoked" ? "You were signed out." : "Your login has expired.");
        this.view.expired();
      } else if (code === "archived" || code === "not_found") {
        this.view.state("refused", code === "archived" ? "This chat is archived (read-only)." : "No such chat.");
      } else {
        this.view.state("reconnecting");
      }
    });
    s.io.on("reconnect_attempt", () => this.view.state("reconnecting"));

    s.on("message_created", ({ message }) => this.view.upsert(message));
    s.on("message_updated", ({ message }) => this.view.upsert(message));
    s.on("message_deleted", ({ message }) => this.view.upsert(message));
    s.on("session_updated", ({ session }) => this.view.sessionUpdated(session));
    s.on("typing_indicator", ({ user_id, is_typing, username }) => this.view.typing(user_id, is_typing, username ?? null));
    s.on("presence", ({ users }) => this.view.presence(users));
    s.on("assistant_start", ({ message_id, reply_to }) => {
      if (!this.streams.has(message_id)) this.streams.set(message_id, new StreamAssembler());
      this.view.streamStart(message_id, reply_to);
    });
    s.on("assistant_token", ({ message_id, seq, delta }) => this._token(message_id, seq, delta));
    s.on("assistant_response", (response) => this._end(response.message_id, response));
    s.on("transcript_partial", (data) => this.view.transcript("partial", data));
    s.on("transcript_final", (data) => this.view.transcript("final", data));
    s.on("tts_ready", (data) => this.view.ttsReady(data));
    s.on("error", (/** @type {SocketError} */ error) => {
      if (error && (error.code === "auth_expired" || error.code === "auth_revoked")) {
        this.view.state("refused", error.code === "auth_revoked" ? "You were signed out." : "Your login has expired.");
        this.view.expired();
        return;
      }
      if (error?.code === "removed") {
        this.view.state("refused", "You were removed from this chat.");
        return;
      }
      // the server sends a refusal both as the ack and as this event: an awaited ack already tells its caller
      if (error?.event && this.awaiting.get(error.event)) return;
      this.view.error(error);
    });
  }

  /** @param {string} messageId @param {number} seq @param {string} delta */
  _token(messageId, seq, delta) {
    let stream = this.streams.get(messageId);
    if (!stream) {
      // a token before (or without) its assistant_start, e.g. right after a reconnect
      stream = new StreamAssembler();
      this.streams.set(messageId, stream);
      this.view.streamStart(messageId, null);
    }
    if (stream.apply(seq, delta)) this.view.streamText(messageId, stream.text);
  }

  /** @param {string} messageId @param {AnswerEnd} response */
  _end(messageId, response) {
    this.streams.delete(messageId);
    this.view.streamEnd(messageId, response);
  }

  /** Follow an answer that was already streaming when the view loaded (history shows it as `streaming`). @param {string} messageId */
  follow(messageId) {
    if (!this.streams.has(messageId)) this.streams.set(messageId, new StreamAssembler());
  }

  /**
   * After a (re)connect: fetch the messages created while away, and for every answer that was streaming,
   * the deltas after the last applied seq. Live tokens that arrive meanwhile are merged by seq.
   */
  async resync() {
    const after = this.view.lastMessageId();
    let request = after ? { after_message_id: after } : {};
    try {
      for (;;) {
        // `sync` answers a page at a time: follow the cursor to the newest message
        const ack = await this.call("sync", request);
        for (const message of ack.messages || []) {
          this.view.upsert(message);
          if (message.message_type === "assistant" && message.status === "streaming" && !this.streams.has(message.id)) {
            this.streams.set(message.id, new StreamAssembler());
            this.view.streamStart(message.id, message.reply_to);
          }
        }
        if (!ack.has_more) break;
        request = { after_message_id: ack.next_after_message_id };
      }
      await Promise.all([...this.streams.entries()].map(([id, stream]) => this._resume(id, stream)));
    } catch {
      if (this.socket.connected) this.view.error({ code: "sync_failed", message: "Could not catch up after reconnecting." });
    }
  }

  /** @param {string} messageId @param {StreamAssembler} stream */
  async _resume(messageId, stream) {
    // the text so far was built from seq 1..lastSeq; ask for what came after
    const ack = await this.call("sync", { message_id: messageId, last_seq: stream.lastSeq });
    const { status, deltas, message } = ack.stream;
    if (this.streams.get(messageId) !== stream) return; // assistant_response arrived meanwhile
    let grew = false;
    for (const { seq, delta } of deltas) grew = stream.apply(seq, delta) || grew;
    if (grew) this.view.streamText(messageId, stream.text);
    if (status !== "streaming") this._end(messageId, { message, content: message.content, status, rag_context: message.rag_context });
  }

  /**
   * Emit with an ack; rejects on a refused event (`{code, message}`) or a timeout.
   * @param {string} event @param {object} data @param {number} [timeoutMs]
   * @returns {Promise<any>} the ack
   */
  async call(event, data, timeoutMs = 15000) {
    let ack;
    this.awaiting.set(event, (this.awaiting.get(event) || 0) + 1);
    try {
      ack = await this.socket.timeout(timeoutMs).emitWithAck(event, data);
    } catch {
      throw { code: "timeout", message: "The server did not answer in time." };
    } finally {
      this.awaiting.set(event, (this.awaiting.get(event) || 1) - 1);
    }
    if (!ack?.ok) throw ack?.error || { code: "unknown", message: "refused" };
    return ack;
  }

  /** Fire and forget (binary audio chunks); refusals come back as `error` events, shown by the view. @param {string} event @param {unknown} data */
  emit(event, data) {
    this.socket.emit(event, data);
  }

  get connected() {
    return this.socket.connected;
  }

  close() {
    this.closed = true;
    this.socket.removeAllListeners();
    this.socket.disconnect();
  }
}
