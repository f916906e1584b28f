// @ts-check
// The message list: one <li> per message, answers as Markdown that streams in place (with their sources,
// sources.js), and the actions on each message.

import { audioUrl } from "../api.js";
import { MarkdownView } from "../markdown/render.js";
import { armed, h, icon, timeAgo } from "./dom.js";
import { linkCitations, openSource, sourcesBlock } from "./sources.js";

/**
 * @typedef {import("../chat/store.js").Message} Message
 * @typedef {import("../chat/store.js").Change} Change
 * @typedef {import("../chat/store.js").Attachment} Attachment
 * @typedef {import("./playback.js").Playback} Playback
 *
 * @typedef {object} MessageActions
 * @property {(message: Message, editing: boolean) => void} setEditing
 * @property {(message: Message, content: string) => Promise<void>} saveEdit
 * @property {(message: Message) => Promise<void>} remove
 * @property {(message: Message) => void} speak
 *
 * @typedef {object} Permissions  what the user may do now
 * @property {() => boolean} act  a chat is open
 * @property {() => boolean} write  the chat is not archived
 * @property {() => boolean} tts  the server can read answers aloud
 * @property {() => boolean} shared  others may be in the chat: messages name their authors
 */

/** @param {number} bytes */
const sizeOf = (bytes) => (bytes < 1024 * 1024 ? `${Math.max(1, Math.round(bytes / 1024))} KB` : `${(bytes / 1048576).toFixed(1)} MB`);

/** An image's thumbnail (opens the full image) or a file's chip (downloads it). @param {Attachment} a */
export function attachmentView(a) {
  const url = audioUrl(a.url);
  if (a.thumbnail_url) {
    return h(
      "a.attachment-image",
      { href: url, target: "_blank", rel: "noopener", title: `Open ${a.filename}`, dataset: { attachment: a.id } },
      h("img", { src: audioUrl(a.thumbnail_url), alt: a.filename, loading: "lazy" }),
    );
  }
  return h(
    "a.attachment-file",
    { href: url, download: a.filename, title: `Download ${a.filename}`, dataset: { attachment: a.id } },
    icon("file"),
    h("span.attachment-name", {}, a.filename),
    h("span.muted", {}, sizeOf(a.size_bytes)),
  );
}

export class MessageList {
  /**
   * @param {{list: HTMLElement, announcer: HTMLElement, me: {id: string | null}, actions: MessageActions,
   *          playback: Playback, can: Permissions}} options
   */
  constructor({ list, announcer, me, actions, playback, can }) {
    this.list = list;
    this.announcer = announcer;
    this.me = me;
    this.actions = actions;
    this.playback = playback;
    this.can = can;
    /** @type {Map<string, MarkdownView>} answers' rendered text, kept across re-renders of their <li> */
    this.answers = new Map();
    /** @type {Map<string, Message>} what each <li> shows */
    this.shown = new Map();
    list.addEventListener("click", (event) => {
      const link = /** @type {Element} */ (event.target).closest("a.cite");
      if (!link) return;
      event.preventDefault();
      const { message, cite } = /** @type {HTMLElement} */ (link).dataset;
      const li = this.item(message || "");
      if (li) openSource(li, message || "", Number(cite));
    });
    // Escape closes an open list of sources, back to its summary
    list.addEventListener("keydown", (event) => {
      const details = /** @type {Element} */ (event.target).closest("details.sources[open]");
      if (event.key !== "Escape" || !details) return;
      details.removeAttribute("open");
      /** @type {HTMLElement} */ (details.querySelector("summary")).focus();
    });
  }

  /**
   * The attachment shown in this chat that a source's document comes from: a file by its name, an image's
   * text as `<name>.txt`. @param {string} documentName @returns {Attachment | null}
   */
  attachmentNamed(documentName) {
    for (const m of this.shown.values()) {
      const a = m.attachment;
      if (a && !m.is_deleted && (a.filename === documentName || `${a.filename}.txt` === documentName)) return a;
    }
    return null;
  }

