// @ts-check
// "Typing on another device…", "alice is typing…", "Assistant is thinking…": who is typing in the open chat,
// each until they stop or for a while after their last word.

import { $, h } from "./dom.js";

export class TypingLine {
  /** @param {() => boolean} answering  an answer is being written @param {{id: string | null}} me */
  constructor(answering, me) {
    this.answering = answering;
    this.me = me;
    /** @type {Map<string, string>} user id -> username, for the members of a shared chat */
    this.names = new Map();
    this.line = $("#typing");
    /** @type {Map<string, ReturnType<typeof setTimeout>>} user id (or "assistant") -> when to forget them */
    this.typists = new Map();
  }

  /** @param {string} userId @param {boolean} isTyping @param {string | null} [username] */
  set(userId, isTyping, username) {
    if (username) this.names.set(userId, username);
    clearTimeout(this.typists.get(userId));
    if (isTyping) {
      const forget = setTimeout(() => this.set(userId, false), userId === "assistant" ? 60000 : 6000);
      this.typists.set(userId, forget);
    } else {
      this.typists.delete(userId);
    }
    this.render();
  }

  render() {
    const who = [...this.typists.keys()];
    if (!who.length) {
      this.line.textContent = "";
      return;
    }
    const assistant = who.includes("assistant");
    const others = who.filter((id) => id !== "assistant" && id !== this.me.id).map((id) => this.names.get(id) || "Someone");
    let text = "Typing on another device…";
    if (assistant) text = this.answering() ? "Assistant is answering…" : "Assistant is thinking…";
    else if (others.length) text = `${others.join(", ")} ${others.length === 1 ? "is" : "are"} typing…`;
    this.line.replaceChildren(h("span.dots", { "aria-hidden": "true" }, h("i"), h("i"), h("i")), text);
  }

  clear() {
    for (const timer of this.typists.values()) clearTimeout(timer);
    this.typists.clear();
    this.render();
  }
}
