// @ts-check
// The message box: Enter sends, Shift+Enter adds a line, Stop ends an answer, and "typing" goes to other devices.

import { $, toast } from "./dom.js";

/**
 * @typedef {object} ComposerEvents
 * @property {(content: string) => Promise<boolean>} send  resolves false when the message was not sent
 * @property {() => void} stop
 * @property {(isTyping: boolean) => void} typing
 * @property {() => boolean} busy  an answer is being written (sending waits for it)
 */

export class Composer {
  /** @param {ComposerEvents} events */
  constructor(events) {
    this.events = events;
    this.form = $("#composer");
    this.input = /** @type {HTMLTextAreaElement} */ ($("#composer-input"));
    this.sendButton = $("#send");
    this.stopButton = $("#stop");
    this.typingSent = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.typingStop = undefined;

    // the keyboard hint fits in the placeholder on wide screens only
    const narrow = window.matchMedia("(max-width: 760px)");
    const setPlaceholder = () => {
      this.input.placeholder = narrow.matches
        ? "Ask about your documents…"
        : "Ask about your documents…  (Enter sends, Shift+Enter new line)";
    };
    narrow.addEventListener("change", setPlaceholder);
    setPlaceholder();

    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send();
      } else if (event.key === "Escape" && this.events.busy()) {
        event.preventDefault();
        this.events.stop(); // the keyboard's Stop, without leaving the box
      }
    });
    this.input.addEventListener("input", () => {
      this.autosize();
      this.typing(Boolean(this.input.value.trim()));
    });
    this.stopButton.addEventListener("click", () => this.events.stop());
  }

  autosize() {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight, 200)}px`;
  }

  async send() {
    const content = this.input.value.trim();
    if (!content) return;
    if (this.events.busy()) {
      toast("Wait for the answer to finish, or press Stop.", "info");
      return;
    }
    this.input.value = "";
    this.autosize();
    this.typing(false);
    const sent = await this.events.send(content);
    if (!sent && !this.input.value) {
      this.input.value = content; // keep the text: the user stays in control
      this.autosize();
    }
  }

  /** Tell other devices this one types (at most every 2.5 s), and that it stopped. @param {boolean} isTyping */
  typing(isTyping) {
    clearTimeout(this.typingStop);
    if (isTyping) {
      if (Date.now() - this.typingSent > 2500) {
        this.typingSent = Date.now();
        this.events.typing(true);
      }
      this.typingStop = setTimeout(() => this.typing(false), 3000);
    } else if (this.typingSent) {
      this.typingSent = 0;
      this.events.typing(false);
    }
  }

  /**
   * Stop replaces Send while an answer is written; the focus follows it, so Enter then Enter sends then stops.
   * @param {boolean} streaming
   */
  setStreaming(streaming) {
    if (this.stopButton.hidden === !streaming) return;
    const focusedSend = document.activeElement === this.sendButton;
    const focusedStop = document.activeElement === this.stopButton;
    this.stopButton.hidden = !streaming;
    this.sendButton.hidden = streaming;
    if (streaming && focusedSend) this.stopButton.focus();
    if (!streaming && focusedStop) this.input.focus();
  }

  /** @param {boolean} writable */
  show(writable) {
    this.form.hidden = !writable;
    $("#readonly-note").hidden = writable;
  }

  focus() {
    this.input.focus();
  }
}