  /** @param {string} id @returns {HTMLElement | null} */
  item(id) {
    return this.list.querySelector(`li[data-id="${CSS.escape(id)}"]`);
  }

  /**
   * Show what an update did: new, changed, moved or replaced messages.
   * @param {Change} change @param {string | null} nextId  the id of the message after it
   */
  apply(change, nextId) {
    if (change.added) this.list.querySelector(".first-hint")?.remove();
    for (const id of change.removed) this.drop(id);
    if (change.moved) this.item(change.message.id)?.remove();
    this.place(change.message, nextId);
    this.scrollToEnd(change.added);
  }

  /** @param {Message} message @param {string | null} [nextId] */
  place(message, nextId = null) {
    this.shown.set(message.id, message);
    const existing = this.item(message.id);
    const el = this.render(message);
    if (existing) {
      // an expanded list of sources stays expanded across re-renders
      if (existing.querySelector("details.sources[open]")) el.querySelector("details.sources")?.setAttribute("open", "");
      existing.replaceWith(el);
    } else {
      const next = nextId ? this.item(nextId) : null;
      this.list.insertBefore(el, next);
    }
  }

  /** Re-render a message as it is (playback or permissions changed). @param {string} id */
  refresh(id) {
    const message = this.shown.get(id);
    if (message) this.place(message);
  }

  /** @param {string} id */
  drop(id) {
    this.item(id)?.remove();
    this.shown.delete(id);
    this.answers.delete(id);
  }

  /** A streaming answer's text grew: only its Markdown view changes. @param {Message} message */
  streamText(message) {
    this.shown.set(message.id, message);
    const view = this.answers.get(message.id);
    if (!view?.el.isConnected) return this.place(message);
    view.set(message.content, true);
  }

  /** Say a finished answer once to screen readers (the list itself is not a live region). @param {Message} message */
  announce(message) {
    const text = this.answers.get(message.id)?.el.textContent?.trim() || message.content;
    if (text) this.announcer.textContent = `Assistant: ${text}`;
  }

  clear() {
    this.list.replaceChildren();
    this.answers.clear();
    this.shown.clear();
  }

  /** @param {boolean} [force] */
  scrollToEnd(force = false) {
    const list = this.list;
    const nearEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 120;
    if (force || nearEnd) list.scrollTop = list.scrollHeight;
  }

  /** @param {Message} message */
  content(message) {
    if (message.message_type !== "assistant") return h("div.content", {}, message.content);
    let view = this.answers.get(message.id);
    if (!view) {
      view = new MarkdownView();
      const answer = view;
      answer.onRender = () => {
        const shown = this.shown.get(message.id);
        if (shown) linkCitations(answer.el, shown);
      };
      this.answers.set(message.id, view);
    }
    const streaming = message.status === "streaming";
    view.set(message.content, streaming);
    linkCitations(view.el, message);
    return view.el;
  }

