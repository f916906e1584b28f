// @ts-check
// Voice in: hold the microphone button (or Space/Enter on it) to record; live transcripts above the message box.

import { VoiceRecorder, voiceSupported } from "../voice.js";
import { $, toast } from "./dom.js";

/**
 * @typedef {import("../socket.js").ChatConnection} ChatConnection
 * @typedef {import("../chat/store.js").Message} Message
 */

export class Microphone {
  /**
   * @param {{canRecord: () => string | null, onMessage: (message: Message) => void}} options
   *   canRecord: why recording cannot start now (null when it can); onMessage: the transcript became a message
   */
  constructor({ canRecord, onMessage }) {
    this.canRecord = canRecord;
    this.onMessage = onMessage;
    this.button = /** @type {HTMLButtonElement} */ ($("#mic"));
    this.box = $("#transcript");
    this.text = $("#transcript-text");
    /** @type {VoiceRecorder | null} */
    this.recorder = null;
    const button = this.button;
    button.addEventListener("pointerdown", (event) => this.press(event));
    button.addEventListener("pointerup", () => this.release());
    button.addEventListener("pointercancel", () => this.release());
    button.addEventListener("contextmenu", (event) => event.preventDefault());
    button.addEventListener("keydown", (event) => {
      if ((event.key === " " || event.key === "Enter") && !event.repeat) this.press(event);
    });
    button.addEventListener("keyup", (event) => {
      if (event.key === " " || event.key === "Enter") this.release();
    });
    if (!voiceSupported()) this.disable("Voice needs a secure context (https or localhost) and a microphone");
  }

  /** @param {string} reason */
  disable(reason) {
    this.button.disabled = true;
    this.button.title = reason;
  }

  /** Record over this connection (a chat was opened). @param {ChatConnection} connection */
  attach(connection) {
    this.detach();
    this.recorder = new VoiceRecorder(connection, {
      onState: (/** @type {string} */ state, /** @type {string | undefined} */ detail) => this.setState(state, detail),
      onLevel: (/** @type {number} */ level, /** @type {number} */ seconds) => {
        this.button.style.setProperty("--level", Math.min(1, level * 4).toFixed(3));
        this.button.dataset.seconds = seconds.toFixed(2);
      },
    });
  }

  detach() {
    if (!this.recorder) return;
    this.recorder.cancel();
    this.recorder.close();
    this.recorder = null;
  }

  /** @param {Event} event */
  press(event) {
    event.preventDefault();
    if (!this.recorder) return;
    const reason = this.canRecord();
    if (reason) return toast(reason, "info");
    this.button.dataset.seconds = "0";
    if (event instanceof PointerEvent && this.button.setPointerCapture) this.button.setPointerCapture(event.pointerId);
    this.recorder.start();
  }

  release() {
    if (this.recorder) this.recorder.stop();
  }

  /** @param {string} state @param {string} [detail] */
  setState(state, detail) {
    const recording = state === "recording" || state === "starting";
    this.button.dataset.state = state;
    this.button.setAttribute("aria-pressed", String(recording));
    if (recording) {
      this.box.hidden = false;
      this.box.dataset.kind = "listening";
      this.text.textContent = "Listening…";
    } else if (state === "transcribing") {
      this.box.dataset.kind = "transcribing";
      if (!this.text.dataset.partial) this.text.textContent = "Transcribing…";
    } else {
      this.box.hidden = true;
      if (state === "error" && detail) toast(detail, "error");
    }
    if (state !== "recording" && state !== "transcribing") delete this.text.dataset.partial;
  }

  /** A live transcript: "partial" while speaking, "final" with the message it became. @param {"partial" | "final"} kind @param {{text?: string, message?: Message}} data */
  transcript(kind, data) {
    if (kind === "partial") {
      this.box.hidden = false;
      this.box.dataset.kind = "partial";
      this.text.dataset.partial = "1";
      this.text.textContent = data.text || "…";
    } else {
      this.box.hidden = true;
      if (data.message) this.onMessage(data.message);
    }
  }
}
