// @ts-check
// "Typing on another device…", "Assistant is thinking…": who is typing in the open chat, each until they stop
// or for a while after their last word.

import { $, h } from "./dom.js";

export class TypingLine {
  /** @param {() => boolean} answering  an answer is being written */
  constructor(answering) {
    this.answering = answering;
    this.line = $("#typing");
    /** @type {Map<string, ReturnType<typeof setTimeout>>} user id (or "assistant") -> when to forget them */
    this.typists = new Map();
  }

  /** @param {string} userId @param {boolean} isTyping */
  set(userId, isTyping) {
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
    this.line.replaceChildren(
      h("span.dots", { "aria-hidden": "true" }, h("i"), h("i"), h("i")),
      assistant ? (this.answering() ? "Assistant is answering…" : "Assistant is thinking…") : "Typing on another device…",
    );
  }

  clear() {
    for (const timer of this.typists.values()) clearTimeout(timer);
    this.typists.clear();
    this.render();
  }
}
