// @ts-check
// The message box: Enter sends, Shift+Enter adds a line, Stop ends an answer, and "typing" goes to other devices.
// One image or file can go with the message: the attach button, a drop onto the chat or a pasted screenshot.

import { $, h, toast } from "./dom.js";

/**
 * @typedef {object} ComposerEvents
 * @property {(content: string, file: File | null, progress: (fraction: number) => void) => Promise<boolean>} send
 *   resolves false when the message was not sent
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
    /** @type {File | null} the attachment that goes with the next message */
    this.file = null;
    this.previewUrl = "";
    this.preview = $("#attach-preview");
    this.progress = /** @type {HTMLProgressElement} */ ($("#attach-progress"));
    this.setupAttachments();
  }

  setupAttachments() {
    const picker = /** @type {HTMLInputElement} */ ($("#attach-input"));
    $("#attach").addEventListener("click", () => picker.click());
    picker.addEventListener("change", () => {
      if (picker.files?.length) this.attach(picker.files[0]);
      picker.value = "";
    });
    $("#attach-remove").addEventListener("click", () => {
      this.attach(null);
      this.input.focus();
    });
    this.input.addEventListener("paste", (event) => {
      const file = [...(event.clipboardData?.files || [])][0];
      if (!file) return;
      event.preventDefault();
      this.attach(file.name && file.name !== "image.png" ? file : new File([file], pastedName(file), { type: file.type }));
    });
    const pane = $("#chat-pane");
    pane.addEventListener("dragover", (event) => {
      if (!event.dataTransfer?.types.includes("Files") || this.form.hidden) return;
      event.preventDefault();
      this.form.classList.add("dropping");
    });
    pane.addEventListener("dragleave", (event) => {
      if (!pane.contains(/** @type {Node | null} */ (event.relatedTarget))) this.form.classList.remove("dropping");
    });
    pane.addEventListener("drop", (event) => {
      this.form.classList.remove("dropping");
      const file = event.dataTransfer?.files[0];
      if (!file || this.form.hidden) return;
      event.preventDefault();
      this.attach(file);
      this.input.focus();
    });
  }

  /** Show `file` ready to go with the next message (a thumbnail or its name), or clear it. @param {File | null} file */
  attach(file) {
    if (this.previewUrl) URL.revokeObjectURL(this.previewUrl);
    this.previewUrl = "";
    this.file = file;
    this.progress.hidden = true;
    this.preview.hidden = !file;
    const thumb = $("#attach-thumb");
    thumb.replaceChildren();
    $("#attach-name").textContent = file ? `${file.name} · ${Math.max(1, Math.round(file.size / 1024))} KB` : "";
    if (file?.type.startsWith("image/")) {
      this.previewUrl = URL.createObjectURL(file);
      thumb.append(h("img", { src: this.previewUrl, alt: `Preview of ${file.name}` }));
    }
  }

  autosize() {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight, 200)}px`;
  }

  async send() {
    const content = this.input.value.trim();
    const file = this.file;
    if (!content && !file) return;
    if (this.events.busy()) {
      toast("Wait for the answer to finish, or press Stop.", "info");
      return;
    }
    this.input.value = "";
    this.autosize();
    this.typing(false);
    if (file) {
      this.progress.hidden = false;
      this.progress.value = 0;
    }
    const sent = await this.events.send(content, file, (fraction) => {
      this.progress.value = fraction;
    });
    if (sent && file === this.file) this.attach(null);
    this.progress.hidden = true;
    if (!sent && !this.input.value) {
      this.input.value = content; // keep the text (and the attachment): the user stays in control
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

  /** @param {boolean} writable @param {string} [why]  what the note says when it is not */
  show(writable, why = "This chat is archived: it is read-only. Restore it to continue.") {
    this.attach(null); // an attachment belongs to the chat it was picked in
    this.form.hidden = !writable;
    $("#readonly-note").hidden = writable;
    $("#readonly-note").textContent = why;
  }

  focus() {
    this.input.focus();
  }
}

/** A pasted screenshot's name (the clipboard calls them all image.png). @param {File} file */
function pastedName(file) {
  const extension = (file.type.split("/")[1] || "png").replace("jpeg", "jpg");
  return `pasted-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-")}.${extension}`;
}
