// The chat view: history over REST, then live over /chat/<id>; streaming answers, stop, edit, delete,
// sources, typing, voice and speech.

import { api, audioUrl, storedAuth } from "../api.js";
import { showsRefusal } from "../refusals.js";
import { ChatConnection, newClientId } from "../socket.js";
import { VoiceRecorder, voiceSupported } from "../voice.js";
import { $, armed, clockTime, h, icon, toast } from "./dom.js";
import { titleOf } from "./sessions.js";

const CONNECTION_TEXT = {
  idle: "Not connected",
  connecting: "Connecting…",
  connected: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
  refused: "Not connected",
  readonly: "Read-only",
};

export function setupChat({ me, onSessionChanged, onExpired }) {
  const pane = $("#chat-pane");
  const list = $("#messages");
  const input = $("#composer-input");
  const form = $("#composer");
  const stopButton = $("#stop");
  const sendButton = $("#send");
  const micButton = $("#mic");
  const autoSpeak = $("#auto-speak");
  const typingLine = $("#typing");
  const transcriptBox = $("#transcript");
  const transcriptText = $("#transcript-text");

  let session = null;
  let connection = null;
  let recorder = null;
  let messages = new Map(); // id -> message (server shape, plus local fields)
  let order = []; // ids, oldest first
  let typingTimers = new Map();
  let typingSent = 0;
  let typingStopTimer = null;
  let playing = null; // {messageId, audio}
  let generation = 0; // bumps on every open(), so stale async work is dropped
  let speech = { stt: true, tts: true }; // what the server can do (GET /speech/status)

  // ---------- connection state ----------
  function setBanner(text, actionLabel, action) {
    const banner = $("#banner");
    banner.hidden = !text;
    $("#banner-text").textContent = text || "";
    const button = $("#banner-action");
    button.hidden = !actionLabel;
    button.textContent = actionLabel || "";
    button.onclick = action || null;
  }

  function showState(state, detail) {
    const box = $("#connection");
    box.dataset.state = state;
    $("#connection-text").textContent = CONNECTION_TEXT[state] || state;
    if (state === "reconnecting") setBanner("Connection lost — reconnecting…");
    else if (state === "offline") setBanner(detail || "Disconnected.", "Reconnect", () => connection?.socket.connect());
    else if (state === "refused" && detail && !detail.includes("expired")) setBanner(detail);
    else if (state === "connected") setBanner(null);
  }

  // ---------- messages ----------
  function isStreaming() {
    for (const m of messages.values()) if (m.message_type === "assistant" && m.status === "streaming") return true;
    return false;
  }

  function updateStop() {
    const streaming = isStreaming();
    stopButton.hidden = !streaming;
    sendButton.hidden = streaming;
    renderTyping();
  }

  function scrollToEnd(force = false) {
    const nearEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 120;
    if (force || nearEnd) list.scrollTop = list.scrollHeight;
  }

  function sourcesBlock(ragContext) {
    const sources = (ragContext && ragContext.sources) || [];
    if (!sources.length) return null;
    return h(
      "details.sources",
      {},
      h("summary", {}, `Sources (${sources.length})`),
      h(
        "ol",
        {},
        sources.map((s) =>
          h(
            "li.source",
            {},
            h(
              "div.source-head",
              {},
              h("span.source-name", {}, s.document_name),
              s.page ? h("span.muted", {}, ` · page ${s.page}`) : null,
              s.heading ? h("span.muted", {}, ` · ${s.heading}`) : null,
              h("span.score", { title: "Relevance score" }, `score ${Number(s.score).toFixed(2)}`),
            ),
            h("blockquote.snippet", {}, s.snippet),
          ),
        ),
      ),
    );
  }

  function speakerButton(message) {
    const isPlaying = playing && playing.messageId === message.id;
    return h(
      "button.msg-action",
      {
        type: "button",
        "aria-label": isPlaying ? "Stop reading aloud" : "Read this answer aloud",
        "aria-pressed": isPlaying ? "true" : "false",
        dataset: { action: "speak" },
        onclick: () => (isPlaying ? stopPlayback() : speak(message.id)),
      },
      isPlaying ? [icon("stop"), "Stop audio"] : [icon("speaker"), "Listen"],
    );
  }

  function renderMessage(message) {
    const own = message.message_type === "user" && message.user_id === me.id;
    const cls = `li.msg.${message.message_type}`;
    const body = h("div.bubble");
    if (message.is_deleted) {
      body.append(h("p.deleted", {}, "This message was deleted."));
    } else if (message.editing) {
      const area = h("textarea.edit-area", { "aria-label": "Edit message", rows: "3" });
      area.value = message.content;
      const save = async () => {
        const content = area.value.trim();
        if (!content) return;
        try {
          const ack = await connection.call("edit_message", { message_id: message.id, content });
          upsert({ ...ack.message, editing: false });
        } catch (err) {
          toast(`Could not edit: ${err.message}`, "error");
        }
      };
      area.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && !event.shiftKey) {
          event.preventDefault();
          save();
        } else if (event.key === "Escape") {
          upsert({ ...message, editing: false });
        }
      });
      body.append(
        area,
        h(
          "div.edit-actions",
          {},
          h("button.primary.small", { type: "button", onclick: save }, "Save"),
          h("button.ghost.small", { type: "button", onclick: () => upsert({ ...message, editing: false }) }, "Cancel"),
        ),
      );
      requestAnimationFrame(() => area.focus());
    } else {
      if (message.content_type === "audio") body.append(h("span.voice-tag", {}, icon("mic"), "Voice"));
      const text = h("div.content", {}, message.content);
      if (message.message_type === "assistant" && message.status === "streaming") {
        text.classList.add("streaming");
        if (!message.content) text.append(h("span.thinking", {}, "Thinking"));
      }
      body.append(text);
    }

    const meta = h("div.meta");
    meta.append(h("time", { datetime: message.created_at }, clockTime(message.created_at)));
    if (message.edited_at && !message.is_deleted) meta.append(h("span.muted", {}, " · edited"));
    if (message.pending) meta.append(h("span.muted", {}, " · sending…"));
    if (message.failed) meta.append(h("span.chip.failed", {}, "Not sent"));
    if (message.status === "cancelled") meta.append(h("span.chip.cancelled", {}, "Stopped"));
    if (message.status === "failed") meta.append(h("span.chip.failed", {}, "Failed"));

    const actions = h("div.msg-actions");
    const writable = session && !session.is_archived;
    if (!message.is_deleted && !message.editing && !message.pending && session) {
      if (own && message.audio_url) {
        const playing_ = playing && playing.messageId === message.id;
        actions.append(
          h(
            "button.msg-action",
            {
              type: "button",
              "aria-label": playing_ ? "Stop the recording" : "Play the recording",
              onclick: () => (playing_ ? stopPlayback() : play(message.id, audioUrl(message.audio_url))),
            },
            playing_ ? [icon("stop"), "Stop audio"] : [icon("play"), "Recording"],
          ),
        );
      }
      if (own && writable) {
        actions.append(
          h("button.msg-action", { type: "button", "aria-label": "Edit message", dataset: { action: "edit" }, onclick: () => upsert({ ...message, editing: true }) }, "Edit"),
        );
        const del = h("button.msg-action.danger-hover", { type: "button", "aria-label": "Delete message", dataset: { action: "delete" } }, "Delete");
        armed(del, "Confirm delete", async () => {
          try {
            const ack = await connection.call("delete_message", { message_id: message.id });
            upsert(ack.message);
          } catch (err) {
            toast(`Could not delete: ${err.message}`, "error");
          }
        });
        actions.append(del);
      } else if (message.message_type === "assistant" && message.status !== "streaming" && message.content && speech.tts) {
        actions.append(speakerButton(message));
      }
    }
    meta.append(actions);

    return h(
      cls,
      {
        dataset: { id: message.id, status: message.status || "" },
        "aria-label": message.message_type === "assistant" ? "Assistant" : "You",
        "aria-busy": message.status === "streaming" ? "true" : null, // read once complete, not token by token
      },
      body,
      message.message_type === "assistant" && !message.is_deleted ? sourcesBlock(message.rag_context) : null,
      meta,
    );
  }

  function place(message) {
    const existing = list.querySelector(`li[data-id="${CSS.escape(message.id)}"]`);
    const el = renderMessage(message);
    if (existing) {
      // keep an expanded sources list expanded across re-renders
      const openSources = existing.querySelector("details.sources[open]");
      if (openSources) el.querySelector("details.sources")?.setAttribute("open", "");
      existing.replaceWith(el);
    } else {
      const index = order.indexOf(message.id);
      const next = order.slice(index + 1).map((id) => list.querySelector(`li[data-id="${CSS.escape(id)}"]`)).find(Boolean);
      list.insertBefore(el, next || null);
    }
  }

  function upsert(incoming) {
    if (!session || incoming.session_id && incoming.session_id !== session.id) return;
    const current = messages.get(incoming.id);
    if (!current && incoming.is_deleted) return; // deleted before we saw it (e.g. in a `sync` catch-up)
    let message = { ...current, ...incoming };
    // a streaming answer keeps the text assembled from tokens until it ends
    if (current && current.status === "streaming" && incoming.status === "streaming") message.content = current.content;
    if (!("editing" in incoming)) message.editing = current ? current.editing : false;
    // the acknowledged version of a message sent from here replaces its optimistic copy
    if (incoming.client_id) {
      for (const [id, m] of messages) {
        if (m.pending && m.client_id === incoming.client_id && id !== incoming.id) {
          messages.delete(id);
          order = order.filter((x) => x !== id);
          list.querySelector(`li[data-id="${CSS.escape(id)}"]`)?.remove();
        }
      }
    }
    messages.set(message.id, message);
    if (!current || current.created_at !== message.created_at) {
      if (!current) order.push(message.id);
      const before = order.join();
      order.sort((a, b) => {
        const ma = messages.get(a);
        const mb = messages.get(b);
        // optimistic copies (local clock) stay last until the server has placed them
        if (Boolean(ma.pending) !== Boolean(mb.pending)) return ma.pending ? 1 : -1;
        return (Date.parse(ma.created_at) || 0) - (Date.parse(mb.created_at) || 0);
      });
      if (current && before !== order.join()) {
        list.querySelector(`li[data-id="${CSS.escape(message.id)}"]`)?.remove();
      }
    }
    place(message);
    updateStop();
    scrollToEnd(!current);
  }

  function lastMessageId() {
    for (let i = order.length - 1; i >= 0; i--) {
      const m = messages.get(order[i]);
      if (!m.pending && !m.failed) return m.id;
    }
    return null;
  }

  // ---------- sending ----------
  function autosize() {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
  }

  async function send() {
    const content = input.value.trim();
    if (!content || !connection || session.is_archived) return;
    if (isStreaming()) {
      toast("Wait for the answer to finish, or press Stop.", "info");
      return;
    }
    const clientId = newClientId();
    const localId = `local-${clientId}`;
    input.value = "";
    autosize();
    sendTyping(false);
    upsert({
      id: localId,
      session_id: session.id,
      user_id: me.id,
      message_type: "user",
      content_type: "text",
      content,
      client_id: clientId,
      created_at: new Date().toISOString(),
      pending: true,
    });
    try {
      const ack = await connection.call("user_message", { content, content_type: "text", client_id: clientId }, 30000);
      upsert({ ...ack.message, pending: false });
    } catch (err) {
      messages.delete(localId);
      order = order.filter((x) => x !== localId);
      list.querySelector(`li[data-id="${CSS.escape(localId)}"]`)?.remove();
      if (!input.value) {
        input.value = content; // keep the text: the user stays in control
        autosize();
      }
      const text = err.code === "busy" ? "The assistant is still answering: wait, or press Stop, then send again." : `Not sent: ${err.message}`;
      toast(text, "error");
    }
  }

  function sendTyping(isTyping) {
    if (!connection || !connection.connected) return;
    clearTimeout(typingStopTimer);
    if (isTyping) {
      if (Date.now() - typingSent > 2500) {
        typingSent = Date.now();
        connection.emit("typing", { is_typing: true });
      }
      typingStopTimer = setTimeout(() => sendTyping(false), 3000);
    } else if (typingSent) {
      typingSent = 0;
      connection.emit("typing", { is_typing: false });
    }
  }

  // the keyboard hint fits in the placeholder on wide screens only
  const narrow = window.matchMedia("(max-width: 760px)");
  const setPlaceholder = () => {
    input.placeholder = narrow.matches ? "Ask about your documents…" : "Ask about your documents…  (Enter sends, Shift+Enter new line)";
  };
  narrow.addEventListener("change", setPlaceholder);
  setPlaceholder();

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  input.addEventListener("input", () => {
    autosize();
    sendTyping(Boolean(input.value.trim()));
  });
  stopButton.addEventListener("click", async () => {
    const streaming = [...messages.values()].find((m) => m.message_type === "assistant" && m.status === "streaming");
    try {
      await connection.call("stop_generation", streaming && !String(streaming.id).startsWith("local") ? { message_id: streaming.id } : {});
    } catch (err) {
      toast(`Could not stop: ${err.message}`, "error");
    }
  });

  // ---------- typing indicator ----------
  function renderTyping() {
    const who = [...typingTimers.keys()];
    if (!who.length) {
      typingLine.textContent = "";
      return;
    }
    typingLine.replaceChildren(
      h("span.dots", { "aria-hidden": "true" }, h("i"), h("i"), h("i")),
      who.includes("assistant") ? (isStreaming() ? "Assistant is answering…" : "Assistant is thinking…") : "Typing on another device…",
    );
  }

  function typing(userId, isTyping) {
    clearTimeout(typingTimers.get(userId));
    if (isTyping) typingTimers.set(userId, setTimeout(() => typing(userId, false), userId === "assistant" ? 60000 : 6000));
    else typingTimers.delete(userId);
    renderTyping();
  }

  // ---------- speech out ----------
  function stopPlayback() {
    if (!playing) return;
    const { messageId, audio } = playing;
    playing = null;
    audio.pause();
    const m = messages.get(messageId);
    if (m) place(m);
  }

  function play(messageId, url) {
    stopPlayback();
    const audio = new Audio(url);
    playing = { messageId, audio };
    const m = messages.get(messageId);
    if (m) place(m);
    audio.addEventListener("ended", () => playing && playing.audio === audio && stopPlayback());
    audio.addEventListener("error", () => {
      if (playing && playing.audio === audio) stopPlayback();
      toast("The audio could not be played.", "error");
    });
    audio
      .play()
      .then(() => {
        document.body.dataset.lastPlayed = messageId; // for the end-to-end test: playback really started
      })
      .catch((err) => {
        if (playing && playing.audio === audio) stopPlayback();
        if (err.name !== "AbortError") toast(`Playback blocked: ${err.message}`, "error");
      });
  }

  async function speak(messageId) {
    try {
      const reply = await api.tts(messageId);
      play(messageId, audioUrl(reply.audio_url));
    } catch (err) {
      toast(err.code === "tts_unavailable" ? "Speech output is not available on this server." : `Could not read aloud: ${err.message}`, "error");
    }
  }

  autoSpeak.addEventListener("change", async () => {
    if (!session) return;
    const wanted = autoSpeak.checked;
    try {
      const updated = await api.updateSession(session.id, { speech_config: { ...session.speech_config, auto_tts: wanted } });
      session = updated;
      onSessionChanged(updated);
      toast(wanted ? "Answers will be read aloud." : "Auto-speak is off.");
    } catch (err) {
      autoSpeak.checked = !wanted;
      toast(`Could not change auto-speak: ${err.message}`, "error");
    }
  });

  // ---------- voice in ----------
  function setMicState(state, detail) {
    micButton.dataset.state = state;
    micButton.setAttribute("aria-pressed", String(state === "recording" || state === "starting"));
    if (state === "recording" || state === "starting") {
      transcriptBox.hidden = false;
      transcriptBox.dataset.kind = "listening";
      transcriptText.textContent = "Listening…";
    } else if (state === "transcribing") {
      transcriptBox.dataset.kind = "transcribing";
      if (!transcriptText.dataset.partial) transcriptText.textContent = "Transcribing…";
    } else if (state === "error") {
      transcriptBox.hidden = true;
      toast(detail, "error");
    } else {
      transcriptBox.hidden = true;
    }
    if (state !== "recording" && state !== "transcribing") delete transcriptText.dataset.partial;
  }

  function makeRecorder() {
    return new VoiceRecorder(connection, {
      onState: setMicState,
      onLevel(level, seconds) {
        micButton.style.setProperty("--level", Math.min(1, level * 4).toFixed(3));
        micButton.dataset.seconds = seconds.toFixed(2);
      },
    });
  }

  async function pressMic(event) {
    if (event) event.preventDefault();
    if (!recorder || !connection || session.is_archived) return;
    if (isStreaming()) return toast("Wait for the answer to finish, or press Stop.", "info");
    micButton.dataset.seconds = "0";
    if (micButton.setPointerCapture && event && event.pointerId !== undefined) micButton.setPointerCapture(event.pointerId);
    recorder.start();
  }
  function releaseMic() {
    if (recorder) recorder.stop();
  }
  micButton.addEventListener("pointerdown", pressMic);
  micButton.addEventListener("pointerup", releaseMic);
  micButton.addEventListener("pointercancel", releaseMic);
  micButton.addEventListener("contextmenu", (event) => event.preventDefault());
  micButton.addEventListener("keydown", (event) => {
    if ((event.key === " " || event.key === "Enter") && !event.repeat) pressMic(event);
  });
  micButton.addEventListener("keyup", (event) => {
    if (event.key === " " || event.key === "Enter") releaseMic();
  });
  if (!voiceSupported()) {
    micButton.disabled = true;
    micButton.title = "Voice needs a secure context (https or localhost) and a microphone";
  }

  function transcript(kind, data) {
    if (kind === "partial") {
      transcriptBox.hidden = false;
      transcriptBox.dataset.kind = "partial";
      transcriptText.dataset.partial = "1";
      transcriptText.textContent = data.text || "…";
    } else {
      transcriptBox.hidden = true;
      if (data.message) upsert(data.message);
    }
  }

  // ---------- the view's side of the connection ----------
  const view = {
    state: showState,
    upsert,
    streamStart(id, replyTo) {
      const m = messages.get(id);
      if (!m) {
        // placed after its question even if this device's clock is behind the server's
        const question = replyTo && messages.get(replyTo);
        const after = question ? Date.parse(question.created_at) + 1 : 0;
        upsert({
          id,
          session_id: session.id,
          message_type: "assistant",
          content_type: "text",
          content: "",
          status: "streaming",
          reply_to: replyTo,
          created_at: new Date(Math.max(Date.now(), after || 0)).toISOString(),
        });
      } else if (m.status !== "streaming") {
        upsert({ ...m, status: "streaming" });
      }
    },
    streamText(id, text) {
      const m = messages.get(id);
      if (!m || m.status !== "streaming") return;
      m.content = text;
      const content = list.querySelector(`li[data-id="${CSS.escape(id)}"] .content`);
      if (content) {
        content.textContent = text;
        scrollToEnd();
      } else place(m);
    },
    streamEnd(id, response) {
      const stored = response.message || {};
      upsert({ ...stored, id, content: response.content ?? stored.content, status: response.status || stored.status, rag_context: response.rag_context ?? stored.rag_context });
      typing("assistant", false);
    },
    typing,
    sessionUpdated(updated) {
      if (!session || updated.id !== session.id) return;
      session = { ...session, ...updated };
      renderHead();
      onSessionChanged(session);
    },
    transcript,
    ttsReady(data) {
      if (autoSpeak.checked) play(data.message_id, audioUrl(data.audio_url));
    },
    error(error) {
      if (showsRefusal(error)) toast(error.message || error.code, "error");
    },
    expired: onExpired,
    lastMessageId,
  };

  // ---------- open / close ----------
  function renderHead() {
    $("#chat-title").textContent = titleOf(session);
    const count = session.message_count;
    $("#chat-meta").textContent = `${count} message${count === 1 ? "" : "s"}${session.is_archived ? " · archived" : ""}`;
    $("#archive").hidden = session.is_archived;
    $("#restore").hidden = !session.is_archived;
    $("#rename").hidden = session.is_archived;
    autoSpeak.checked = Boolean(session.speech_config && session.speech_config.auto_tts);
    autoSpeak.disabled = session.is_archived || !speech.tts;
    form.hidden = session.is_archived;
    $("#readonly-note").hidden = !session.is_archived;
  }

  function close() {
    generation += 1;
    stopPlayback();
    if (recorder) {
      recorder.cancel();
      recorder.close();
    }
    if (connection) connection.close();
    recorder = connection = null;
    for (const timer of typingTimers.values()) clearTimeout(timer);
    typingTimers = new Map();
    renderTyping();
    messages = new Map();
    order = [];
    list.replaceChildren();
    setBanner(null);
    showState("idle");
    updateStop();
  }

  async function open(next) {
    close();
    const mine = generation;
    session = next;
    $("#empty-state").hidden = true;
    pane.hidden = false;
    $("#rename-form").hidden = true;
    $("#chat-title").hidden = false;
    renderHead();
    list.append(h("li.loading", {}, "Loading messages…"));
    let history;
    try {
      history = await api.history(session.id);
    } catch (err) {
      if (mine !== generation) return;
      list.replaceChildren(h("li.empty-note", {}, `Could not load the messages: ${err.message}`));
      return;
    }
    if (mine !== generation) return;
    list.replaceChildren();
    for (const message of history) upsert(message);
    if (!history.length) list.append(h("li.empty-note.first-hint", {}, "Ask a question to start. Answers cite your documents."));
    scrollToEnd(true);
    if (session.is_archived) {
      showState("readonly");
      return;
    }
    const auth = storedAuth();
    connection = new ChatConnection(session.id, auth ? auth.token : "", view);
    for (const m of history) if (m.message_type === "assistant" && m.status === "streaming") connection.follow(m.id);
    recorder = makeRecorder();
    input.focus();
  }

  // header actions
  $("#rename").addEventListener("click", () => {
    $("#rename-input").value = session.title || "";
    $("#rename-form").hidden = false;
    $("#chat-title").hidden = true;
    $("#rename-input").focus();
    $("#rename-input").select();
  });
  const endRename = () => {
    $("#rename-form").hidden = true;
    $("#chat-title").hidden = false;
  };
  $("#rename-cancel").addEventListener("click", endRename);
  $("#rename-input").addEventListener("keydown", (event) => event.key === "Escape" && endRename());
  $("#rename-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const title = $("#rename-input").value.trim();
    if (!title) return;
    try {
      session = await api.updateSession(session.id, { title });
      renderHead();
      onSessionChanged(session);
      endRename();
    } catch (err) {
      toast(`Could not rename: ${err.message}`, "error");
    }
  });
  armed($("#archive"), "Archive?", async () => {
    try {
      const archived = await api.archiveSession(session.id);
      onSessionChanged(archived);
      toast("Chat archived. Find it under “Show archived”.");
      await open(archived);
    } catch (err) {
      toast(`Could not archive: ${err.message}`, "error");
    }
  });
  $("#restore").addEventListener("click", async () => {
    try {
      const restored = await api.updateSession(session.id, { is_archived: false });
      onSessionChanged(restored);
      await open(restored);
    } catch (err) {
      toast(`Could not restore: ${err.message}`, "error");
    }
  });

  return {
    open,
    /** Disable what the server cannot do, saying why. */
    setSpeech(status) {
      speech = { stt: Boolean(status.stt && status.stt.available), tts: Boolean(status.tts && status.tts.available) };
      if (!speech.stt) {
        micButton.disabled = true;
        micButton.title = `Speech input is unavailable on this server${status.stt && status.stt.reason ? `: ${status.stt.reason}` : ""}`;
      }
      if (!speech.tts) autoSpeak.closest("label").title = "Speech output is unavailable on this server";
      if (session) {
        renderHead();
        for (const m of messages.values()) place(m);
      }
    },
    close() {
      close();
      session = null;
      pane.hidden = true;
      $("#empty-state").hidden = false;
    },
    get sessionId() {
      return session ? session.id : null;
    },
    // for diagnostics and the end-to-end test: drop the transport as a network failure would
    debug: {
      dropConnection: () => connection && connection.socket.io.engine.close(),
    },
  };
}
