// @ts-check
// The chat's header (title, rename, archive, restore, auto-speak) and the connection pill and banner above it.

import { $, armed, toast } from "./dom.js";
import { titleOf } from "./sessions.js";

/** @typedef {import("../api.js").Session} Session */

/** @type {{[state: string]: string}} */
const CONNECTION_TEXT = {
  idle: "Not connected",
  connecting: "Connecting…",
  connected: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
  refused: "Not connected",
  readonly: "Read-only",
};

/**
 * The banner under the top bar: a sentence and an optional button.
 * @param {string | null} text @param {string} [actionLabel] @param {() => void} [action]
 */
export function setBanner(text, actionLabel, action) {
  $("#banner").hidden = !text;
  $("#banner-text").textContent = text || "";
  const button = $("#banner-action");
  button.hidden = !actionLabel;
  button.textContent = actionLabel || "";
  button.onclick = action || null;
}

/**
 * The connection's state in the pill, and in the banner when it needs attention.
 * @param {string} state @param {string} [detail] @param {() => void} [reconnect]
 */
export function showConnection(state, detail, reconnect) {
  $("#connection").dataset.state = state;
  $("#connection-text").textContent = CONNECTION_TEXT[state] || state;
  if (state === "reconnecting") setBanner("Connection lost — reconnecting…");
  else if (state === "offline") setBanner(detail || "Disconnected.", "Reconnect", reconnect);
  else if (state === "refused" && detail && !detail.includes("expired")) setBanner(detail);
  else if (state === "connected") setBanner(null);
}

/**
 * @typedef {object} HeaderActions
 * @property {(title: string) => Promise<void>} rename
 * @property {() => Promise<void>} archive
 * @property {() => Promise<void>} restore
 * @property {(on: boolean) => Promise<void>} autoSpeak
 */

export class ChatHeader {
  /** @param {HeaderActions} actions */
  constructor(actions) {
    this.title = $("#chat-title");
    this.form = $("#rename-form");
    this.input = /** @type {HTMLInputElement} */ ($("#rename-input"));
    this.autoSpeak = /** @type {HTMLInputElement} */ ($("#auto-speak"));
    this.renameButton = $("#rename");

    this.renameButton.addEventListener("click", () => this.startRename());
    $("#rename-cancel").addEventListener("click", () => this.endRename(true));
    this.form.addEventListener("keydown", (event) => event.key === "Escape" && this.endRename(true));
    this.form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const title = this.input.value.trim();
      if (!title) return;
      try {
        await actions.rename(title);
        this.endRename(true);
      } catch (err) {
        toast(`Could not rename: ${/** @type {Error} */ (err).message}`, "error");
      }
    });
    armed($("#archive"), "Archive?", actions.archive);
    $("#restore").addEventListener("click", actions.restore);
    this.autoSpeak.addEventListener("change", async () => {
      const wanted = this.autoSpeak.checked;
      try {
        await actions.autoSpeak(wanted);
        toast(wanted ? "Answers will be read aloud." : "Auto-speak is off.");
      } catch (err) {
        this.autoSpeak.checked = !wanted;
        toast(`Could not change auto-speak: ${/** @type {Error} */ (err).message}`, "error");
      }
    });
  }

  /** @param {string} [current] */
  startRename(current) {
    this.input.value = current ?? this.input.dataset.title ?? "";
    this.form.hidden = false;
    this.title.hidden = true;
    this.input.focus();
    this.input.select();
  }

  /** @param {boolean} [refocus]  give the focus back to the Rename button */
  endRename(refocus = false) {
    const wasOpen = !this.form.hidden;
    this.form.hidden = true;
    this.title.hidden = false;
    if (refocus && wasOpen) this.renameButton.focus();
  }

  /** @param {Session} session @param {boolean} tts  the server can read aloud */
  show(session, tts) {
    this.title.textContent = titleOf(session);
    this.input.dataset.title = session.title || "";
    const count = session.message_count;
    const role = session.role && session.role !== "owner" ? ` · you are a ${session.role}` : "";
    $("#chat-meta").textContent = `${count} message${count === 1 ? "" : "s"}${session.is_archived ? " · archived" : ""}${role}`;
    const owner = (session.role || "owner") === "owner"; // members and viewers neither rename nor archive
    $("#archive").hidden = session.is_archived || !owner;
    $("#restore").hidden = !session.is_archived || !owner;
    this.renameButton.hidden = session.is_archived || !owner;
    this.autoSpeak.checked = Boolean(session.speech_config?.auto_tts);
    this.autoSpeak.disabled = session.is_archived || !tts || !owner;
    if (!tts) /** @type {HTMLElement} */ (this.autoSpeak.closest("label")).title = "Speech output is unavailable on this server";
  }
}
