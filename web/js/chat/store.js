// @ts-check
// The messages of one chat, as the page knows them: ordering, optimistic copies, edits and the streaming merge.
// Pure data (no DOM, no network): the views render what it says changed, and node's test runner checks it.

/**
 * @typedef {object} Source  one passage an answer used (`rag_context.sources[i]`)
 * @property {number} [n]  the 1-based marker number the answer cites it by (`[n]`)
 * @property {string} document_name
 * @property {number | null} [page]
 * @property {string | null} [heading]
 * @property {number} score
 * @property {string} snippet
 *
 * @typedef {object} RagContext
 * @property {Source[]} [sources]
 * @property {number[]} [citations]  the marker numbers used in the content
 *
 * @typedef {object} Attachment  `message.attachment`: GET `url` (and `thumbnail_url` for images) with ?token=
 * @property {string} id
 * @property {string} filename
 * @property {string} content_type
 * @property {number} size_bytes
 * @property {string} url
 * @property {string | null} [thumbnail_url]
 *
 * @typedef {object} Message  a message in the server's shape, plus local fields (pending, failed, editing)
 * @property {string} id
 * @property {string} [session_id]
 * @property {string | null} [user_id]
 * @property {string | null} [username]  its author's (null for answers and for an erased account's messages)
 * @property {"user" | "assistant" | "system"} message_type
 * @property {string} [content_type]
 * @property {string} content
 * @property {string} [status]  "complete" | "streaming" | "cancelled" | "failed"
 * @property {string} created_at  ISO 8601
 * @property {string | null} [edited_at]
 * @property {boolean} [is_deleted]
 * @property {string | null} [client_id]
 * @property {string | null} [reply_to]
 * @property {RagContext | null} [rag_context]
 * @property {string | null} [audio_url]
 * @property {Attachment | null} [attachment]  the image or file the message carries
 * @property {boolean} [pending]  an optimistic copy, not yet acknowledged
 * @property {boolean} [editing]  its edit box is open
 *
 * @typedef {object} Change  what an update did, for the views
 * @property {Message} message  the message as it is now
 * @property {boolean} added  it is new to the store
 * @property {boolean} moved  its place in the order changed
 * @property {string[]} removed  ids dropped (optimistic copies the acknowledged message replaces)
 *
 * @typedef {object} AnswerEnd  an `assistant_response`, or the stored message after a resync
 * @property {Partial<Message>} [message]
 * @property {string} [content]
 * @property {string} [status]
 * @property {RagContext | null} [rag_context]
 */

/** @param {Message} a @param {Message} b */
function byPlace(a, b) {
  // optimistic copies (local clock) stay last until the server has placed them
  if (Boolean(a.pending) !== Boolean(b.pending)) return a.pending ? 1 : -1;
  return (Date.parse(a.created_at) || 0) - (Date.parse(b.created_at) || 0);
}

export class MessageStore {
  /** @param {string} sessionId */
  constructor(sessionId) {
    this.sessionId = sessionId;
    /** @type {Map<string, Message>} */
    this.byId = new Map();
    /** @type {string[]} ids, oldest first */
    this.order = [];
  }

  /** @param {string} id */
  get(id) {
    return this.byId.get(id);
  }

  /** @returns {Message[]} oldest first */
  list() {
    return this.order.map((id) => /** @type {Message} */ (this.byId.get(id)));
  }

  /** The id after `id` in the order (where its element goes before), or null when it is last. @param {string} id */
  nextId(id) {
    const index = this.order.indexOf(id);
    return index >= 0 && index + 1 < this.order.length ? this.order[index + 1] : null;
  }

  /** The answer being written, if any. */
  streaming() {
    return this.list().find((m) => m.message_type === "assistant" && m.status === "streaming");
  }

  /** The newest message the server has confirmed (`sync` catches up after it). */
  lastConfirmedId() {
    for (let i = this.order.length - 1; i >= 0; i--) {
      const m = /** @type {Message} */ (this.byId.get(this.order[i]));
      if (!m.pending) return m.id;
    }
    return null;
  }