  /** @param {Message} message */
  editor(message) {
    const area = /** @type {HTMLTextAreaElement} */ (h("textarea.edit-area", { "aria-label": "Edit message", rows: "3" }));
    area.value = message.content;
    const save = () => {
      const content = area.value.trim();
      if (content) this.actions.saveEdit(message, content);
    };
    const cancel = () => {
      this.actions.setEditing(message, false);
      /** @type {HTMLElement | null | undefined} */ (this.item(message.id)?.querySelector(".msg-action.edit"))?.focus(); // back where it started
    };
    area.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        save();
      } else if (event.key === "Escape") {
        cancel();
      }
    });
    requestAnimationFrame(() => area.focus());
    return [
      area,
      h(
        "div.edit-actions",
        {},
        h("button.primary.small", { type: "button", onclick: save }, "Save"),
        h("button.ghost.small", { type: "button", onclick: cancel }, "Cancel"),
      ),
    ];
  }

  /** @param {Message} message */
  buttons(message) {
    const own = message.message_type === "user" && message.user_id === this.me.id;
    const actions = h("div.msg-actions");
    if (message.is_deleted || message.editing || message.pending || !this.can.act()) return actions;
    const playing = this.playback.isPlaying(message.id);
    if (own && message.audio_url) {
      const url = audioUrl(message.audio_url);
      actions.append(
        h(
          "button.msg-action",
          {
            type: "button",
            "aria-label": playing ? "Stop audio: stop the recording" : "Recording: play it",
            onclick: () => (playing ? this.playback.stop() : this.playback.play(message.id, url)),
          },
          playing ? [icon("stop"), "Stop audio"] : [icon("play"), "Recording"],
        ),
      );
    }
    if (own && this.can.write()) {
      const edit = () => this.actions.setEditing(message, true);
      actions.append(h("button.msg-action.edit", { type: "button", "aria-label": "Edit message", onclick: edit }, "Edit"));
      const del = h("button.msg-action.danger-hover", { type: "button", "aria-label": "Delete message" }, "Delete");
      armed(del, "Confirm delete", () => this.actions.remove(message));
      actions.append(del);
    } else if (message.message_type === "assistant" && message.status !== "streaming" && message.content && this.can.tts()) {
      actions.append(
        h(
          "button.msg-action",
          {
            type: "button",
            "aria-label": playing ? "Stop audio: stop reading aloud" : "Listen: read this answer aloud",
            "aria-pressed": playing ? "true" : "false",
            onclick: () => (playing ? this.playback.stop() : this.actions.speak(message)),
          },
          playing ? [icon("stop"), "Stop audio"] : [icon("speaker"), "Listen"],
        ),
      );
    }
    return actions;
  }

  /** @param {Message} message */
  render(message) {
    const body = h("div.bubble");
    if (message.is_deleted) {
      this.answers.delete(message.id);
      body.append(h("p.deleted", {}, "This message was deleted."));
    } else if (message.editing) {
      body.append(...this.editor(message));
    } else {
      if (message.content_type === "audio") body.append(h("span.voice-tag", {}, icon("mic"), "Voice"));
      if (message.attachment) body.append(attachmentView(message.attachment));
      body.append(...[this.content(message)].flat());
    }
    const meta = h("div.meta", {});
    const author = message.message_type === "user" && this.can.shared() ? message.username || (message.user_id ? "" : "deleted user") : "";
    if (author) meta.append(h("span.author", {}, author), " · ");
    meta.append(timeAgo(message.created_at));
    if (message.edited_at && !message.is_deleted) meta.append(h("span.muted", {}, " · edited"));
    if (message.pending) meta.append(h("span.muted", {}, " · sending…"));
    if (message.status === "cancelled") meta.append(h("span.chip.cancelled", {}, "Stopped"));
    if (message.status === "failed") meta.append(h("span.chip.failed", {}, "Failed"));
    meta.append(this.buttons(message));
    const assistant = message.message_type === "assistant";
    const theirs = message.message_type === "user" && Boolean(message.user_id !== this.me.id && !message.pending);
    return h(
      `li.msg.${message.message_type}${theirs ? ".theirs" : ""}`,
      {
        dataset: {
          id: message.id,
          status: message.status || "",
          ...(this.playback.played.has(message.id) ? { played: "true" } : {}),
          ...(this.playback.isPlaying(message.id) ? { playing: "true" } : {}),
        },
        "aria-label": assistant ? "Assistant" : message.user_id && message.user_id !== this.me.id ? message.username || "Someone" : "You",
        "aria-busy": message.status === "streaming" ? "true" : null,
      },
      body,
      assistant && !message.is_deleted ? sourcesBlock(message, (name) => this.attachmentNamed(name)) : null,
      meta,
    );
  }
}