  /**
   * Merge a message (new, changed, deleted) from the server or from this page.
   * @param {Partial<Message> & {id: string}} incoming
   * @returns {Change | null} null when it is not for this chat, or deleted before it was ever seen
   */
  upsert(incoming) {
    if (incoming.session_id && incoming.session_id !== this.sessionId) return null;
    const current = this.byId.get(incoming.id);
    if (!current && incoming.is_deleted) return null; // e.g. in a `sync` catch-up
    const message = /** @type {Message} */ ({ ...current, ...incoming });
    // a streaming answer keeps the text assembled from tokens until it ends
    if (current && current.status === "streaming" && incoming.status === "streaming") message.content = current.content;
    if (!("editing" in incoming)) message.editing = current ? Boolean(current.editing) : false;
    if (message.content === undefined) message.content = "";
    /** @type {string[]} */
    const removed = [];
    // the acknowledged version of a message sent from here replaces its optimistic copy
    if (incoming.client_id && !incoming.pending) {
      for (const [id, m] of this.byId) {
        if (m.pending && m.client_id === incoming.client_id && id !== incoming.id) removed.push(id);
      }
      for (const id of removed) this.remove(id);
    }
    this.byId.set(message.id, message);
    let moved = false;
    if (!current || current.created_at !== message.created_at || current.pending !== message.pending) {
      if (!current) this.order.push(message.id);
      const before = this.order.join();
      this.order.sort((a, b) => byPlace(/** @type {Message} */ (this.byId.get(a)), /** @type {Message} */ (this.byId.get(b))));
      moved = Boolean(current) && before !== this.order.join();
    }
    return { message, added: !current, moved, removed };
  }

  /** Forget a message (an optimistic copy whose send failed). @param {string} id */
  remove(id) {
    this.order = this.order.filter((x) => x !== id);
    return this.byId.delete(id);
  }

  /**
   * An optimistic copy of a message sent from this page, shown until its ack arrives.
   * @param {{content: string, clientId: string, userId: string | null, now?: number}} fields
   */
  addPending({ content, clientId, userId, now = Date.now() }) {
    return /** @type {Change} */ (
      this.upsert({
        id: `local-${clientId}`,
        session_id: this.sessionId,
        user_id: userId,
        message_type: "user",
        content_type: "text",
        content,
        client_id: clientId,
        created_at: new Date(now).toISOString(),
        pending: true,
      })
    );
  }

  /**
   * An answer starts: placed after its question even if this device's clock is behind the server's.
   * @param {string} id @param {string | null} replyTo @param {number} [now]
   * @returns {Change | null} null when it was already streaming
   */
  startStream(id, replyTo, now = Date.now()) {
    const existing = this.byId.get(id);
    if (existing) return existing.status === "streaming" ? null : this.upsert({ id, status: "streaming" });
    const question = replyTo ? this.byId.get(replyTo) : undefined;
    const after = question ? Date.parse(question.created_at) + 1 : 0;
    return this.upsert({
      id,
      session_id: this.sessionId,
      message_type: "assistant",
      content_type: "text",
      content: "",
      status: "streaming",
      reply_to: replyTo,
      created_at: new Date(Math.max(now, after || 0)).toISOString(),
    });
  }

  /**
   * The assembled text of a streaming answer grew.
   * @param {string} id @param {string} text
   * @returns {Message | null} null when the answer is unknown or no longer streaming
   */
  streamText(id, text) {
    const m = this.byId.get(id);
    if (m?.status !== "streaming") return null;
    m.content = text;
    return m;
  }

  /** The answer ended: its final text, status and sources. @param {string} id @param {AnswerEnd} response */
  endStream(id, response) {
    const stored = response.message || {};
    return this.upsert({
      ...stored,
      id,
      content: response.content ?? stored.content ?? this.byId.get(id)?.content ?? "",
      status: response.status || stored.status,
      rag_context: response.rag_context ?? stored.rag_context,
    });
  }
}
